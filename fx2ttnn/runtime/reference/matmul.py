"""``ttnn.linear`` and ``ttnn.matmul`` (OP_CONTRACT §3)."""
from __future__ import annotations

import torch

from .tensor import (
    Tensor, checked, derived, flat_value, new_tensor, quantize, require, require_device, require_dtype, require_layout,
    require_output, transposed_value, wrap, write_into,
)
from .types import DataType, DRAM_MEMORY_CONFIG, Layout, UnaryOpType, UnaryWithParam, WormholeComputeKernelConfig

MATMUL_DTYPES = (DataType.BFLOAT8_B, DataType.BFLOAT4_B, DataType.BFLOAT16, DataType.FLOAT32)
ACTIVATIONS = ("relu", "gelu", "sigmoid", "silu", "tanh")


def apply_activation(x: torch.Tensor, activation) -> torch.Tensor:
    """A fused activation given as a string or ``ttnn.UnaryWithParam``."""
    if activation is None:
        return x
    if isinstance(activation, UnaryWithParam):
        name, param = activation.op_type.value, activation.param
    else:
        name, param = activation, None
    if name == "relu":
        return torch.relu(x)
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "silu":
        return torch.nn.functional.silu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "leaky_relu":
        return torch.nn.functional.leaky_relu(x, 0.01 if param is None else param)
    raise AssertionError(name)


def _check_activation(op: str, activation) -> None:
    if activation is None:
        return
    if isinstance(activation, UnaryWithParam):
        require(activation.op_type in UnaryOpType, op, f"unsupported fused activation {activation!r}")
    else:
        require(activation in ACTIVATIONS, op,
                f"activation must be one of {', '.join(ACTIVATIONS)} or a ttnn.UnaryWithParam, got {activation!r}")


def _operands(op: str, a: Tensor, b: Tensor, transpose_a: bool, transpose_b: bool) -> tuple[tuple, tuple]:
    for t, name in ((a, "input_tensor_a"), (b, "input_tensor_b")):
        require_device(t, op, name)
        require_layout(t, (Layout.TILE,), op, name)
        require_dtype(t, MATMUL_DTYPES, op, name)
        require(len(t.shape) >= 1, op, f"{name} must have rank >= 1")
    sa, sb = list(a.shape), list(b.shape)
    if transpose_a and len(sa) >= 2:
        sa[-1], sa[-2] = sa[-2], sa[-1]
    if transpose_b and len(sb) >= 2:
        sb[-1], sb[-2] = sb[-2], sb[-1]
    k_b = sb[-2] if len(sb) >= 2 else sb[-1]
    require(sa[-1] == k_b, op, f"inner dimensions differ: a {list(a.shape)} x b {list(b.shape)}"
            f"{' (transpose_a)' if transpose_a else ''}{' (transpose_b)' if transpose_b else ''}")
    return tuple(sa), tuple(sb)


def _result_shape(sa: tuple, sb: tuple) -> tuple:
    """Shape of ``a @ b`` for (already transposed) operand shapes, torch matmul semantics."""
    return tuple(torch.matmul(torch.empty(sa, device="meta"), torch.empty(sb, device="meta")).shape)


def _check_batch(op: str, sa: tuple, sb: tuple, a: Tensor, b: Tensor) -> None:
    ba, bb = sa[:-2], sb[:-2]
    if any(d != 1 for d in bb):
        if any(d != 1 for d in ba):
            require(tuple(ba) == tuple(bb), op, f"batch dims must match when both are non-unit: {list(ba)} vs {list(bb)}")
        else:
            require(len(sa) == len(sb) and len(sa) >= 3 and not a.memory_config().is_sharded
                    and not b.memory_config().is_sharded, op,
                    "input_tensor_a with batch 1 against input_tensor_b with batch > 1 needs equal ranks >= 3 "
                    "and interleaved inputs")


