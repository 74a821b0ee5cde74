"""Elementwise binary, unary, comparison, ``where`` and reductions (OP_CONTRACT §4, §11).

Binary ops follow torch broadcasting (the goldens are plain torch ``a + b``); the output takes the layout
of ``input_tensor_a``.  Comparisons return 1.0 / 0.0 in the input's dtype, as on device.
"""
from __future__ import annotations

import numbers

import torch

from .matmul import _check_activation, apply_activation, apply_activation_
from .tensor import (
    Tensor, checked, like, quantize, require, require_device, require_dtype, require_layout, require_output,
    writable, write_into,
)
from .types import BufferType, DataType, GeluVariant, Layout, SigmoidMode, TensorMemoryLayout

BINARY_DTYPES = (DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.BFLOAT4_B, DataType.FLOAT32, DataType.INT32,
                 DataType.UINT32, DataType.UINT16)
ANY_LAYOUT = (Layout.TILE, Layout.ROW_MAJOR)


def _broadcast_ok(a: tuple, b: tuple) -> bool:
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and x != 1 and y != 1:
            return False
    return True


def _binary_check(op: str):
    def check(input_tensor_a, input_tensor_b, *, memory_config=None, dtype=None, output_tensor=None,
              activations=None, input_tensor_a_activations=None, input_tensor_b_activations=None, **kwargs):
        require_device(input_tensor_a, op, "input_tensor_a")
        require_layout(input_tensor_a, ANY_LAYOUT, op, "input_tensor_a")
        require_dtype(input_tensor_a, BINARY_DTYPES, op, "input_tensor_a")
        if isinstance(input_tensor_b, Tensor):
            require_device(input_tensor_b, op, "input_tensor_b")
            require_dtype(input_tensor_b, BINARY_DTYPES, op, "input_tensor_b")
            require(_broadcast_ok(tuple(input_tensor_a.shape), tuple(input_tensor_b.shape)), op,
                    f"shapes {list(input_tensor_a.shape)} and {list(input_tensor_b.shape)} do not broadcast")
        else:
            require(isinstance(input_tensor_b, numbers.Number), op,
                    f"input_tensor_b must be a ttnn.Tensor or a number, got {type(input_tensor_b).__name__}")
        if output_tensor is not None:
            require_device(output_tensor, op, "output_tensor")
            # ttnn 0.81.1 binary.cpp (seen through the real bindings, fx2ttnn conformance): a preallocated output
            # with a ROW_MAJOR a and a ROW_MAJOR (or scalar) b is refused before the op reaches the device
            b_row_major = not isinstance(input_tensor_b, Tensor) or input_tensor_b.layout is Layout.ROW_MAJOR
            require(not (input_tensor_a.layout is Layout.ROW_MAJOR and b_row_major), op,
                    "Optional output tensor with Row Major input is not supported right now for Elementwise "
                    "operations (use ttnn.plus_one to advance an int32 ROW_MAJOR position in place)")
            out_shape = torch.broadcast_shapes(tuple(input_tensor_a.shape), tuple(getattr(input_tensor_b, "shape", ())))
            require(tuple(output_tensor.shape) == tuple(out_shape), op,
                    f"output_tensor shape {list(output_tensor.shape)} != result shape {list(out_shape)}")
        for acts in (activations, input_tensor_a_activations, input_tensor_b_activations):
            for act in acts or ():
                _check_activation(op, act)
    return check


def _fits_in_place(a: torch.Tensor, b) -> bool:
    """Whether ``a.op_(b)`` gives what ``op(a, b)`` gives: a float ``a`` of the broadcast shape, ``b`` of its dtype."""
    if not isinstance(b, torch.Tensor):
        return a.is_floating_point()
    return a.is_floating_point() and b.dtype == a.dtype and a.shape == torch.broadcast_shapes(a.shape, b.shape)


