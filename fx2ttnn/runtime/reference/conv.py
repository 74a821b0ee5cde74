"""Convolutions on flattened NHWC activations (OP_CONTRACT §8): ``conv2d``, ``conv1d``, ``conv_transpose2d``.

Also ``prepare_conv_weights`` / ``prepare_conv_bias``, ``prepare_conv_transpose2d_weights`` /
``prepare_conv_transpose2d_bias`` and ``get_conv_output_dim``.

Activations
    The input is NHWC ``[N, H, W, C]`` or flattened ``[1, 1, N*H*W, C]`` (conv1d: ``[N, L, C]``,
    ``[N, 1, L, C]``, ``[N, L, 1, C]`` or ``[1, 1, N*L, C]``), on host or device: float32 / bfloat16 in
    ROW_MAJOR or TILE, or bfloat8_b in TILE.  Its shape must agree with ``batch_size``, ``input_height``,
    ``input_width`` and ``in_channels`` exactly (an NCHW tensor is rejected).  The golden of the wheel
    slices ``[..., :in_channels]``; the device tolerates only a few alignment channels there, so the
    reference asks for ``C == in_channels``.  The output is flattened NHWC ``[1, 1, N*H_out*W_out, C_out]``
    on ``device``, in ``conv_config.output_layout`` (TILE by default) and ``dtype`` (default: the
    input's dtype).

Output memory config
    ``memory_config`` when given.  Otherwise as the device does: a conv2d whose input is interleaved in
    DRAM (with ``slice_config=None``) runs DRAM-sliced and returns DRAM interleaved; every other call
    (host or L1 input, conv1d, conv_transpose2d without ``dram_slice_config``) returns an **L1 sharded**
    tensor (``conv_config.shard_layout``, else height sharding when the output has at least as many rows
    as channels, block sharding otherwise).  conv2d/conv1d take ``memory_config=ttnn.DRAM_MEMORY_CONFIG``
    for an interleaved output; conv_transpose2d has no ``memory_config`` in 0.81.1 (a ``dram_slice_config``
    makes its output DRAM interleaved), so call ``ttnn.sharded_to_interleaved`` on its output before ops
    that need interleaved inputs.

Weights and bias, and their *prepared* form
    Unprepared weights are torch-layout host tensors, ROW_MAJOR, float32 or bfloat16: OIHW
    ``[O, I/groups, kH, kW]`` for conv2d, ``[O, I/groups, K]`` for conv1d (``[O, I/groups, 1, K]`` and
    ``[O, I/groups, K, 1]`` are accepted too), IOHW ``[I, O/groups, kH, kW]`` for conv_transpose2d.  The
    conv2d/conv1d bias is ``[1, 1, 1, O]`` ROW_MAJOR on the host; the conv_transpose2d bias may also be
    the 1-D ``[O]`` that its docstring describes.

    The op prepares them on each call that gets host weights; with ``return_weights_and_bias=True`` it
    returns the prepared ``(w, b)`` (``b`` is None without a bias), which later calls accept — as
    ``prepare_conv_weights`` / ``prepare_conv_bias`` / ``prepare_conv_transpose2d_*`` results are.
    A prepared tensor is a :class:`PreparedConvTensor`: a device, TILE tensor of dtype
    ``conv_config.weights_dtype`` (or ``output_dtype`` of the prepare call; default: the host weight's
    dtype), fp32 / bf16 / bf8_b.  **Representation:** the reference keeps torch values (OIHW for conv;
    for conv_transpose2d the IOHW kernel with ``torch.nn.ConvTranspose2d`` meaning, i.e. the given kernel
    flipped back when ``mirror_kernel=False``) rounded to that dtype (block floats grouped as in the device's ``[kH*kW*I, O]`` weight
    matrix); the device keeps an internal, sharding-dependent layout.  Nothing but the conv ops may
    consume prepared tensors.  Each one records the geometry it was prepared for; a conv call with a
    prepared weight or bias checks that its own geometry (op, channels, batch, input size, kernel,
    stride, padding, dilation, groups, output_padding; and, for weights, whether there is a bias) is the
    same, because on device the prepared layout depends on the sharding chosen for that geometry (conv1d
    accepts either conv2d equivalent: H=1, W=L as documented, or H=L, W=1 as tt-metal implements it).  A
    device tensor that did not come from a preparation is rejected as a weight (the device would
    read it as prepared and compute garbage).  Weights and bias must be both prepared or both not.

conv_transpose2d and ``mirror_kernel``
    The device computes a transposed conv as a conv2d over the zero-stuffed input with the spatially
    mirrored kernel; ``mirror_kernel=True`` makes the op mirror the given (PyTorch-format) kernel
    itself.  With ``mirror_kernel=False`` (the 0.81.1 default) the op uses the kernel as given, so it
    must already be mirrored: the result is ``F.conv_transpose2d(x, w.flip(-2, -1))``.  To get
    ``torch.nn.ConvTranspose2d`` semantics from torch weights pass ``mirror_kernel=True``.  Prepared
    weights have ``mirror_kernel`` of their preparation applied already, so a call with prepared weights
    ignores its own ``mirror_kernel`` (as on device, which only transforms host weights).

Numerics
    Inputs are taken as stored (already rounded to their dtype), weights and bias are rounded to the
    prepared dtype, the convolution runs in float32, then bias, the fused ``conv_config.activation``
    (a ``ttnn.UnaryWithParam``) and the rounding to the output dtype are applied.  On a device opened with
    ``numerics="device"`` the conv is the matmul of its im2col matrix under ``compute_config`` (math fidelity,
    DST accumulation, partial-sum buffer; ``device_ops.conv2d``).  Tensors whose values
    are on the torch "meta" device (compile-time shape evaluation) give correctly shaped meta outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .matmul import apply_activation_, check_compute_config
from .tensor import device_nbytes, Device, Tensor, checked, quantize, require, wrap
from .types import (
    BufferType, Conv2dConfig, DataType, DRAM_MEMORY_CONFIG, Layout, MemoryConfig, TensorMemoryLayout,
    UnaryOpType, UnaryWithParam, WormholeComputeKernelConfig,
)

__all__ = [
    "conv1d", "conv2d", "conv_transpose2d", "get_conv_output_dim", "prepare_conv_bias", "prepare_conv_transpose2d_bias",
    "prepare_conv_transpose2d_weights", "prepare_conv_weights",
]
# ``PreparedConvTensor`` and ``ConvGeometry`` are reference-only types (no ttnn names): not exported into ttnn.

ACT_DTYPES = (DataType.FLOAT32, DataType.BFLOAT16, DataType.BFLOAT8_B)        # input / output dtypes
HOST_WEIGHT_DTYPES = (DataType.FLOAT32, DataType.BFLOAT16)                   # unprepared weight / bias
PREPARED_DTYPES = (DataType.FLOAT32, DataType.BFLOAT16, DataType.BFLOAT8_B)  # prepared weight / bias


# ---------------------------------------------------------------------------------------------
# geometry and prepared tensors


@dataclass(frozen=True)
class ConvGeometry:
    """What a preparation depends on: one conv's shape parameters (padding as top, bottom, left, right)."""

    op: str  # "conv2d" (conv1d included) or "conv_transpose2d"
    in_channels: int
    out_channels: int
    batch_size: int
    input_height: int
    input_width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    output_padding: tuple[int, int] | None = None

    def describe(self) -> str:
        s = (f"{self.op}(in_channels={self.in_channels}, out_channels={self.out_channels}, "
             f"batch_size={self.batch_size}, input_height={self.input_height}, input_width={self.input_width}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
             f"dilation={self.dilation}, groups={self.groups}")
        if self.output_padding is not None:
            s += f", output_padding={self.output_padding}"
        return s + ")"

    def diff(self, other: "ConvGeometry") -> str:
        names = [f for f in self.__dataclass_fields__ if getattr(self, f) != getattr(other, f)]
        return ", ".join(f"{n}: prepared {getattr(other, n)!r} vs call {getattr(self, n)!r}" for n in names)