def check_compute_config(op: str, config, out_dtype: DataType) -> None:
    """A compute kernel config must come from ``init_device_compute_kernel_config``; a float32 output needs a
    32-bit DST (``fp32_dest_acc_en`` docstring: "required when the output dtype is FLOAT32")."""
    if config is None:
        return
    require(isinstance(config, WormholeComputeKernelConfig), op,
            f"compute_kernel_config must come from ttnn.init_device_compute_kernel_config, got {type(config).__name__}")
    require(out_dtype is not DataType.FLOAT32 or config.fp32_dest_acc_en, op,
            "a float32 output needs fp32_dest_acc_en=True in the compute kernel config")


def _check_matmul(input_tensor_a, input_tensor_b, *, transpose_a=False, transpose_b=False, memory_config=None,
                  dtype=None, program_config=None, activation=None, compute_kernel_config=None, core_grid=None,
                  output_tile=None, optional_output_tensor=None, **kwargs):
    sa, sb = _operands("matmul", input_tensor_a, input_tensor_b, transpose_a, transpose_b)
    _check_batch("matmul", sa, sb, input_tensor_a, input_tensor_b)
    _check_activation("matmul", activation)
    check_compute_config("matmul", compute_kernel_config, dtype or input_tensor_a.dtype)
    if optional_output_tensor is not None:
        require_output("matmul", optional_output_tensor, _result_shape(sa, sb))


def _mm(a: Tensor, b: Tensor, transpose_a: bool, transpose_b: bool) -> torch.Tensor:
    x, w = a._value, b._value
    if transpose_a:
        x = x.transpose(-1, -2)
    if transpose_b:
        w = w.transpose(-1, -2)
    return torch.matmul(x, w)


@checked(_check_matmul)
def matmul(input_tensor_a, input_tensor_b, *, transpose_a=False, transpose_b=False, memory_config=None,
           dtype=None, program_config=None, activation=None, compute_kernel_config=None, core_grid=None,
           output_tile=None, optional_output_tensor=None, **kwargs):
    if input_tensor_a._device is not None and input_tensor_a._device.emulate:
        return _device_matmul("matmul", input_tensor_a, input_tensor_b, None, transpose_a, transpose_b, activation,
                              compute_kernel_config, dtype, memory_config, optional_output_tensor)
    out = apply_activation(_mm(input_tensor_a, input_tensor_b, transpose_a, transpose_b), activation)
    if optional_output_tensor is not None:
        return write_into(optional_output_tensor, out)
    return wrap(out, dtype or input_tensor_a.dtype, Layout.TILE, memory_config or DRAM_MEMORY_CONFIG,
                input_tensor_a._device)


def _check_linear(input_tensor_a, input_tensor_b, *, bias=None, transpose_a=False, transpose_b=False,
                  memory_config=None, dtype=None, program_config=None, activation=None,
                  compute_kernel_config=None, core_grid=None, output_tile=None, optional_output_tensor=None,
                  **kwargs):
    sa, sb = _operands("linear", input_tensor_a, input_tensor_b, transpose_a, transpose_b)
    _check_batch("linear", sa, sb, input_tensor_a, input_tensor_b)
    if bias is not None:
        require_device(bias, "linear", "bias")
        require_layout(bias, (Layout.TILE,), "linear", "bias")
        require_dtype(bias, MATMUL_DTYPES, "linear", "bias")
        bs = tuple(bias.shape)
        require(bs[-1] == sb[-1] and all(d == 1 for d in bs[:-1]), "linear",
                f"bias must be a row vector [1, {sb[-1]}] (or [1, 1, 1, {sb[-1]}]), got {list(bs)}")
    _check_activation("linear", activation)
    check_compute_config("linear", compute_kernel_config, dtype or input_tensor_a.dtype)
    if optional_output_tensor is not None:
        require_output("linear", optional_output_tensor, _result_shape(sa, sb))


# fused activations given by name: the in-place forms of the torch functions ``apply_activation`` calls,
# applied to the fresh matmul result (same kernels, bit-identical results, no second buffer)
_INPLACE_ACTIVATIONS = {
    "relu": torch.relu_, "sigmoid": torch.sigmoid_, "tanh": torch.tanh_, "gelu": torch._C._nn.gelu_,
    "silu": lambda x: torch.nn.functional.silu(x, inplace=True),
}


