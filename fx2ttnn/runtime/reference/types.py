"""Value types of the ttnn 0.81.1 API: dtypes, layouts, memory configs, op parameters.

Names and fields follow ../shared/ttnn/OP_CONTRACT.md §0 (``[py:types.py]``).  Objects are
plain frozen dataclasses / enums so they can be compared, hashed and printed in dumps.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import torch


class DataType(enum.Enum):
    BFLOAT16 = "bfloat16"
    BFLOAT8_B = "bfloat8_b"
    BFLOAT4_B = "bfloat4_b"
    FLOAT32 = "float32"
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    INT8 = "int8"
    INT32 = "int32"
    FP8_E4M3 = "fp8_e4m3"

    def __repr__(self) -> str:
        return f"ttnn.{self.value}"

    @property
    def is_float(self) -> bool:
        return self in _FLOAT_DTYPES

    @property
    def is_block_float(self) -> bool:
        return self in (DataType.BFLOAT8_B, DataType.BFLOAT4_B)

    @property
    def itemsize(self) -> float:
        """Bytes per element as stored on device (block floats include their shared exponent)."""
        return _ITEMSIZE[self]

    @property
    def torch_storage(self) -> torch.dtype:
        """The torch dtype the reference uses to hold values of this dtype (floats compute in fp32)."""
        return torch.float32 if self.is_float else torch.int64


_FLOAT_DTYPES = frozenset(
    {DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.BFLOAT4_B, DataType.FLOAT32, DataType.FP8_E4M3}
)
_ITEMSIZE = {
    DataType.BFLOAT16: 2.0, DataType.BFLOAT8_B: 1.0625, DataType.BFLOAT4_B: 0.5625, DataType.FLOAT32: 4.0,
    DataType.UINT8: 1.0, DataType.UINT16: 2.0, DataType.UINT32: 4.0, DataType.INT8: 1.0, DataType.INT32: 4.0,
    DataType.FP8_E4M3: 1.0,
}

bfloat16 = DataType.BFLOAT16
bfloat8_b = DataType.BFLOAT8_B
bfloat4_b = DataType.BFLOAT4_B
float32 = DataType.FLOAT32
uint8 = DataType.UINT8
uint16 = DataType.UINT16
uint32 = DataType.UINT32
int8 = DataType.INT8
int32 = DataType.INT32
fp8_e4m3 = DataType.FP8_E4M3


class Layout(enum.Enum):
    ROW_MAJOR = "ROW_MAJOR"
    TILE = "TILE"

    def __repr__(self) -> str:
        return f"ttnn.{self.value}_LAYOUT"


ROW_MAJOR_LAYOUT = Layout.ROW_MAJOR
TILE_LAYOUT = Layout.TILE
TILE_SIZE = 32


class BufferType(enum.Enum):
    DRAM = "DRAM"
    L1 = "L1"


class TensorMemoryLayout(enum.Enum):
    INTERLEAVED = "INTERLEAVED"
    HEIGHT_SHARDED = "HEIGHT_SHARDED"
    WIDTH_SHARDED = "WIDTH_SHARDED"
    BLOCK_SHARDED = "BLOCK_SHARDED"


class ShardStrategy(enum.Enum):
    HEIGHT = "HEIGHT"
    WIDTH = "WIDTH"
    BLOCK = "BLOCK"


class ShardOrientation(enum.Enum):
    ROW_MAJOR = "ROW_MAJOR"
    COL_MAJOR = "COL_MAJOR"


@dataclass(frozen=True)
class CoreGrid:
    y: int
    x: int

    @property
    def num_cores(self) -> int:
        return self.x * self.y


@dataclass(frozen=True)
class ShardSpec:
    grid: CoreGrid
    shape: tuple[int, int]
    orientation: ShardOrientation = ShardOrientation.ROW_MAJOR


@dataclass(frozen=True)
class MemoryConfig:
    memory_layout: TensorMemoryLayout = TensorMemoryLayout.INTERLEAVED
    buffer_type: BufferType = BufferType.DRAM
    shard_spec: ShardSpec | None = None

    @property
    def is_sharded(self) -> bool:
        return self.memory_layout is not TensorMemoryLayout.INTERLEAVED

    def __repr__(self) -> str:
        if not self.is_sharded:
            return f"ttnn.{self.buffer_type.value}_MEMORY_CONFIG"
        return f"MemoryConfig({self.memory_layout.value}, {self.buffer_type.value}, {self.shard_spec})"


DRAM_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.DRAM)
L1_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.L1)
L1_HEIGHT_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.HEIGHT_SHARDED, BufferType.L1)
L1_WIDTH_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.WIDTH_SHARDED, BufferType.L1)
L1_BLOCK_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.BLOCK_SHARDED, BufferType.L1)


class UnaryOpType(enum.Enum):
    RELU = "relu"
    GELU = "gelu"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    LEAKY_RELU = "leaky_relu"
    SILU = "silu"


@dataclass(frozen=True)
class UnaryWithParam:
    op_type: UnaryOpType
    param: float | None = None

    def __init__(self, op_type: UnaryOpType, param: float | None = None):
        object.__setattr__(self, "op_type", op_type)
        object.__setattr__(self, "param", None if param is None else float(param))


class GeluVariant(enum.Enum):
    Accurate = "Accurate"
    Tanh = "Tanh"
    FastLut = "FastLut"


class SigmoidMode(enum.Enum):
    Accurate = "Accurate"
    Fast = "Fast"


class MathFidelity(enum.Enum):
    """Mantissa-bit passes through the 5b x 7b multiplier (``runtime/reference/numerics.py`` has the bit rules).

    ``Invalid`` is what ``WormholeComputeKernelConfig()`` holds when no fidelity is given: the op then uses its
    own default (``numerics.OP_DEFAULTS``)."""

    LoFi = "LoFi"
    HiFi2 = "HiFi2"
    HiFi3 = "HiFi3"
    HiFi4 = "HiFi4"
    Invalid = "Invalid"

    def __repr__(self) -> str:
        return f"ttnn.MathFidelity.{self.value}"


class ThrottleLevel(enum.Enum):
    NO_THROTTLE = "NO_THROTTLE"


@dataclass(frozen=True, kw_only=True)
class WormholeComputeKernelConfig:
    """``ttnn.WormholeComputeKernelConfig``: keyword-only, with the 0.81.1 binding's defaults (read from its
    ``__nb_signature__``): an unset fidelity is ``Invalid``, approximate SFPU modes on, bfloat16 destination,
    no packer L1 accumulation."""

    math_fidelity: MathFidelity = MathFidelity.Invalid
    math_approx_mode: bool = True
    fp32_dest_acc_en: bool = False
    packer_l1_acc: bool = False
    dst_full_sync_en: bool = False
    throttle_level: ThrottleLevel = ThrottleLevel.NO_THROTTLE

    def __repr__(self) -> str:
        return (f"WormholeComputeKernelConfig(math_fidelity={self.math_fidelity.value}, "
                f"math_approx_mode={self.math_approx_mode}, fp32_dest_acc_en={self.fp32_dest_acc_en}, "
                f"packer_l1_acc={self.packer_l1_acc})")


BlackholeComputeKernelConfig = WormholeComputeKernelConfig


@dataclass(frozen=True)
class SDPAProgramConfig:
    compute_with_storage_grid_size: tuple[int, int] = (8, 8)
    q_chunk_size: int = 32
    k_chunk_size: int = 32
    exp_approx_mode: bool = False


@dataclass(frozen=True, kw_only=True)
class Conv2dConfig:
    """Keyword-only conv configuration (OP_CONTRACT §8); ``Conv1dConfig`` is the same type."""

    weights_dtype: DataType | None = None
    activation: UnaryWithParam | None = None
    deallocate_activation: bool = False
    reallocate_halo_output: bool = True
    config_tensors_in_dram: bool = False
    act_block_h_override: int = 0
    act_block_w_div: int = 1
    reshard_if_not_optimal: bool = False
    override_sharding_config: bool = False
    shard_layout: TensorMemoryLayout | None = None
    core_grid: Any = None
    transpose_shards: bool = False
    output_layout: Layout = Layout.TILE
    enable_act_double_buffer: bool = False
    enable_weights_double_buffer: bool = False
    full_inner_dim: bool = False
    enable_kernel_stride_folding: bool = False
    enable_activation_reuse: bool = False
    force_split_reader: bool = False
    override_output_sharding_config: bool = False
    padding_mode: str = "Zeros"


Conv1dConfig = Conv2dConfig


class Shape(tuple):
    """``tensor.shape`` / ``tensor.padded_shape``: a tuple of ints with ttnn's name."""

    def __new__(cls, dims):
        return tuple.__new__(cls, tuple(int(d) for d in dims))

    @classmethod
    def of_size(cls, size: torch.Size) -> "Shape":
        """From a ``torch.Size`` (already ints): no per-dim conversion."""
        return tuple.__new__(cls, size)

    def __repr__(self) -> str:
        return f"Shape({list(self)})"

    @property
    def rank(self) -> int:
        return len(self)

