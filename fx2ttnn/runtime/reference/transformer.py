"""``ttnn.transformer.*`` attention ops (OP_CONTRACT §6).

``scaled_dot_product_attention`` (prefill / encoder / cross-attention), ``scaled_dot_product_attention_decode``
(one new token against a preallocated KV cache), ``split_query_key_value_and_split_heads`` and
``concatenate_heads``.  Argument names are those of the ttnn Python bindings (``input_tensor_q``,
``input_tensor_k``, ``input_tensor_v``; the contract abbreviates them to q, k, v).

Dtypes: the device kernels of both SDPA ops accept bfloat16 / bfloat8_b / bfloat4_b only (tt-metal
``sdpa_device_operation.cpp``, ``sdpa_decode_device_operation.cpp``); the contract (§6) does not list that
restriction.  With ``numerics="exact"`` the reference also accepts float32 (float32 programs are an exact,
reference-only mode, see README); with ``numerics="device"`` it rejects float32 as the device does.
Numerics: ``"exact"`` computes in float32 on the stored (already rounded) values; ``"device"`` runs the flash
loop of the device kernels (``device_ops.flash_attention``).  Outputs are rounded to the query's dtype.
"""
from __future__ import annotations

import numbers
from collections import defaultdict

import torch
import torch.nn.functional as F

from .tensor import (
    Tensor, checked, host_list, like, new_tensor, quantize, require, require_device, require_dtype, require_layout,
    reshaped_value,
)
from .types import DRAM_MEMORY_CONFIG, BufferType, DataType, Layout, MemoryConfig, TensorMemoryLayout, TILE_SIZE

SDPA_DTYPES = (DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.BFLOAT4_B, DataType.FLOAT32)
DEVICE_SDPA_DTYPES = (DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.BFLOAT4_B)  # what the device kernels take
TM_DTYPES = (DataType.FLOAT32, DataType.BFLOAT16, DataType.BFLOAT8_B)  # head split/concat kernels
_TILE = (Layout.TILE,)


