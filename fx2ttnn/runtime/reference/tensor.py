"""The reference ``ttnn.Tensor`` and ``ttnn.Device``, storage rounding, and contract-check helpers.

A reference tensor holds its *logical* values in a torch tensor: float32 for every float dtype, rounded
to what the device would store (bfloat16: round-to-nearest-even; bfloat8_b / bfloat4_b: block floats
with one shared exponent per 16 values of a tile row, packed as ttnn's host packer packs them:
``quantize_block_float``), int64 for integer dtypes.  TILE layout is
modelled by ``padded_shape`` (last two dims rounded up to 32); padding values are never observable
through the API, so they are not stored.  A device tensor counts its padded bytes against its
device, which tracks live and peak allocation (what ``tts.report()`` shows as device memory).
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable

import torch

from ...errors import TTNNContractError
from .types import (
    DRAM_MEMORY_CONFIG, DataType, Layout, MemoryConfig, Shape, TILE_SIZE,
)

# ---------------------------------------------------------------------------------------------
# contract checks


def require(cond: bool, op: str, message: str) -> None:
    """Raise the error real ttnn would raise (as a typed :class:`TTNNContractError`) unless ``cond``."""
    if not cond:
        raise TTNNContractError(f"ttnn.{op}: {message}")


def require_device(t: Any, op: str, arg: str) -> None:
    require(isinstance(t, Tensor), op, f"{arg} must be a ttnn.Tensor, got {type(t).__name__}")
    require(t._value is not None, op, f"{arg} was deallocated")
    require(t._device is not None, op, f"{arg} must be on device (call ttnn.to_device / from_torch(device=...))")


def require_output(op: str, output_tensor: Any, shape: tuple[int, ...]) -> None:
    """A preallocated output (``output_tensor=``) must be a live device tensor of the result's shape."""
    require_device(output_tensor, op, "output_tensor")
    require(tuple(output_tensor.shape) == tuple(shape), op,
            f"output_tensor shape {list(output_tensor.shape)} != result shape {list(shape)}")


def write_into(output_tensor: "Tensor", value: torch.Tensor) -> "Tensor":
    """Store ``value`` in a preallocated output (rounded to its dtype, never aliasing ``value``) and return it."""
    q = quantize(value, output_tensor.dtype)
    output_tensor._value = q.clone() if q is value else q
    return output_tensor


def require_layout(t: "Tensor", layouts: tuple[Layout, ...], op: str, arg: str) -> None:
    require(t.layout in layouts, op,
            f"{arg} must be in {' or '.join(l.name for l in layouts)} layout, got {t.layout.name}")


def require_dtype(t: "Tensor", dtypes: tuple[DataType, ...], op: str, arg: str) -> None:
    require(t.dtype in dtypes, op,
            f"{arg} dtype {t.dtype.value} is not supported (supported: {', '.join(d.value for d in dtypes)})")


# ---------------------------------------------------------------------------------------------
# storage rounding

_BLOCK = 16  # bfp formats share one exponent per 16 values (one row of a 16x16 tile face)


