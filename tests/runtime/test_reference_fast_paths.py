"""The reference kernels' fast paths give what the general paths give, and stay safe.

* ``new_tensor`` (the kernels' output constructor) accounts device bytes exactly as ``Tensor(...)``;
* data-movement ops (reshape, slice, permute, head splits) return views of their input, and the in-place
  cache ops copy a shared buffer before writing (copy-on-write): no tensor observes another's writes;
* ``scaled_dot_product_attention_decode`` with every user at one position (one attention call) equals the
  general per-position path bit for bit; ``paged_update_cache`` with one position equals its per-user loop;
* ``linear`` through torch's fused linear equals addmm over the flattened rows bit for bit; a decode-shaped
  linear (few rows, large weight) takes the split-K matrix-vector path, equal to its formula bit for bit and
  to addmm up to float32 summation order, and nothing else takes it;
* values cached on a tensor (decode positions, flattened gammas) follow its value changes.
"""
from __future__ import annotations

import importlib
import math

import pytest
import torch

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn
from fx2ttnn.runtime.reference import tensor as rt
from fx2ttnn.runtime.reference.tensor import Tensor, new_tensor, padded, quantize
from fx2ttnn.runtime.reference.transformer import _decode_by_position, _exact_attend

TILE, RM = ttnn.TILE_LAYOUT, ttnn.ROW_MAJOR_LAYOUT
DTYPES = {"float32": ttnn.float32, "bfloat16": ttnn.bfloat16, "bfloat8_b": ttnn.bfloat8_b}
decode = ttnn.transformer.scaled_dot_product_attention_decode.unchecked
rm = importlib.import_module("fx2ttnn.runtime.reference.matmul")  # the module (the package exports ``matmul``)
paged_update = ttnn.experimental.paged_update_cache.unchecked
create_heads = ttnn.experimental.nlp_create_qkv_heads.unchecked


def up(x: torch.Tensor, dev, dtype=ttnn.float32, layout=TILE, mc=None) -> ttnn.Tensor:
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=dev, memory_config=mc)


def vals(t: ttnn.Tensor) -> torch.Tensor:
    return t._value.clone()


def height_sharded(shape, cores):
    return ttnn.create_sharded_memory_config(shape, ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.HEIGHT)


def positions(dev, values) -> ttnn.Tensor:
    return ttnn.from_torch(torch.tensor(values, dtype=torch.int32), dtype=ttnn.int32, device=dev)


# ---------------------------------------------------------------------------------------------
# Tensor construction and device accounting