def _binary(op: str, fn, fn_=None):
    """The ttnn binary op ``op`` computing ``fn(a, b)``; ``fn_`` is its in-place form (``a.fn_(b)``), if any."""
    @checked(_binary_check(op))
    def kernel(input_tensor_a, input_tensor_b, *, memory_config=None, dtype=None, output_tensor=None,
               activations=None, input_tensor_a_activations=None, input_tensor_b_activations=None, **kwargs):
        a = input_tensor_a._value
        b = input_tensor_b._value if isinstance(input_tensor_b, Tensor) else input_tensor_b
        if input_tensor_b_activations and isinstance(b, torch.Tensor):
            for act in input_tensor_b_activations:
                b = apply_activation(b, act)
        out = None
        if input_tensor_a_activations:
            for act in input_tensor_a_activations:
                a = apply_activation(a, act)
            if fn_ is not None and _fits_in_place(a, b):
                out = fn_(a, b)  # a is the activation's fresh result and already has the output's shape
        if out is None:
            out = fn(a, b)
        if activations:
            for act in activations:
                out = apply_activation_(out, act)
        if output_tensor is not None:
            output_tensor._value = quantize(out, output_tensor.dtype)
            return output_tensor
        return like(input_tensor_a, out, dtype=dtype, memory_config=memory_config)
    kernel.__name__ = kernel.__qualname__ = op
    return kernel


add = _binary("add", torch.add, torch.Tensor.add_)
subtract = _binary("subtract", torch.sub, torch.Tensor.sub_)
multiply = _binary("multiply", torch.mul, torch.Tensor.mul_)
divide = _binary("divide", torch.div, torch.Tensor.div_)


def _compare(op: str, fn):
    return _binary(op, lambda a, b: fn(a, b).to(a.dtype))


PLUS_ONE_DTYPES = (DataType.INT32, DataType.UINT32)


def _check_plus_one(input_tensor, sub_core_grids=None, skip_negative_entries=False):
    require_device(input_tensor, "plus_one", "input_tensor")
    require_dtype(input_tensor, PLUS_ONE_DTYPES, "plus_one", "input_tensor")
    require_layout(input_tensor, (Layout.ROW_MAJOR,), "plus_one", "input_tensor")
    require(1 <= len(input_tensor.shape) <= 4, "plus_one",
            f"input_tensor must have 1 to 4 dimensions, got {len(input_tensor.shape)}")


@checked(_check_plus_one)
def plus_one(input_tensor, sub_core_grids=None, skip_negative_entries=False):
    """``ttnn.plus_one``: every element + 1, in place (how tt-metal's decode loops advance their int32 position
    tensor, inside the trace); ``skip_negative_entries`` leaves negative entries and INT32_MAX unchanged."""
    v = writable(input_tensor)
    if skip_negative_entries:
        v.add_(((v >= 0) & (v < 2**31 - 1)).to(v.dtype))
    else:
        v.add_(1)
    return input_tensor


# ge is in OP_CONTRACT §11; gt/lt/le/eq share its binary template (docs.tenstorrent.com ttnn.lt).
ge = _compare("ge", torch.ge)
gt = _compare("gt", torch.gt)
lt = _compare("lt", torch.lt)
le = _compare("le", torch.le)
eq = _compare("eq", torch.eq)


# -- unary -------------------------------------------------------------------------------------

def _unary_check(op: str, dtypes: tuple[DataType, ...]):
    def check(input_tensor, *args, memory_config=None, output_tensor=None, **kwargs):
        require_device(input_tensor, op, "input_tensor")
        require_layout(input_tensor, ANY_LAYOUT, op, "input_tensor")
        require_dtype(input_tensor, dtypes, op, "input_tensor")
        if output_tensor is not None:
            require_output(op, output_tensor, tuple(input_tensor.shape))
    return check


def _unary(op: str, fn, dtypes: tuple[DataType, ...]):
    @checked(_unary_check(op, dtypes))
    def kernel(input_tensor, *args, memory_config=None, output_tensor=None, **kwargs):
        out = fn(input_tensor._value, *args, **kwargs)
        if output_tensor is not None:
            output_tensor._value = quantize(out, output_tensor.dtype)
            return output_tensor
        return like(input_tensor, out, memory_config=memory_config)
    kernel.__name__ = kernel.__qualname__ = op
    return kernel


_FLOATS = (DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.FLOAT32)
# Dtype lists: the contract names bf16/bf8_b for gelu and BF16 for sigmoid (their [doc] tables); the
# others list no restriction beyond the float dtypes.
relu = _unary("relu", lambda x: torch.relu(x), _FLOATS + (DataType.INT32,))
tanh = _unary("tanh", lambda x, *, fast_and_approximate_mode=False, **k: torch.tanh(x), _FLOATS)
sqrt = _unary("sqrt", lambda x: torch.sqrt(x), _FLOATS)
rsqrt = _unary("rsqrt", lambda x: torch.rsqrt(x), _FLOATS)
exp = _unary("exp", lambda x, **k: torch.exp(x), _FLOATS)
neg = _unary("neg", lambda x: torch.neg(x), _FLOATS + (DataType.INT32,))


