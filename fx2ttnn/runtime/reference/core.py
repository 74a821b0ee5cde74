"""Host/device movement, layout, dtype and memory-config ops (OP_CONTRACT §1, §0)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .tensor import (
    Device, Tensor, checked, like, quantize, require, require_device, require_layout, require_output,
    wrap, write_into,
)
from .types import (
    DataType, Layout, MathFidelity, MemoryConfig, ShardOrientation, ShardSpec, ShardStrategy,
    TensorMemoryLayout, ThrottleLevel, BufferType, WormholeComputeKernelConfig, DRAM_MEMORY_CONFIG, TILE_SIZE,
)

_FROM_TORCH_DTYPE = {
    torch.bfloat16: DataType.BFLOAT16, torch.float32: DataType.FLOAT32, torch.int32: DataType.INT32,
    torch.uint8: DataType.UINT8, torch.int16: DataType.UINT16, torch.uint16: DataType.UINT16,
    torch.uint32: DataType.UINT32,
}
_TO_TORCH_DTYPE = {
    DataType.BFLOAT16: torch.bfloat16, DataType.FLOAT32: torch.float32, DataType.BFLOAT8_B: torch.float32,
    DataType.BFLOAT4_B: torch.float32, DataType.FP8_E4M3: torch.float32, DataType.UINT32: torch.uint32,
    DataType.INT32: torch.int32, DataType.UINT16: torch.uint16, DataType.UINT8: torch.uint8, DataType.INT8: torch.int8,
}  # ttnn 0.81.1's ttnn_dtype_to_torch_dtype (ttnn/core.py): unsigned stay unsigned


def _place(value: torch.Tensor, device: Device | None) -> torch.Tensor:
    if device is None or value.device.type == "meta" or value.device == device.torch_device:
        return value
    return value.to(device.torch_device)


def _own(value: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``value``, copied if it shares storage with ``source``.

    Ops that write a new buffer (host<->device transfers, layout/dtype/memory-config changes) must not alias
    their input: in-place device ops (``paged_update_cache``) would otherwise write through to the other
    tensor, e.g. a K and a V cache uploaded from the same torch zeros, or a ``to_torch`` snapshot.
    """
    if value.device.type != "meta" and value.untyped_storage().data_ptr() == source.untyped_storage().data_ptr():
        return value.clone()
    return value


def _moved(ref: Tensor, **kwargs: Any) -> Tensor:
    """``ref``'s values in a new buffer (``like`` with its own storage, see ``_own``)."""
    out = like(ref, ref._value, **kwargs)
    out._value = _own(out._value, ref._value)
    return out


# -- from_torch / to_torch -------------------------------------------------------------------

def _check_from_torch(tensor, dtype=None, *, spec=None, tile=None, pad_value=None, layout=None, device=None,
                      memory_config=None, mesh_mapper=None, cq_id=None, preserve_nan_values=False,
                      col_tilize=False, enable_bfloat_opt=False):
    require(isinstance(tensor, (torch.Tensor, np.ndarray)), "from_torch",
            f"expected a torch.Tensor or numpy array, got {type(tensor).__name__}")
    require(spec is None or (dtype is None and layout is None and memory_config is None and tile is None),
            "from_torch", "spec cannot be combined with dtype, layout, memory_config or tile")
    if dtype is None:
        tdtype = tensor.dtype if isinstance(tensor, torch.Tensor) else torch.from_numpy(tensor).dtype
        require(tdtype in _FROM_TORCH_DTYPE, "from_torch",
                f"torch dtype {tdtype} has no ttnn equivalent; pass dtype= (e.g. ttnn.uint32 for indices)")
    lay = layout or Layout.ROW_MAJOR
    if dtype is not None and dtype.is_block_float:
        require(lay is Layout.TILE, "from_torch", f"{dtype.value} exists only in TILE layout")
    if col_tilize:
        require(dtype is not None and dtype.is_block_float, "from_torch", "col_tilize=True needs bfloat8_b or bfloat4_b")
    require(memory_config is None or device is not None, "from_torch", "memory_config= needs device=")
    require(device is None or (isinstance(device, Device) and device.is_open), "from_torch",
            "device must be an open ttnn device")


@checked(_check_from_torch)
def from_torch(tensor, dtype=None, *, spec=None, tile=None, pad_value=None, layout=None, device=None,
               memory_config=None, mesh_mapper=None, cq_id=None, preserve_nan_values=False,
               col_tilize=False, enable_bfloat_opt=False):
    """Host torch tensor → ttnn tensor (on ``device`` if given). Layout defaults to ROW_MAJOR."""
    if isinstance(tensor, np.ndarray):
        tensor = torch.from_numpy(tensor)
    dtype = dtype or _FROM_TORCH_DTYPE[tensor.dtype]
    layout = layout or Layout.ROW_MAJOR
    value = tensor.detach().to(dtype.torch_storage)
    if col_tilize:
        value = value.transpose(-1, -2)
    out = wrap(_place(value, device), dtype, layout, memory_config, device)
    if device is not None:  # the upload copies; only a host tensor may borrow the torch storage
        out._value = _own(out._value, tensor)
    return out


