"""``ttnn.experimental.*`` ops (OP_CONTRACT §6)."""
from __future__ import annotations

import torch

from .tensor import checked, quantize, require, require_device, require_dtype, require_layout
from .types import DataType, Layout, TensorMemoryLayout


def _check_paged_update_cache(cache_tensor, input_tensor, *, update_idxs=None, update_idxs_tensor=None,
                              share_cache=None, page_table=None, batch_offset=0, compute_kernel_config=None,
                              block_size=None, num_kv_heads=None, cache_position_modulo=None):
    op = "experimental.paged_update_cache"
    require_device(cache_tensor, op, "cache_tensor")
    require_device(input_tensor, op, "input_tensor")
    require_layout(cache_tensor, (Layout.TILE,), op, "cache_tensor")
    require_layout(input_tensor, (Layout.TILE,), op, "input_tensor")
    require_dtype(input_tensor, (DataType.FLOAT32, DataType.BFLOAT16), op, "input_tensor")
    cs, ins = tuple(cache_tensor.shape), tuple(input_tensor.shape)
    require(len(cs) == 4, op, f"cache_tensor must be [B, num_kv_heads, max_seq, head_dim], got {list(cs)}")
    b, nkv, _, dh = cs
    require(len(ins) == 4 and ins[0] == 1 and ins[1] == b and ins[3] == dh and ins[2] in (nkv, -(-nkv // 32) * 32), op,
            f"input_tensor must be [1, {b}, {nkv} (padded to 32), {dh}], got {list(ins)}")
    mc = input_tensor.memory_config()
    require(mc.memory_layout is TensorMemoryLayout.HEIGHT_SHARDED, op,
            "input_tensor must be height-sharded (one user per core)")
    if mc.shard_spec is not None:
        require(mc.shard_spec.grid.num_cores == b, op,
                f"input_tensor must be sharded over {b} cores (one per user), got {mc.shard_spec.grid.num_cores}")
    require((update_idxs is None) != (update_idxs_tensor is None), op,
            "give exactly one of update_idxs (list) or update_idxs_tensor (device tensor)")
    if update_idxs_tensor is not None:
        require_device(update_idxs_tensor, op, "update_idxs_tensor")
        require_dtype(update_idxs_tensor, (DataType.INT32, DataType.UINT32), op, "update_idxs_tensor")
        require(tuple(update_idxs_tensor.shape) == (b,), op,
                f"update_idxs_tensor must be [{b}] (one position per user), got {list(update_idxs_tensor.shape)}")
    else:
        require(len(update_idxs) == b, op, f"update_idxs must give {b} positions")
    require(page_table is None, op, "paged caches (page_table) are not modelled by the reference")


@checked(_check_paged_update_cache)
def paged_update_cache(cache_tensor, input_tensor, *, update_idxs=None, update_idxs_tensor=None, share_cache=None,
                       page_table=None, batch_offset=0, compute_kernel_config=None, block_size=None,
                       num_kv_heads=None, cache_position_modulo=None):
    """Write ``input[0, u, :nkv]`` into ``cache[u, :, idx[u], :]`` for every user ``u`` (idx -1 skips)."""
    cache = cache_tensor._value
    if cache.device.type == "meta":
        return None
    idx = update_idxs_tensor._value.tolist() if update_idxs_tensor is not None else list(update_idxs)
    nkv = cache.shape[1]
    new = quantize(input_tensor._value[0, :, :nkv, :], cache_tensor.dtype)
    for u, p in enumerate(idx):
        if p >= 0:
            cache[u, :, p, :] = new[u]
    return None