def quantize_block_float(x: torch.Tensor, mantissa_bits: int) -> torch.Tensor:
    """float32 values as ttnn 0.81.1 packs them into bfloat8_b (``mantissa_bits=7``) / bfloat4_b (3) and reads them
    back: the one conversion of the reference, bit-exact to the real library's host packer (checked value for value
    by ``fx2ttnn conformance``).

    Per block of 16 consecutive values of the last dim (a tile face row; blocks are aligned to 16 and a short last
    block is filled with zeros, the tile padding): the shared exponent is the largest biased float32 exponent of the
    block (255 when it holds an inf or NaN); each value's 24-bit significand (hidden bit included) is shifted right
    by its exponent's distance to the shared one (the bits shifted out are dropped), then rounded to
    ``mantissa_bits`` bits at the shifted position, to nearest with ties to even, saturating at the largest
    mantissa (no exponent bump).  Zeros and subnormals become +0, and so does any value whose mantissa rounds to
    0 (the sign is dropped).  Reading back: ``mantissa * 2**(shared - 127 - (mantissa_bits - 1))``; with a shared
    exponent of 255 a value whose mantissa keeps its top bit reads as inf (NaN if any other bit is set).
    """
    if x.device.type == "meta" or x.numel() == 0:
        return x
    if x.dim() == 0:
        return quantize_block_float(x.reshape(1), mantissa_bits).reshape(())
    w = x.shape[-1]
    pad = (-w) % _BLOCK
    xp = torch.nn.functional.pad(x, (0, pad)) if pad else x
    bits = xp.contiguous().view(torch.int32).reshape(*xp.shape[:-1], -1, _BLOCK)
    exp = (bits >> 23) & 0xFF
    shared = exp.amax(dim=-1, keepdim=True)
    significand = ((bits & 0x7FFFFF) | 0x800000) >> (shared - exp).clamp_(max=31)
    shift = 24 - mantissa_bits
    rest = significand & ((1 << shift) - 1)
    m = significand >> shift
    tie = 1 << (shift - 1)
    m += (rest > tie) | ((rest == tie) & ((m & 1) == 1))
    m = m.clamp_(max=(1 << mantissa_bits) - 1).masked_fill_(exp == 0, 0)
    # m < 2**mantissa_bits times a power of two: exact in float32 (subnormal results included)
    value = m.to(torch.float32) * torch.exp2((shared - (127 + mantissa_bits - 1)).to(torch.float32))
    special = (shared == 255) & ((m >> (mantissa_bits - 1)) == 1)
    if bool(special.any()):
        nan = special & ((m & ((1 << (mantissa_bits - 1)) - 1)) != 0)
        value = torch.where(special, torch.where(nan, torch.nan, torch.inf), value)
    value = torch.where((bits < 0) & (m != 0), -value, value).reshape(xp.shape)
    return value[..., :w] if pad else value


_INT_RANGE = {
    DataType.UINT8: (0, 2**8 - 1), DataType.UINT16: (0, 2**16 - 1), DataType.UINT32: (0, 2**32 - 1),
    DataType.INT8: (-(2**7), 2**7 - 1), DataType.INT32: (-(2**31), 2**31 - 1),
}


def quantize(value: torch.Tensor, dtype: DataType) -> torch.Tensor:
    """Values as the device would store them in ``dtype`` (float dtypes returned as float32)."""
    if dtype is DataType.FLOAT32:
        return value if value.dtype == torch.float32 else value.to(torch.float32)
    if dtype is DataType.BFLOAT16:
        return value.bfloat16().float()  # = .to(torch.bfloat16).to(torch.float32), a cheaper binding
    if dtype is DataType.BFLOAT8_B:
        return quantize_block_float(value.to(torch.float32), 7)
    if dtype is DataType.BFLOAT4_B:
        return quantize_block_float(value.to(torch.float32), 3)
    if dtype is DataType.FP8_E4M3:
        return value.to(torch.float8_e4m3fn).to(torch.float32)
    lo, hi = _INT_RANGE[dtype]
    if value.is_floating_point():
        value = torch.round(value)
    return value.to(torch.int64).clamp(lo, hi)