class PreparedConvTensor(Tensor):
    """A prepared conv weight or bias (device, TILE). See the module doc for what its values are."""

    __slots__ = ("role", "geometry", "has_bias")

    def __init__(self, value: torch.Tensor, dtype: DataType, device: Device, *, role: str,
                 geometry: ConvGeometry, has_bias: bool):
        super().__init__(value, dtype, Layout.TILE, DRAM_MEMORY_CONFIG, device)
        self.role = role
        self.geometry = geometry
        self.has_bias = has_bias
        # the device holds a weight as the tiled matrix [kH*kW*I, O] (a bias as a [1, O] row), not as tiled OIHW
        # (which would pad each (kH, kW) face to 32 x 32): account for that size
        if device is not None and value.device.type != "meta":
            device._free(self._nbytes)
            self._nbytes = device_nbytes(self.device_shape, Layout.TILE, dtype)
            device._alloc(self._nbytes)

    @property
    def device_shape(self) -> tuple[int, ...]:
        """The shape the device stores: ``[1, 1, kH*kW*I, O]`` for a weight, ``[1, 1, 1, O]`` for a bias.

        A grouped weight (``groups > 1``) is stored ungrouped: ttnn's ``convert_conv_weight_tensor_to_grouped_layout``
        zero-pads ``[O, I/groups, kH, kW]`` to the block-diagonal ``[O, I, kH, kW]`` (``[I, O, kH, kW]`` for a
        transposed conv), and the conv runs it as a dense one: ``groups`` times the weight bytes and MACs.  (The device's
        1-D depthwise path repeats the weight per activation block instead; that size is not modelled.)"""
        shape = tuple(self._checked_value().shape)
        if len(shape) == 4 and self.role == "weight":
            a, b, kh, kw = shape  # OIHW, or IOHW for a transposed conv
            b *= self.geometry.groups
            i, o = (a, b) if self.geometry.op == "conv_transpose2d" else (b, a)
            return (1, 1, kh * kw * i, o)
        return (1, 1, 1, shape[-1])

    def __repr__(self) -> str:
        return f"Prepared{self.role.capitalize()}({super().__repr__()}, for {self.geometry.describe()})"


def _place(value: torch.Tensor, target: torch.device) -> torch.Tensor:
    return value if value.device == target else value.to(target)


def _quantize_weight(w: torch.Tensor, dtype: DataType, transposed: bool) -> torch.Tensor:
    """Round a torch-layout weight to ``dtype``; block floats share exponents along O as in the device's
    ``[kH*kW*I, O]`` weight matrix."""
    if not dtype.is_block_float:
        return quantize(w, dtype)
    oihw = w.transpose(0, 1) if transposed else w
    o, i, kh, kw = oihw.shape
    mat = oihw.permute(2, 3, 1, 0).reshape(kh * kw * i, o)
    mat = quantize(mat, dtype)
    oihw = mat.reshape(kh, kw, i, o).permute(3, 2, 0, 1)
    return (oihw.transpose(0, 1) if transposed else oihw).contiguous()


def _prepare_weight(w: Tensor, dtype: DataType, device: Device, geometry: ConvGeometry, has_bias: bool,
                    *, mirror: bool = False) -> PreparedConvTensor:
    kh, kw = geometry.kernel_size
    value = w._value.reshape(w._value.shape[0], w._value.shape[1], kh, kw)
    if mirror:
        value = value.flip(-2, -1)
    value = _quantize_weight(value.to(torch.float32), dtype, geometry.op == "conv_transpose2d")
    if value.device.type != "meta":
        value = _place(value, device.torch_device)
    return PreparedConvTensor(value, dtype, device, role="weight", geometry=geometry, has_bias=has_bias)


def _prepare_bias(b: Tensor, dtype: DataType, device: Device, geometry: ConvGeometry) -> PreparedConvTensor:
    value = quantize(b._value.reshape(1, 1, 1, -1).to(torch.float32), dtype)
    if value.device.type != "meta":
        value = _place(value, device.torch_device)
    return PreparedConvTensor(value, dtype, device, role="bias", geometry=geometry, has_bias=True)


# ---------------------------------------------------------------------------------------------
# argument checks


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _require_int(op: str, name: str, v: Any, minimum: int) -> None:
    require(_is_int(v), op, f"{name} must be an int, got {v!r}")
    require(v >= minimum, op, f"{name} must be >= {minimum}, got {v}")


def _require_pair(op: str, name: str, v: Any, minimum: int) -> None:
    require(isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(x) for x in v), op,
            f"{name} must be a pair of ints (h, w), got {v!r}")
    require(all(x >= minimum for x in v), op, f"{name} values must be >= {minimum}, got {tuple(v)}")


