"""Reference ttnn data movement (OP_CONTRACT §7), embedding (§2) and experimental.paged_update_cache (§6) against
their torch meaning, and their contract rejections.

Data movement is exact: the output equals the torch op applied to the stored input values, and is within
``OP_ATOL`` of the torch op on the raw float32 input.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn

from ..pcc_thresholds import OP_ATOL
from .helpers import (
    FLOAT_DTYPES, RM, TILE, assert_close, assert_op_close, assert_rejected, bfp8_quantum, float_dtypes, stored,
    upload,
)

layouts = pytest.mark.parametrize("layout", [TILE, RM], ids=["tile", "rm"])


def vals(t: ttnn.Tensor) -> torch.Tensor:
    return ttnn.to_torch(t).to(torch.float32)


def check_movement(out: ttnn.Tensor, fn, x: torch.Tensor, xt: ttnn.Tensor, dtype_name: str, layout) -> None:
    """``out`` is ``fn`` of the input: exactly on the stored values, within OP_ATOL of the raw float32 golden."""
    assert out.layout is layout and out.device() is xt.device()
    assert_op_close(out, fn(x), dtype_name)
    assert torch.equal(vals(out), fn(vals(xt)))


# ---------------------------------------------------------------------------------------------
# reshape / permute / transpose / squeeze / unsqueeze


@float_dtypes
@layouts
@pytest.mark.parametrize("shape", [(80, 64), (2, 40, 2, 32), (-1, 32), (1, 5120), (2, -1), (5120,)], ids=str)
def test_reshape(dev, dtype_name, layout, shape):
    x = torch.randn(2, 40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    out = ttnn.reshape(xt, shape)
    check_movement(out, lambda v: v.reshape(shape), x, xt, dtype_name, layout)
    assert out.memory_config() == xt.memory_config()
    assert ttnn.reshape(xt, ttnn.Shape(out.shape)).shape == out.shape  # a ttnn.Shape is accepted too


@float_dtypes
@layouts
@pytest.mark.parametrize("dims", [(2, 0, 1), (0, 2, 1), (1, 0, 2), (-1, 0, 1), (0, 1, 2)], ids=str)
def test_permute(dev, dtype_name, layout, dims):
    x = torch.randn(2, 40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.permute(xt, dims), lambda v: v.permute(*dims), x, xt, dtype_name, layout)


@float_dtypes
@layouts
@pytest.mark.parametrize("dim1, dim2", [(0, 2), (-1, -2), (1, 3), (2, 2)], ids=str)
def test_transpose(dev, dtype_name, layout, dim1, dim2):
    x = torch.randn(2, 3, 40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.transpose(xt, dim1, dim2), lambda v: v.transpose(dim1, dim2), x, xt, dtype_name, layout)


@float_dtypes
@layouts
@pytest.mark.parametrize("shape, dim", [((1, 40, 64), 0), ((2, 1, 64), -2), ((2, 40, 1), 2), ((1, 1, 32, 32), 1)],
                         ids=str)
def test_squeeze(dev, dtype_name, layout, shape, dim):
    x = torch.randn(shape)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.squeeze(xt, dim), lambda v: v.squeeze(dim), x, xt, dtype_name, layout)


@float_dtypes
@layouts
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_unsqueeze(dev, dtype_name, layout, dim):
    x = torch.randn(40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.unsqueeze(xt, dim), lambda v: v.unsqueeze(dim), x, xt, dtype_name, layout)


# ---------------------------------------------------------------------------------------------
# concat / slice / pad / repeat


@float_dtypes
@layouts
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_concat(dev, dtype_name, layout, dim):
    base = [2, 40, 64]
    xs = []
    for extra in (0, 3, 32):
        shape = list(base)
        shape[dim] += extra
        xs.append(torch.randn(shape))
    ts = [upload(x, dtype_name, dev, layout=layout) for x in xs]
    out = ttnn.concat(ts, dim)
    assert out.layout is layout
    assert_op_close(out, torch.cat(xs, dim), dtype_name)
    assert torch.equal(vals(out), torch.cat([vals(t) for t in ts], dim))


def test_concat_single_and_memory_config(dev):
    x = torch.randn(32, 64)
    xt = upload(x, "float32", dev)
    out = ttnn.concat([xt], 0, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert out.memory_config() == ttnn.L1_MEMORY_CONFIG and torch.equal(vals(out), x)


@float_dtypes
@layouts
@pytest.mark.parametrize("start, end, step", [
    ((1, 0, 8), (3, 40, 64), None),
    ((0, 0, 0), (4, 40, 64), (1, 1, 1)),
    ((1, 5, 8), (4, 37, 64), (2, 3, 4)),
    ((0, 39, 0), (4, 40, 32), (1, 1, 2)),
    ((0, 0, 0), (1, 1, 1), None),
], ids=["contiguous", "identity", "strided", "last-row-even-cols", "one-element"])
def test_slice(dev, dtype_name, layout, start, end, step):
    x = torch.randn(4, 40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    steps = step or (1, 1, 1)
    index = tuple(slice(s, e, st) for s, e, st in zip(start, end, steps))
    out = ttnn.slice(xt, start, end, step) if step else ttnn.slice(xt, start, end)
    check_movement(out, lambda v: v[index], x, xt, dtype_name, layout)


def test_slice_bfloat8_b_contiguous(dev):
    xt = ttnn.from_torch(torch.randn(4, 64, 64), dtype=ttnn.bfloat8_b, layout=TILE, device=dev)
    out = ttnn.slice(xt, (1, 0, 0), (3, 32, 64))
    assert out.dtype is ttnn.bfloat8_b and torch.equal(vals(out), vals(xt)[1:3, :32])


@float_dtypes
@pytest.mark.parametrize("layout, padding, value", [
    (TILE, [(0, 0), (0, 5), (0, 30)], 0.0),
    (TILE, [(0, 7)], 1.5),  # a shorter list applies to the trailing dims
    (TILE, [(0, 24), (0, 0)], -2.0),
    (RM, [(2, 1)], 0.0),  # front padding is fine in ROW_MAJOR (conv-style left padding)
    (RM, [(0, 0), (3, 0), (1, 2)], 0.5),
], ids=["tile-back", "tile-trailing", "tile-rows", "rm-front", "rm-mixed"])
def test_pad(dev, dtype_name, layout, padding, value):
    x = torch.randn(2, 40, 64)
    xt = upload(x, dtype_name, dev, layout=layout)
    flat = [p for pair in reversed(padding) for p in pair]
    out = ttnn.pad(xt, padding, value)
    check_movement(out, lambda v: F.pad(v, flat, value=value), x, xt, dtype_name, layout)


@float_dtypes
@layouts
@pytest.mark.parametrize("repeat_dims", [(2, 1, 1), (1, 3, 2), (1, 1, 1), (2, 1, 1, 1)], ids=str)
def test_repeat(dev, dtype_name, layout, repeat_dims):
    x = torch.randn(2, 32, 40)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.repeat(xt, repeat_dims), lambda v: v.repeat(*repeat_dims), x, xt, dtype_name, layout)
    assert ttnn.repeat(xt, ttnn.Shape(repeat_dims)).shape == x.repeat(*repeat_dims).shape


@float_dtypes
@layouts
@pytest.mark.parametrize("repeats, dim", [(2, 0), (3, -1), (1, 1), (4, 1)], ids=str)
def test_repeat_interleave(dev, dtype_name, layout, repeats, dim):
    x = torch.randn(2, 32, 40)
    xt = upload(x, dtype_name, dev, layout=layout)
    check_movement(ttnn.repeat_interleave(xt, repeats, dim), lambda v: v.repeat_interleave(repeats, dim), x, xt,
                   dtype_name, layout)


@pytest.mark.parametrize("out_dtype", list(FLOAT_DTYPES))
def test_data_movement_into_preallocated_output(dev, out_dtype):
    x = torch.randn(4, 40, 64)
    xt = upload(x, "float32", dev)
    buf = ttnn.allocate_tensor_on_device((2, 20, 64), FLOAT_DTYPES[out_dtype], TILE, dev)
    assert ttnn.slice(xt, (1, 0, 0), (4, 40, 64), (2, 2, 1), output_tensor=buf) is buf
    assert torch.equal(vals(buf), stored(x[1:4:2, ::2], out_dtype))
    ttnn.copy(upload(torch.zeros(4, 40, 64), "float32", dev), xt)
    assert torch.equal(vals(buf), stored(x[1:4:2, ::2], out_dtype))  # the output does not alias the input
    cat = ttnn.allocate_tensor_on_device((2, 40, 64), FLOAT_DTYPES[out_dtype], TILE, dev)
    parts = [upload(torch.randn(1, 40, 64), "float32", dev) for _ in range(2)]
    assert ttnn.concat(parts, 0, output_tensor=cat) is cat
    assert torch.equal(vals(cat), stored(torch.cat([vals(p) for p in parts]), out_dtype))


# ---------------------------------------------------------------------------------------------
# embedding


@pytest.mark.parametrize("index_dtype", [ttnn.uint32, ttnn.int32], ids=lambda d: d.value)
@pytest.mark.parametrize("weight_dtype", list(FLOAT_DTYPES))
@pytest.mark.parametrize("weight_layout", [RM, TILE], ids=["w-rm", "w-tile"])
@pytest.mark.parametrize("out_layout", [None, RM, TILE], ids=["default", "out-rm", "out-tile"])
def test_embedding(dev, index_dtype, weight_dtype, weight_layout, out_layout):
    table = torch.randn(50, 64)
    ids = torch.randint(0, 50, (2, 7))
    ids[0, 0], ids[1, -1] = 0, 49  # first and last rows
    idx = ttnn.from_torch(ids, dtype=index_dtype, device=dev)
    w = upload(table, weight_dtype, dev, layout=weight_layout)
    out = ttnn.embedding(idx, w) if out_layout is None else ttnn.embedding(idx, w, layout=out_layout)
    assert out.layout is (out_layout or RM) and out.shape == (2, 7, 64) and out.dtype is w.dtype
    assert out.device() is dev and out.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    assert_op_close(out, F.embedding(ids, table), weight_dtype)
    assert torch.equal(vals(out), F.embedding(ids, vals(w)))


def test_embedding_typecast_to_tile_and_weight_2d_forms(dev):
    table = torch.randn(10, 32)
    ids = torch.tensor([[3, 1, 4, 1, 5, 9, 2]])
    idx = ttnn.from_torch(ids, dtype=ttnn.uint32, device=dev)
    w = upload(table.reshape(1, 1, 10, 32), "float32", dev)  # leading 1s are fine
    out = ttnn.embedding(idx, w, layout=TILE, dtype=ttnn.bfloat16, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert out.dtype is ttnn.bfloat16 and out.layout is TILE and out.memory_config() == ttnn.L1_MEMORY_CONFIG
    assert torch.equal(vals(out), stored(F.embedding(ids, table), "bfloat16"))


def test_embedding_into_preallocated_output(dev):
    table, ids = torch.randn(10, 64), torch.tensor([[1, 9, 0]])
    buf = ttnn.allocate_tensor_on_device((1, 3, 64), ttnn.bfloat16, TILE, dev)
    out = ttnn.embedding(ttnn.from_torch(ids, dtype=ttnn.uint32, device=dev), upload(table, "float32", dev),
                         layout=TILE, output_tensor=buf)
    assert out is buf and torch.equal(vals(buf), stored(F.embedding(ids, table), "bfloat16"))


# ---------------------------------------------------------------------------------------------
# experimental.paged_update_cache

B, NKV, S, DH = 3, 2, 64, 64


def _cache_input(dev, x: torch.Tensor, dtype=ttnn.bfloat16) -> ttnn.Tensor:
    """The per-user token, height-sharded one user per core (as tt-metal decoders shard it)."""
    mc = ttnn.create_sharded_memory_config(x.shape, ttnn.CoreGrid(y=1, x=B), ttnn.ShardStrategy.HEIGHT)
    return ttnn.from_torch(x, dtype=dtype, layout=TILE, device=dev, memory_config=mc)


def _golden_update(cache: torch.Tensor, token: torch.Tensor, idxs) -> torch.Tensor:
    golden = cache.clone()
    for u, p in enumerate(idxs):
        if p >= 0:
            golden[u, :, p, :] = token[0, u, :NKV, :]
    return golden


@pytest.mark.parametrize("cache_dtype", [ttnn.float32, ttnn.bfloat16, ttnn.bfloat8_b], ids=lambda d: d.value)
@pytest.mark.parametrize("input_dtype", [ttnn.float32, ttnn.bfloat16], ids=lambda d: "in-" + d.value)
@pytest.mark.parametrize("idx_form", ["list", "int32-tensor"])
@pytest.mark.parametrize("padded_heads", [True, False], ids=["nkv-padded", "nkv-exact"])
def test_paged_update_cache(dev, cache_dtype, input_dtype, idx_form, padded_heads):
    idxs = [5, -1, 63]
    cache = ttnn.from_torch(torch.randn(B, NKV, S, DH), dtype=cache_dtype, layout=TILE, device=dev)
    before = vals(cache)
    token = torch.randn(1, B, 32 if padded_heads else NKV, DH)
    x = _cache_input(dev, token, input_dtype)
    if idx_form == "list":
        result = ttnn.experimental.paged_update_cache(cache, x, update_idxs=idxs)
    else:
        idx_dtype = ttnn.int32
        pos = ttnn.from_torch(torch.tensor(idxs), dtype=idx_dtype, device=dev)
        result = ttnn.experimental.paged_update_cache(cache, x, update_idxs_tensor=pos)
    assert result is None  # in place
    after = vals(cache)
    written = vals(x)  # the input as stored (bf16/fp32), repacked into the cache dtype
    golden = _golden_update(before, written, idxs)
    rows = torch.zeros(B, NKV, S, 1, dtype=torch.bool)
    for u, p in enumerate(idxs):
        if p >= 0:
            rows[u, :, p] = True
    rows = rows.expand_as(after)
    assert torch.equal(after[~rows], before[~rows])  # nothing else moves; user with -1 is skipped
    if cache_dtype is ttnn.bfloat8_b:
        assert ((after[rows] - golden[rows]).abs() <= bfp8_quantum(golden)[rows]).all()
    else:
        assert torch.equal(after, stored(golden, cache_dtype.value))
    if cache_dtype is not ttnn.bfloat8_b:  # and the raw float32 token, within the coarser dtype's tolerance
        coarse = "bfloat16" if ttnn.bfloat16 in (cache_dtype, input_dtype) else "float32"
        assert_close(after, _golden_update(before, token, idxs), OP_ATOL[coarse])


def test_paged_update_cache_rejects_uint32_and_out_of_range_positions(dev):
    cache = ttnn.from_torch(torch.zeros(2, NKV, 64, 32), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, device=dev)
    mc = ttnn.create_sharded_memory_config((32, 32), ttnn.CoreGrid(y=1, x=2), ttnn.ShardStrategy.HEIGHT,
                                           use_height_and_width_as_shard_shape=True)
    token = ttnn.interleaved_to_sharded(
        ttnn.from_torch(torch.randn(1, 2, NKV, 32), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, device=dev), mc)
    u32 = ttnn.from_torch(torch.tensor([0, 1], dtype=torch.int32), dtype=ttnn.uint32, device=dev)
    with pytest.raises(TTNNContractError, match="update_idxs_tensor dtype uint32"):
        ttnn.experimental.paged_update_cache(cache, token, update_idxs_tensor=u32)
    past = ttnn.from_torch(torch.tensor([0, 64], dtype=torch.int32), dtype=ttnn.int32, device=dev)
    with pytest.raises(TTNNContractError, match="outside the cache's 64 positions"):
        ttnn.experimental.paged_update_cache(cache, token, update_idxs_tensor=past)


def test_paged_update_cache_decode_loop_with_fixed_position_tensor(dev):
    """The traced-decode pattern: one position tensor, refreshed in place each step."""
    cache = ttnn.allocate_tensor_on_device((B, NKV, S, DH), ttnn.bfloat16, TILE, dev)
    pos = ttnn.allocate_tensor_on_device((B,), ttnn.int32, RM, dev)
    golden = torch.zeros(B, NKV, S, DH)
    for step in range(4):
        token = torch.randn(1, B, 32, DH)
        idxs = [step, step + 1, -1 if step % 2 else step]
        ttnn.copy_host_to_device_tensor(ttnn.from_torch(torch.tensor(idxs), dtype=ttnn.int32), pos)
        ttnn.experimental.paged_update_cache(cache, _cache_input(dev, token), update_idxs_tensor=pos)
        golden = _golden_update(golden, stored(token, "bfloat16"), idxs)
    assert torch.equal(vals(cache), golden)


# ---------------------------------------------------------------------------------------------
# contract rejections


def _sharded(m, shape=(1, B, 32, DH), cores=B, dtype=ttnn.bfloat16, strategy=ttnn.ShardStrategy.HEIGHT):
    mc = ttnn.create_sharded_memory_config(shape, ttnn.CoreGrid(y=1, x=cores), strategy)
    return m.tile(*shape, dtype=dtype, mc=mc)


def _puc(m, cache=None, x=None, **kwargs):
    cache = m.tile(B, NKV, S, DH) if cache is None else cache
    x = _sharded(m) if x is None else x
    if not kwargs:
        kwargs = {"update_idxs": [0] * B}
    return ttnn.experimental.paged_update_cache(cache, x, **kwargs)


REJECTIONS = [
    # reshape / permute / transpose / squeeze / unsqueeze
    ("reshape-count", lambda m: ttnn.reshape(m.tile(2, 40, 64), (80, 32)), "element counts differ"),
    ("reshape-infer-indivisible", lambda m: ttnn.reshape(m.tile(32, 32), (-1, 5)), "element counts differ"),
    ("reshape-two-infer", lambda m: ttnn.reshape(m.tile(32, 32), (-1, -1)), "invalid shape"),
    ("reshape-negative", lambda m: ttnn.reshape(m.tile(32, 32), (-2, 512)), "invalid shape"),
    ("reshape-host", lambda m: ttnn.reshape(m.host(32, 32), (1024,)), "must be on device"),
    ("reshape-deallocated", lambda m: ttnn.reshape(m.freed(32, 32), (1024,)), "was deallocated"),
    ("permute-repeat", lambda m: ttnn.permute(m.tile(2, 32, 32), (0, 0, 1)), "is not a permutation of rank 3"),
    ("permute-short", lambda m: ttnn.permute(m.tile(2, 32, 32), (1, 0)), "is not a permutation of rank 3"),
    ("permute-out-of-range", lambda m: ttnn.permute(m.tile(32, 32), (0, 5)), "is not a permutation of rank 2"),
    ("transpose-range", lambda m: ttnn.transpose(m.tile(32, 32), 0, 2), "out of range for rank 2"),
    ("squeeze-not-one", lambda m: ttnn.squeeze(m.tile(2, 32, 32), 0), "dim 0 has size 2, not 1"),
    ("squeeze-range", lambda m: ttnn.squeeze(m.tile(1, 32, 32), 3), "out of range for rank 3"),
    ("unsqueeze-range", lambda m: ttnn.unsqueeze(m.tile(32, 32), 4), "out of range for output rank 3"),
    # concat
    ("concat-empty", lambda m: ttnn.concat([], 0), "needs at least one tensor"),
    ("concat-rank", lambda m: ttnn.concat([m.tile(2, 32, 32), m.tile(32, 32)], 0), "same rank"),
    ("concat-dtype", lambda m: ttnn.concat([m.tile(32, 32), m.tile(32, 32, dtype=ttnn.bfloat16)], 0),
     "same layout and dtype"),
    ("concat-layout", lambda m: ttnn.concat([m.tile(32, 32), m.rm(32, 32)], 0), "same layout and dtype"),
    ("concat-shape", lambda m: ttnn.concat([m.tile(32, 32), m.tile(32, 64)], 0), "differ outside dim 0"),
    ("concat-dim-range", lambda m: ttnn.concat([m.tile(32, 32), m.tile(32, 32)], 2), "out of range for rank 2"),
    ("concat-sharded-batch", lambda m: ttnn.concat([_sharded(m), _sharded(m)], 0),
     "sharded inputs only support height or width concat"),
    ("concat-host", lambda m: ttnn.concat([m.tile(32, 32), m.host(32, 32)], 0), "tensors[1] must be on device"),
    # slice
    ("slice-rank", lambda m: ttnn.slice(m.tile(4, 32, 32), (0, 0), (4, 32)), "one entry per dim"),
    ("slice-end-past-size", lambda m: ttnn.slice(m.tile(4, 32, 32), (0, 0, 0), (4, 33, 32)), "is outside [0, 32]"),
    ("slice-start-after-end", lambda m: ttnn.slice(m.tile(4, 32, 32), (3, 0, 0), (2, 32, 32)), "is outside"),
    ("slice-negative-start", lambda m: ttnn.slice(m.tile(4, 32, 32), (-1, 0, 0), (4, 32, 32)), "is outside"),
    ("slice-step-zero", lambda m: ttnn.slice(m.tile(4, 32, 32), (0, 0, 0), (4, 32, 32), (1, 0, 1)), "is outside"),
    ("slice-strided-bf8b", lambda m: ttnn.slice(m.tile(4, 32, 32, dtype=ttnn.bfloat8_b), (0, 0, 0), (4, 32, 32),
                                                (1, 1, 2)), "strided slicing is not supported for bfloat8_b"),
    # pad / repeat
    ("pad-front-tile", lambda m: ttnn.pad(m.tile(2, 32, 32), [(0, 0), (1, 0)], 0.0),
     "TILE layout does not support front padding"),
    ("pad-too-many-pairs", lambda m: ttnn.pad(m.rm(32, 32), [(0, 1)] * 3, 0.0), "more padding pairs than dims"),
    ("repeat-short", lambda m: ttnn.repeat(m.tile(2, 32, 32), (2, 1)), "repeat_dims must cover every dim"),
    ("repeat_interleave-zero", lambda m: ttnn.repeat_interleave(m.tile(32, 32), 0, 0),
     "repeats must be a positive int"),
    ("repeat_interleave-float", lambda m: ttnn.repeat_interleave(m.tile(32, 32), 2.0, 0),
     "repeats must be a positive int"),
    ("repeat_interleave-dim", lambda m: ttnn.repeat_interleave(m.tile(32, 32), 2, 2), "out of range for rank 2"),
    # preallocated outputs of the wrong shape
    ("slice-output-shape", lambda m: ttnn.slice(m.tile(4, 32, 32), (0, 0, 0), (4, 32, 32), (2, 1, 1),
                                                output_tensor=m.tile(4, 32, 32)),
     "output_tensor shape [4, 32, 32] != result shape [2, 32, 32]"),
    ("concat-output-shape", lambda m: ttnn.concat([m.tile(32, 32), m.tile(8, 32)], 0, output_tensor=m.tile(32, 32)),
     "output_tensor shape [32, 32] != result shape [40, 32]"),
    ("embedding-output-shape", lambda m: ttnn.embedding(m.ints([[1, 2]]), m.rm(50, 64), output_tensor=m.tile(2, 64)),
     "output_tensor shape [2, 64] != result shape [1, 2, 64]"),
    # embedding
    ("embedding-float-indices", lambda m: ttnn.embedding(m.rm(2, 7, value=torch.zeros(2, 7)), m.rm(50, 64)),
     "input_tensor dtype float32 is not supported"),
    ("embedding-tile-indices", lambda m: ttnn.embedding(m.ints([[1, 2]], layout=TILE), m.rm(50, 64)),
     "input_tensor must be in ROW_MAJOR layout"),
    ("embedding-width", lambda m: ttnn.embedding(m.ints([[1, 2]]), m.rm(50, 48)),
     "embedding dimension must be divisible by tile width (32)"),
    ("embedding-typecast-rm", lambda m: ttnn.embedding(m.ints([[1, 2]]), m.rm(50, 64), dtype=ttnn.bfloat16),
     "a dtype typecast is only allowed when the output is TILE"),
    ("embedding-weight-bf8b", lambda m: ttnn.embedding(m.ints([[1, 2]]), m.tile(50, 64, dtype=ttnn.bfloat8_b)),
     "weight dtype bfloat8_b is not supported"),
    ("embedding-weight-3d", lambda m: ttnn.embedding(m.ints([[1, 2]]), m.rm(2, 50, 64)), "must be a 2-D table"),
    ("embedding-weight-sharded", lambda m: ttnn.embedding(m.ints([[1, 2]]), _sharded(m, (1, 1, 64, 64), cores=2)),
     "sharded inputs and sharded weights are not supported"),
    ("embedding-index-range", lambda m: ttnn.embedding(m.ints([[1, 50]]), m.rm(50, 64)), "index out of range"),
    ("embedding-negative-index", lambda m: ttnn.embedding(m.ints([[-1, 2]], dtype=ttnn.int32), m.rm(50, 64)),
     "index out of range"),
    ("embedding-host-indices", lambda m: ttnn.embedding(ttnn.from_torch(torch.tensor([[1]]), dtype=ttnn.uint32),
                                                        m.rm(50, 64)), "input_tensor must be on device"),
    # paged_update_cache
    ("puc-cache-rm", lambda m: _puc(m, cache=m.rm(B, NKV, S, DH)), "cache_tensor must be in TILE layout"),
    ("puc-cache-host", lambda m: _puc(m, cache=m.host(B, NKV, S, DH)), "cache_tensor must be on device"),
    ("puc-cache-rank", lambda m: _puc(m, cache=m.tile(B, S, DH)), "cache_tensor must be [B, num_kv_heads"),
    ("puc-input-bf8b", lambda m: _puc(m, x=_sharded(m, dtype=ttnn.bfloat8_b)),
     "input_tensor dtype bfloat8_b is not supported"),
    ("puc-input-not-sharded", lambda m: _puc(m, x=m.tile(1, B, 32, DH)), "input_tensor must be height-sharded"),
    ("puc-input-width-sharded", lambda m: _puc(m, x=_sharded(m, strategy=ttnn.ShardStrategy.WIDTH)),
     "input_tensor must be height-sharded"),
    ("puc-input-cores", lambda m: _puc(m, x=_sharded(m, cores=1)), "must be sharded over 3 cores"),
    ("puc-input-head-dim", lambda m: _puc(m, x=_sharded(m, (1, B, 32, 32))),
     f"input_tensor must be [1, {B}, {NKV} (padded to 32), {DH}]"),
    ("puc-input-batch-first", lambda m: _puc(m, x=_sharded(m, (B, 1, 32, DH), cores=1)), "input_tensor must be [1,"),
    ("puc-input-heads", lambda m: _puc(m, x=_sharded(m, (1, B, 16, DH))), "input_tensor must be [1,"),
    ("puc-input-shard-width", lambda m: _puc(m, cache=m.tile(B, NKV, S, 24), x=m.tile(1, B, 32, 24, mc=(
        ttnn.create_sharded_memory_config((32, 24), ttnn.CoreGrid(y=1, x=B), ttnn.ShardStrategy.HEIGHT,
                                          use_height_and_width_as_shard_shape=True)))),
     "shard width 24 must equal the last dim of its padded shape (32)"),
    ("puc-both-idx", lambda m: _puc(m, update_idxs=[0] * B, update_idxs_tensor=m.ints([0] * B, dtype=ttnn.int32)),
     "give exactly one of update_idxs"),
    ("puc-neither-idx", lambda m: _puc(m, share_cache=False), "give exactly one of update_idxs"),
    ("puc-idx-float", lambda m: _puc(m, update_idxs_tensor=m.rm(B, value=torch.zeros(B))),
     "update_idxs_tensor dtype float32 is not supported"),
    ("puc-idx-shape", lambda m: _puc(m, update_idxs_tensor=m.ints([[0] * B], dtype=ttnn.int32)),
     f"update_idxs_tensor must be [{B}]"),
    ("puc-idx-host", lambda m: _puc(m, update_idxs_tensor=ttnn.from_torch(torch.zeros(B, dtype=torch.int32))),
     "update_idxs_tensor must be on device"),
    ("puc-idx-list-length", lambda m: _puc(m, update_idxs=[0] * (B - 1)), f"update_idxs must give {B} positions"),
    ("puc-page-table", lambda m: _puc(m, update_idxs=[0] * B, page_table=m.ints([[0]], dtype=ttnn.int32)),
     "page_table"),
]


@pytest.mark.parametrize("call, message", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_contract_rejections(dev, call, message):
    assert_rejected(call, dev, message)