def padded(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    if layout is not Layout.TILE or len(shape) == 0:
        return tuple(shape)
    s = list(shape)
    s[-1] = -(-s[-1] // TILE_SIZE) * TILE_SIZE
    if len(s) >= 2:
        s[-2] = -(-s[-2] // TILE_SIZE) * TILE_SIZE
    else:
        s.insert(0, TILE_SIZE)
    return tuple(s)


def _is_idempotent_under_movement(dtype: DataType) -> bool:
    """Whether re-rounding values already stored in ``dtype`` is a no-op however they are rearranged.

    True for float32, bfloat16 and the integer dtypes (element-wise rounding, applied when the values were
    stored); false for block floats (a rearrangement regroups the 16-value blocks that share an exponent)
    and, conservatively, fp8.
    """
    return not (dtype.is_block_float or dtype is DataType.FP8_E4M3)


# per dtype: (non-TILE, TILE) caches of shape -> padded device bytes (see ``device_nbytes``)
for _d in DataType:
    _d._nbytes_cache = ({}, {})
    _d._moves_exactly = _is_idempotent_under_movement(_d)
del _d
_NBYTES_CACHE_LIMIT = 4096


def device_nbytes(shape: tuple[int, ...], layout: Layout, dtype: DataType) -> int:
    """Bytes a device tensor of ``shape`` occupies: its padded shape times the dtype's item size."""
    cache = dtype._nbytes_cache[layout is Layout.TILE]
    n = cache.get(shape)
    if n is None:
        n = int(math.prod(padded(tuple(shape), layout)) * dtype.itemsize)
        if len(cache) < _NBYTES_CACHE_LIMIT:
            cache[shape] = n
    return n


# ---------------------------------------------------------------------------------------------
# device


class Arch:
    WORMHOLE_B0 = "wormhole_b0"


NUMERICS = ("exact", "device")


class Device:
    """A reference device: an id, its open parameters, live/peak allocation accounting and traces.

    ``numerics`` (reference only) chooses how the compute ops that take a compute kernel config calculate:
    ``"exact"`` in float32 on the stored values (outputs rounded to their dtype), or ``"device"``, emulating
    the Tensix math their config selects (``numerics.py``: math fidelity, destination accumulation, packer
    formats).  ``emulate`` is ``numerics == "device"``, read by the kernels on every call.
    """

    _ids = itertools.count()

    def __init__(self, device_id: int = 0, *, l1_small_size: int = 0, trace_region_size: int = 0,
                 num_command_queues: int = 1, torch_device: str | torch.device = "cpu", numerics: str = "exact"):
        if numerics not in NUMERICS:
            raise TTNNContractError(f"ttnn.open_device: numerics must be one of {', '.join(NUMERICS)}, "
                                    f"got {numerics!r} (a reference-only option)")
        self.numerics = numerics
        self.emulate = numerics == "device"
        self.device_id = device_id
        self.l1_small_size = l1_small_size
        self.trace_region_size = trace_region_size
        self.num_command_queues = num_command_queues
        self.torch_device = torch.device(torch_device)
        self.allocated_bytes = 0
        self.peak_bytes = 0
        self.is_open = True
        self.traces: dict[int, Any] = {}
        self.capturing: Any = None

    def arch(self) -> str:
        return Arch.WORMHOLE_B0

    def _alloc(self, nbytes: int) -> None:
        self.allocated_bytes += nbytes
        if self.allocated_bytes > self.peak_bytes:
            self.peak_bytes = self.allocated_bytes

    def _free(self, nbytes: int) -> None:
        self.allocated_bytes -= nbytes

    def reset_peak(self) -> None:
        self.peak_bytes = self.allocated_bytes

    def __repr__(self) -> str:
        return f"<reference ttnn device {self.device_id}>"


def open_device(device_id: int = 0, l1_small_size: int = 0, trace_region_size: int = 0,
                num_command_queues: int = 1, dispatch_core_config: Any = None, *,
                torch_device: str | torch.device = "cpu", numerics: str = "exact") -> Device:
    """``ttnn.open_device``; reference only: ``torch_device`` selects where the torch kernels run, ``numerics``
    whether compute ops emulate the device's math (``"device"``) or compute exactly (``"exact"``, default)."""
    return Device(device_id, l1_small_size=l1_small_size, trace_region_size=trace_region_size,
                  num_command_queues=num_command_queues, torch_device=torch_device, numerics=numerics)


def close_device(device: Device) -> None:
    device.is_open = False


def synchronize_device(device: Device, *args: Any, **kwargs: Any) -> None:
    """The reference executes eagerly; nothing to wait for."""


# ---------------------------------------------------------------------------------------------
# tensor


class Tensor:
    """Reference ``ttnn.Tensor``. ``_value`` holds the logical, storage-rounded values (see module doc)."""

    # ``_aux``: a value derived from ``_value`` and cached with it (see ``flat_value``)
    __slots__ = ("_value", "dtype", "layout", "_memory_config", "_device", "_nbytes", "_aux", "__weakref__")

    def __init__(self, value: torch.Tensor, dtype: DataType, layout: Layout,
                 memory_config: MemoryConfig | None = None, device: Device | None = None):
        self._value = value
        self.dtype = dtype
        self.layout = layout
        self._device = device
        self._aux = None
        self._memory_config = (memory_config or DRAM_MEMORY_CONFIG) if device is not None else None
        self._nbytes = 0
        if device is not None:
            self._nbytes = device_nbytes(value.shape, layout, dtype)
            device._alloc(self._nbytes)

    def __del__(self) -> None:
        n = self._nbytes
        if n:
            device = self._device
            if device is not None:
                device.allocated_bytes -= n  # Device._free, inlined: runs for every dropped tensor
                self._nbytes = 0

    # -- ttnn.Tensor API ---------------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        return Shape.of_size(self._checked_value().shape)

    @property
    def padded_shape(self) -> Shape:
        return Shape(padded(tuple(self._checked_value().shape), self.layout))

    def memory_config(self) -> MemoryConfig | None:
        return self._memory_config

    def device(self) -> Device | None:
        return self._device

    def is_allocated(self) -> bool:
        return self._value is not None

    def storage_type(self) -> str:
        return "DEVICE" if self._device is not None else "HOST"

    def get_dtype(self) -> DataType:
        return self.dtype

    def get_layout(self) -> Layout:
        return self.layout

    def to_torch(self) -> torch.Tensor:
        from .core import to_torch
        return to_torch(self)

    def __matmul__(self, other: "Tensor") -> "Tensor":
        from .matmul import matmul
        return matmul(self, other)

    def __repr__(self) -> str:
        where = "host" if self._device is None else f"device {self._device.device_id}"
        state = "" if self._value is not None else " deallocated"
        shape = list(self._value.shape) if self._value is not None else "?"
        return f"ttnn.Tensor(shape={shape}, dtype={self.dtype.value}, layout={self.layout.name}, {where}{state})"

    # -- reference internals -----------------------------------------------------------------
    def _checked_value(self) -> torch.Tensor:
        if self._value is None:
            raise TTNNContractError("ttnn.Tensor: use of a deallocated tensor")
        return self._value

    def _release(self) -> None:
        n = self._nbytes
        if n and self._device is not None:
            self._device.allocated_bytes -= n  # Device._free, inlined (see __del__)
        self._nbytes = 0
        self._value = None
        self._aux = None


_new_object = object.__new__


def new_tensor(value: torch.Tensor, dtype: DataType, layout: Layout, memory_config: MemoryConfig | None,
               device: Device | None) -> Tensor:
    """``Tensor(value, dtype, layout, memory_config, device)`` without the constructor call: the kernels'
    fast path for their outputs (``value`` must already be stored-rounded).  Same fields, same accounting."""
    t = _new_object(Tensor)
    t._value = value
    t.dtype = dtype
    t.layout = layout
    t._device = device
    t._aux = None
    if device is None:
        t._memory_config = None
        t._nbytes = 0
        return t
    t._memory_config = memory_config or DRAM_MEMORY_CONFIG
    n = dtype._nbytes_cache[layout is Layout.TILE].get(value.shape)
    if n is None:
        n = device_nbytes(value.shape, layout, dtype)
    t._nbytes = n
    allocated = device.allocated_bytes + n
    device.allocated_bytes = allocated
    if allocated > device.peak_bytes:
        device.peak_bytes = allocated
    return t


def wrap(value: torch.Tensor, dtype: DataType, layout: Layout, memory_config: MemoryConfig | None,
         device: Device | None) -> Tensor:
    """A new tensor holding ``value`` rounded to ``dtype``."""
    if dtype is not DataType.FLOAT32 or value.dtype is not torch.float32:
        value = quantize(value, dtype)
    return new_tensor(value, dtype, layout, memory_config, device)


def like(ref: Tensor, value: torch.Tensor, *, dtype: DataType | None = None, layout: Layout | None = None,
         memory_config: MemoryConfig | None = None) -> Tensor:
    """Output tensor placed like ``ref`` (same device; dtype/layout/memory config unless given)."""
    dtype = dtype or ref.dtype
    if dtype is not DataType.FLOAT32 or value.dtype is not torch.float32:
        value = quantize(value, dtype)
    return new_tensor(value, dtype, layout or ref.layout, memory_config or ref._memory_config, ref._device)


def moved(ref: Tensor, value: torch.Tensor, *, layout: Layout | None = None,
          memory_config: MemoryConfig | None = None) -> Tensor:
    """Output of a pure data-movement op on ``ref``'s stored values (reshape, slice, head split), placed like
    ``ref`` in ``ref``'s dtype: ``like(ref, value, ...)``, rounding skipped where it is a no-op.

    ``value`` may be a view of ``ref``'s buffer: in-place writers (the cache updates) copy a shared buffer
    before writing (``writable``), so no tensor observes another's writes.
    """
    dtype = ref.dtype
    if not dtype._moves_exactly:
        value = quantize(value, dtype)
    return new_tensor(value, dtype, layout or ref.layout, memory_config or ref._memory_config, ref._device)


# ---------------------------------------------------------------------------------------------
# buffers: copy-on-write for in-place ops, derived values

_storage_use_count = getattr(torch._C, "_storage_Use_Count", None)


def _use_count(value: torch.Tensor) -> int:
    return _storage_use_count(value.untyped_storage()._cdata)


# the count a storage referenced by exactly one tensor reports (its Python storage object may add one)
_EXCLUSIVE = _use_count(torch.empty(1)) if _storage_use_count is not None else 0


def shares_storage(value: torch.Tensor) -> bool:
    """Whether another torch tensor (a view, an alias) references ``value``'s storage.

    Conservative: True when it cannot tell (no ``torch._C._storage_Use_Count``), which costs a copy, never
    a write leaking into another tensor.
    """
    if _storage_use_count is None:
        return True
    return _use_count(value) > _EXCLUSIVE


def writable(t: Tensor) -> torch.Tensor:
    """``t``'s values, ready for an in-place write: copied to a buffer of its own first if another tensor
    shares the storage (views made by data-movement ops, see ``moved``).  Reference tensors have value
    semantics: an in-place device op (``paged_update_cache``) changes its target and nothing else."""
    v = t._value
    t._aux = None  # values derived from the old contents (``host_list``) go stale
    if shares_storage(v):
        v = v.clone()
        t._value = v
    return v


def derived(t: Tensor, key: Any, make: Callable[[torch.Tensor], Any]) -> Any:
    """``make(t._value)``, cached on ``t`` under ``key`` while its values are unchanged: a new ``_value``
    (``copy``, ``output_tensor=``) misses the cache, in-place writers go through ``writable``, which drops it.
    A cached view counts as a sharer of the buffer, so ``writable`` copies before writing."""
    v = t._value
    aux = t._aux
    if aux is not None and aux[0] is v and aux[1] == key:
        return aux[2]
    f = make(v)
    t._aux = (v, key, f)
    return f


def reshaped_value(t: Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``t._value.reshape(shape)``, cached (constants read every step: gammas, betas, attention masks)."""
    return derived(t, shape, lambda v: v.reshape(shape))


def flat_value(t: Tensor) -> torch.Tensor:
    """``t._value.reshape(-1)``, cached (``reshaped_value``)."""
    return reshaped_value(t, (-1,))


def host_list(t: Tensor) -> list:
    """``t._value.tolist()`` (a small index tensor: decode positions), cached (``derived``)."""
    return derived(t, "list", torch.Tensor.tolist)


def transposed_value(t: Tensor) -> torch.Tensor:
    """``t._value.t()`` (a 2-D view: linear weights), cached (``derived``)."""
    return derived(t, "t", torch.Tensor.t)


# ---------------------------------------------------------------------------------------------
# op registration: every public op is a check (contract) + kernel (computation)


def capture_of(args: tuple, kwargs: dict) -> Any:
    """The trace being captured on the device of an op's tensor/device arguments, or None (``trace.py``)."""
    for a in itertools.chain(args, kwargs.values()):
        for x in (a if isinstance(a, (list, tuple)) else (a,)):
            dev = x._device if isinstance(x, Tensor) else (x if isinstance(x, Device) else None)
            if dev is not None and dev.capturing is not None:
                return dev.capturing
    return None


def checked(check: Callable[..., None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a kernel with its contract check.

    The public function runs ``check`` then the kernel (recording the call while a trace is being captured on
    the device, see ``trace.py``); ``public.unchecked`` is the bare kernel, which
    the executor binds after it has validated a whole program once (abstractly, on meta tensors), so the
    contract is verified at bind time and not re-verified on every decode step.
    """
    def deco(kernel: Callable[..., Any]) -> Callable[..., Any]:
        def public(*args: Any, **kwargs: Any) -> Any:
            check(*args, **kwargs)
            trace = capture_of(args, kwargs)
            if trace is None:
                return kernel(*args, **kwargs)
            trace.admit(kernel.__name__)
            out = kernel(*args, **kwargs)
            trace.record(kernel.__name__, kernel, args, kwargs, out)
            return out
        public.__name__ = kernel.__name__
        public.__qualname__ = kernel.__qualname__
        public.__doc__ = kernel.__doc__
        public.__wrapped__ = kernel
        public.unchecked = kernel
        public.check = check
        return public
    return deco