def _require_padding(op: str, v: Any, *, allow4: bool = True) -> None:
    forms = "(ph, pw) or (top, bottom, left, right)" if allow4 else "(ph, pw)"
    lens = (2, 4) if allow4 else (2,)
    require(isinstance(v, (tuple, list)) and len(v) in lens and all(_is_int(x) for x in v), op,
            f"padding must be {forms}, got {v!r}")
    require(all(x >= 0 for x in v), op, f"padding values must be >= 0, got {tuple(v)}")


def _pad4(v) -> tuple[int, int, int, int]:
    v = tuple(int(x) for x in v)
    return (v[0], v[0], v[1], v[1]) if len(v) == 2 else v


def _require_tensor(op: str, name: str, t: Any) -> None:
    require(isinstance(t, Tensor), op, f"{name} must be a ttnn.Tensor, got {type(t).__name__}")
    require(t._value is not None, op, f"{name} was deallocated")


def _check_device(op: str, device: Any, input_tensor: Tensor) -> None:
    require(isinstance(device, Device), op, f"device must be a ttnn device, got {type(device).__name__}")
    require(device.is_open, op, "device is closed")
    require(input_tensor._device is None or input_tensor._device is device, op,
            "input_tensor is on another device than `device`")


def _check_input(op: str, t: Any) -> None:
    _require_tensor(op, "input_tensor", t)
    require(t.dtype in ACT_DTYPES, op,
            f"input_tensor dtype {t.dtype.value} is not supported (supported: float32, bfloat16 in ROW_MAJOR or "
            f"TILE, bfloat8_b in TILE)")
    if t.dtype.is_block_float:
        require(t.layout is Layout.TILE, op, f"a {t.dtype.value} input_tensor must be in TILE layout")


def _check_config(op: str, conv_config: Any, compute_config: Any, dtype: Any, memory_config: Any) -> None:
    require(conv_config is None or isinstance(conv_config, Conv2dConfig), op,
            f"conv_config must be a ttnn.Conv2dConfig, got {type(conv_config).__name__}")
    require(compute_config is None or isinstance(compute_config, WormholeComputeKernelConfig), op,
            "compute_config must come from ttnn.init_device_compute_kernel_config, got "
            f"{type(compute_config).__name__}")
    if dtype is not None:
        check_compute_config(op, compute_config, dtype)
    require(memory_config is None or isinstance(memory_config, MemoryConfig), op,
            f"memory_config must be a ttnn.MemoryConfig, got {type(memory_config).__name__}")
    require(dtype is None or dtype in ACT_DTYPES, op,
            f"dtype {getattr(dtype, 'value', dtype)} is not supported for the output (supported: float32, bfloat16, "
            f"bfloat8_b)")
    if conv_config is None:
        return
    act = conv_config.activation
    require(act is None or (isinstance(act, UnaryWithParam) and act.op_type in UnaryOpType), op,
            f"conv_config.activation must be None or a ttnn.UnaryWithParam, got {act!r}")
    require(conv_config.output_layout in (Layout.TILE, Layout.ROW_MAJOR), op,
            "conv_config.output_layout must be ttnn.TILE_LAYOUT or ttnn.ROW_MAJOR_LAYOUT, got "
            f"{conv_config.output_layout!r}")
    wd = conv_config.weights_dtype
    require(wd is None or wd in PREPARED_DTYPES, op,
            f"conv_config.weights_dtype {getattr(wd, 'value', wd)} is not supported (supported: float32, bfloat16, "
            f"bfloat8_b)")
    require(conv_config.shard_layout is None or isinstance(conv_config.shard_layout, TensorMemoryLayout), op,
            f"conv_config.shard_layout must be a ttnn.TensorMemoryLayout, got {conv_config.shard_layout!r}")


def _check_output(op: str, input_tensor: Tensor, dtype: Any, conv_config: Any) -> None:
    out_dtype = dtype or input_tensor.dtype
    layout = conv_config.output_layout if conv_config is not None else Layout.TILE
    require(not (out_dtype.is_block_float and layout is Layout.ROW_MAJOR), op,
            f"a {out_dtype.value} output needs conv_config.output_layout=ttnn.TILE_LAYOUT")


def _check_host_weight(op: str, w: Tensor, expected: tuple[int, ...], fmt: str, *, alternatives=()) -> None:
    require(w.dtype in HOST_WEIGHT_DTYPES, op,
            f"weight_tensor dtype {w.dtype.value} is not supported on the host (float32 or bfloat16; use "
            f"conv_config.weights_dtype for bfloat8_b)")
    require(w.layout is Layout.ROW_MAJOR, op, "an unprepared weight_tensor must be in ROW_MAJOR layout")
    shape = tuple(w.shape)
    ok = [expected, *alternatives]
    require(shape in ok, op, f"weight_tensor must be {fmt} {' or '.join(str(list(s)) for s in ok)} for this call, "
                             f"got {list(shape)}")


def _check_host_bias(op: str, b: Tensor, out_channels: int, *, allow_1d: bool = False) -> None:
    require(b.dtype in HOST_WEIGHT_DTYPES, op,
            f"bias_tensor dtype {b.dtype.value} is not supported on the host (float32 or bfloat16)")
    require(b.layout is Layout.ROW_MAJOR, op, "an unprepared bias_tensor must be in ROW_MAJOR layout")
    shape = tuple(b.shape)
    ok = [(1, 1, 1, out_channels)] + ([(out_channels,)] if allow_1d else [])
    require(shape in ok, op,
            f"bias_tensor must be {' or '.join(str(list(s)) for s in ok)} (one value per output channel), got "
            f"{list(shape)}")


def _check_prepared(op: str, t: Tensor, name: str, role: str, device: Device,
                    geometries: tuple[ConvGeometry, ...]) -> None:
    require(t.role == role, op, f"{name} is a prepared conv {t.role}, not a {role}")
    require(t._device is device, op, f"{name} was prepared for another device")
    require(t.dtype in PREPARED_DTYPES and t.layout is Layout.TILE, op,
            f"a prepared {name} must be TILE float32/bfloat16/bfloat8_b")
    require(t.geometry in geometries, op,
            f"{name} was prepared for a different convolution ({geometries[0].diff(t.geometry)}); prepare it again "
            f"for this call's geometry")