def _check_to_torch(tensor, dtype=None, *, torch_rank=None, mesh_composer=None, device=None, cq_id=None):
    require(isinstance(tensor, Tensor), "to_torch", f"expected a ttnn.Tensor, got {type(tensor).__name__}")
    require(tensor._value is not None, "to_torch", "tensor was deallocated")


@checked(_check_to_torch)
def to_torch(tensor, dtype=None, *, torch_rank=None, mesh_composer=None, device=None, cq_id=None):
    """ttnn tensor → host torch tensor of the logical (unpadded) shape."""
    value = tensor._value
    if value.device.type not in ("cpu", "meta"):
        value = value.cpu()
    out = _own(value.to(dtype or _TO_TORCH_DTYPE[tensor.dtype]), tensor._value)
    if torch_rank is not None:
        while out.dim() > torch_rank and out.shape[0] == 1:
            out = out.squeeze(0)
    return out


# -- to_device / from_device ------------------------------------------------------------------

def _check_to_device(tensor, device, memory_config=None, queue_id=None, cq_id=None):
    require(isinstance(tensor, Tensor), "to_device", "expected a ttnn.Tensor")
    require(tensor._value is not None, "to_device", "tensor was deallocated")
    require(isinstance(device, Device) and device.is_open, "to_device", "device must be an open ttnn device")


@checked(_check_to_device)
def to_device(tensor, device, memory_config=None, queue_id=None, cq_id=None):
    value = _own(_place(tensor._value, device), tensor._value)
    return Tensor(value, tensor.dtype, tensor.layout, memory_config or DRAM_MEMORY_CONFIG, device)


def _check_from_device(tensor, blocking=True, queue_id=None, cq_id=None):
    require_device(tensor, "from_device", "tensor")


@checked(_check_from_device)
def from_device(tensor, blocking=True, queue_id=None, cq_id=None):
    return Tensor(_own(tensor._value, tensor._value), tensor.dtype, tensor.layout, None, None)


# -- layout / dtype / memory config -----------------------------------------------------------

def _check_to_layout(tensor, layout, dtype=None, memory_config=None, sub_core_grids=None, pad_value=0.0):
    require(isinstance(tensor, Tensor), "to_layout", "expected a ttnn.Tensor")
    require(tensor._value is not None, "to_layout", "tensor was deallocated")
    require(isinstance(layout, Layout), "to_layout", f"layout must be ttnn.TILE_LAYOUT or ttnn.ROW_MAJOR_LAYOUT, got {layout!r}")
    if dtype is not None and dtype is not tensor.dtype:
        require(layout is Layout.TILE, "to_layout", "a dtype change needs a TILE layout")
    if layout is Layout.ROW_MAJOR:
        require(not tensor.dtype.is_block_float, "to_layout", f"{tensor.dtype.value} exists only in TILE layout")


@checked(_check_to_layout)
def to_layout(tensor, layout, dtype=None, memory_config=None, sub_core_grids=None, pad_value=0.0):
    if dtype is None and layout is tensor.layout and memory_config is None:
        return tensor
    return _moved(tensor, dtype=dtype, layout=layout, memory_config=memory_config)


def _check_typecast(input_tensor, dtype, *, memory_config=None, output_tensor=None, sub_core_grids=None):
    require_device(input_tensor, "typecast", "input_tensor")
    require(isinstance(dtype, DataType), "typecast", f"dtype must be a ttnn dtype, got {dtype!r}")
    if dtype.is_block_float or input_tensor.dtype.is_block_float:
        require_layout(input_tensor, (Layout.TILE,), "typecast", "input_tensor")
    if output_tensor is not None:
        require_output("typecast", output_tensor, tuple(input_tensor.shape))


@checked(_check_typecast)
def typecast(input_tensor, dtype, *, memory_config=None, output_tensor=None, sub_core_grids=None):
    if output_tensor is not None:
        return write_into(output_tensor, quantize(input_tensor._value, dtype))
    return _moved(input_tensor, dtype=dtype, memory_config=memory_config)


def _check_to_memory_config(input_tensor, memory_config, dtype=None, *, output_tensor=None):
    require_device(input_tensor, "to_memory_config", "input_tensor")
    require(isinstance(memory_config, MemoryConfig), "to_memory_config", "memory_config must be a ttnn.MemoryConfig")
    _require_tile_shards(input_tensor, memory_config, "to_memory_config")  # sharding runs the same factories
    if output_tensor is not None:
        require(tuple(output_tensor.shape) == tuple(input_tensor.shape) and output_tensor.layout is input_tensor.layout,
                "to_memory_config", "output_tensor must match the input's shape and layout")