SHAPES = [(), (5,), (1, 768), (3, 40), (2, 1, 12, 64), (1, 1, 33, 65), (0, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("layout", [TILE, RM])
@pytest.mark.parametrize("dtype", [ttnn.float32, ttnn.bfloat16, ttnn.bfloat8_b, ttnn.bfloat4_b, ttnn.int32, ttnn.uint8])
def test_new_tensor_accounts_like_the_constructor(shape, layout, dtype):
    a, b = ttnn.open_device(0), ttnn.open_device(1)
    value = torch.zeros(shape)
    want = int(math.prod(padded(tuple(shape), layout)) * dtype.itemsize)
    assert rt.device_nbytes(value.shape, layout, dtype) == want
    assert rt.device_nbytes(tuple(shape), layout, dtype) == want  # the cache keys compare as tuples
    t1 = Tensor(value, dtype, layout, None, a)
    t2 = new_tensor(value, dtype, layout, None, b)
    for f in ("dtype", "layout", "_nbytes", "_device"):
        assert (getattr(t1, f) is a if f == "_device" else getattr(t1, f)) == \
            (getattr(t2, f) is b if f == "_device" else getattr(t2, f))
    assert t1._nbytes == want and t1.memory_config() == t2.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    assert a.allocated_bytes == b.allocated_bytes == want and a.peak_bytes == b.peak_bytes == want
    del t1, t2
    assert a.allocated_bytes == b.allocated_bytes == 0 and a.peak_bytes == b.peak_bytes == want


def test_new_tensor_host_and_peak_tracking(dev):
    host = new_tensor(torch.zeros(4, 4), ttnn.float32, TILE, ttnn.L1_MEMORY_CONFIG, None)
    assert host._nbytes == 0 and host.memory_config() is None and host.storage_type() == "HOST"
    assert dev.allocated_bytes == 0
    t1 = new_tensor(torch.zeros(32, 32), ttnn.float32, TILE, ttnn.L1_MEMORY_CONFIG, dev)
    assert t1.memory_config() == ttnn.L1_MEMORY_CONFIG
    t2 = new_tensor(torch.zeros(64, 32), ttnn.bfloat16, TILE, None, dev)
    assert dev.allocated_bytes == dev.peak_bytes == 32 * 32 * 4 + 64 * 32 * 2
    ttnn.deallocate(t1)
    assert dev.allocated_bytes == 64 * 32 * 2 and dev.peak_bytes == 32 * 32 * 4 + 64 * 32 * 2
    del t2
    assert dev.allocated_bytes == 0


def test_kernel_outputs_account_bytes_like_before(dev):
    """Every op output counts its padded bytes, views included; freeing them returns the device to zero."""
    x = up(torch.randn(1, 1, 12, 192), dev, mc=height_sharded((1, 1, 32, 192), 1))
    base = dev.allocated_bytes
    q, k, v = create_heads(x, num_heads=1, num_kv_heads=1, transpose_k_heads=False)
    r = ttnn.reshape.unchecked(q, [1, 1, 768])
    s = ttnn.slice.unchecked(x, [0, 0, 0, 0], [1, 1, 12, 64])
    per = 32 * 64 * 4
    assert dev.allocated_bytes == base + 3 * per + 32 * 768 * 4 + per
    del q, k, v, r, s
    assert dev.allocated_bytes == base


# ---------------------------------------------------------------------------------------------
# views and copy-on-write


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_views_of_a_cache_do_not_see_later_writes(dev, dtype):
    dt = DTYPES[dtype]
    cache = up(torch.zeros(1, 2, 64, 32), dev, dt)
    row = up(torch.ones(1, 1, 2, 32), dev, dt, mc=height_sharded((1, 1, 32, 32), 1))
    views = [ttnn.reshape.unchecked(cache, [1, 2, 2048]), ttnn.slice.unchecked(cache, [0, 0, 0, 0], [1, 2, 8, 32]),
             ttnn.permute.unchecked(cache, (0, 2, 1, 3)), ttnn.transpose.unchecked(cache, 1, 2)]
    assert all(torch.equal(vals(t), torch.zeros_like(vals(t))) for t in views)
    paged_update(cache, row, update_idxs_tensor=positions(dev, [3]))
    assert torch.equal(vals(cache)[0, :, 3], torch.ones(2, 32)) and float(vals(cache).sum()) == 64
    for t in views:  # the views keep the values they were made with
        assert float(vals(t).abs().sum()) == 0


def test_writes_into_a_view_do_not_reach_its_source(dev):
    src = up(torch.zeros(1, 2, 64, 32), dev)
    view = ttnn.reshape.unchecked(src, [1, 2, 64, 32])  # a new tensor sharing src's buffer
    row = up(torch.ones(1, 1, 2, 32), dev, mc=height_sharded((1, 1, 32, 32), 1))
    paged_update(view, row, update_idxs_tensor=positions(dev, [5]))
    ttnn.update_cache.unchecked(view, up(torch.ones(1, 2, 32, 32), dev), 7)
    ttnn.fill_cache.unchecked(view, up(torch.ones(1, 2, 32, 32), dev), 0, update_idx=32)
    assert float(vals(src).abs().sum()) == 0
    assert float(vals(view)[0, :, 5].sum()) == 64 and float(vals(view)[0, :, 7].sum()) == 64
    assert float(vals(view)[0, :, 32:64].sum()) == 2 * 32 * 32


def test_head_split_views_are_independent_of_later_cache_writes(dev):
    """q/k/v of nlp_create_qkv_heads are views of the fused projection; writing k/v into caches copies them."""
    x = torch.randn(1, 1, 12, 192)
    xt = up(x, dev, mc=height_sharded((1, 1, 32, 192), 1))
    q, k, v = create_heads(xt, num_heads=1, num_kv_heads=1, transpose_k_heads=False)
    assert torch.equal(vals(q), x[..., :64]) and torch.equal(vals(k), x[..., 64:128])
    assert torch.equal(vals(v), x[..., 128:])
    kc, vc = up(torch.zeros(1, 12, 64, 64), dev), up(torch.zeros(1, 12, 64, 64), dev)
    paged_update(kc, k, update_idxs_tensor=positions(dev, [2]))
    paged_update(vc, v, update_idxs_tensor=positions(dev, [2]))
    assert torch.equal(vals(kc)[0, :, 2], x[0, 0, :, 64:128]) and torch.equal(vals(vc)[0, :, 2], x[0, 0, :, 128:])
    paged_update(kc, v, update_idxs_tensor=positions(dev, [2]))  # overwrite: k (a view of x) keeps its values
    assert torch.equal(vals(k), x[..., 64:128]) and torch.equal(vals(xt), x)


def test_an_exclusive_cache_is_written_in_place(dev):
    cache = up(torch.zeros(2, 4, 64, 32), dev)
    ptr = cache._value.data_ptr()
    row = up(torch.ones(1, 2, 4, 32), dev, mc=height_sharded((1, 2, 32, 32), 2))
    for p in range(3):
        paged_update(cache, row, update_idxs_tensor=positions(dev, [p, p]))
        out = decode(up(torch.randn(1, 2, 4, 32), dev), cache, cache, cur_pos_tensor=positions(dev, [p, p]))
        del out
    assert cache._value.data_ptr() == ptr  # no copy-on-write copies in a decode loop


@pytest.mark.parametrize("op", ["reshape", "slice"])
def test_block_float_movement_rounds_in_the_new_blocks(dev, op):
    """bfloat8_b shares exponents per 16 values of a row: a movement that regroups rows is re-rounded."""
    x = torch.randn(2, 24, 48) * torch.logspace(-3, 3, 48)
    t = up(x, dev, ttnn.bfloat8_b)
    if op == "reshape":
        out, want = ttnn.reshape.unchecked(t, [2, 48, 24]), quantize(vals(t).reshape(2, 48, 24), ttnn.bfloat8_b)
    else:
        out, want = ttnn.slice.unchecked(t, [0, 0, 8], [2, 24, 40]), quantize(vals(t)[:, :, 8:40], ttnn.bfloat8_b)
    assert torch.equal(vals(out), want)


# ---------------------------------------------------------------------------------------------
# SDPA decode and paged_update_cache: one position vs the general paths


@pytest.mark.parametrize("b,nh,nkv,share", [(1, 12, 12, False), (3, 8, 2, False), (2, 4, 1, False), (3, 4, 2, True)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_decode_one_position_matches_the_general_path(dev, b, nh, nkv, share, dtype):
    dt = DTYPES[dtype]
    kb = 1 if share else b
    q = up(torch.randn(1, b, nh, 64), dev, dt)
    k, v = up(torch.randn(kb, nkv, 96, 64), dev, dt), up(torch.randn(kb, nkv, 96, 64), dev, dt)
    for p in (0, 37, 95):
        fast = decode(q, k, v, cur_pos_tensor=positions(dev, [p] * b), scale=0.2, share_cache=share)
        qg = vals(q).reshape(b, nkv, nh // nkv, 64)
        general = _decode_by_position(qg, vals(k), vals(v), [p] * b, b, nh, 32, 64, 96, 0.2, share, _exact_attend)
        assert torch.equal(vals(fast), quantize(general, dt))
        assert tuple(fast.shape) == (1, b, 32, 64) and float(vals(fast)[:, :, nh:].abs().sum()) == 0
        # the host-list form and the position tensor agree
        assert torch.equal(vals(decode(q, k, v, cur_pos=[p] * b, scale=0.2, share_cache=share)), vals(fast))


def test_decode_mixed_positions_take_the_general_path(dev):
    q = up(torch.randn(1, 3, 4, 32), dev)
    k, v = up(torch.randn(3, 4, 64, 32), dev), up(torch.randn(3, 4, 64, 32), dev)
    mixed = vals(decode(q, k, v, cur_pos_tensor=positions(dev, [5, 9, -1])))
    for u, p in ((0, 5), (1, 9)):
        one = vals(decode(q, k, v, cur_pos_tensor=positions(dev, [p] * 3)))
        torch.testing.assert_close(mixed[0, u], one[0, u], rtol=1e-6, atol=1e-6)
    assert float(mixed[0, 2].abs().sum()) == 0  # the skipped user
    with pytest.raises(TTNNContractError, match="cur_pos_tensor values must be in"):
        decode(q, k, v, cur_pos_tensor=positions(dev, [64, 64, 64]))


def test_decode_non_causal_matches_torch(dev):
    q = up(torch.randn(1, 2, 12, 64), dev)
    k, v = up(torch.randn(2, 12, 32, 64), dev), up(torch.randn(2, 12, 32, 64), dev)
    mask = torch.zeros(1, 2, 12, 32)
    mask[..., 20:] = -1e9
    out = vals(decode(q, k, v, is_causal=False, attn_mask=up(mask, dev), scale=0.125))
    want = torch.nn.functional.scaled_dot_product_attention(vals(q)[0].reshape(2, 12, 1, 64), vals(k), vals(v),
                                                            attn_mask=mask[0].reshape(2, 12, 1, 32), scale=0.125)
    assert torch.equal(out[0, :, :12], want.reshape(2, 12, 64)) and float(out[0, :, 12:].abs().sum()) == 0


@pytest.mark.parametrize("cache_dtype", ["float32", "bfloat16", "bfloat8_b"])
@pytest.mark.parametrize("idx", [[4, 4, 4], [0, 7, 3], [6, -1, 6]])
def test_paged_update_one_position_matches_the_per_user_loop(dev, cache_dtype, idx):
    dt = DTYPES[cache_dtype]
    c0 = torch.randn(3, 4, 16, 32)
    cache = up(c0, dev, dt)
    want = vals(cache)
    x = torch.randn(1, 3, 32, 32)  # heads padded to 32
    xt = up(x, dev, ttnn.bfloat16, mc=height_sharded((1, 3, 32, 32), 3))
    new = quantize(vals(xt)[0, :, :4, :], dt)
    for u, p in enumerate(idx):
        if p >= 0:
            want[u, :, p, :] = new[u]
    paged_update(cache, xt, update_idxs_tensor=positions(dev, idx))
    assert torch.equal(vals(cache), want)
    host = up(c0, dev, dt)
    paged_update(host, xt, update_idxs=idx)  # host index list: same result
    assert torch.equal(vals(host), want)


def test_paged_update_rejects_out_of_range_positions(dev):
    cache = up(torch.zeros(1, 4, 16, 32), dev)
    xt = up(torch.ones(1, 1, 4, 32), dev, mc=height_sharded((1, 1, 32, 32), 1))
    with pytest.raises(TTNNContractError, match="outside the cache's 16 positions"):
        paged_update(cache, xt, update_idxs_tensor=positions(dev, [16]))


# ---------------------------------------------------------------------------------------------
# linear, layer_norm, embedding


@pytest.mark.parametrize("x_shape", [(1, 1, 768), (1, 5, 768), (2, 3, 768), (7, 768), (768,), (1, 1, 2, 768)])
@pytest.mark.parametrize("activation", [None, "relu", "gelu", "sigmoid"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_linear_matches_addmm_over_flattened_rows(dev, x_shape, activation, dtype):
    dt = DTYPES[dtype]
    x, w, b = up(torch.randn(x_shape), dev, dt), up(torch.randn(768, 96), dev, dt), up(torch.randn(1, 96), dev, dt)
    out = ttnn.linear.unchecked(x, w, bias=b, activation=activation)
    want = torch.addmm(vals(b), vals(x).reshape(-1, 768), vals(w)).reshape(*x_shape[:-1], 96)
    act = {None: lambda t: t, "relu": torch.relu, "gelu": torch.nn.functional.gelu, "sigmoid": torch.sigmoid}
    assert torch.equal(vals(out), quantize(act[activation](want), dt))
    # a non-contiguous input (a slice view) takes the reshape path: same values
    wide = up(torch.randn(*x_shape[:-1], 800), dev, dt)
    sl = ttnn.slice.unchecked(wide, [0] * (len(x_shape) - 1) + [16], list(x_shape[:-1]) + [784])
    out2 = ttnn.linear.unchecked(sl, w, bias=b, activation=activation)
    want2 = torch.addmm(vals(b), vals(sl).reshape(-1, 768), vals(w)).reshape(*x_shape[:-1], 96)
    assert torch.equal(vals(out2), quantize(act[activation](want2), dt))


@pytest.mark.parametrize("x_shape", [(1, 1, 768), (1, 3, 768), (8, 768), (1, 1, 2, 768)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_decode_linear_takes_the_split_k_path(dev, x_shape, with_bias):
    x, w = up(torch.randn(x_shape), dev), up(torch.randn(768, 512), dev)   # 393k weights: large
    b = up(torch.randn(1, 512), dev) if with_bias else None
    rows = math.prod(x_shape[:-1])
    assert rm.use_split_k(rows, vals(w)) == (torch.get_num_threads() > 1)
    out = vals(ttnn.linear.unchecked(x, w, bias=b, activation="relu"))
    x2 = vals(x).reshape(rows, 4, 192).transpose(0, 1)
    want = torch.bmm(x2, vals(w).view(4, 192, 512)).sum(0)
    if with_bias:
        want = want + vals(b)
    if torch.get_num_threads() > 1:
        assert torch.equal(out, torch.relu(want).reshape(*x_shape[:-1], 512))
    plain = torch.mm(vals(x).reshape(rows, 768), vals(w)) + (vals(b) if with_bias else 0)
    # float32 summation order only: outputs are ~30 in magnitude, 768-term sums
    torch.testing.assert_close(out, torch.relu(plain).reshape(*x_shape[:-1], 512), rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("case", ["many rows", "small weight", "transpose_b", "one thread"])
def test_other_linears_keep_addmm(dev, case):
    rows, (k, n) = (9 if case == "many rows" else 1), ((64, 512) if case == "small weight" else (768, 512))
    x, b = up(torch.randn(rows, k), dev), up(torch.randn(1, n), dev)
    w = up(torch.randn(n, k) if case == "transpose_b" else torch.randn(k, n), dev)
    threads = torch.get_num_threads()
    if case == "one thread":
        torch.set_num_threads(1)
    ww = vals(w).t() if case == "transpose_b" else vals(w)
    try:
        out = vals(ttnn.linear.unchecked(x, w, bias=b, transpose_b=case == "transpose_b"))
        assert not (case != "transpose_b" and rm.use_split_k(rows, vals(w)))
        want = torch.addmm(vals(b), vals(x), ww)  # same thread count: addmm's summation order follows it
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out, want)


def test_linear_follows_a_weight_update(dev):
    x, w, b = up(torch.randn(1, 1, 64), dev), up(torch.randn(64, 32), dev), up(torch.randn(1, 32), dev)
    first = vals(ttnn.linear.unchecked(x, w, bias=b))
    ttnn.copy(up(torch.zeros(64, 32), dev), w)
    assert torch.equal(vals(ttnn.linear.unchecked(x, w, bias=b)), vals(b).reshape(1, 1, 32).expand(1, 1, 32))
    assert not torch.equal(first, vals(b).reshape(1, 1, 32))


def test_layer_norm_follows_a_gamma_update(dev):
    x, r = up(torch.randn(1, 1, 96), dev), up(torch.randn(1, 1, 96), dev)
    g, beta = up(torch.rand(1, 96) + 0.5, dev), up(torch.randn(1, 96), dev)
    out = vals(ttnn.layer_norm.unchecked(x, epsilon=1e-5, weight=g, bias=beta, residual_input_tensor=r))
    want = torch.nn.functional.layer_norm(vals(x) + vals(r), (96,), vals(g)[0], vals(beta)[0], 1e-5)
    assert torch.equal(out, want)
    ttnn.copy(up(torch.full((1, 96), 2.0), dev), g)
    out = vals(ttnn.layer_norm.unchecked(x, epsilon=1e-5, weight=g, bias=beta, residual_input_tensor=r))
    want = torch.nn.functional.layer_norm(vals(x) + vals(r), (96,), torch.full((96,), 2.0), vals(beta)[0], 1e-5)
    assert torch.equal(out, want)


def test_decode_follows_position_updates(dev):
    """Positions are read to the host once per value: a new value (plus_one in place, copy) is read again."""
    q = up(torch.randn(1, 1, 4, 32), dev)
    k, v = up(torch.randn(1, 4, 64, 32), dev), up(torch.randn(1, 4, 64, 32), dev)
    pos = positions(dev, [3])
    at3 = vals(decode(q, k, v, cur_pos_tensor=pos))
    ttnn.plus_one(pos)
    at4 = vals(decode(q, k, v, cur_pos_tensor=pos))
    assert torch.equal(at4, vals(decode(q, k, v, cur_pos=[4]))) and not torch.equal(at3, at4)
    ttnn.copy(positions(dev, [3]), pos)
    assert torch.equal(vals(decode(q, k, v, cur_pos_tensor=pos)), at3)


@pytest.mark.parametrize("bad", [-1, 10])
def test_embedding_kernel_rejects_out_of_range_indices(dev, bad):
    table = up(torch.randn(10, 32), dev, layout=RM)
    idx = ttnn.from_torch(torch.tensor([[1, bad]], dtype=torch.int32), dtype=ttnn.int32, device=dev)
    with pytest.raises(TTNNContractError, match="index out of range for a table of 10 rows"):
        ttnn.embedding.unchecked(idx, table)