def _check_weights(op: str, weight_tensor: Any, bias_tensor: Any, device: Device, geometries: tuple[ConvGeometry, ...],
                   expected_w: tuple[int, ...], fmt: str, *, w_alternatives=(), bias_1d: bool = False) -> None:
    _require_tensor(op, "weight_tensor", weight_tensor)
    if bias_tensor is not None:
        _require_tensor(op, "bias_tensor", bias_tensor)
    g = geometries[0]
    w_prep = isinstance(weight_tensor, PreparedConvTensor)
    if not w_prep:
        require(weight_tensor._device is None, op,
                "weight_tensor is on device but is not a prepared conv weight: pass the torch-layout weight on the "
                "host, or the tensor returned by a prepare_* op or by a conv call with return_weights_and_bias=True")
    b_prep = isinstance(bias_tensor, PreparedConvTensor)
    if bias_tensor is not None:
        require(w_prep == b_prep, op,
                "weight_tensor and bias_tensor must be both prepared (on device) or both unprepared (on host); got "
                f"{'a prepared' if w_prep else 'an unprepared'} weight and "
                f"{'a prepared' if b_prep else 'an unprepared'} bias")
        if not b_prep:
            require(bias_tensor._device is None, op,
                    "bias_tensor is on device but is not a prepared conv bias: pass it on the host as "
                    f"[1, 1, 1, {g.out_channels}]")
    if w_prep:
        _check_prepared(op, weight_tensor, "weight_tensor", "weight", device, geometries)
        require(weight_tensor.has_bias == (bias_tensor is not None), op,
                f"weight_tensor was prepared with has_bias={weight_tensor.has_bias} but this call "
                f"{'has a' if bias_tensor is not None else 'has no'} bias_tensor")
        if bias_tensor is not None:
            _check_prepared(op, bias_tensor, "bias_tensor", "bias", device, geometries)
    else:
        _check_host_weight(op, weight_tensor, expected_w, fmt, alternatives=w_alternatives)
        if bias_tensor is not None:
            _check_host_bias(op, bias_tensor, g.out_channels, allow_1d=bias_1d)


def _check_channels(op: str, in_channels: int, out_channels: int, groups: int) -> None:
    require(in_channels % groups == 0, op, f"in_channels {in_channels} is not divisible by groups {groups}")
    require(out_channels % groups == 0, op, f"out_channels {out_channels} is not divisible by groups {groups}")


def _check_nhwc(op: str, t: Tensor, n: int, h: int, w: int, c: int, *, conv1d: bool = False) -> None:
    shape = tuple(t.shape)
    if conv1d:
        ok = [(n, w, c), (1, n * w, c), (n, 1, w, c), (n, w, 1, c), (1, 1, n * w, c)]
        what = (f"conv1d input must be NLC [N, L, C] = {list(ok[0])}, [N, 1, L, C] = {list(ok[2])}, "
                f"[N, L, 1, C] = {list(ok[3])} or flattened [1, 1, N*L, C] = {list(ok[4])}")
    else:
        ok = [(n, h, w, c), (1, 1, n * h * w, c)]
        what = f"conv2d input must be NHWC or flattened [1, 1, N*H*W, C]: {list(ok[0])} or {list(ok[1])}"
    if shape in ok:
        return
    hint = ""
    if len(shape) == len(ok[0]) and shape[-1] != c and c in shape:
        hint = " (channels must be the last dim: is this NCHW / NCL?)"
    elif len(shape) >= 1 and shape[-1] != c:
        hint = f" (last dim {shape[-1]} != in_channels {c})"
    require(False, op, f"{what} for batch_size={n}, {'input_length' if conv1d else 'input_height'}="
                       f"{w if conv1d else h}{'' if conv1d else f', input_width={w}'}, in_channels={c}; "
                       f"got {list(shape)}{hint}")


def _conv_out_dim(size: int, k: int, s: int, p_lo: int, p_hi: int, d: int) -> int:
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def _check_out_size(op: str, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> None:
    require(out_hw[0] >= 1 and out_hw[1] >= 1, op,
            f"the (dilated) kernel is larger than the padded input {list(in_hw)}: output would be {list(out_hw)}")


def _check_returns(op: str, return_output_dim: Any, return_weights_and_bias: Any) -> None:
    require(isinstance(return_output_dim, bool) and isinstance(return_weights_and_bias, bool), op,
            "return_output_dim and return_weights_and_bias must be bools")


# ---------------------------------------------------------------------------------------------
# shared kernel pieces


def _target(device: Device, *values: torch.Tensor | None) -> torch.device:
    if any(v is not None and v.device.type == "meta" for v in values):
        return torch.device("meta")
    return device.torch_device


def _output_memory(op: str, input_tensor: Tensor, conv_config: Any, memory_config: Any, slice_config: Any,
                   rows: int, channels: int) -> MemoryConfig:
    if memory_config is not None:
        return memory_config
    if op == "conv2d" and input_tensor._device is not None:
        mc = input_tensor.memory_config()
        l1_full = slice_config is not None and "L1" in str(getattr(slice_config, "slice_type", ""))
        if mc is not None and not mc.is_sharded and mc.buffer_type is BufferType.DRAM and not l1_full:
            return DRAM_MEMORY_CONFIG  # DRAM slicing (automatic when slice_config is None)
    layout = conv_config.shard_layout if conv_config is not None and conv_config.shard_layout is not None else (
        TensorMemoryLayout.HEIGHT_SHARDED if rows >= channels else TensorMemoryLayout.BLOCK_SHARDED)
    if layout is TensorMemoryLayout.INTERLEAVED:
        return MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.L1)
    return MemoryConfig(layout, BufferType.L1)


def _effective_weights(weight_tensor: Tensor, bias_tensor: Tensor | None, device: Device, geometry: ConvGeometry,
                       conv_config: Any, *, mirror: bool = False) -> tuple[Tensor, Tensor | None]:
    """The prepared (w, b) for this call: the given ones, or freshly prepared host tensors."""
    if isinstance(weight_tensor, PreparedConvTensor):
        return weight_tensor, bias_tensor
    wd = (conv_config.weights_dtype if conv_config is not None else None) or weight_tensor.dtype
    w = _prepare_weight(weight_tensor, wd, device, geometry, bias_tensor is not None, mirror=mirror)
    b = _prepare_bias(bias_tensor, wd, device, geometry) if bias_tensor is not None else None
    return w, b


