"""Reference implementation of the ttnn 0.81.1 API, in torch.

``from fx2ttnn.runtime import reference as ttnn`` gives a module with the same function names, argument
names, dtypes, layouts and memory configs as the real ``ttnn`` package (see ../shared/ttnn/OP_CONTRACT.md),
so a lowered program — or an exported standalone script — runs unchanged against either.  Each op checks
the contract the device enforces and raises :class:`fx2ttnn.errors.TTNNContractError` where ttnn would
fail; it computes in float32 and rounds results to the output dtype as the device stores them.
"""
from __future__ import annotations

from . import experimental, kv_cache, transformer  # noqa: F401  (ttnn.transformer.*, ttnn.experimental.*, ttnn.kv_cache.*)
from .conv import *  # noqa: F401,F403  (conv2d, conv1d, conv_transpose2d, ...; see conv.__all__)
from .kv_cache import *  # noqa: F401,F403  (update_cache, fill_cache; see kv_cache.__all__)
from .core import (  # noqa: F401
    allocate_tensor_on_device, clone, copy, copy_host_to_device_tensor, create_sharded_memory_config, deallocate,
    from_device, from_torch, init_device_compute_kernel_config, interleaved_to_sharded, reallocate,
    sharded_to_interleaved, to_device, to_layout, to_memory_config, to_torch, typecast,
)
from .data_movement import (  # noqa: F401
    concat, embedding, pad, permute, repeat, repeat_interleave, reshape, slice, squeeze, transpose, unsqueeze,
)
from .eltwise import (  # noqa: F401
    add, divide, eq, exp, ge, gelu, gt, le, leaky_relu, lt, multiply, neg, plus_one, relu, rsqrt, sigmoid, sqrt,
    subtract, sum, tanh, where,
)
from .matmul import linear, matmul  # noqa: F401
from .normalization import batch_norm, layer_norm, softmax  # noqa: F401
from .tensor import NUMERICS, Device, Tensor, close_device, open_device, synchronize_device  # noqa: F401
from .trace import (  # noqa: F401
    begin_trace_capture, end_trace_capture, execute_trace, is_trace_capture_active, release_trace,
)
from .types import *  # noqa: F401,F403
from .types import (  # noqa: F401
    DRAM_MEMORY_CONFIG, L1_BLOCK_SHARDED_MEMORY_CONFIG, L1_HEIGHT_SHARDED_MEMORY_CONFIG, L1_MEMORY_CONFIG,
    L1_WIDTH_SHARDED_MEMORY_CONFIG, ROW_MAJOR_LAYOUT, TILE_LAYOUT, TILE_SIZE, bfloat4_b, bfloat8_b, bfloat16,
    float32, int32, uint8, uint16, uint32,
)

IS_REFERENCE = True  # lets tools tell this module from the real ttnn package