@checked(_check_to_memory_config)
def to_memory_config(input_tensor, memory_config, dtype=None, *, output_tensor=None):
    if output_tensor is not None:  # copy into a fixed buffer (trace inputs, OP_CONTRACT §9)
        output_tensor._value = _own(quantize(input_tensor._value, output_tensor.dtype), input_tensor._value)
        return output_tensor
    return _moved(input_tensor, dtype=dtype, memory_config=memory_config)


def _require_tile_shards(input_tensor, memory_config: MemoryConfig, op: str) -> None:
    """A TILE tensor is sharded in whole tiles: ttnn 0.81.1's sharding program factories check
    "Shard shape {} must be tile {}x{} sized!" (a string of its _ttnncpp.so)."""
    spec = memory_config.shard_spec
    if input_tensor.layout is Layout.TILE and spec is not None:
        require(spec.shape[0] % TILE_SIZE == 0 and spec.shape[1] % TILE_SIZE == 0, op,
                f"shard shape {list(spec.shape)} must be tile {TILE_SIZE}x{TILE_SIZE} sized for a TILE tensor")


def _check_sharding(input_tensor, memory_config, *args, **kwargs):
    require_device(input_tensor, "interleaved_to_sharded", "input_tensor")
    require(isinstance(memory_config, MemoryConfig) and memory_config.is_sharded, "interleaved_to_sharded",
            "memory_config must be a sharded memory config")
    _require_tile_shards(input_tensor, memory_config, "interleaved_to_sharded")
    spec = memory_config.shard_spec
    if spec is not None and memory_config.memory_layout is TensorMemoryLayout.HEIGHT_SHARDED:
        rows = int(np.prod(input_tensor.shape[:-1])) if len(input_tensor.shape) > 1 else 1
        require(spec.shape[0] * spec.grid.num_cores >= rows, "interleaved_to_sharded",
                f"shard height {spec.shape[0]} x {spec.grid.num_cores} cores does not cover {rows} rows")


@checked(_check_sharding)
def interleaved_to_sharded(input_tensor, memory_config, *args, **kwargs):
    return _moved(input_tensor, memory_config=memory_config)


def _check_unshard(input_tensor, memory_config=None, *args, **kwargs):
    require_device(input_tensor, "sharded_to_interleaved", "input_tensor")


@checked(_check_unshard)
def sharded_to_interleaved(input_tensor, memory_config=None, *args, **kwargs):
    return _moved(input_tensor, memory_config=memory_config or DRAM_MEMORY_CONFIG)