def _gelu(x, *, variant=GeluVariant.Accurate, fast_and_approximate_mode=False, sub_core_grids=None):
    if variant is GeluVariant.Tanh:
        return torch.nn.functional.gelu(x, approximate="tanh")
    return torch.nn.functional.gelu(x)


gelu = _unary("gelu", _gelu, (DataType.BFLOAT16, DataType.BFLOAT8_B))


def _sigmoid(x, *, vector_mode=4, mode=SigmoidMode.Accurate, sub_core_grids=None):
    return torch.sigmoid(x)


sigmoid = _unary("sigmoid", _sigmoid, (DataType.BFLOAT16,))


def _leaky(x, negative_slope=0.01, **kwargs):
    return torch.nn.functional.leaky_relu(x, float(negative_slope))


leaky_relu = _unary("leaky_relu", _leaky, _FLOATS)


# -- where / reductions ------------------------------------------------------------------------

def _check_where(condition, true_value, false_value, *, memory_config=None, output_tensor=None, **kwargs):
    require_device(condition, "where", "condition")
    shapes = [tuple(condition.shape)]
    for v, name in ((true_value, "true_value"), (false_value, "false_value")):
        if isinstance(v, Tensor):
            require_device(v, "where", name)
            require(all(_broadcast_ok(s, tuple(v.shape)) for s in shapes), "where",
                    f"{name} shape {list(v.shape)} does not broadcast with "
                    f"{' and '.join(str(list(s)) for s in shapes)}")
            shapes.append(tuple(v.shape))
        else:
            require(isinstance(v, numbers.Number), "where", f"{name} must be a ttnn.Tensor or a number")
    if output_tensor is not None:
        require_output("where", output_tensor, torch.broadcast_shapes(*shapes))


@checked(_check_where)
def where(condition, true_value, false_value, *, memory_config=None, output_tensor=None, **kwargs):
    c = condition._value
    t = true_value._value if isinstance(true_value, Tensor) else torch.tensor(float(true_value))
    f = false_value._value if isinstance(false_value, Tensor) else torch.tensor(float(false_value))
    out = torch.where(c != 0, t, f)
    if output_tensor is not None:
        return write_into(output_tensor, out)
    ref = true_value if isinstance(true_value, Tensor) else false_value if isinstance(false_value, Tensor) else condition
    return like(ref, out, layout=condition.layout, memory_config=memory_config)


def _check_sum(input_tensor, dim=None, keepdim=False, *, memory_config=None, **kwargs):
    require_device(input_tensor, "sum", "input_tensor")
    require_layout(input_tensor, (Layout.TILE,), "sum", "input_tensor")
    rank = len(input_tensor.shape)
    dims = () if dim is None else tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    require(all(isinstance(d, int) and not isinstance(d, bool) for d in dims), "sum",
            f"dim must be an int or a tuple of ints, got {dim!r}")
    require(all(-rank <= d < rank for d in dims), "sum", f"dim {dim} out of range for rank {rank}")
    require(isinstance(keepdim, bool), "sum", f"keepdim must be a bool, got {keepdim!r}")
    mc = input_tensor.memory_config()
    if mc is not None and mc.is_sharded:  # the wheel's docstring: "Memory Support"
        require(all(d % rank >= rank - 2 for d in dims) and dims, "sum",
                f"a sharded input can only be reduced along -1 / -2, got dim {dim!r} for rank {rank}")
        require(not (mc.buffer_type is BufferType.DRAM and mc.memory_layout is TensorMemoryLayout.BLOCK_SHARDED),
                "sum", "DRAM block-sharded inputs are not supported")


@checked(_check_sum)
def sum(input_tensor, dim=None, keepdim=False, *, memory_config=None, **kwargs):  # noqa: A001 - ttnn name
    x = input_tensor._value
    out = x.sum() if dim is None else x.sum(dim=dim, keepdim=keepdim)
    return like(input_tensor, out, memory_config=memory_config)
