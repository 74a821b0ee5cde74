"""KV-cache ops with host indices (OP_CONTRACT §6): ``update_cache``, ``fill_cache`` and ``ttnn.kv_cache`` aliases.

Both write the cache in place and return the cache tensor itself (the C++ op returns its cache argument).
The indices are host integers, so a traced program bakes them in; decode loops that replay a trace should
use ``ttnn.experimental.paged_update_cache`` with a device index tensor instead.
"""
from __future__ import annotations

from .tensor import checked, quantize, require, require_device, require_dtype, require_layout, writable
from .types import DataType, Layout, TILE_SIZE, TensorMemoryLayout

__all__ = ["update_cache", "fill_cache"]

CACHE_DTYPES = (DataType.FLOAT32, DataType.BFLOAT16, DataType.BFLOAT8_B)


def _check_operands(op: str, cache, input) -> tuple[tuple[int, ...], tuple[int, ...]]:
    for t, name in ((cache, "cache"), (input, "input")):
        require_device(t, op, name)
        require_layout(t, (Layout.TILE,), op, name)
        require_dtype(t, CACHE_DTYPES, op, name)
        require(len(t.shape) == 4, op, f"{name} must be 4D, got {list(t.shape)}")
    require(input._device is cache._device, op, "Operands to update_cache need to be on the same device!")
    require(not cache.memory_config().is_sharded, op, "the cache must be interleaved")
    cs, ins = tuple(cache.shape), tuple(input.shape)
    require(ins[0] == 1, op, f"Input tensor batch size must be 1 but got {ins[0]}")
    require(ins[1] == cs[1], op, f"Input tensor heads ({ins[1]}) must equal cache tensor heads ({cs[1]})")
    require(ins[3] == cs[3], op, f"Input tensor width ({ins[3]}) must equal cache tensor width ({cs[3]})")
    return cs, ins


def _check_update_cache(cache, input, update_index, batch_offset=0, *, compute_kernel_config=None):
    op = "update_cache"
    cs, ins = _check_operands(op, cache, input)
    mc = input.memory_config()
    require(mc.memory_layout is not TensorMemoryLayout.WIDTH_SHARDED, op, "input must not be WIDTH_SHARDED")
    b, s = cs[0], cs[2]
    require(0 <= update_index < s, op, f"update_index {update_index} out of range for a cache of {s} positions")
    if b < TILE_SIZE:
        require(0 <= batch_offset and batch_offset + b <= TILE_SIZE, op,
                f"Batch offset ({batch_offset}) + cache tensor batch size ({b}) must be <= 32")
    else:
        require(batch_offset == 0, op, "Batch offset must be 0 when cache tensor batch size >= 32")
    require(batch_offset + b <= ins[2], op,
            f"input [1, heads, users, head_dim] holds {ins[2]} users; cache batch {b} at batch_offset "
            f"{batch_offset} needs {batch_offset + b}")


@checked(_check_update_cache)
def update_cache(cache, input, update_index, batch_offset=0, *, compute_kernel_config=None):
    """``cache[u, :, update_index, :] = input[0, :, batch_offset + u, :]`` for every user u; returns ``cache``.

    The input ([1, heads, users padded to 32, head_dim]) may be fp32 / bf16 while the cache is bf8_b: the
    values are rounded to the cache dtype.
    """
    c = cache._value
    if c.device.type != "meta":
        c = writable(cache)
        b = c.shape[0]
        rows = input._value[0, :, batch_offset:batch_offset + b, :].transpose(0, 1)  # [b, heads, dh]
        c[:, :, update_index, :] = quantize(rows, cache.dtype)
    return cache


def _check_fill_cache(cache_tensor, input_tensor, batch_idx, *, update_idx=0):
    op = "fill_cache"
    cs, ins = _check_operands(op, cache_tensor, input_tensor)
    require(input_tensor.dtype is cache_tensor.dtype, op,
            f"Input and cache tensors must have same dtype! ({input_tensor.dtype.value} vs {cache_tensor.dtype.value})")
    require(0 <= batch_idx < cs[0], op,
            f"Batch index ({batch_idx}) must be less than cache tensor batch size ({cs[0]})")
    require(update_idx >= 0 and update_idx % TILE_SIZE == 0, op,
            f"Fill update_idx ({update_idx}) must be a multiple of TILE_HEIGHT (32)")
    require(update_idx + ins[2] <= cs[2], op,
            f"Fill update_idx ({update_idx}) + input length ({ins[2]}) exceeds the cache length ({cs[2]})")


@checked(_check_fill_cache)
def fill_cache(cache_tensor, input_tensor, batch_idx, *, update_idx=0):
    """``cache[batch_idx, :, update_idx:update_idx+S, :] = input[0]``; returns ``cache_tensor``.

    The device copies whole tiles, so when S is not a multiple of 32 the cache rows up to the next tile
    boundary are overwritten with the input's tile padding: the reference writes zeros there.
    """
    c = cache_tensor._value
    if c.device.type != "meta":
        c = writable(cache_tensor)
        s = input_tensor._value.shape[2]
        end = min(update_idx + -(-s // TILE_SIZE) * TILE_SIZE, c.shape[2])
        c[batch_idx, :, update_idx:update_idx + s, :] = input_tensor._value[0]
        c[batch_idx, :, update_idx + s:end, :] = 0
    return cache_tensor


def _check_update_alias(cache, input, update_index, batch_offset=0, *, compute_kernel_config=None):
    _check_update_cache(cache, input, update_index, batch_offset, compute_kernel_config=compute_kernel_config)


@checked(_check_update_alias)
def update_cache_for_token_(cache, input, update_index, batch_offset=0, *, compute_kernel_config=None):
    """``ttnn.kv_cache.update_cache_for_token_``: the same op as :func:`update_cache`."""
    return update_cache.unchecked(cache, input, update_index, batch_offset, compute_kernel_config=compute_kernel_config)


def _check_fill_alias(cache, input, batch_index, update_idx=0):
    _check_fill_cache(cache, input, batch_index, update_idx=update_idx)


@checked(_check_fill_alias)
def fill_cache_for_user_(cache, input, batch_index, update_idx=0):
    """``ttnn.kv_cache.fill_cache_for_user_``: the same op as :func:`fill_cache`."""
    return fill_cache.unchecked(cache, input, batch_index, update_idx=update_idx)