def _finish(op: str, out_nchw: torch.Tensor, input_tensor: Tensor, device: Device, dtype: Any, conv_config: Any,
            memory_config: Any, slice_config: Any, in_channels: int) -> Tensor:
    act = conv_config.activation if conv_config is not None else None
    if act is not None and not device.emulate:  # the device path applied it in DST already (_device_conv)
        out_nchw = apply_activation_(out_nchw, act)  # the conv's own, fresh output
    out = out_nchw
    n, c, h, w = out.shape
    out = out.permute(0, 2, 3, 1).reshape(1, 1, n * h * w, c)
    layout = conv_config.output_layout if conv_config is not None else Layout.TILE
    mem = _output_memory(op, input_tensor, conv_config, memory_config, slice_config, n * h * w, max(c, in_channels))
    return wrap(out, dtype or input_tensor.dtype, layout, mem, device)


def _results(out: Tensor, dims: Any, wb: tuple, return_output_dim: bool, return_weights_and_bias: bool):
    if return_output_dim and return_weights_and_bias:
        return out, dims, wb
    if return_output_dim:
        return out, dims
    if return_weights_and_bias:
        return out, wb
    return out


def _conv2d_values(x_nhwc: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride, pad4, dilation,
                   groups: int) -> torch.Tensor:
    x = x_nhwc.permute(0, 3, 1, 2)
    t, btm, l, r = pad4
    if t == btm and l == r:
        return F.conv2d(x, w, b, tuple(stride), (t, l), tuple(dilation), groups)
    x = F.pad(x, (l, r, t, btm))
    return F.conv2d(x, w, b, tuple(stride), 0, tuple(dilation), groups)


# ---------------------------------------------------------------------------------------------
# conv2d


def _geometry2d(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                dilation, groups) -> ConvGeometry:
    return ConvGeometry("conv2d", in_channels, out_channels, batch_size, input_height, input_width,
                        tuple(kernel_size), tuple(stride), _pad4(padding), tuple(dilation), groups)


def _check_geometry2d(op: str, in_channels, out_channels, batch_size, input_height, input_width, kernel_size,
                      stride, padding, dilation, groups) -> None:
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("batch_size", batch_size),
                    ("input_height", input_height), ("input_width", input_width), ("groups", groups)):
        _require_int(op, name, v, 1)
    _require_pair(op, "kernel_size", kernel_size, 1)
    _require_pair(op, "stride", stride, 1)
    _require_padding(op, padding)
    _require_pair(op, "dilation", dilation, 1)
    _check_channels(op, in_channels, out_channels, groups)


def _check_conv2d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_height,
                  input_width, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, dtype=None,
                  bias_tensor=None, conv_config=None, compute_config=None, memory_config=None, slice_config=None,
                  return_output_dim=False, return_weights_and_bias=False):
    op = "conv2d"
    _check_input(op, input_tensor)
    _check_device(op, device, input_tensor)
    _check_geometry2d(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, dilation, groups)
    _check_config(op, conv_config, compute_config, dtype, memory_config)
    _check_returns(op, return_output_dim, return_weights_and_bias)
    _check_nhwc(op, input_tensor, batch_size, input_height, input_width, in_channels)
    g = _geometry2d(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    dilation, groups)
    out_hw = (_conv_out_dim(input_height, g.kernel_size[0], g.stride[0], g.padding[0], g.padding[1], g.dilation[0]),
              _conv_out_dim(input_width, g.kernel_size[1], g.stride[1], g.padding[2], g.padding[3], g.dilation[1]))
    _check_out_size(op, out_hw, (input_height, input_width))
    kh, kw = g.kernel_size
    _check_weights(op, weight_tensor, bias_tensor, device, (g,), (out_channels, in_channels // groups, kh, kw), "OIHW")
    if bias_tensor is not None and groups > 1 and groups == in_channels == out_channels:
        require(not ((kw == 1 and input_width == 1) or (kh == 1 and input_height == 1)), op,
                "Bias is not supported for depthwise conv1d")
    _check_output(op, input_tensor, dtype, conv_config)


@checked(_check_conv2d)
def conv2d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_height, input_width,
           kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1, *, dtype=None, bias_tensor=None,
           conv_config=None, compute_config=None, memory_config=None, slice_config=None, return_output_dim=False,
           return_weights_and_bias=False):
    """2D convolution of an NHWC (or flattened) input; output flattened ``[1, 1, N*H_out*W_out, C_out]``.

    Returns ``out``, ``(out, (H_out, W_out))``, ``(out, (w_prep, b_prep))`` or
    ``(out, (H_out, W_out), (w_prep, b_prep))`` as ``return_output_dim`` / ``return_weights_and_bias`` ask.
    """
    g = _geometry2d(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    dilation, groups)
    w, b = _effective_weights(weight_tensor, bias_tensor, device, g, conv_config)
    out = _run_conv2d(input_tensor, w, b, g, device, "conv2d", compute_config, conv_config, dtype)
    dims = (out.shape[2], out.shape[3])
    result = _finish("conv2d", out, input_tensor, device, dtype, conv_config, memory_config, slice_config, in_channels)
    return _results(result, dims, (w, b), return_output_dim, return_weights_and_bias)


def _run_conv2d(input_tensor: Tensor, w: Tensor, b: Tensor | None, g: ConvGeometry, device: Device,
                op: str = "conv2d", compute_config: Any = None, conv_config: Any = None,
                dtype: Any = None) -> torch.Tensor:
    x = input_tensor._value
    target = _target(device, x, w._value, None if b is None else b._value)
    x = _place(x, target).reshape(g.batch_size, g.input_height, g.input_width, g.in_channels)
    wv = _place(w._value, target).reshape(g.out_channels, g.in_channels // g.groups, *g.kernel_size)
    bv = None if b is None else _place(b._value, target).reshape(-1)
    if device.emulate and target.type != "meta":
        from . import device_ops
        return _device_conv(op, lambda m: device_ops.conv2d(x.permute(0, 3, 1, 2), wv, g.stride, g.padding,
                                                           g.dilation, g.groups, m),
                            bv, input_tensor, compute_config, conv_config, dtype)
    return _conv2d_values(x, wv, bv, g.stride, g.padding, g.dilation, g.groups)


def _device_conv(op: str, run: Any, bias: torch.Tensor | None, input_tensor: Tensor, compute_config: Any,
                 conv_config: Any, dtype: Any) -> torch.Tensor:
    """A conv under ``numerics="device"``: ``run(math)`` gives DST after the K loop (``device_ops``); the bias
    goes through the partial-sum buffer and DST, the fused activation runs on DST (NCHW, before the output
    rounding that ``_finish`` does)."""
    from . import device_ops, numerics
    out_dtype = dtype or input_tensor.dtype
    m = numerics.resolve(op, compute_config, fp32_in=input_tensor.dtype is DataType.FLOAT32,
                         fp32_out=out_dtype is DataType.FLOAT32)
    act = conv_config.activation if conv_config is not None else None
    return device_ops.finish_matmul(run(m), m, out_dtype, None if bias is None else bias.view(1, -1, 1, 1), act,
                                    apply_activation_)


# ---------------------------------------------------------------------------------------------
# conv1d


def _conv1d_geometries(in_channels, out_channels, batch_size, input_length, kernel_size, stride, padding, dilation,
                       groups) -> tuple[ConvGeometry, ConvGeometry]:
    """(H=1, W=L) — the contract's reading, used for what conv1d prepares — and (H=L, W=1), the tt-metal
    implementation's; a prepared weight of either geometry is accepted."""
    lo, hi = (padding, padding) if _is_int(padding) else (int(padding[0]), int(padding[1]))
    wide = ConvGeometry("conv2d", in_channels, out_channels, batch_size, 1, input_length, (1, kernel_size),
                        (1, stride), (0, 0, lo, hi), (1, dilation), groups)
    tall = ConvGeometry("conv2d", in_channels, out_channels, batch_size, input_length, 1, (kernel_size, 1),
                        (stride, 1), (lo, hi, 0, 0), (dilation, 1), groups)
    return wide, tall


def _check_conv1d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_length,
                  kernel_size, stride, padding, dilation, groups, *, bias_tensor=None, dtype=None, conv_config=None,
                  compute_config=None, memory_config=None, slice_config=None, return_output_dim=False,
                  return_weights_and_bias=False):
    op = "conv1d"
    _check_input(op, input_tensor)
    _check_device(op, device, input_tensor)
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("batch_size", batch_size),
                    ("input_length", input_length), ("kernel_size", kernel_size), ("stride", stride),
                    ("dilation", dilation), ("groups", groups)):
        _require_int(op, name, v, 1)
    require((_is_int(padding) and padding >= 0) or (
        isinstance(padding, (tuple, list)) and len(padding) == 2 and all(_is_int(p) and p >= 0 for p in padding)),
        op, f"padding must be an int or [left, right] of non-negative ints, got {padding!r}")
    _check_channels(op, in_channels, out_channels, groups)
    _check_config(op, conv_config, compute_config, dtype, memory_config)
    _check_returns(op, return_output_dim, return_weights_and_bias)
    _check_nhwc(op, input_tensor, batch_size, 1, input_length, in_channels, conv1d=True)
    geos = _conv1d_geometries(in_channels, out_channels, batch_size, input_length, kernel_size, stride, padding,
                              dilation, groups)
    lo, hi = geos[0].padding[2:]
    _check_out_size(op, (1, _conv_out_dim(input_length, kernel_size, stride, lo, hi, dilation)), (1, input_length))
    require(not (bias_tensor is not None and groups > 1 and groups == in_channels == out_channels), op,
            "Bias is not supported for depthwise conv1d")
    ipg = in_channels // groups
    _check_weights(op, weight_tensor, bias_tensor, device, geos, (out_channels, ipg, kernel_size),
                   "[C_out, C_in/groups, K]",
                   w_alternatives=((out_channels, ipg, 1, kernel_size), (out_channels, ipg, kernel_size, 1)))
    _check_output(op, input_tensor, dtype, conv_config)


