"""``ttnn.experimental.*`` ops (OP_CONTRACT §6)."""
from __future__ import annotations

import torch

from .tensor import checked, host_list, quantize, require, require_device, require_dtype, require_layout, writable
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
        # ttnn 0.81.1: "Expect input_tensor to have shard width ({}) equal to the last dimension of the input
        # tensor padded shape ({})": a head dim that is not a multiple of 32 is sharded at its tile-padded width
        padded = input_tensor.padded_shape[-1]
        require(mc.shard_spec.shape[1] == padded, op, f"input_tensor shard width {mc.shard_spec.shape[1]} must equal "
                f"the last dim of its padded shape ({padded})")
    require((update_idxs is None) != (update_idxs_tensor is None), op,
            "give exactly one of update_idxs (list) or update_idxs_tensor (device tensor)")
    if update_idxs_tensor is not None:
        require_device(update_idxs_tensor, op, "update_idxs_tensor")
        # int32 only: a position of -1 (skip the user) must survive; uint32 would wrap it to 0xFFFFFFFF
        require_dtype(update_idxs_tensor, (DataType.INT32,), op, "update_idxs_tensor")
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
    idx = host_list(update_idxs_tensor) if update_idxs_tensor is not None else list(update_idxs)
    _, nkv, seq, _ = cache.shape
    x = input_tensor._value  # [1, b, nkv (padded to 32), dh]
    if x.shape[2] != nkv:
        x = x[:, :, :nkv]
    cache = writable(cache_tensor)
    p = idx[0] if idx else -1
    if 0 <= p < seq and idx.count(p) == len(idx):  # every user at one position: one write
        dtype = cache_tensor.dtype
        if dtype is DataType.BFLOAT16:
            if input_tensor.dtype is not DataType.BFLOAT16:  # (bf16 values need no rounding)
                x = x.bfloat16()  # bf16 -> float32 is exact: the copy stores the rounded values
        elif dtype is not DataType.FLOAT32:
            x = quantize(x[0], dtype)
        cache[:, :, p] = x  # (setitem drops x's leading 1)
        return None
    new = quantize(x[0], cache_tensor.dtype)
    for u, p in enumerate(idx):
        require(-1 <= p < seq, "experimental.paged_update_cache",
                f"update index {p} of user {u} is outside the cache's {seq} positions (-1 skips a user)")
        if p >= 0:
            cache[u, :, p, :] = new[u]
    return None


# -- head split / concat (OP_CONTRACT §6) ------------------------------------------------------------

from .tensor import like, moved  # noqa: E402
from .transformer import TM_DTYPES, check_concat_heads, split_heads  # noqa: E402
from .types import TILE_SIZE  # noqa: E402


