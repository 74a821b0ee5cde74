"""``layer_norm``, ``softmax`` and ``batch_norm`` (OP_CONTRACT §5).

On a device opened with ``numerics="device"``, layer_norm and softmax run their kernels' stages under the
compute kernel config (``device_ops``); batch_norm computes exactly in both modes (the SpeechT5 programs fold
every BatchNorm into its conv and emit none).
"""
from __future__ import annotations

import torch

from .tensor import (
    Tensor, checked, flat_value, like, new_tensor, quantize, require, require_device, require_dtype, require_layout,
    require_output, write_into,
)
from .types import DataType, Layout, TensorMemoryLayout

NORM_DTYPES = (DataType.BFLOAT16, DataType.FLOAT32, DataType.BFLOAT8_B)


def _check_gamma(t: Tensor, width: int, name: str) -> None:
    require_device(t, "layer_norm", name)
    require_dtype(t, (DataType.BFLOAT16, DataType.FLOAT32), "layer_norm", name)
    s = tuple(t.shape)
    if t.layout is Layout.TILE:
        require(s[-1] == width and all(d == 1 for d in s[:-1]), "layer_norm",
                f"TILE {name} must be [1, {width}] (last dim = input's, padded height 32), got {list(s)}")
    else:
        require(len(s) >= 2 and s[-1] == 32 and s[-2] * 32 == width, "layer_norm",
                f"ROW_MAJOR {name} must be [{width // 32}, 32], got {list(s)}")


def _check_layer_norm(input_tensor, *, memory_config=None, epsilon=1e-12, weight=None, bias=None,
                      residual_input_tensor=None, program_config=None, compute_kernel_config=None):
    require_device(input_tensor, "layer_norm", "input_tensor")
    require_layout(input_tensor, (Layout.TILE,), "layer_norm", "input_tensor")
    require_dtype(input_tensor, NORM_DTYPES, "layer_norm", "input_tensor")
    require(input_tensor.memory_config().memory_layout is not TensorMemoryLayout.HEIGHT_SHARDED, "layer_norm",
            "height-sharded input is not supported")
    width = input_tensor.shape[-1]
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is not None:
            _check_gamma(t, width, name)
    if residual_input_tensor is not None:
        require_device(residual_input_tensor, "layer_norm", "residual_input_tensor")
        # ttnn 0.81.1's own messages (_ttnncpp.so): "Residual tensor must have TILE layout, got: {}", "Input and
        # residual logical and padded shapes must match ..."; no dtype rule is among them
        require_layout(residual_input_tensor, (Layout.TILE,), "layer_norm", "residual_input_tensor")
        require(tuple(residual_input_tensor.shape) == tuple(input_tensor.shape)
                and tuple(residual_input_tensor.padded_shape) == tuple(input_tensor.padded_shape), "layer_norm",
                "Input and residual logical and padded shapes must match, got input: logical="
                f"{list(input_tensor.shape)} padded={list(input_tensor.padded_shape)} vs residual: logical="
                f"{list(residual_input_tensor.shape)} padded={list(residual_input_tensor.padded_shape)}")


@checked(_check_layer_norm)
def layer_norm(input_tensor, *, memory_config=None, epsilon=1e-12, weight=None, bias=None,
               residual_input_tensor=None, program_config=None, compute_kernel_config=None):
    """Normalize over the last dim (biased variance); a residual is added first. Output TILE."""
    if input_tensor._device is not None and input_tensor._device.emulate:
        from . import device_ops, numerics
        dtype = input_tensor.dtype
        m = numerics.resolve("layer_norm", compute_kernel_config, fp32_in=dtype is DataType.FLOAT32)
        out = device_ops.layer_norm(input_tensor._value,
                                    None if residual_input_tensor is None else residual_input_tensor._value,
                                    flat_value(weight) if weight is not None else None,
                                    flat_value(bias) if bias is not None else None, epsilon, m)
        return like(input_tensor, out, layout=Layout.TILE, memory_config=memory_config)
    x = input_tensor._value
    if residual_input_tensor is not None:
        x = x + residual_input_tensor._value
    w = flat_value(weight) if weight is not None else None
    b = flat_value(bias) if bias is not None else None
    out = torch.layer_norm(x, (x.shape[-1],), w, b, epsilon)  # what F.layer_norm calls, minus its dispatch
    dtype = input_tensor.dtype
    if dtype is DataType.BFLOAT16:
        out = out.bfloat16().float()  # quantize(out, bfloat16), inlined
    elif dtype is not DataType.FLOAT32:
        out = quantize(out, dtype)
    return new_tensor(out, dtype, Layout.TILE, memory_config or input_tensor._memory_config, input_tensor._device)


def _check_softmax(input_tensor, dim=-1, *, memory_config=None, compute_kernel_config=None, numeric_stable=True):
    require_device(input_tensor, "softmax", "input_tensor")
    require_layout(input_tensor, (Layout.TILE,), "softmax", "input_tensor")
    require_dtype(input_tensor, NORM_DTYPES, "softmax", "input_tensor")
    rank = len(input_tensor.shape)
    require(-rank <= dim < rank, "softmax", f"dim {dim} out of range for rank {rank}")


@checked(_check_softmax)
def softmax(input_tensor, dim=-1, *, memory_config=None, compute_kernel_config=None, numeric_stable=True):
    if input_tensor._device is not None and input_tensor._device.emulate:
        from . import device_ops, numerics
        dtype = input_tensor.dtype
        m = numerics.resolve("softmax", compute_kernel_config, fp32_in=dtype is DataType.FLOAT32)
        return like(input_tensor, device_ops.softmax(input_tensor._value, dim, dtype, m), memory_config=memory_config)
    return like(input_tensor, torch.softmax(input_tensor._value, dim), memory_config=memory_config)


def _check_batch_norm(input_tensor, *, running_mean=None, running_var=None, training=False, eps=1e-05,
                      momentum=0.1, weight=None, bias=None, output=None, memory_config=None,
                      compute_kernel_config=None):
    require_device(input_tensor, "batch_norm", "input_tensor")
    require(len(input_tensor.shape) == 4, "batch_norm", f"input must be rank 4 [N, C, H, W], got {list(input_tensor.shape)}")
    require_layout(input_tensor, (Layout.TILE,), "batch_norm", "input_tensor")
    require_dtype(input_tensor, (DataType.BFLOAT16, DataType.FLOAT32), "batch_norm", "input_tensor")
    require(not input_tensor.memory_config().is_sharded, "batch_norm", "input must be interleaved")
    require(training or (running_mean is not None and running_var is not None), "batch_norm",
            "inference (training=False) requires running_mean and running_var")
    c = input_tensor.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"), (bias, "bias")):
        if t is not None:
            require_device(t, "batch_norm", name)
            require(tuple(t.shape) == (1, c, 1, 1), "batch_norm", f"{name} must be [1, {c}, 1, 1], got {list(t.shape)}")
    if output is not None:
        require_output("batch_norm", output, tuple(input_tensor.shape))


@checked(_check_batch_norm)
def batch_norm(input_tensor, *, running_mean=None, running_var=None, training=False, eps=1e-05, momentum=0.1,
               weight=None, bias=None, output=None, memory_config=None, compute_kernel_config=None):
    def vec(t):
        return None if t is None else t._value.reshape(-1)
    out = torch.nn.functional.batch_norm(input_tensor._value, vec(running_mean), vec(running_var), vec(weight),
                                         vec(bias), training, momentum, eps)
    if output is not None:
        return write_into(output, out)
    return like(input_tensor, out, memory_config=memory_config)