@checked(_check_conv1d)
def conv1d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_length, kernel_size,
           stride, padding, dilation, groups, *, bias_tensor=None, dtype=None, conv_config=None, compute_config=None,
           memory_config=None, slice_config=None, return_output_dim=False, return_weights_and_bias=False):
    """1D convolution (a conv2d with H=1, W=input_length) of an NLC input; output flattened ``[1, 1, N*L_out, C_out]``.

    Returns ``out``, ``(out, L_out)``, ``(out, (w_prep, b_prep))`` or ``(out, L_out, (w_prep, b_prep))``.
    """
    wide, tall = _conv1d_geometries(in_channels, out_channels, batch_size, input_length, kernel_size, stride, padding,
                                    dilation, groups)
    g = wide
    if isinstance(weight_tensor, PreparedConvTensor) and weight_tensor.geometry == tall:
        g = tall
    w, b = _effective_weights(weight_tensor, bias_tensor, device, g, conv_config)
    out = _run_conv2d(input_tensor, w, b, g, device, "conv1d", compute_config, conv_config, dtype)
    length = out.shape[2] * out.shape[3]
    result = _finish("conv1d", out, input_tensor, device, dtype, conv_config, memory_config, slice_config, in_channels)
    return _results(result, length, (w, b), return_output_dim, return_weights_and_bias)


# ---------------------------------------------------------------------------------------------
# conv_transpose2d


def _transpose_out_hw(input_height, input_width, kernel_size, stride, padding, output_padding, dilation):
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, op, d in
                 zip((input_height, input_width), kernel_size, stride, padding, output_padding, dilation))


def _geometry_t(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                output_padding, dilation, groups) -> ConvGeometry:
    return ConvGeometry("conv_transpose2d", in_channels, out_channels, batch_size, input_height, input_width,
                        tuple(kernel_size), tuple(stride), _pad4(padding), tuple(dilation), groups,
                        tuple(output_padding))


def _check_geometry_t(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, output_padding, dilation, groups) -> None:
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("batch_size", batch_size),
                    ("input_height", input_height), ("input_width", input_width), ("groups", groups)):
        _require_int(op, name, v, 1)
    _require_pair(op, "kernel_size", kernel_size, 1)
    _require_pair(op, "stride", stride, 1)
    _require_padding(op, padding, allow4=False)
    _require_pair(op, "output_padding", output_padding, 0)
    _require_pair(op, "dilation", dilation, 1)
    _check_channels(op, in_channels, out_channels, groups)
    for i, dim in enumerate("hw"):
        require(output_padding[i] < max(stride[i], dilation[i]), op,
                f"output_padding[{i}] = {output_padding[i]} must be smaller than stride or dilation along {dim} "
                f"({stride[i]}, {dilation[i]})")
    out_hw = _transpose_out_hw(input_height, input_width, kernel_size, stride, padding, output_padding, dilation)
    require(out_hw[0] >= 1 and out_hw[1] >= 1, op, f"padding {tuple(padding)} leaves an empty output {list(out_hw)}")