def _qkv_head_dim(op, input, input_kv, num_heads, num_kv_heads, kv_tied) -> tuple[int, int]:
    """(head_dim, num_kv_heads) of an nlp_create_qkv_heads call, checking that the widths divide evenly."""
    nkv = num_heads if num_kv_heads is None else num_kv_heads
    require(num_heads > 0 and nkv >= 0, op, f"num_heads must be > 0 and num_kv_heads >= 0, got {num_heads}, {nkv}")
    nsec = 1 if kv_tied else 2
    w = input.shape[-1]
    if input_kv is None:
        heads = num_heads + nsec * nkv
        require(w % heads == 0, op, f"Unsupported input shape: width {w} is not divisible by the {heads} heads "
                                    f"(num_heads + {nsec} * num_kv_heads)")
        return w // heads, nkv
    kw = input_kv.shape[-1]
    require(nkv > 0 and w % num_heads == 0 and kw % (nsec * nkv) == 0, op,
            f"Unsupported input shape: Q width {w} must divide by num_heads ({num_heads}) and KV width {kw} by "
            f"{nsec} * num_kv_heads ({nsec * nkv})")
    require(kw // (nsec * nkv) == w // num_heads, op, "Head dims must be the same for Q and K, V")
    return w // num_heads, nkv


def _tm_input(op, t, name) -> tuple[int, ...]:
    require_device(t, op, name)
    require_layout(t, (Layout.TILE,), op, name)
    require_dtype(t, TM_DTYPES, op, name)
    shape = tuple(t.shape)
    require(len(shape) == 4 and shape[1] == 1, op, f"{name} must be 4D [B, 1, S, width], got {list(shape)}")
    return shape


def _check_nlp_create_qkv_heads(input, input_kv=None, *, num_heads, num_kv_heads=None, transpose_k_heads=True,
                                kv_tied=False, memory_config=None, output_tensors=None):
    op = "experimental.nlp_create_qkv_heads"
    b, _, s, _ = _tm_input(op, input, "input")
    sharded = input.memory_config().is_sharded
    if input_kv is not None:
        kb, _, ks, _ = _tm_input(op, input_kv, "input_kv")
        require(input_kv.dtype is input.dtype, op, "KV tensor dtype must be same as Q tensor dtype!")
        require(kb == b and ks == s, op, "KV tensor batch and seq_len dims must be the same as the Q tensor's")
        require(input_kv.memory_config().is_sharded == sharded, op,
                "input and input_kv must both be sharded or both interleaved")
    dh, nkv = _qkv_head_dim(op, input, input_kv, num_heads, num_kv_heads, kv_tied)
    require(dh % TILE_SIZE == 0, op, f"head_dim {dh} must be a multiple of 32 (no padding on head_dim)")
    out_mc = memory_config or input.memory_config()
    if sharded:
        require(not kv_tied, op, "kv_tied=True with a sharded input is not modelled by the reference implementation")
        require(not transpose_k_heads, op, "Transpose K heads must be false for a sharded input")
        require(nkv > 0 and num_heads % nkv == 0, op, "sharded input needs num_heads divisible by num_kv_heads")
        require(out_mc.is_sharded and out_mc.memory_layout is not TensorMemoryLayout.WIDTH_SHARDED, op,
                "Output memory config must be sharded and not WIDTH_SHARDED for a sharded input")
    else:
        require(not out_mc.is_sharded, op, "Output memory config layout must be INTERLEAVED for an interleaved input")
    if output_tensors is not None:
        kshape = (b, nkv, dh, s) if transpose_k_heads else (b, nkv, s, dh)
        want = ((b, num_heads, s, dh), kshape, (b, nkv, s, dh))
        require(len(output_tensors) == 3, op, "output_tensors must hold three tensors (q, k, v)")
        for t, shape, name in zip(output_tensors, want, "qkv"):
            require_device(t, op, f"output_tensors[{name}]")
            require_layout(t, (Layout.TILE,), op, f"output_tensors[{name}]")
            require(tuple(t.shape) == shape, op, f"output_tensors[{name}] must be {list(shape)}, got {list(t.shape)}")


@checked(_check_nlp_create_qkv_heads)
def nlp_create_qkv_heads(input, input_kv=None, *, num_heads, num_kv_heads=None, transpose_k_heads=True,
                         kv_tied=False, memory_config=None, output_tensors=None):
    """[B, 1, S, (nh+2nkv)·dh] → q [B, nh, S, dh], k [B, nkv, dh, S] (``[B, nkv, S, dh]`` unless
    transpose_k_heads), v [B, nkv, S, dh].

    With ``input_kv`` [B, 1, S, 2nkv·dh] the input holds Q only; ``num_kv_heads=0`` splits Q only (k and v
    come back with 0 heads); ``kv_tied=True``: one K/V section, returned as both k and v.
    """
    x = input._value
    if output_tensors is None and input_kv is None and num_heads == 1 and num_kv_heads == 1 and not kv_tied:
        # one head each (tt-metal SpeechT5 decode: heads ride in the S dim): q | k | v are the thirds of the
        # last dim, [B, 1, S, dh] views as they stand (grouped and interleaved layouts coincide)
        w = x.shape[-1] // 3
        q, k, v = x[..., :w], x[..., w:2 * w], x[..., 2 * w:]
        if transpose_k_heads:
            k = k.transpose(-1, -2)
        return (moved(input, q, layout=Layout.TILE, memory_config=memory_config),
                moved(input, k, layout=Layout.TILE, memory_config=memory_config),
                moved(input, v, layout=Layout.TILE, memory_config=memory_config))
    kv = None if input_kv is None else input_kv._value
    nkv = num_heads if num_kv_heads is None else num_kv_heads
    nsec = 1 if kv_tied else 2
    dh = x.shape[-1] // num_heads if kv is not None else x.shape[-1] // (num_heads + nsec * nkv)
    q, k, v = split_heads(x[:, 0], None if kv is None else kv[:, 0], num_heads, nkv, dh,
                          input._memory_config.is_sharded, transpose_k_heads, tied=kv_tied, views=True)
    if output_tensors is not None:
        for t, value in zip(output_tensors, (q, k, v)):
            t._value = quantize(value, t.dtype)
        return tuple(output_tensors)
    # q / k / v are views of the input (see ``moved``); a block-float k is re-rounded in its new layout
    return (moved(input, q, layout=Layout.TILE, memory_config=memory_config),
            moved(input, k, layout=Layout.TILE, memory_config=memory_config),
            moved(input, v, layout=Layout.TILE, memory_config=memory_config))


def _check_nlp_concat_heads(input_tensor, *, memory_config=None):
    check_concat_heads("experimental.nlp_concat_heads", input_tensor, memory_config)


@checked(_check_nlp_concat_heads)
def nlp_concat_heads(input_tensor, *, memory_config=None):
    """[B, nh, S, dh] → [B, 1, S, nh·dh]."""
    x = input_tensor._value
    b, nh, s, dh = x.shape
    out = x.permute(0, 2, 1, 3).reshape(b, 1, s, nh * dh)
    return like(input_tensor, out, layout=Layout.TILE, memory_config=memory_config)