def apply_activation_(x: torch.Tensor, activation) -> torch.Tensor:
    """``apply_activation`` in place on a fresh result ``x`` where torch has the in-place form (same kernels,
    bit-identical values, no second buffer); returns the result."""
    if isinstance(activation, str):
        act = _INPLACE_ACTIVATIONS.get(activation)
        if act is not None:
            return act(x)
    elif isinstance(activation, UnaryWithParam):
        name, param = activation.op_type.value, activation.param
        if name == "leaky_relu":
            return torch.nn.functional.leaky_relu_(x, 0.01 if param is None else param)
        if name in _INPLACE_ACTIVATIONS:
            return _INPLACE_ACTIVATIONS[name](x)
    return apply_activation(x, activation)


_FLOAT32 = DataType.FLOAT32
_BFLOAT16 = DataType.BFLOAT16
_torch_linear = torch._C._nn.linear
_TILE = Layout.TILE

# -- matrix-vector products (decode) -----------------------------------------------------------------
# A decode step's linears have a handful of rows against a large weight: pure weight streaming.  torch's
# (add)mm with one row reaches about half of this machine's read bandwidth with 2 threads, because both
# threads walk every row of the weight; splitting the reduction (K) dimension into SPLIT_K contiguous row
# blocks, one batched product per block (bmm parallelizes over blocks) and summing the partial products
# streams each block with one thread: measured on the 2-core CI machine, 36 decoder-layer products
# 13.3 ms (addmm) -> 9.2 ms.  Only the summation order differs from addmm (float32 rounding).
SPLIT_K = 4
SPLIT_K_MAX_ROWS = 8           # the decode regime: rows = users
SPLIT_K_MIN_WEIGHT = 1 << 18   # elements (1 MiB in float32); smaller weights stay in cache anyway