def create_sharded_memory_config(shape, core_grid, strategy, orientation=None,
                                 use_height_and_width_as_shard_shape=False):
    """An L1 sharded memory config for a tensor of ``shape`` spread over ``core_grid``."""
    shape = tuple(int(s) for s in shape)
    if use_height_and_width_as_shard_shape:
        shard = (shape[-2], shape[-1])
    else:
        height = int(np.prod(shape[:-1]))
        n = core_grid.num_cores
        if strategy is ShardStrategy.HEIGHT:
            shard = (-(-height // n), shape[-1])
        elif strategy is ShardStrategy.WIDTH:
            shard = (height, -(-shape[-1] // n))
        else:
            shard = (-(-height // core_grid.y), -(-shape[-1] // core_grid.x))
    layout = {ShardStrategy.HEIGHT: TensorMemoryLayout.HEIGHT_SHARDED, ShardStrategy.WIDTH: TensorMemoryLayout.WIDTH_SHARDED,
              ShardStrategy.BLOCK: TensorMemoryLayout.BLOCK_SHARDED}[strategy]
    return MemoryConfig(layout, BufferType.L1, ShardSpec(core_grid, shard, orientation or ShardOrientation.ROW_MAJOR))


# -- allocation and copies --------------------------------------------------------------------

def _check_clone(input_tensor, *args, memory_config=None, dtype=None, **kwargs):
    require_device(input_tensor, "clone", "input_tensor")


@checked(_check_clone)
def clone(input_tensor, *args, memory_config=None, dtype=None, **kwargs):
    return like(input_tensor, input_tensor._value.clone(), dtype=dtype, memory_config=memory_config)


def deallocate(tensor, force=True):
    """Free the tensor's device buffer; any later use raises (as on device)."""
    if isinstance(tensor, Tensor):
        dev = tensor._device
        trace = dev.capturing if dev is not None else None  # capture_of, for the one tensor (a step frees ~100)
        tensor._release()
        if trace is not None:
            trace.record("deallocate", deallocate, (tensor,), {"force": force}, None)


def reallocate(tensor, memory_config=None):
    require_device(tensor, "reallocate", "tensor")
    return _moved(tensor, memory_config=memory_config)


def _check_allocate(shape, dtype, layout, device, memory_config=None):
    require(isinstance(device, Device), "allocate_tensor_on_device", "device must be a ttnn device")
    require(isinstance(dtype, DataType), "allocate_tensor_on_device", f"dtype must be a ttnn dtype, got {dtype!r}")
    if dtype.is_block_float:
        require(layout is Layout.TILE, "allocate_tensor_on_device", f"{dtype.value} exists only in TILE layout")


@checked(_check_allocate)
def allocate_tensor_on_device(shape, dtype, layout, device, memory_config=None):
    value = torch.zeros(tuple(shape), dtype=dtype.torch_storage, device=device.torch_device)
    return Tensor(value, dtype, layout, memory_config or DRAM_MEMORY_CONFIG, device)


def _check_copy_h2d(host_tensor, device_tensor, cq_id=None):
    require(isinstance(host_tensor, Tensor) and host_tensor._device is None, "copy_host_to_device_tensor",
            "host_tensor must be a host ttnn.Tensor")
    require_device(device_tensor, "copy_host_to_device_tensor", "device_tensor")
    require(tuple(host_tensor.shape) == tuple(device_tensor.shape) and host_tensor.dtype is device_tensor.dtype
            and host_tensor.layout is device_tensor.layout, "copy_host_to_device_tensor",
            f"shape, dtype and layout must match (host {list(host_tensor.shape)} {host_tensor.dtype.value} "
            f"{host_tensor.layout.name}, device {list(device_tensor.shape)} {device_tensor.dtype.value} "
            f"{device_tensor.layout.name})")


@checked(_check_copy_h2d)
def copy_host_to_device_tensor(host_tensor, device_tensor, cq_id=None):
    device_tensor._value = _place(host_tensor._value.clone(), device_tensor._device)
    return device_tensor


def _check_copy(input_a, input_b, *args, **kwargs):
    require_device(input_a, "copy", "input_a")
    require_device(input_b, "copy", "input_b")
    require(tuple(input_a.shape) == tuple(input_b.shape), "copy",
            f"shapes must match ({list(input_a.shape)} vs {list(input_b.shape)})")


@checked(_check_copy)
def copy(input_a, input_b, *args, **kwargs):
    """Write ``input_a`` into ``input_b`` in place, cast to ``input_b``'s dtype."""
    from .tensor import quantize
    input_b._value = quantize(input_a._value, input_b.dtype)
    return input_b


def _check_init_device_compute_kernel_config(arch, device_kernel_config=None, *, math_fidelity=MathFidelity.LoFi,
                                             math_approx_mode=True, fp32_dest_acc_en=False, packer_l1_acc=False,
                                             dst_full_sync_en=False, throttle_level=ThrottleLevel.NO_THROTTLE):
    op = "init_device_compute_kernel_config"
    require(device_kernel_config is None or isinstance(device_kernel_config, WormholeComputeKernelConfig), op,
            f"device_kernel_config must be a ttnn.WormholeComputeKernelConfig, got {type(device_kernel_config).__name__}")
    require(isinstance(math_fidelity, MathFidelity), op,
            f"math_fidelity must be a ttnn.MathFidelity, got {math_fidelity!r}")
    for name, v in (("math_approx_mode", math_approx_mode), ("fp32_dest_acc_en", fp32_dest_acc_en),
                    ("packer_l1_acc", packer_l1_acc), ("dst_full_sync_en", dst_full_sync_en)):
        require(isinstance(v, bool), op, f"{name} must be a bool, got {v!r}")


@checked(_check_init_device_compute_kernel_config)
def init_device_compute_kernel_config(arch, device_kernel_config=None, *, math_fidelity=MathFidelity.LoFi,
                                      math_approx_mode=True, fp32_dest_acc_en=False, packer_l1_acc=False,
                                      dst_full_sync_en=False, throttle_level=ThrottleLevel.NO_THROTTLE):
    """The 0.81.1 binding: ``device_kernel_config`` when given, else a config of the keyword arguments, whose
    defaults (LoFi, approximate SFPU modes, bfloat16 destination, no L1 accumulation) are the binding's own."""
    if device_kernel_config is not None:
        return device_kernel_config
    return WormholeComputeKernelConfig(math_fidelity=math_fidelity, math_approx_mode=math_approx_mode,
                                       fp32_dest_acc_en=fp32_dest_acc_en, packer_l1_acc=packer_l1_acc,
                                       dst_full_sync_en=dst_full_sync_en, throttle_level=throttle_level)