def _check_conv_transpose2d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_height,
                            input_width, kernel_size, stride, padding, output_padding, dilation, groups, *,
                            bias_tensor=None, dtype=None, conv_config=None, compute_config=None, mirror_kernel=False,
                            dram_slice_config=None, return_output_dim=False, return_weights_and_bias=False):
    op = "conv_transpose2d"
    _check_input(op, input_tensor)
    _check_device(op, device, input_tensor)
    _check_geometry_t(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, output_padding, dilation, groups)
    _check_config(op, conv_config, compute_config, dtype, None)
    require(isinstance(mirror_kernel, bool), op, f"mirror_kernel must be a bool, got {mirror_kernel!r}")
    _check_returns(op, return_output_dim, return_weights_and_bias)
    _check_nhwc(op, input_tensor, batch_size, input_height, input_width, in_channels)
    g = _geometry_t(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    output_padding, dilation, groups)
    kh, kw = g.kernel_size
    _check_weights(op, weight_tensor, bias_tensor, device, (g,), (in_channels, out_channels // groups, kh, kw), "IOHW",
                   bias_1d=True)
    _check_output(op, input_tensor, dtype, conv_config)


@checked(_check_conv_transpose2d)
def conv_transpose2d(input_tensor, weight_tensor, device, in_channels, out_channels, batch_size, input_height,
                     input_width, kernel_size, stride, padding, output_padding, dilation, groups, *, bias_tensor=None,
                     dtype=None, conv_config=None, compute_config=None, mirror_kernel=False, dram_slice_config=None,
                     return_output_dim=False, return_weights_and_bias=False):
    """Transposed 2D convolution of an NHWC (or flattened) input with an IOHW weight.

    ``H_out = (H_in-1)*s - 2p + d*(k-1) + output_padding + 1``; output flattened ``[1, 1, N*H_out*W_out, C_out]``.
    ``mirror_kernel=False`` takes the kernel as already mirrored (see the module doc). Same return forms as conv2d.
    """
    g = _geometry_t(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    output_padding, dilation, groups)
    w, b = _effective_weights(weight_tensor, bias_tensor, device, g, conv_config,
                              mirror=not mirror_kernel)
    x = input_tensor._value
    target = _target(device, x, w._value, None if b is None else b._value)
    x = _place(x, target).reshape(batch_size, input_height, input_width, in_channels).permute(0, 3, 1, 2)
    wv = _place(w._value, target).reshape(in_channels, out_channels // groups, *g.kernel_size)
    bv = None if b is None else _place(b._value, target).reshape(-1)
    if device.emulate and target.type != "meta":
        from . import device_ops
        out = _device_conv("conv_transpose2d", lambda m: device_ops.conv_transpose2d(
            x, wv, g.stride, (g.padding[0], g.padding[2]), g.output_padding, g.dilation, groups, m),
            bv, input_tensor, compute_config, conv_config, dtype)
    else:
        out = F.conv_transpose2d(x, wv, bv, g.stride, (g.padding[0], g.padding[2]), g.output_padding, groups,
                                 g.dilation)
    dims = (out.shape[2], out.shape[3])
    result = _finish("conv_transpose2d", out, input_tensor, device, dtype, conv_config, None,
                     dram_slice_config, in_channels)
    if dram_slice_config is not None:  # DRAM-sliced run: the output lands interleaved in DRAM
        result._memory_config = DRAM_MEMORY_CONFIG
    return _results(result, dims, (w, b), return_output_dim, return_weights_and_bias)


# ---------------------------------------------------------------------------------------------
# separate preparation


def _check_prepare_common(op, input_memory_config, input_layout, device, input_dtype, output_dtype, conv_config,
                          compute_config):
    require(isinstance(input_memory_config, MemoryConfig), op,
            f"input_memory_config must be a ttnn.MemoryConfig, got {type(input_memory_config).__name__}")
    require(isinstance(input_layout, Layout), op,
            f"input_layout must be ttnn.TILE_LAYOUT or ttnn.ROW_MAJOR_LAYOUT, got {input_layout!r}")
    require(input_dtype in ACT_DTYPES, op, f"input_dtype must be float32, bfloat16 or bfloat8_b, got {input_dtype!r}")
    require(output_dtype is None or output_dtype in PREPARED_DTYPES, op,
            f"output_dtype must be float32, bfloat16 or bfloat8_b, got {output_dtype!r}")
    require(isinstance(device, Device) and device.is_open, op, "device must be an open ttnn device")
    _check_config(op, conv_config, compute_config, None, None)


def _check_unprepared(op: str, name: str, t: Any) -> None:
    _require_tensor(op, name, t)
    require(not isinstance(t, PreparedConvTensor), op, f"{name} is already prepared")
    require(t.layout is Layout.ROW_MAJOR, op, f"{name} must be in ROW_MAJOR layout (torch format)")
    require(t.dtype in HOST_WEIGHT_DTYPES, op, f"{name} dtype {t.dtype.value} is not supported (float32 or bfloat16)")


def _prep_dtype(t: Tensor, output_dtype, conv_config) -> DataType:
    return output_dtype or (conv_config.weights_dtype if conv_config is not None else None) or t.dtype


def _check_prepare_conv_weights(*, weight_tensor, input_memory_config, input_layout, weights_format, in_channels,
                                out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                                dilation, has_bias, groups, device, input_dtype, output_dtype=None, conv_config=None,
                                compute_config=None, slice_config=None):
    op = "prepare_conv_weights"
    _check_prepare_common(op, input_memory_config, input_layout, device, input_dtype, output_dtype, conv_config,
                          compute_config)
    require(weights_format == "OIHW", op, f"weights_format must be \"OIHW\", got {weights_format!r}")
    require(isinstance(has_bias, bool), op, f"has_bias must be a bool, got {has_bias!r}")
    _check_geometry2d(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, dilation, groups)
    _check_unprepared(op, "weight_tensor", weight_tensor)
    expected = (out_channels, in_channels // groups, *tuple(kernel_size))
    require(tuple(weight_tensor.shape) == expected, op,
            f"weight_tensor must be OIHW {list(expected)}, got {list(weight_tensor.shape)}")


@checked(_check_prepare_conv_weights)
def prepare_conv_weights(*, weight_tensor, input_memory_config, input_layout, weights_format, in_channels,
                         out_channels, batch_size, input_height, input_width, kernel_size, stride, padding, dilation,
                         has_bias, groups, device, input_dtype, output_dtype=None, conv_config=None,
                         compute_config=None, slice_config=None):
    """The prepared conv2d weight (a device TILE :class:`PreparedConvTensor`) for exactly this geometry."""
    g = _geometry2d(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    dilation, groups)
    return _prepare_weight(weight_tensor, _prep_dtype(weight_tensor, output_dtype, conv_config), device, g, has_bias)


def _check_prepare_conv_bias(*, bias_tensor, input_memory_config, input_layout, in_channels, out_channels, batch_size,
                             input_height, input_width, kernel_size, stride, padding, dilation, groups, device,
                             input_dtype, output_dtype=None, conv_config=None, compute_config=None, slice_config=None):
    op = "prepare_conv_bias"
    _check_prepare_common(op, input_memory_config, input_layout, device, input_dtype, output_dtype, conv_config,
                          compute_config)
    _check_geometry2d(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, dilation, groups)
    _check_unprepared(op, "bias_tensor", bias_tensor)
    require(tuple(bias_tensor.shape) == (1, 1, 1, out_channels), op,
            f"bias_tensor must be [1, 1, 1, {out_channels}], got {list(bias_tensor.shape)}")


@checked(_check_prepare_conv_bias)
def prepare_conv_bias(*, bias_tensor, input_memory_config, input_layout, in_channels, out_channels, batch_size,
                      input_height, input_width, kernel_size, stride, padding, dilation, groups, device, input_dtype,
                      output_dtype=None, conv_config=None, compute_config=None, slice_config=None):
    """The prepared conv2d bias (device TILE ``[1, 1, 1, O]``) for exactly this geometry."""
    g = _geometry2d(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    dilation, groups)
    return _prepare_bias(bias_tensor, _prep_dtype(bias_tensor, output_dtype, conv_config), device, g)


def _check_prepare_conv_transpose2d_weights(*, weight_tensor, input_memory_config, input_layout, weights_format,
                                            in_channels, out_channels, batch_size, input_height, input_width,
                                            kernel_size, stride, padding, output_padding, dilation, has_bias, groups,
                                            device, input_dtype, output_dtype=None, conv_config=None,
                                            compute_config=None, mirror_kernel=False, dram_slice_config=None):
    op = "prepare_conv_transpose2d_weights"
    _check_prepare_common(op, input_memory_config, input_layout, device, input_dtype, output_dtype, conv_config,
                          compute_config)
    require(weights_format == "IOHW", op, f"weights_format must be \"IOHW\", got {weights_format!r}")
    require(isinstance(has_bias, bool), op, f"has_bias must be a bool, got {has_bias!r}")
    require(isinstance(mirror_kernel, bool), op, f"mirror_kernel must be a bool, got {mirror_kernel!r}")
    _check_geometry_t(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, output_padding, dilation, groups)
    _check_unprepared(op, "weight_tensor", weight_tensor)
    expected = (in_channels, out_channels // groups, *tuple(kernel_size))
    require(tuple(weight_tensor.shape) == expected, op,
            f"weight_tensor must be IOHW {list(expected)}, got {list(weight_tensor.shape)}")


@checked(_check_prepare_conv_transpose2d_weights)
def prepare_conv_transpose2d_weights(*, weight_tensor, input_memory_config, input_layout, weights_format, in_channels,
                                     out_channels, batch_size, input_height, input_width, kernel_size, stride,
                                     padding, output_padding, dilation, has_bias, groups, device, input_dtype,
                                     output_dtype=None, conv_config=None, compute_config=None, mirror_kernel=False,
                                     dram_slice_config=None):
    """The prepared conv_transpose2d weight for exactly this geometry (``output_padding`` included).

    ``mirror_kernel`` means what it means for the op: False takes the kernel as already mirrored.
    """
    g = _geometry_t(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    output_padding, dilation, groups)
    return _prepare_weight(weight_tensor, _prep_dtype(weight_tensor, output_dtype, conv_config), device, g, has_bias,
                           mirror=not mirror_kernel)


def _check_prepare_conv_transpose2d_bias(*, bias_tensor, input_memory_config, input_layout, in_channels, out_channels,
                                         batch_size, input_height, input_width, kernel_size, stride, padding,
                                         output_padding, dilation, groups, device, input_dtype, output_dtype=None,
                                         conv_config=None, compute_config=None, dram_slice_config=None):
    op = "prepare_conv_transpose2d_bias"
    _check_prepare_common(op, input_memory_config, input_layout, device, input_dtype, output_dtype, conv_config,
                          compute_config)
    _check_geometry_t(op, in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride,
                      padding, output_padding, dilation, groups)
    _check_unprepared(op, "bias_tensor", bias_tensor)
    require(tuple(bias_tensor.shape) in ((1, 1, 1, out_channels), (out_channels,)), op,
            f"bias_tensor must be [1, 1, 1, {out_channels}] or [{out_channels}], got {list(bias_tensor.shape)}")


@checked(_check_prepare_conv_transpose2d_bias)
def prepare_conv_transpose2d_bias(*, bias_tensor, input_memory_config, input_layout, in_channels, out_channels,
                                  batch_size, input_height, input_width, kernel_size, stride, padding, output_padding,
                                  dilation, groups, device, input_dtype, output_dtype=None, conv_config=None,
                                  compute_config=None, dram_slice_config=None):
    """The prepared conv_transpose2d bias (device TILE ``[1, 1, 1, O]``) for exactly this geometry."""
    g = _geometry_t(in_channels, out_channels, batch_size, input_height, input_width, kernel_size, stride, padding,
                    output_padding, dilation, groups)
    return _prepare_bias(bias_tensor, _prep_dtype(bias_tensor, output_dtype, conv_config), device, g)


def get_conv_output_dim(input, window, stride=1, pad=0, dilation=1):
    """``(input + 2*pad - dilation*(window-1) - 1) // stride + 1``."""
    return (input + (2 * pad) - dilation * (window - 1) - 1) // stride + 1