def split_k_weight(w: torch.Tensor) -> torch.Tensor | None:
    """``w`` ([in, out]) viewed as ``[SPLIT_K, in / SPLIT_K, out]`` if it is a weight worth splitting, else None.
    A property of the weight alone: ``linear`` caches it on the weight tensor (``derived``)."""
    if (w.dim() == 2 and w.numel() >= SPLIT_K_MIN_WEIGHT and w.shape[0] % SPLIT_K == 0 and w.is_contiguous()
            and w.dtype == torch.float32 and w.device.type == "cpu"):
        return w.view(SPLIT_K, w.shape[0] // SPLIT_K, w.shape[1])
    return None


def use_split_k(rows: int, w: torch.Tensor) -> bool:
    """Whether ``linear`` takes the split-K path for ``rows`` rows against the [in, out] weight ``w``."""
    return rows <= SPLIT_K_MAX_ROWS and torch.get_num_threads() > 1 and split_k_weight(w) is not None


def matvec(x: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """``x @ w`` for x ``[..., in]`` (few rows) and ``wk = split_k_weight(w)``: split-K products, summed."""
    n = x.shape[-1]
    if x.dim() <= 3 and x.numel() == n and x.is_contiguous():  # one row: every step goes here, in 3 calls
        return torch.bmm(x.view(SPLIT_K, 1, n // SPLIT_K), wk).sum(0, keepdim=x.dim() == 3)
    xk = x.reshape(-1, SPLIT_K, n // SPLIT_K).transpose(0, 1)
    return torch.bmm(xk, wk).sum(0).view(*x.shape[:-1], wk.shape[-1])


@checked(_check_linear)
def linear(input_tensor_a, input_tensor_b, *, bias=None, transpose_a=False, transpose_b=False,
           memory_config=None, dtype=None, program_config=None, activation=None, compute_kernel_config=None,
           core_grid=None, output_tile=None, optional_output_tensor=None, **kwargs):
    """``a @ b (+ bias)`` then the optional activation; the weight ``b`` is ``[in, out]``."""
    if input_tensor_a._device is not None and input_tensor_a._device.emulate:
        return _device_matmul("linear", input_tensor_a, input_tensor_b, bias, transpose_a, transpose_b, activation,
                              compute_kernel_config, dtype, memory_config, optional_output_tensor)
    x, w = input_tensor_a._value, input_tensor_b._value
    if transpose_a:
        x = x.transpose(-1, -2)
    if transpose_b:
        w = w.transpose(-1, -2)
    decode = not transpose_a and not transpose_b and x.dim() > 0 and x.numel() <= SPLIT_K_MAX_ROWS * x.shape[-1]
    wk = derived(input_tensor_b, "split_k", split_k_weight) if decode and torch.get_num_threads() > 1 else None
    if wk is not None:
        out = matvec(x, wk)
        if bias is not None:
            out.add_(flat_value(bias))  # [out] (cached): the bias row, any rank, over every row
    elif not decode and bias is not None and not transpose_a and not transpose_b and w.dim() == 2 \
            and x.dim() == 3 and bias._value.dim() == 2 and x.is_contiguous():
        # torch's linear does exactly what the branch below does for a contiguous 3-D input (addmm over the
        # flattened rows, then a view), in one call.  Not for decode rows: their weight caches its split-K view
        # (None for small weights), which would trade places with the transposed view on every call
        out = _torch_linear(x, transposed_value(input_tensor_b), bias._value)
    elif w.dim() == 2:  # the common case: one [in, out] weight, a @ w as one (add)mm over the rows of a
        xdim = x.dim()
        x2 = x if xdim == 2 else x.reshape(-1, x.shape[-1])
        if bias is None:
            out = torch.mm(x2, w)
        else:
            b = bias._value
            out = torch.addmm(b if b.dim() == 2 else b.reshape(1, -1), x2, w)
        if xdim != 2:
            out = out.view(*x.shape[:-1], w.shape[1])
    elif w.dim() > 2 and all(d == 1 for d in w.shape[:-2]):
        w2 = w.reshape(w.shape[-2], w.shape[-1])
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        if bias is not None:
            out = torch.addmm(bias._value.reshape(1, -1), x2, w2)
        else:
            out = torch.mm(x2, w2)
        out = out.reshape(*lead, w2.shape[-1])
    else:
        out = torch.matmul(x, w)
        if bias is not None:
            out = out + bias._value.reshape(-1)
    if activation is not None:
        out = apply_activation_(out, activation)
    if optional_output_tensor is not None:
        return write_into(optional_output_tensor, out)
    dtype = dtype or input_tensor_a.dtype
    if dtype is _BFLOAT16:
        out = out.bfloat16().float()  # quantize(out, bfloat16), inlined
    elif dtype is not _FLOAT32:
        out = quantize(out, dtype)
    return new_tensor(out, dtype, _TILE, memory_config or DRAM_MEMORY_CONFIG, input_tensor_a._device)


def _device_matmul(op: str, a: Tensor, b: Tensor, bias: Tensor | None, transpose_a: bool, transpose_b: bool,
                   activation, compute_kernel_config, dtype, memory_config, optional_output_tensor) -> Tensor:
    """``matmul`` / ``linear`` under ``numerics="device"`` (``device_ops``: fidelity, DST accumulation, the
    partial-sum buffer, the bias add and activation in DST); the output rounded to its dtype."""
    from . import device_ops, numerics

    out_dtype = optional_output_tensor.dtype if optional_output_tensor is not None else (dtype or a.dtype)
    m = numerics.resolve(op, compute_kernel_config, fp32_in=a.dtype is _FLOAT32, fp32_out=out_dtype is _FLOAT32)
    x = a._value.transpose(-1, -2) if transpose_a else a._value
    acc = numerics.matmul(x, device_ops.weight_split(b, transpose_b), m)
    acc = device_ops.finish_matmul(acc, m, out_dtype, None if bias is None else flat_value(bias), activation,
                                   apply_activation)
    if optional_output_tensor is not None:
        return write_into(optional_output_tensor, acc)
    return wrap(acc, out_dtype, _TILE, memory_config or DRAM_MEMORY_CONFIG, a._device)
