"""Reference ttnn attention ops (OP_CONTRACT §6) against plain torch goldens, on meta tensors, and their rejections.

Covers ``ttnn.transformer.scaled_dot_product_attention[_decode]``, ``split_query_key_value_and_split_heads``,
``concatenate_heads``, ``ttnn.experimental.nlp_create_qkv_heads`` / ``nlp_concat_heads`` and the host-index
KV-cache ops ``ttnn.update_cache`` / ``ttnn.fill_cache`` (+ ``ttnn.kv_cache`` aliases).
"""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn
from fx2ttnn.runtime.reference.tensor import Tensor

from ..pcc_thresholds import OP_ATOL

DEV = ttnn.open_device(0)
DTYPES = {"float32": ttnn.float32, "bfloat16": ttnn.bfloat16}
sdpa = ttnn.transformer.scaled_dot_product_attention
decode = ttnn.transformer.scaled_dot_product_attention_decode


def rand(*shape: int) -> torch.Tensor:
    """Uniform [-1, 1): attention outputs stay in [-1, 1], where bfloat16 rounding is below OP_ATOL."""
    return torch.rand(*shape) * 2 - 1


def tt(x: torch.Tensor, dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, device=DEV, memory_config=None):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=device, memory_config=memory_config)


def T(*shape: int, dtype=ttnn.bfloat16, **kw):
    return tt(rand(*shape), dtype=dtype, **kw)


def pos_tensor(values, dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT):
    return ttnn.from_torch(torch.tensor(values, dtype=torch.int32), dtype=dtype, layout=layout, device=DEV)


def host(t) -> torch.Tensor:
    return ttnn.to_torch(t).float()


def meta(*shape: int, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT):
    """A device tensor whose values are a torch "meta" tensor (shape-only, as compile-time checking uses)."""
    if dtype.is_float:
        return tt(torch.empty(*shape, device="meta"), dtype=dtype, layout=layout)
    # built directly: from_torch's integer clamp on a meta tensor first imports torch._refs (seconds)
    return Tensor(torch.empty(*shape, dtype=torch.int64, device="meta"), dtype, layout, None, DEV)


def golden_sdpa(q, k, v, mask=None, causal=False, scale=None):
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    scores = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5 if scale is None else scale)
    if causal:
        sq, sk = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(sq, sk, dtype=torch.bool).triu(1), float("-inf"))
    if mask is not None:
        scores = scores + mask
    return scores.softmax(-1) @ v


def golden_decode_user(q_u, k_u, v_u, mask_u=None, scale=None):
    """One user: q_u [nh, dh] against k_u/v_u [nkv, L, dh] (+ mask_u [nh, L]) → [nh, dh]."""
    mask = None if mask_u is None else mask_u[None, :, None, :]
    return golden_sdpa(q_u[None, :, None, :], k_u[None], v_u[None], mask, scale=scale)[0, :, 0]


def close(actual, golden, dtype: str):
    """Max abs error within OP_ATOL (no torch.testing: its first call imports torch.distributed, seconds)."""
    assert actual.shape == golden.shape, f"shape {tuple(actual.shape)} != golden {tuple(golden.shape)}"
    err = (actual - golden).abs().max().item()
    assert err <= OP_ATOL[dtype], f"max abs error {err:.3g} > {OP_ATOL[dtype]} ({dtype})"


# -- scaled_dot_product_attention -------------------------------------------------------------------