def _round_up(n: int, m: int = TILE_SIZE) -> int:
    return -(-n // m) * m


def _is_pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def _operand(t, op: str, name: str, dtypes=SDPA_DTYPES, rank: int = 4) -> tuple[int, ...]:
    require_device(t, op, name)
    require_layout(t, _TILE, op, name)
    require_dtype(t, dtypes, op, name)
    shape = tuple(t.shape)
    require(len(shape) == rank, op, f"{name} must have rank {rank}, got shape {list(shape)}")
    return shape


def _not_modelled(op: str, **kwargs) -> None:
    for name, value in kwargs.items():
        require(value is None, op, f"{name} is not modelled by the reference implementation (pass None)")


# -- scaled_dot_product_attention -----------------------------------------------------------------

def _sdpa_chunk_sizes(op: str, program_config) -> tuple[int, int]:
    """(q_chunk_size, k_chunk_size): the program config's, else 32 (ttnn's default)."""
    if program_config is None:
        return TILE_SIZE, TILE_SIZE
    qc, kc = int(program_config.q_chunk_size), int(program_config.k_chunk_size)
    require(qc > 0 and qc % TILE_SIZE == 0, op, f"q_chunk_size must be a positive multiple of 32, got {qc}")
    require(kc > 0 and kc % TILE_SIZE == 0, op, f"k_chunk_size must be a positive multiple of 32, got {kc}")
    require(_is_pow2(kc), op, f"User provided k_chunk_size must be power of 2, got: {kc}")
    return qc, kc


def _check_sdpa(input_tensor_q, input_tensor_k, input_tensor_v, *, attn_mask=None, is_causal=True, scale=None,
                sliding_window_size=None, memory_config=None, program_config=None, compute_kernel_config=None,
                attention_sink=None, cu_window_seqlens=None, output_concat_heads=False):
    op = "transformer.scaled_dot_product_attention"
    b, nqh, sq, dh = _operand(input_tensor_q, op, "input_tensor_q")
    kshape = _operand(input_tensor_k, op, "input_tensor_k")
    vshape = _operand(input_tensor_v, op, "input_tensor_v")
    dev = input_tensor_q._device
    require(input_tensor_k._device is dev and input_tensor_v._device is dev, op,
            "Q, K and V must be on the same device")
    require(kshape == vshape, op, f"K and V must have the same shape, got {list(kshape)} and {list(vshape)}")
    kb, nkv, sk, kdh = kshape
    require(kb == b, op, f"K and V batch must match Q batch: Q {b}, K {kb}")
    require(kdh == dh, op, f"K and V hidden dim must match Q: Q {dh}, K {kdh}")
    require(nkv > 0 and nqh % nkv == 0, op,
            f"Q num_heads must be >= K num_heads and divisible by K num_heads. Got Q: {nqh}, K: {nkv}")
    require(dh % TILE_SIZE == 0, op,
            f"Padding is not supported on the head_dim dimension: head_dim {dh} must be a multiple of 32")
    if is_causal:
        require(attn_mask is None, op,
                "attn_mask must not be provided when is_causal=True (set is_causal=False to pass a mask)")
        require(sq == sk, op, f"Causal SDPA requires Q and K to have the same sequence length. Got Q: {sq}, K: {sk}")
    _not_modelled(op, sliding_window_size=sliding_window_size, attention_sink=attention_sink,
                  cu_window_seqlens=cu_window_seqlens)
    qc, kc = _sdpa_chunk_sizes(op, program_config)
    if attn_mask is not None:
        require_device(attn_mask, op, "attn_mask")
        require(attn_mask._device is dev, op, "attn_mask must be on the same device as Q, K and V")
        require_layout(attn_mask, _TILE, op, "attn_mask")
        require_dtype(attn_mask, SDPA_DTYPES, op, "attn_mask")
        require(attn_mask.memory_config().buffer_type is BufferType.DRAM, op, "attn_mask must be in DRAM")
        ms = tuple(attn_mask.shape)
        require(len(ms) == 4, op, f"attn_mask must be [b, nqh, s_q, s_k], got {list(ms)}")
        require(ms[0] in (1, b), op, f"Mask batch dim must either be 1 or match Q batch {b}, got {ms[0]}")
        require(ms[1] in (1, nqh), op, f"Mask num_heads must either be 1 or match Q heads {nqh}, got {ms[1]}")
        require(ms[2] == sq and ms[3] == sk, op,
                f"Mask sequence length must match Q/K sequence length: mask {list(ms)}, Q {sq}, K {sk}")
        require(sq % qc == 0 and sk % kc == 0, op,
                f"Mask sequence length must be multiple of chunk size: mask {list(ms[2:])}, "
                f"q_chunk_size {qc}, k_chunk_size {kc}")
    require(sq % qc == 0, op, f"Q sequence length {sq} must be multiple of chunk size (q_chunk_size={qc})")
    require(sk % kc == 0, op, f"K sequence length {sk} must be multiple of chunk size (k_chunk_size={kc})")
    require(memory_config is None or isinstance(memory_config, MemoryConfig), op,
            "memory_config must be a ttnn.MemoryConfig")


@checked(_check_sdpa)
def scaled_dot_product_attention(input_tensor_q, input_tensor_k, input_tensor_v, *, attn_mask=None, is_causal=True,
                                 scale=None, sliding_window_size=None, memory_config=None, program_config=None,
                                 compute_kernel_config=None, attention_sink=None, cu_window_seqlens=None,
                                 output_concat_heads=False):
    """softmax(q kᵀ · scale + mask) v with KV heads repeat-interleaved (GQA); scale defaults to dh**-0.5.

    Output ``[b, nqh, s, dh]``, or ``[b, 1, s, nqh*dh]`` with ``output_concat_heads=True``; TILE, DRAM unless told.
    """
    q, k, v = input_tensor_q._value, input_tensor_k._value, input_tensor_v._value
    b, nqh, s, dh = q.shape
    sc = dh ** -0.5 if scale is None else float(scale)
    if q.device.type == "meta":
        out = q.new_empty(q.shape)
    elif input_tensor_q._device.emulate:
        from . import device_ops
        op = "transformer.scaled_dot_product_attention"
        m = _device_math("scaled_dot_product_attention", op, compute_kernel_config, input_tensor_q, input_tensor_k,
                         input_tensor_v)
        if k.shape[1] != nqh:
            k, v = (t.repeat_interleave(nqh // k.shape[1], 1) for t in (k, v))
        out = device_ops.flash_attention(q, k, v, None if attn_mask is None else attn_mask._value,
                                         None if attn_mask is None else attn_mask.dtype, sc, bool(is_causal),
                                         _sdpa_chunk_sizes(op, program_config)[1], m)
    else:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if attn_mask is None else attn_mask._value, is_causal=bool(is_causal),
            scale=sc, enable_gqa=k.shape[1] != nqh)
    if output_concat_heads:
        out = out.permute(0, 2, 1, 3).reshape(b, 1, s, nqh * dh)
    return like(input_tensor_q, out, layout=Layout.TILE, memory_config=memory_config or DRAM_MEMORY_CONFIG)


# -- scaled_dot_product_attention_decode ----------------------------------------------------------

def _decode_chunk_size(s: int) -> int:
    """ttnn's default decode k_chunk_size: the largest power of 2 dividing s (at least 2), capped at 512."""
    i = 1
    while i < s and s % (1 << (i + 1)) == 0:
        i += 1
    return min(512, 1 << i)


def _check_sdpa_decode(input_tensor_q, input_tensor_k, input_tensor_v, *, is_causal=True, attn_mask=None,
                       cur_pos=None, cur_pos_tensor=None, scale=None, program_config=None, compute_kernel_config=None,
                       memory_config=None, sliding_window_size=None, share_cache=None, attention_sink=None):
    op = "transformer.scaled_dot_product_attention_decode"
    one, b, nh, dh = _operand(input_tensor_q, op, "input_tensor_q")
    kshape = _operand(input_tensor_k, op, "input_tensor_k")
    vshape = _operand(input_tensor_v, op, "input_tensor_v")
    dev = input_tensor_q._device
    require(input_tensor_k._device is dev and input_tensor_v._device is dev, op,
            "Q, K and V must be on the same device")
    require(one == 1, op,
            f"Q tensor batch size must be 1 for decode mode (q is [1, b, nh, dh]), got {list(input_tensor_q.shape)}")
    require(kshape == vshape, op, f"K and V must have the same shape, got {list(kshape)} and {list(vshape)}")
    kb, nkv, s, kdh = kshape
    if share_cache:
        require(kb == 1, op, f"Share cache expects K to have batch size of 1, but got {kb}")
    else:
        require(kb == b, op, f"K tensor batch size ({kb}) must equal B ({b}), the users in q [1, B, nh, dh]")
    require(kdh == dh, op, f"K tensor hidden dimension ({kdh}) must equal Q tensor hidden dimension ({dh})")
    require(dh % TILE_SIZE == 0, op, f"head dim {dh} must be a multiple of 32")
    require(nkv > 0 and nh % nkv == 0, op, f"GQA expects Q to have a multiple of K heads, but got {nh} and {nkv}")
    qmc = input_tensor_q.memory_config()
    if qmc.is_sharded:
        require(qmc.memory_layout is TensorMemoryLayout.HEIGHT_SHARDED, op,
                f"Q tensor memory layout must be HEIGHT_SHARDED when sharded but got {qmc.memory_layout.value}")
    else:
        require(qmc.buffer_type is BufferType.DRAM, op, "Q tensor buffer type must be DRAM when not sharded")
    for t, name in ((input_tensor_k, "input_tensor_k"), (input_tensor_v, "input_tensor_v")):
        require(t.memory_config().buffer_type is BufferType.DRAM and not t.memory_config().is_sharded, op,
                f"{name} (the KV cache) must be DRAM interleaved")
    if memory_config is not None and memory_config.is_sharded:
        require(memory_config.memory_layout is TensorMemoryLayout.HEIGHT_SHARDED, op,
                "Output memory config layout must be HEIGHT_SHARDED when sharded")
        require(nkv == 1, op, "Sharded output not supported for GQA")
    if nkv > 1:
        require(input_tensor_q.dtype in (DataType.BFLOAT16, DataType.FLOAT32), op,
                f"GQA expects BFLOAT16 input tensor, but got {input_tensor_q.dtype.value}")
    _not_modelled(op, sliding_window_size=sliding_window_size, attention_sink=attention_sink)

    if program_config is not None and program_config.k_chunk_size > 0:
        kc = int(program_config.k_chunk_size)
        require(_is_pow2(kc), op, f"User provided k_chunk_size must be power of 2, got: {kc}")
        require(kc % TILE_SIZE == 0, op, f"User provided k_chunk_size must be multiple of 32, got: {kc}")
    else:
        kc = _decode_chunk_size(s)
        require(kc % TILE_SIZE == 0, op, f"Chunk size must be multiple of 32, but the maximum calculated k_chunk_size "
                                         f"is: {kc} (the cache length {s} must be a multiple of 32)")

    if is_causal:
        require(attn_mask is None, op,
                "attn_mask must not be provided when is_causal=True (set is_causal=False to pass a mask)")
        require((cur_pos is None) != (cur_pos_tensor is None), op,
                "causal decode needs exactly one of cur_pos (list of ints) or cur_pos_tensor (int32 [b] device tensor)")
        if cur_pos is not None:
            require(isinstance(cur_pos, (list, tuple)) and len(cur_pos) == b, op,
                    f"cur_pos must be a list of {b} positions (one per user)")
            require(all(isinstance(p, numbers.Integral) and 0 <= p < s for p in cur_pos), op,
                    f"cur_pos values must be ints in [0, {s}) (cur_pos is a uint32 list on device; to skip a user "
                    f"with -1 use cur_pos_tensor), got {list(cur_pos)}")
        else:
            require_device(cur_pos_tensor, op, "cur_pos_tensor")
            # ttnn 0.81.1's own messages (_ttnncpp.so): "Expect cur_pos to be INT32, got {}" / "... ROW_MAJOR, got {}"
            require(cur_pos_tensor.dtype is DataType.INT32, op,
                    f"Expect cur_pos to be INT32, got {cur_pos_tensor.dtype.value} (cur_pos_tensor)")
            require(cur_pos_tensor.layout is Layout.ROW_MAJOR, op,
                    f"Expect cur_pos to be ROW_MAJOR, got {cur_pos_tensor.layout.name} (cur_pos_tensor)")
            require(tuple(cur_pos_tensor.shape) == (b,), op,
                    f"cur_pos_tensor must be [{b}] (one position per user), got {list(cur_pos_tensor.shape)}")
    else:
        require(cur_pos is None and cur_pos_tensor is None, op,
                "cur_pos / cur_pos_tensor apply only with is_causal=True (non-causal decode attends the whole cache)")
        require(attn_mask is not None, op, f"non-causal decode needs attn_mask [1, {b}, {nh}, {s}]")
        require_device(attn_mask, op, "attn_mask")
        require_layout(attn_mask, _TILE, op, "attn_mask")
        require_dtype(attn_mask, SDPA_DTYPES, op, "attn_mask")
        ms = tuple(attn_mask.shape)
        require(len(ms) == 4 and ms[:3] == (1, b, nh), op, f"attn_mask must be [1, {b}, {nh}, {s}], got {list(ms)}")
        require(ms[3] == s, op, f"Expect same sequence length in mask as in K, got {ms[3]} and {s}")
        require(s % kc == 0, op, f"Mask sequence length must be multiple of chunk size, got: {s} and {kc}")
    require(s % kc == 0, op, f"K sequence length must be multiple of chunk size, got: {s} and {kc}")


@checked(_check_sdpa_decode)
def scaled_dot_product_attention_decode(input_tensor_q, input_tensor_k, input_tensor_v, *, is_causal=True,
                                        attn_mask=None, cur_pos=None, cur_pos_tensor=None, scale=None,
                                        program_config=None, compute_kernel_config=None, memory_config=None,
                                        sliding_window_size=None, share_cache=None, attention_sink=None):
    """Flash-decode: user u's query ``q[0, u]`` attends ``k/v[u]`` (``[0]`` with share_cache).

    Causal: only positions ``0..cur_pos[u]`` (sliced, not masked); a position of -1 (cur_pos_tensor only)
    skips the user.  Non-causal: the whole cache plus ``attn_mask[0, u]``.  Output ``[1, b, pnh, dh]`` with
    pnh = nh rounded up to 32.  Rows ``nh..pnh-1`` and skipped users are zeros here; the device leaves
    them unspecified, so consumers must slice ``[:, :, :nh]`` and ignore skipped users.
    """
    q = input_tensor_q._value
    _, b, nh, dh = q.shape
    pnh = _round_up(nh)
    if q.device.type == "meta":
        out = q.new_zeros((1, b, pnh, dh))
    else:
        k, v = input_tensor_k._value, input_tensor_v._value
        nkv, s = k.shape[1], k.shape[2]
        sc = dh ** -0.5 if scale is None else float(scale)
        qg = q.reshape(b, nkv, nh // nkv, dh)  # GQA: the query heads of one KV head form its "rows"
        attend = _exact_attend
        if input_tensor_q._device.emulate:
            attend = _device_attend(compute_kernel_config, program_config, input_tensor_q, input_tensor_k,
                                    input_tensor_v, attn_mask, s)
        res = None
        if is_causal:
            pos = cur_pos if cur_pos is not None else host_list(cur_pos_tensor)
            p = pos[0] if b else -1
            if 0 <= p < s and pos.count(p) == b:  # every user at one position: one attention over 0..p
                kk, vv = k[:, :, :p + 1], v[:, :, :p + 1]
                if share_cache:
                    kk, vv = kk.expand(b, -1, -1, -1), vv.expand(b, -1, -1, -1)
                res = attend(qg, kk, vv, None, sc)
            else:
                out = _decode_by_position(qg, k, v, pos, b, nh, pnh, dh, s, sc, share_cache, attend)
        else:
            mask = reshaped_value(attn_mask, (b, nkv, nh // nkv, s))  # [1, b, nh, s]; one mask, many layers
            if share_cache:
                k, v = k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)
            res = attend(qg, k, v, mask, sc)
        if res is not None:
            out = res.reshape(1, b, nh, dh)
            if pnh != nh:  # the padding heads: zeros
                out = torch.cat((out, _zeros((1, b, pnh - nh, dh), out)), 2)
    dtype = input_tensor_q.dtype
    if dtype is DataType.BFLOAT16:
        out = out.bfloat16().float()  # quantize(out, bfloat16), inlined
    elif dtype is not DataType.FLOAT32:
        out = quantize(out, dtype)
    return new_tensor(out, dtype, Layout.TILE, memory_config or DRAM_MEMORY_CONFIG, input_tensor_q._device)


_ZEROS: dict = {}


def _zeros(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A zero tensor of ``shape`` (dtype / device of ``like``), cached: only ever read (concatenated)."""
    key = (shape, like.dtype, like.device)
    z = _ZEROS.get(key)
    if z is None:
        if len(_ZEROS) > 64:
            _ZEROS.clear()
        z = _ZEROS[key] = torch.zeros(shape, dtype=like.dtype, device=like.device)
    return z


def _exact_attend(q, k, v, mask, scale) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def _device_math(kind: str, op: str, compute_kernel_config, *tensors):
    """The ``numerics.Math`` of an SDPA op under ``numerics="device"``, which (as the device kernels) takes
    bfloat16 / bfloat8_b / bfloat4_b operands only (``DEVICE_SDPA_DTYPES``)."""
    from . import numerics
    for t, name in zip(tensors, ("input_tensor_q", "input_tensor_k", "input_tensor_v")):
        require_dtype(t, DEVICE_SDPA_DTYPES, op, f"{name} (numerics='device')")
    return numerics.resolve(kind, compute_kernel_config)


def _device_attend(compute_kernel_config, program_config, q, k, v, attn_mask, s):
    """The decode attention under ``numerics="device"``: ``device_ops.flash_attention`` over K chunks."""
    from . import device_ops
    op = "transformer.scaled_dot_product_attention_decode"
    m = _device_math("scaled_dot_product_attention_decode", op, compute_kernel_config, q, k, v)
    kc = int(program_config.k_chunk_size) if program_config is not None and program_config.k_chunk_size > 0 \
        else _decode_chunk_size(s)
    mask_dtype = None if attn_mask is None else attn_mask.dtype

    def attend(qq, kk, vv, mask, scale):
        return device_ops.flash_attention(qq, kk, vv, mask, mask_dtype, scale, False, kc, m)
    return attend


def _decode_by_position(qg, k, v, pos, b, nh, pnh, dh, s, sc, share_cache, attend) -> torch.Tensor:
    """Causal decode with users at different positions (or skipped, -1): one attention per position."""
    pos = [int(p) for p in pos]
    require(all(-1 <= p < s for p in pos), "transformer.scaled_dot_product_attention_decode",
            f"cur_pos_tensor values must be in [-1, {s}), got {pos}")
    out = qg.new_zeros((1, b, pnh, dh))
    users_at: dict[int, list[int]] = defaultdict(list)
    for u, p in enumerate(pos):
        if p >= 0:
            users_at[p].append(u)
    for p, users in users_at.items():  # one batched attention per distinct position
        idx = slice(None) if len(users) == b else users
        kk, vv = (t[:, :, :p + 1].expand(len(users), -1, -1, -1) if share_cache else t[idx, :, :p + 1]
                  for t in (k, v))
        res = attend(qg[idx], kk, vv, None, sc)
        out[0, idx, :nh] = res.reshape(len(users), nh, dh)
    return out


# -- split_query_key_value_and_split_heads / concatenate_heads ------------------------------------

def split_heads(x: torch.Tensor, kv: torch.Tensor | None, nh: int, nkv: int, dh: int, grouped: bool,
                transpose_k: bool, tied: bool = False, views: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[..., S, W] fused projections → q [B, nh, S, dh], k [B, nkv, dh|S, S|dh], v [B, nkv, S, dh].

    Interleaved inputs hold the sections concatenated (Q heads | K heads | V heads, as ``nn.Linear`` makes
    them); sharded inputs hold them grouped per KV head (Q heads of group g, K_g, V_g).  With ``kv``, ``x`` is
    Q only and ``kv`` holds K | V.  ``tied``: one K/V section that is both K and V.  ``views``: return
    strided views of ``x`` / ``kv`` (where torch can express them) instead of contiguous copies.
    """
    lead, s = x.shape[:-2], x.shape[-2]
    nsec = 1 if tied else 2
    if kv is not None:
        q = x.reshape(*lead, s, nh, dh)
        if grouped:
            kvh = kv.reshape(*lead, s, nkv, nsec, dh)
            k, v = kvh[..., 0, :], kvh[..., nsec - 1, :]
        else:
            kvh = kv.reshape(*lead, s, nsec, nkv, dh)
            k, v = kvh[..., 0, :, :], kvh[..., nsec - 1, :, :]
    elif grouped:
        g = nh // nkv
        x5 = x.reshape(*lead, s, nkv, g + nsec, dh)
        q = x5[..., :g, :].reshape(*lead, s, nh, dh)
        k, v = x5[..., g, :], x5[..., g + nsec - 1, :]
    else:
        q = x[..., :nh * dh].reshape(*lead, s, nh, dh)
        k = x[..., nh * dh:(nh + nkv) * dh].reshape(*lead, s, nkv, dh)
        v = k if tied else x[..., (nh + nkv) * dh:].reshape(*lead, s, nkv, dh)
    q, k, v = (t.movedim(-2, -3) for t in (q, k, v))  # [.., S, H, dh] → [.., H, S, dh]
    if transpose_k:
        k = k.transpose(-1, -2)
    if not views:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    return q, k, v


def _check_out_memory(op: str, t: Tensor, memory_config) -> MemoryConfig:
    out = memory_config or t.memory_config()
    if t.memory_config().is_sharded:
        require(out.is_sharded and out.memory_layout is not TensorMemoryLayout.WIDTH_SHARDED, op,
                "with a sharded input the output memory config must be sharded and not WIDTH_SHARDED")
    else:
        require(not out.is_sharded, op, "Output memory config layout must be INTERLEAVED for an interleaved input")
    return out


def _check_split_qkv(input_tensor, kv_input_tensor=None, *, num_heads, num_kv_heads=None, transpose_key=True,
                     memory_config=None, use_falcon7b_backend=False):
    op = "transformer.split_query_key_value_and_split_heads"
    bsz, s, w = _operand(input_tensor, op, "input_tensor", TM_DTYPES, rank=3)
    require(not use_falcon7b_backend, op, "use_falcon7b_backend=True is not modelled by the reference implementation")
    nkv = num_heads if num_kv_heads is None else num_kv_heads
    require(num_heads > 0 and nkv >= 0, op, f"num_heads must be > 0 and num_kv_heads >= 0, got {num_heads}, {nkv}")
    sharded = input_tensor.memory_config().is_sharded
    if kv_input_tensor is not None:
        kb, ks, kw = _operand(kv_input_tensor, op, "kv_input_tensor", TM_DTYPES, rank=3)
        require(kv_input_tensor.dtype is input_tensor.dtype, op, "KV tensor dtype must be same as Q tensor dtype")
        require(not sharded, op, "KV tensor should not be provided when the input tensor is sharded")
        require(kb == bsz and ks == s, op,
                f"Dimension mismatch: KV tensor [{kb}, {ks}, ..] must match Q tensor [{bsz}, {s}, ..]")
        require(nkv > 0 and w % num_heads == 0 and kw % (2 * nkv) == 0, op,
                f"Query dimension ({w}) must be divisible by num_heads ({num_heads}) and KV dimension ({kw}) by "
                f"2 * num_kv_heads ({2 * nkv})")
        require(kw // (2 * nkv) == w // num_heads, op,
                f"Dimension mismatch: KV head size ({kw // (2 * nkv)}) must be equal to query head size "
                f"({w // num_heads})")
        dh = w // num_heads
    else:
        require(w % (num_heads + 2 * nkv) == 0, op,
                f"input width {w} is not divisible by num_heads + 2 * num_kv_heads ({num_heads + 2 * nkv})")
        dh = w // (num_heads + 2 * nkv)
    require(dh % TILE_SIZE == 0, op,
            f"Invalid head size: {dh}. The head size must be a multiple of the tile width (32)")
    if sharded:
        require(s % TILE_SIZE == 0, op, f"Sharded input needs a tile-aligned sequence length, got {s}")
        require(nkv > 0 and num_heads % nkv == 0, op, "sharded input needs num_heads divisible by num_kv_heads")
    _check_out_memory(op, input_tensor, memory_config)


@checked(_check_split_qkv)
def split_query_key_value_and_split_heads(input_tensor, kv_input_tensor=None, *, num_heads, num_kv_heads=None,
                                          transpose_key=True, memory_config=None, use_falcon7b_backend=False):
    """[B, S, (nh+2nkv)·dh] (or Q [B, S, nh·dh] + KV [B, S, 2nkv·dh]) → q, k, v heads; k is [B, nkv, dh, S]
    when ``transpose_key`` (the default)."""
    x = input_tensor._value
    nkv = num_heads if num_kv_heads is None else num_kv_heads
    kv = None if kv_input_tensor is None else kv_input_tensor._value
    dh = x.shape[-1] // num_heads if kv is not None else x.shape[-1] // (num_heads + 2 * nkv)
    q, k, v = split_heads(x, kv, num_heads, nkv, dh, input_tensor.memory_config().is_sharded, transpose_key)
    return tuple(like(input_tensor, t, layout=Layout.TILE, memory_config=memory_config) for t in (q, k, v))


def check_concat_heads(op: str, input_tensor, memory_config) -> None:
    """Contract of ``concatenate_heads`` / ``nlp_concat_heads`` (shared with experimental.py)."""
    _, _, _, dh = _operand(input_tensor, op, "input_tensor", TM_DTYPES)
    require(dh % TILE_SIZE == 0, op, f"Head size must be a multiple of 32 but was found to be {dh} (the kernel "
                                     "concatenates whole tiles, a padded head would leave padding inside the output)")
    mc = input_tensor.memory_config()
    if mc.is_sharded:
        require(mc.memory_layout is not TensorMemoryLayout.WIDTH_SHARDED, op, "input must not be WIDTH_SHARDED")
        require(memory_config is None or memory_config.memory_layout is not TensorMemoryLayout.HEIGHT_SHARDED, op,
                "Output memory config layout must not be HEIGHT_SHARDED")
    else:
        require(memory_config is None or not memory_config.is_sharded, op,
                "Output memory config layout must be INTERLEAVED for an interleaved input")


def _check_concatenate_heads(input_tensor, *, memory_config=None):
    check_concat_heads("transformer.concatenate_heads", input_tensor, memory_config)


@checked(_check_concatenate_heads)
def concatenate_heads(input_tensor, *, memory_config=None):
    """[B, nh, S, dh] → [B, S, nh·dh]."""
    x = input_tensor._value
    bsz, nh, s, dh = x.shape
    out = x.permute(0, 2, 1, 3).reshape(bsz, s, nh * dh)
    return like(input_tensor, out, layout=Layout.TILE, memory_config=memory_config)