SDPA_CASES = {
    "causal_mha": dict(b=2, nqh=2, nkv=2, sq=64, sk=64, causal=True),
    "causal_gqa": dict(b=1, nqh=4, nkv=2, sq=64, sk=64, causal=True),
    "causal_mqa_scale": dict(b=1, nqh=4, nkv=1, sq=32, sk=32, causal=True, scale=0.3),
    "mask_broadcast": dict(b=2, nqh=2, nkv=2, sq=64, sk=64, mask=(1, 1)),
    "mask_full_cross": dict(b=2, nqh=4, nkv=2, sq=32, sk=96, mask=(2, 4)),
    "mask_heads_only": dict(b=2, nqh=2, nkv=1, sq=64, sk=32, mask=(1, 2)),
    "no_mask_noncausal_chunked": dict(b=1, nqh=2, nkv=2, sq=128, sk=64, chunks=(64, 64)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SDPA_CASES)
def test_sdpa_matches_golden(case, dtype):
    c = SDPA_CASES[case]
    dh = 64
    q, k, v = (tt(rand(c["b"], n, s, dh), DTYPES[dtype]) for n, s in
               ((c["nqh"], c["sq"]), (c["nkv"], c["sk"]), (c["nkv"], c["sk"])))
    mask = golden_mask = None
    if "mask" in c:
        m = torch.randn(*c["mask"], c["sq"], c["sk"])
        m[..., -7:] = -1e9  # padded keys
        mask = tt(m, DTYPES[dtype])
        golden_mask = host(mask)
    pc = ttnn.SDPAProgramConfig(q_chunk_size=c["chunks"][0], k_chunk_size=c["chunks"][1]) if "chunks" in c else None
    out = sdpa(q, k, v, attn_mask=mask, is_causal=c.get("causal", False), scale=c.get("scale"), program_config=pc)
    golden = golden_sdpa(host(q), host(k), host(v), golden_mask, c.get("causal", False), c.get("scale"))
    assert out.dtype is DTYPES[dtype] and out.layout is ttnn.TILE_LAYOUT and out.device() is DEV
    assert out.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    close(host(out), golden, dtype)


def test_sdpa_output_concat_heads_and_memory_config():
    q, k, v = T(2, 4, 64, 32), T(2, 2, 64, 32), T(2, 2, 64, 32)
    out = sdpa(q, k, v, output_concat_heads=True, memory_config=ttnn.L1_MEMORY_CONFIG)
    golden = golden_sdpa(host(q), host(k), host(v), causal=True).permute(0, 2, 1, 3).reshape(2, 1, 64, 128)
    assert tuple(out.shape) == (2, 1, 64, 128) and out.memory_config() == ttnn.L1_MEMORY_CONFIG
    close(host(out), golden, "bfloat16")


# -- scaled_dot_product_attention_decode ------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nkv", [1, 2])
@pytest.mark.parametrize("positions", [[0, 17, 63], [5, 5, 40]], ids=["distinct", "repeated"])
def test_decode_causal_cur_pos_list(positions, nkv, dtype):
    b, nh, s, dh = 3, 4, 64, 32
    q, k, v = tt(rand(1, b, nh, dh), DTYPES[dtype]), tt(rand(b, nkv, s, dh), DTYPES[dtype]), tt(rand(b, nkv, s, dh), DTYPES[dtype])
    out = decode(q, k, v, cur_pos=positions)
    assert tuple(out.shape) == (1, b, 32, dh) and out.dtype is DTYPES[dtype] and out.layout is ttnn.TILE_LAYOUT
    res, hq, hk, hv = host(out), host(q), host(k), host(v)
    for u, p in enumerate(positions):
        close(res[0, u, :nh], golden_decode_user(hq[0, u], hk[u, :, :p + 1], hv[u, :, :p + 1]), dtype)
    assert torch.all(res[0, :, nh:] == 0), "padding heads nh..31 are zeros in the reference (unspecified on device)"


def test_decode_cur_pos_tensor_skips_minus_one():
    """An int32 position tensor (ttnn 0.81.1: "Expect cur_pos to be INT32"; uint32 is refused, see
    test_reference_real_ttnn_rules)."""
    b, nh, s, dh = 4, 2, 96, 64
    q, k, v = T(1, b, nh, dh), T(b, 1, s, dh), T(b, 1, s, dh)
    positions = [5, -1, 40, 95]
    out = decode(q, k, v, cur_pos_tensor=pos_tensor(positions, ttnn.int32), scale=0.2)
    res, hq, hk, hv = host(out), host(q), host(k), host(v)
    for u, p in enumerate(positions):
        if p < 0:
            assert torch.all(res[0, u] == 0), "a skipped user's output is zeros in the reference"
        else:
            close(res[0, u, :nh], golden_decode_user(hq[0, u], hk[u, :, :p + 1], hv[u, :, :p + 1], scale=0.2), "bfloat16")


def test_decode_share_cache():
    b, nh, s, dh = 3, 2, 64, 32
    q, k, v = T(1, b, nh, dh), T(1, 1, s, dh), T(1, 1, s, dh)
    positions = [3, 3, 50]
    res, hq, hk, hv = host(decode(q, k, v, cur_pos=positions, share_cache=True)), host(q), host(k), host(v)
    for u, p in enumerate(positions):
        close(res[0, u, :nh], golden_decode_user(hq[0, u], hk[0, :, :p + 1], hv[0, :, :p + 1]), "bfloat16")


@pytest.mark.parametrize("dtype", DTYPES)
def test_decode_non_causal_masked(dtype):
    b, nh, nkv, s, dh = 2, 4, 2, 64, 32
    q, k, v = (tt(rand(*shape), DTYPES[dtype]) for shape in ((1, b, nh, dh), (b, nkv, s, dh), (b, nkv, s, dh)))
    m = torch.randn(1, b, nh, s)
    m[:, 0, :, 20:] = -1e9
    mask = tt(m, DTYPES[dtype])
    res, hq, hk, hv, hm = (host(t) for t in (decode(q, k, v, is_causal=False, attn_mask=mask), q, k, v, mask))
    for u in range(b):
        close(res[0, u, :nh], golden_decode_user(hq[0, u], hk[u], hv[u], hm[0, u]), dtype)


def test_decode_steps_after_cache_updates_match_causal_prefill():
    """Three decode steps (update_cache at the position, then decode) equal causal SDPA over those rows."""
    nh, s, dh, steps = 2, 64, 32, 3
    kx, vx, qx = rand(1, nh, steps, dh), rand(1, nh, steps, dh), rand(1, nh, steps, dh)
    k_cache, v_cache = tt(torch.zeros(1, nh, s, dh)), tt(torch.zeros(1, nh, s, dh))
    outs = []
    for p in range(steps):
        for cache, x in ((k_cache, kx), (v_cache, vx)):
            row = torch.zeros(1, nh, 32, dh)
            row[0, :, 0] = x[0, :, p]
            assert ttnn.update_cache(cache, tt(row), p) is cache
        q = tt(qx[:, :, p].reshape(1, 1, nh, dh))
        outs.append(host(decode(q, k_cache, v_cache, cur_pos=[p]))[0, 0, :nh])
    golden = golden_sdpa(qx, kx, vx, causal=True)[0].transpose(0, 1)  # [steps, nh, dh]
    close(torch.stack(outs), golden, "float32")


# -- head split / concat ----------------------------------------------------------------------------

def golden_split(x, nh, nkv, dh, transpose_k, kv=None):
    """x [B, S, W] → q [B, nh, S, dh], k, v [B, nkv, S, dh] (k transposed); sections concatenated Q | K | V."""
    if kv is not None:
        x = torch.cat([x, kv], -1)
    bsz, s, _ = x.shape
    q = x[..., :nh * dh].reshape(bsz, s, nh, dh).permute(0, 2, 1, 3)
    k = x[..., nh * dh:(nh + nkv) * dh].reshape(bsz, s, nkv, dh).permute(0, 2, 1, 3)
    v = x[..., (nh + nkv) * dh:].reshape(bsz, s, nkv, dh).permute(0, 2, 1, 3)
    return q, k.transpose(-1, -2) if transpose_k else k, v


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("nh,nkv,separate_kv", [(2, None, False), (4, 2, False), (2, None, True), (4, 1, True)])
def test_split_query_key_value_and_split_heads(nh, nkv, separate_kv, transpose):
    bsz, s, dh = 2, 40, 32
    n = nh if nkv is None else nkv
    if separate_kv:
        x, kv = T(bsz, s, nh * dh), T(bsz, s, 2 * n * dh)
        outs = ttnn.transformer.split_query_key_value_and_split_heads(x, kv, num_heads=nh, num_kv_heads=nkv,
                                                                       transpose_key=transpose)
        golden = golden_split(host(x), nh, n, dh, transpose, host(kv))
    else:
        x = T(bsz, s, (nh + 2 * n) * dh)
        outs = ttnn.transformer.split_query_key_value_and_split_heads(x, num_heads=nh, num_kv_heads=nkv,
                                                                       transpose_key=transpose)
        golden = golden_split(host(x), nh, n, dh, transpose)
    for out, g in zip(outs, golden):
        assert out.layout is ttnn.TILE_LAYOUT and out.dtype is ttnn.bfloat16
        assert torch.equal(host(out), g)


def test_concatenate_heads_and_nlp_concat_heads():
    x = T(2, 3, 40, 64)
    g = host(x).permute(0, 2, 1, 3).reshape(2, 40, 192)
    assert torch.equal(host(ttnn.transformer.concatenate_heads(x)), g)
    assert torch.equal(host(ttnn.experimental.nlp_concat_heads(x)), g.reshape(2, 1, 40, 192))


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("nh,nkv", [(2, None), (4, 2), (4, 1)])
def test_nlp_create_qkv_heads_fused(nh, nkv, transpose):
    bsz, s, dh = 2, 64, 32
    n = nh if nkv is None else nkv
    x = T(bsz, 1, s, (nh + 2 * n) * dh)
    outs = ttnn.experimental.nlp_create_qkv_heads(x, num_heads=nh, num_kv_heads=nkv, transpose_k_heads=transpose)
    for out, g in zip(outs, golden_split(host(x)[:, 0], nh, n, dh, transpose)):
        assert torch.equal(host(out), g)


def test_nlp_create_qkv_heads_separate_kv_and_q_only():
    bsz, s, nh, dh = 1, 32, 2, 64
    x, kv = T(bsz, 1, s, nh * dh), T(bsz, 1, s, 2 * nh * dh)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(x, kv, num_heads=nh, transpose_k_heads=False)
    for out, g in zip((q, k, v), golden_split(host(x)[:, 0], nh, nh, dh, False, host(kv)[:, 0])):
        assert torch.equal(host(out), g)
    # num_kv_heads=0: a single section split into Q heads (tt-metal's cross-attention pattern)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(x, num_heads=nh, num_kv_heads=0, transpose_k_heads=False)
    assert torch.equal(host(q), host(x)[:, 0].reshape(bsz, s, nh, dh).permute(0, 2, 1, 3))
    assert tuple(k.shape) == tuple(v.shape) == (bsz, 0, s, dh)
    assert torch.equal(host(ttnn.experimental.nlp_concat_heads(q)), host(x))


def test_nlp_create_qkv_heads_kv_tied_and_output_tensors():
    bsz, s, nh, dh = 1, 32, 2, 32
    x = T(bsz, 1, s, (nh + 1) * dh)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(x, num_heads=nh, num_kv_heads=1, kv_tied=True,
                                                     transpose_k_heads=False)
    assert torch.equal(host(k), host(v)) and torch.equal(host(k), host(x)[:, :, :, nh * dh:])
    outs = [T(bsz, nh, s, dh), T(bsz, nh, dh, s), T(bsz, nh, s, dh)]
    x = T(bsz, 1, s, 3 * nh * dh)
    got = ttnn.experimental.nlp_create_qkv_heads(x, num_heads=nh, output_tensors=outs)
    assert all(a is b for a, b in zip(got, outs))
    for out, g in zip(outs, golden_split(host(x)[:, 0], nh, nh, dh, True)):
        assert torch.equal(host(out), g)


def test_nlp_create_qkv_heads_sharded_input_is_grouped_per_kv_head():
    bsz, s, nh, nkv, dh = 1, 32, 4, 2, 32
    x = T(bsz, 1, s, (nh + 2 * nkv) * dh, memory_config=ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(x, num_heads=nh, num_kv_heads=nkv, transpose_k_heads=False)
    groups = host(x)[:, 0].reshape(bsz, s, nkv, nh // nkv + 2, dh)  # per KV head g: its Q heads, K_g, V_g
    assert torch.equal(host(q), groups[..., :2, :].reshape(bsz, s, nh, dh).permute(0, 2, 1, 3))
    assert torch.equal(host(k), groups[..., 2, :].permute(0, 2, 1, 3))
    assert torch.equal(host(v), groups[..., 3, :].permute(0, 2, 1, 3))


# -- update_cache / fill_cache ----------------------------------------------------------------------

@pytest.mark.parametrize("alias", [False, True])
def test_update_cache(alias):
    cache0 = rand(3, 2, 64, 32)
    cache, x = tt(cache0.clone(), ttnn.bfloat16), tt(rand(1, 2, 32, 32))  # fp32 input into a bf16 cache
    fn = ttnn.kv_cache.update_cache_for_token_ if alias else ttnn.update_cache
    assert fn(cache, x, 9, 4) is cache
    expected = host(tt(cache0, ttnn.bfloat16))
    expected[:, :, 9, :] = host(x)[0, :, 4:7, :].transpose(0, 1).to(torch.bfloat16).float()
    assert torch.equal(host(cache), expected)


@pytest.mark.parametrize("alias", [False, True])
def test_fill_cache(alias):
    cache0 = rand(2, 2, 128, 32)
    cache, x = tt(cache0.clone()), tt(rand(1, 2, 64, 32))
    fill = (lambda c, i, b, u: ttnn.kv_cache.fill_cache_for_user_(c, i, b, u)) if alias else \
        (lambda c, i, b, u: ttnn.fill_cache(c, i, b, update_idx=u))
    assert fill(cache, x, 1, 32) is cache
    expected = cache0.clone()
    expected[1, :, 32:96] = host(x)[0]
    assert torch.equal(host(cache), expected)


def test_fill_cache_partial_tile_clobbers_rest_of_tile():
    cache0 = rand(1, 1, 96, 32)
    cache, x = tt(cache0.clone()), tt(rand(1, 1, 20, 32))
    ttnn.fill_cache(cache, x, 0, update_idx=32)
    expected = cache0.clone()
    expected[0, :, 32:52] = host(x)[0]
    expected[0, :, 52:64] = 0  # the device writes whole tiles: rows up to the tile boundary take the padding
    assert torch.equal(host(cache), expected)


# -- meta tensors: shape-only evaluation ------------------------------------------------------------

def test_meta_evaluation_gives_output_shapes():
    tr, ex = ttnn.transformer, ttnn.experimental
    q, k = meta(2, 4, 64, 32), meta(2, 2, 64, 32)
    assert tuple(sdpa(q, k, k).shape) == (2, 4, 64, 32)
    assert tuple(sdpa(q, k, k, is_causal=False, attn_mask=meta(1, 1, 64, 64), output_concat_heads=True).shape) == (2, 1, 64, 128)
    qd, cache = meta(1, 3, 4, 32), meta(3, 2, 64, 32)
    out = decode(qd, cache, cache, cur_pos_tensor=meta(3, dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT))
    assert tuple(out.shape) == (1, 3, 32, 32) and out._value.device.type == "meta"
    assert tuple(decode(qd, cache, cache, cur_pos=[1, 2, 3]).shape) == (1, 3, 32, 32)
    assert tuple(decode(qd, cache, cache, is_causal=False, attn_mask=meta(1, 3, 4, 64)).shape) == (1, 3, 32, 32)
    shapes = lambda ts: [tuple(t.shape) for t in ts]  # noqa: E731
    assert shapes(tr.split_query_key_value_and_split_heads(meta(2, 40, 256), num_heads=4, num_kv_heads=2)) == \
        [(2, 4, 40, 32), (2, 2, 32, 40), (2, 2, 40, 32)]
    assert tuple(tr.concatenate_heads(meta(2, 4, 40, 32)).shape) == (2, 40, 128)
    assert shapes(ex.nlp_create_qkv_heads(meta(2, 1, 64, 192), num_heads=2, transpose_k_heads=False)) == \
        [(2, 2, 64, 32), (2, 2, 64, 32), (2, 2, 64, 32)]
    assert tuple(ex.nlp_concat_heads(meta(2, 4, 64, 32)).shape) == (2, 1, 64, 128)
    c = meta(2, 2, 64, 32)
    assert ttnn.update_cache(c, meta(1, 2, 32, 32), 5) is c
    assert ttnn.fill_cache(c, meta(1, 2, 32, 32), 1, update_idx=32) is c
    assert ttnn.kv_cache.fill_cache_for_user_(c, meta(1, 2, 32, 32), 0, 0) is c


def test_ops_expose_check_and_unchecked_kernel():
    for fn in (sdpa, decode, ttnn.transformer.split_query_key_value_and_split_heads,
               ttnn.transformer.concatenate_heads, ttnn.experimental.nlp_create_qkv_heads,
               ttnn.experimental.nlp_concat_heads, ttnn.update_cache, ttnn.fill_cache,
               ttnn.kv_cache.update_cache_for_token_, ttnn.kv_cache.fill_cache_for_user_):
        assert callable(fn.check) and callable(fn.unchecked)
    assert set(ttnn.kv_cache.__all__) == {"update_cache", "fill_cache"}


# -- contract rejections ----------------------------------------------------------------------------

def _pc(q=32, k=32):
    return ttnn.SDPAProgramConfig(q_chunk_size=q, k_chunk_size=k)


def _qkv(q=(1, 2, 64, 32), k=(1, 2, 64, 32), v=None, **kw):
    return T(*q, **kw), T(*k), T(*(v or k))


def _dec(q=(1, 2, 4, 32), k=(2, 1, 64, 32), qdtype=ttnn.bfloat16, **kw):
    return T(*q, dtype=qdtype, **kw), T(*k), T(*k)


SPLIT = ttnn.transformer.split_query_key_value_and_split_heads
CREATE = ttnn.experimental.nlp_create_qkv_heads
RM = dict(layout=ttnn.ROW_MAJOR_LAYOUT)
HOST = dict(device=None)
L1 = ttnn.L1_MEMORY_CONFIG
REJECTIONS = {
    # scaled_dot_product_attention
    "sdpa_q_row_major": (lambda: sdpa(*_qkv(**RM)), "input_tensor_q must be in TILE layout"),
    "sdpa_q_on_host": (lambda: sdpa(*_qkv(**HOST)), "input_tensor_q must be on device"),
    "sdpa_q_int32": (lambda: sdpa(*_qkv(dtype=ttnn.int32)), "input_tensor_q dtype int32 is not supported"),
    "sdpa_q_rank3": (lambda: sdpa(*_qkv(q=(2, 64, 32))), "input_tensor_q must have rank 4"),
    "sdpa_k_v_shapes": (lambda: sdpa(*_qkv(v=(1, 2, 32, 32)), is_causal=False), "K and V must have the same shape"),
    "sdpa_batch": (lambda: sdpa(*_qkv(k=(2, 2, 64, 32))), "K and V batch must match Q batch"),
    "sdpa_head_dim": (lambda: sdpa(*_qkv(k=(1, 2, 64, 64))), "K and V hidden dim must match Q"),
    "sdpa_gqa_ratio": (lambda: sdpa(*_qkv(q=(1, 3, 64, 32))), "divisible by K num_heads"),
    "sdpa_head_dim_padded": (lambda: sdpa(*_qkv(q=(1, 2, 64, 48), k=(1, 2, 64, 48))), "head_dim 48 must be a multiple of 32"),
    "sdpa_causal_with_mask": (lambda: sdpa(*_qkv(), attn_mask=T(1, 1, 64, 64)),
                              "attn_mask must not be provided when is_causal=True"),
    "sdpa_causal_lengths": (lambda: sdpa(*_qkv(k=(1, 2, 32, 32))),
                            "Causal SDPA requires Q and K to have the same sequence length"),
    "sdpa_mask_row_major": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(1, 1, 64, 64, **RM)),
                            "attn_mask must be in TILE layout"),
    "sdpa_mask_on_host": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(1, 1, 64, 64, **HOST)),
                          "attn_mask must be on device"),
    "sdpa_mask_in_l1": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(1, 1, 64, 64, memory_config=L1)),
                        "attn_mask must be in DRAM"),
    "sdpa_mask_batch": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(3, 1, 64, 64)), "Mask batch dim"),
    "sdpa_mask_heads": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(1, 3, 64, 64)), "Mask num_heads"),
    "sdpa_mask_length": (lambda: sdpa(*_qkv(), is_causal=False, attn_mask=T(1, 1, 64, 32)),
                         "Mask sequence length must match Q/K sequence length"),
    "sdpa_mask_chunk": (lambda: sdpa(*_qkv(q=(1, 2, 48, 32), k=(1, 2, 48, 32)), is_causal=False,
                                     attn_mask=T(1, 1, 48, 48)), "Mask sequence length must be multiple of chunk size"),
    "sdpa_q_chunk": (lambda: sdpa(*_qkv(q=(1, 2, 48, 32), k=(1, 2, 48, 32))), "Q sequence length 48 must be multiple of chunk size"),
    "sdpa_k_chunk": (lambda: sdpa(*_qkv(k=(1, 2, 32, 32)), is_causal=False, program_config=_pc(32, 64)),
                     "K sequence length 32 must be multiple of chunk size"),
    "sdpa_q_chunk_size": (lambda: sdpa(*_qkv(), program_config=_pc(48, 32)), "q_chunk_size must be a positive multiple of 32"),
    "sdpa_k_chunk_zero": (lambda: sdpa(*_qkv(), program_config=_pc(32, 0)), "k_chunk_size must be a positive multiple of 32"),
    "sdpa_k_chunk_pow2": (lambda: sdpa(*_qkv(q=(1, 2, 96, 32), k=(1, 2, 96, 32)), program_config=_pc(32, 96)),
                          "User provided k_chunk_size must be power of 2"),
    "sdpa_sliding_window": (lambda: sdpa(*_qkv(), sliding_window_size=8), "sliding_window_size is not modelled"),
    "sdpa_attention_sink": (lambda: sdpa(*_qkv(), attention_sink=T(1, 2, 1, 1)), "attention_sink is not modelled"),
    # scaled_dot_product_attention_decode
    "dec_q_batch": (lambda: decode(*_dec(q=(2, 2, 4, 32)), cur_pos=[1, 1]), "Q tensor batch size must be 1"),
    "dec_k_batch": (lambda: decode(*_dec(k=(3, 1, 64, 32)), cur_pos=[1, 1]), "K tensor batch size (3) must equal B (2)"),
    "dec_head_dim": (lambda: decode(*_dec(q=(1, 2, 4, 48), k=(2, 1, 64, 48)), cur_pos=[1, 1]),
                     "head dim 48 must be a multiple of 32"),
    "dec_k_head_dim": (lambda: decode(*_dec(k=(2, 1, 64, 64)), cur_pos=[1, 1]), "K tensor hidden dimension (64)"),
    "dec_gqa_ratio": (lambda: decode(*_dec(q=(1, 2, 3, 32), k=(2, 2, 64, 32)), cur_pos=[1, 1]),
                      "GQA expects Q to have a multiple of K heads"),
    "dec_gqa_bf8": (lambda: decode(*_dec(k=(2, 2, 64, 32), qdtype=ttnn.bfloat8_b), cur_pos=[1, 1]),
                    "GQA expects BFLOAT16 input tensor"),
    "dec_q_row_major": (lambda: decode(*_dec(**RM), cur_pos=[1, 1]), "input_tensor_q must be in TILE layout"),
    "dec_k_on_host": (lambda: decode(T(1, 2, 4, 32), T(2, 1, 64, 32, **HOST), T(2, 1, 64, 32), cur_pos=[1, 1]),
                      "input_tensor_k must be on device"),
    "dec_q_in_l1": (lambda: decode(*_dec(memory_config=L1), cur_pos=[1, 1]), "Q tensor buffer type must be DRAM"),
    "dec_q_width_sharded": (lambda: decode(*_dec(memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG), cur_pos=[1, 1]),
                            "must be HEIGHT_SHARDED when sharded"),
    "dec_kv_in_l1": (lambda: decode(T(1, 2, 4, 32), T(2, 1, 64, 32, memory_config=L1), T(2, 1, 64, 32), cur_pos=[1, 1]),
                     "input_tensor_k (the KV cache) must be DRAM interleaved"),
    "dec_no_pos": (lambda: decode(*_dec()), "exactly one of cur_pos"),
    "dec_both_pos": (lambda: decode(*_dec(), cur_pos=[1, 1], cur_pos_tensor=pos_tensor([1, 1])), "exactly one of cur_pos"),
    "dec_pos_length": (lambda: decode(*_dec(), cur_pos=[1]), "cur_pos must be a list of 2 positions"),
    "dec_pos_minus_one_list": (lambda: decode(*_dec(), cur_pos=[1, -1]), "to skip a user with -1 use cur_pos_tensor"),
    "dec_pos_beyond_cache": (lambda: decode(*_dec(), cur_pos=[1, 64]), "cur_pos values must be ints in [0, 64)"),
    "dec_pos_tensor_dtype": (lambda: decode(*_dec(), cur_pos_tensor=tt(torch.tensor([1.0, 2.0]), ttnn.bfloat16, **RM)),
                             "Expect cur_pos to be INT32, got bfloat16"),
    "dec_pos_tensor_shape": (lambda: decode(*_dec(), cur_pos_tensor=pos_tensor([1, 2, 3])), "cur_pos_tensor must be [2]"),
    "dec_pos_tensor_tile": (lambda: decode(*_dec(), cur_pos_tensor=pos_tensor([1, 2], layout=ttnn.TILE_LAYOUT)),
                            "Expect cur_pos to be ROW_MAJOR, got TILE"),
    "dec_pos_tensor_on_host": (lambda: decode(*_dec(), cur_pos_tensor=ttnn.from_torch(torch.tensor([1, 2], dtype=torch.int32))),
                               "cur_pos_tensor must be on device"),
    "dec_pos_tensor_value": (lambda: decode(*_dec(), cur_pos_tensor=pos_tensor([1, 64])),
                             "cur_pos_tensor values must be in [-1, 64)"),
    "dec_causal_with_mask": (lambda: decode(*_dec(), cur_pos=[1, 1], attn_mask=T(1, 2, 4, 64)),
                             "attn_mask must not be provided when is_causal=True"),
    "dec_noncausal_no_mask": (lambda: decode(*_dec(), is_causal=False), "non-causal decode needs attn_mask [1, 2, 4, 64]"),
    "dec_noncausal_mask_shape": (lambda: decode(*_dec(), is_causal=False, attn_mask=T(1, 2, 1, 64)),
                                 "attn_mask must be [1, 2, 4, 64]"),
    "dec_noncausal_mask_length": (lambda: decode(*_dec(), is_causal=False, attn_mask=T(1, 2, 4, 32)),
                                  "Expect same sequence length in mask as in K"),
    "dec_noncausal_mask_row_major": (lambda: decode(*_dec(), is_causal=False, attn_mask=T(1, 2, 4, 64, **RM)),
                                     "attn_mask must be in TILE layout"),
    "dec_noncausal_with_pos": (lambda: decode(*_dec(), is_causal=False, attn_mask=T(1, 2, 4, 64), cur_pos=[1, 1]),
                               "apply only with is_causal=True"),
    "dec_noncausal_mask_chunk": (lambda: decode(*_dec(), is_causal=False, attn_mask=T(1, 2, 4, 64),
                                                program_config=_pc(32, 128)),
                                 "Mask sequence length must be multiple of chunk size"),
    "dec_causal_k_chunk": (lambda: decode(*_dec(), cur_pos=[1, 1], program_config=_pc(32, 128)),
                           "K sequence length must be multiple of chunk size"),
    "dec_cache_length": (lambda: decode(*_dec(k=(2, 1, 48, 32)), cur_pos=[1, 1]), "Chunk size must be multiple of 32"),
    "dec_k_chunk_pow2": (lambda: decode(*_dec(), cur_pos=[1, 1], program_config=_pc(32, 96)),
                         "User provided k_chunk_size must be power of 2"),
    "dec_k_chunk_16": (lambda: decode(*_dec(), cur_pos=[1, 1], program_config=_pc(32, 16)),
                       "User provided k_chunk_size must be multiple of 32"),
    "dec_share_cache_batch": (lambda: decode(*_dec(), cur_pos=[1, 1], share_cache=True),
                              "Share cache expects K to have batch size of 1"),
    "dec_sliding_window": (lambda: decode(*_dec(), cur_pos=[1, 1], sliding_window_size=16), "sliding_window_size is not modelled"),
    "dec_gqa_sharded_out": (lambda: decode(*_dec(k=(2, 2, 64, 32)), cur_pos=[1, 1],
                                           memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
                            "Sharded output not supported for GQA"),
    # split_query_key_value_and_split_heads / concatenate_heads
    "split_rank": (lambda: SPLIT(T(1, 2, 32, 192), num_heads=2), "input_tensor must have rank 3"),
    "split_row_major": (lambda: SPLIT(T(2, 32, 192, **RM), num_heads=2), "input_tensor must be in TILE layout"),
    "split_on_host": (lambda: SPLIT(T(2, 32, 192, **HOST), num_heads=2), "input_tensor must be on device"),
    "split_width": (lambda: SPLIT(T(2, 32, 160), num_heads=2), "input width 160 is not divisible"),
    "split_head_size": (lambda: SPLIT(T(2, 32, 96), num_heads=2), "Invalid head size: 16"),
    "split_kv_batch": (lambda: SPLIT(T(2, 32, 64), T(1, 32, 128), num_heads=2), "Dimension mismatch"),
    "split_kv_head_size": (lambda: SPLIT(T(2, 32, 64), T(2, 32, 256), num_heads=2), "KV head size (64)"),
    "split_kv_dtype": (lambda: SPLIT(T(2, 32, 64), T(2, 32, 128, dtype=ttnn.float32), num_heads=2),
                       "KV tensor dtype must be same as Q tensor dtype"),
    "split_falcon7b": (lambda: SPLIT(T(2, 32, 192), num_heads=2, num_kv_heads=2, use_falcon7b_backend=True),
                       "use_falcon7b_backend=True is not modelled"),
    "split_sharded_out": (lambda: SPLIT(T(2, 32, 192), num_heads=2, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
                          "must be INTERLEAVED"),
    "concat_rank": (lambda: ttnn.transformer.concatenate_heads(T(2, 32, 64)), "input_tensor must have rank 4"),
    "concat_head_size": (lambda: ttnn.transformer.concatenate_heads(T(1, 2, 32, 48)), "Head size must be a multiple of 32"),
    "concat_row_major": (lambda: ttnn.transformer.concatenate_heads(T(1, 2, 32, 64, **RM)), "must be in TILE layout"),
    "concat_int32": (lambda: ttnn.transformer.concatenate_heads(T(1, 2, 32, 64, dtype=ttnn.int32)),
                     "dtype int32 is not supported"),
    # nlp_create_qkv_heads / nlp_concat_heads
    "create_rank3": (lambda: CREATE(T(1, 32, 192), num_heads=2), "input must be 4D [B, 1, S, width]"),
    "create_dim1": (lambda: CREATE(T(1, 2, 32, 192), num_heads=2), "input must be 4D [B, 1, S, width]"),
    "create_row_major": (lambda: CREATE(T(1, 1, 32, 192, **RM), num_heads=2), "input must be in TILE layout"),
    "create_bf4": (lambda: CREATE(T(1, 1, 32, 192, dtype=ttnn.bfloat4_b), num_heads=2), "dtype bfloat4_b is not supported"),
    "create_width": (lambda: CREATE(T(1, 1, 32, 160), num_heads=2), "Unsupported input shape"),
    "create_head_dim": (lambda: CREATE(T(1, 1, 32, 96), num_heads=2), "head_dim 16 must be a multiple of 32"),
    "create_kv_dtype": (lambda: CREATE(T(1, 1, 32, 64), T(1, 1, 32, 128, dtype=ttnn.float32), num_heads=2),
                        "KV tensor dtype must be same as Q tensor dtype"),
    "create_kv_seq": (lambda: CREATE(T(1, 1, 32, 64), T(1, 1, 64, 128), num_heads=2), "KV tensor batch and seq_len"),
    "create_kv_head_dim": (lambda: CREATE(T(1, 1, 32, 64), T(1, 1, 32, 256), num_heads=2),
                           "Head dims must be the same for Q and K, V"),
    "create_kv_zero_heads": (lambda: CREATE(T(1, 1, 32, 64), T(1, 1, 32, 128), num_heads=2, num_kv_heads=0),
                             "Unsupported input shape"),
    "create_sharded_transpose": (lambda: CREATE(T(1, 1, 32, 192, memory_config=ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG),
                                                num_heads=2), "Transpose K heads must be false"),
    "create_sharded_out": (lambda: CREATE(T(1, 1, 32, 192), num_heads=2, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
                           "must be INTERLEAVED"),
    "create_output_shape": (lambda: CREATE(T(1, 1, 32, 192), num_heads=2, transpose_k_heads=False,
                                           output_tensors=[T(1, 2, 32, 32), T(1, 2, 32, 32), T(1, 2, 64, 32)]),
                            "output_tensors[v] must be [1, 2, 32, 32]"),
    "nlp_concat_head_dim": (lambda: ttnn.experimental.nlp_concat_heads(T(1, 2, 32, 48)), "Head size must be a multiple of 32"),
    "nlp_concat_row_major": (lambda: ttnn.experimental.nlp_concat_heads(T(1, 2, 32, 64, **RM)), "must be in TILE layout"),
    "nlp_concat_sharded_out": (lambda: ttnn.experimental.nlp_concat_heads(
        T(1, 2, 32, 64), memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG), "must be INTERLEAVED"),
    # update_cache / fill_cache
    "update_input_row_major": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 2, 32, 32, **RM), 0), "input must be in TILE layout"),
    "update_cache_on_host": (lambda: ttnn.update_cache(T(2, 2, 64, 32, **HOST), T(1, 2, 32, 32), 0), "cache must be on device"),
    "update_input_batch": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(2, 2, 32, 32), 0), "Input tensor batch size must be 1"),
    "update_heads": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 3, 32, 32), 0), "Input tensor heads (3)"),
    "update_width": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 2, 32, 64), 0), "Input tensor width (64)"),
    "update_index": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 2, 32, 32), 64), "update_index 64 out of range"),
    "update_batch_offset": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 2, 32, 32), 0, 31),
                            "Batch offset (31) + cache tensor batch size (2) must be <= 32"),
    "update_users": (lambda: ttnn.update_cache(T(2, 2, 64, 32), T(1, 2, 1, 32), 0), "holds 1 users"),
    "update_sharded_cache": (lambda: ttnn.update_cache(T(2, 2, 64, 32, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
                                                       T(1, 2, 32, 32), 0), "the cache must be interleaved"),
    "update_cache_bf4": (lambda: ttnn.update_cache(T(2, 2, 64, 32, dtype=ttnn.bfloat4_b), T(1, 2, 32, 32), 0),
                         "cache dtype bfloat4_b is not supported"),
    "update_alias": (lambda: ttnn.kv_cache.update_cache_for_token_(T(2, 2, 64, 32), T(1, 2, 32, 32), 70, 0),
                     "update_index 70 out of range"),
    "fill_dtype": (lambda: ttnn.fill_cache(T(2, 2, 64, 32), T(1, 2, 32, 32, dtype=ttnn.float32), 0),
                   "Input and cache tensors must have same dtype"),
    "fill_batch_idx": (lambda: ttnn.fill_cache(T(2, 2, 64, 32), T(1, 2, 32, 32), 2), "Batch index (2) must be less than"),
    "fill_update_idx": (lambda: ttnn.fill_cache(T(2, 2, 64, 32), T(1, 2, 32, 32), 0, update_idx=16),
                        "must be a multiple of TILE_HEIGHT (32)"),
    "fill_overflow": (lambda: ttnn.fill_cache(T(2, 2, 64, 32), T(1, 2, 64, 32), 0, update_idx=32),
                      "exceeds the cache length (64)"),
    "fill_input_batch": (lambda: ttnn.fill_cache(T(2, 2, 64, 32), T(2, 2, 32, 32), 0), "Input tensor batch size must be 1"),
    "fill_alias": (lambda: ttnn.kv_cache.fill_cache_for_user_(T(2, 2, 64, 32), T(1, 2, 32, 32), 5, 0),
                   "Batch index (5) must be less than"),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_contract_rejections(case):
    call, message = REJECTIONS[case]
    with pytest.raises(TTNNContractError, match=None) as err:
        call()
    assert message in str(err.value), f"{err.value!r} does not mention {message!r}"
