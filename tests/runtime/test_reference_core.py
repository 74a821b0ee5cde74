"""Reference ttnn, host/device movement and storage (OP_CONTRACT §0, §1, §9): from_torch/to_torch, to_device,
to_layout, typecast, memory configs and sharding, allocation/copies, dtype rounding, device byte accounting,
and every contract rejection of these ops."""
from __future__ import annotations

import gc
import math

import numpy as np
import pytest
import torch

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn

from .helpers import RM, TILE, assert_rejected, bfp8_quantum, block_max, float_dtypes, stored, upload

# ---------------------------------------------------------------------------------------------
# from_torch / to_torch


@pytest.mark.parametrize("torch_dtype, ttnn_dtype, expect_dtype, expect_host", [
    (torch.float32, None, ttnn.float32, torch.float32),
    (torch.bfloat16, None, ttnn.bfloat16, torch.bfloat16),
    (torch.int32, None, ttnn.int32, torch.int32),
    (torch.uint8, None, ttnn.uint8, torch.uint8),
    (torch.float32, ttnn.bfloat16, ttnn.bfloat16, torch.bfloat16),
    (torch.float32, ttnn.float32, ttnn.float32, torch.float32),
    (torch.int64, ttnn.uint32, ttnn.uint32, torch.uint32),
    (torch.int64, ttnn.int32, ttnn.int32, torch.int32),
    (torch.int32, ttnn.uint32, ttnn.uint32, torch.uint32),
], ids=lambda v: str(v).replace("torch.", "").replace("ttnn.", ""))
@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
def test_from_torch_to_torch_round_trip(dev, torch_dtype, ttnn_dtype, expect_dtype, expect_host, on_device):
    if torch_dtype.is_floating_point:
        x = torch.randn(3, 5, 7).to(torch_dtype)
    else:
        lo = -50 if expect_dtype is ttnn.int32 else 0
        x = torch.randint(lo, 200, (3, 5, 7)).to(torch_dtype)
    t = ttnn.from_torch(x, dtype=ttnn_dtype, device=dev if on_device else None)
    assert t.dtype is expect_dtype and t.get_dtype() is expect_dtype
    assert t.layout is RM and t.shape == (3, 5, 7) and t.padded_shape == (3, 5, 7)
    assert t.storage_type() == ("DEVICE" if on_device else "HOST")
    assert (t.device() is dev) == on_device
    back = ttnn.to_torch(t)
    assert back.dtype == expect_host
    golden = x.to(torch.bfloat16) if expect_host == torch.bfloat16 else x.to(expect_host)
    assert torch.equal(back, golden)
    assert torch.equal(t.to_torch(), golden)  # Tensor.to_torch is the same conversion


def test_from_torch_bfloat8_b_reads_back_as_float32(dev):
    x = torch.randn(2, 40, 48)
    t = ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=TILE, device=dev)
    back = ttnn.to_torch(t)
    assert back.dtype == torch.float32 and back.shape == x.shape
    assert t.padded_shape == (2, 64, 64)
    assert ((back - x).abs() <= bfp8_quantum(x)).all()


def test_from_torch_numpy_and_int_saturation(dev):
    t = ttnn.from_torch(np.arange(6, dtype=np.float32).reshape(2, 3), device=dev)
    assert t.dtype is ttnn.float32 and torch.equal(ttnn.to_torch(t), torch.arange(6.0).reshape(2, 3))
    i = ttnn.from_torch(torch.tensor([-(2**31), 2**31 - 1, 5]), dtype=ttnn.int32)
    assert ttnn.to_torch(i).tolist() == [-(2**31), 2**31 - 1, 5]


def test_to_torch_options(dev):
    t = ttnn.from_torch(torch.randn(1, 1, 4, 8), dtype=ttnn.bfloat16, layout=TILE, device=dev)
    assert ttnn.to_torch(t, torch_rank=2).shape == (4, 8)
    assert ttnn.to_torch(t, dtype=torch.float32).dtype == torch.float32


def test_from_torch_with_memory_config_uploads(dev):
    x = torch.randn(64, 32)
    t = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=TILE, device=dev, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert t.memory_config() == ttnn.L1_MEMORY_CONFIG and t.storage_type() == "DEVICE"
    assert torch.equal(ttnn.to_torch(t), x.to(torch.bfloat16))


# ---------------------------------------------------------------------------------------------
# to_device / from_device


@pytest.mark.parametrize("layout", [RM, TILE], ids=["rm", "tile"])
@pytest.mark.parametrize("memory_config", [None, ttnn.L1_MEMORY_CONFIG], ids=["default", "l1"])
def test_to_device_from_device(dev, layout, memory_config):
    x = torch.randn(2, 3, 33)
    h = ttnn.from_torch(x, dtype=ttnn.float32, layout=layout)
    assert h.memory_config() is None and h.device() is None and dev.allocated_bytes == 0
    d = ttnn.to_device(h, dev, memory_config=memory_config)
    assert d.device() is dev and d.storage_type() == "DEVICE"
    assert d.memory_config() == (memory_config or ttnn.DRAM_MEMORY_CONFIG)
    assert d.layout is layout and d.dtype is ttnn.float32 and d.shape == (2, 3, 33)
    assert dev.allocated_bytes > 0
    back = ttnn.from_device(d)
    assert back.storage_type() == "HOST" and back.memory_config() is None
    assert back.layout is layout and torch.equal(ttnn.to_torch(back), x)
    assert torch.equal(ttnn.to_torch(d), x)  # to_torch reads a device tensor directly


# ---------------------------------------------------------------------------------------------
# to_layout


@pytest.mark.parametrize("shape, padded", [
    ((3, 5), (32, 32)),
    ((2, 33, 65), (2, 64, 96)),
    ((1, 1, 32, 32), (1, 1, 32, 32)),
    ((2, 64, 31), (2, 64, 32)),
])
@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
def test_to_layout_tile_pads_and_row_major_unpads(dev, shape, padded, on_device):
    x = torch.randn(shape)
    t = ttnn.from_torch(x, dtype=ttnn.float32, device=dev if on_device else None)
    tiled = ttnn.to_layout(t, TILE)
    assert tiled.layout is TILE and tiled.shape == shape and tiled.padded_shape == padded
    assert torch.equal(ttnn.to_torch(tiled), x)
    rm = ttnn.to_layout(tiled, RM)
    assert rm.layout is RM and rm.shape == shape and rm.padded_shape == shape
    assert torch.equal(ttnn.to_torch(rm), x)
    assert ttnn.to_layout(rm, RM) is rm  # no change, no copy


def test_to_layout_with_dtype_change(dev):
    x = torch.randn(40, 70)
    t = ttnn.from_torch(x, dtype=ttnn.float32, device=dev)
    bf8 = ttnn.to_layout(t, TILE, dtype=ttnn.bfloat8_b)
    assert bf8.dtype is ttnn.bfloat8_b and bf8.layout is TILE
    assert ((ttnn.to_torch(bf8) - x).abs() <= bfp8_quantum(x)).all()
    bf16 = ttnn.to_layout(t, TILE, dtype=ttnn.bfloat16, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert bf16.memory_config() == ttnn.L1_MEMORY_CONFIG
    assert torch.equal(ttnn.to_torch(bf16), x.to(torch.bfloat16))


# ---------------------------------------------------------------------------------------------
# typecast


@pytest.mark.parametrize("src, dst", [
    (ttnn.float32, ttnn.bfloat16), (ttnn.bfloat16, ttnn.float32), (ttnn.float32, ttnn.bfloat8_b),
    (ttnn.bfloat8_b, ttnn.bfloat16), (ttnn.float32, ttnn.int32), (ttnn.float32, ttnn.uint32),
    (ttnn.int32, ttnn.float32), (ttnn.uint32, ttnn.bfloat16),
], ids=lambda d: d.value)
def test_typecast(dev, src, dst):
    x = torch.randint(0, 100, (4, 40)).float() if not src.is_float or not dst.is_float else torch.randn(4, 40)
    t = ttnn.from_torch(x, dtype=src, layout=TILE, device=dev)
    src_vals = ttnn.to_torch(t).to(torch.float32)
    out = ttnn.typecast(t, dst)
    assert out.dtype is dst and out.layout is TILE and out.shape == (4, 40)
    got = ttnn.to_torch(out).to(torch.float32)
    if dst is ttnn.bfloat8_b:
        assert ((got - src_vals).abs() <= bfp8_quantum(src_vals)).all()
    elif dst is ttnn.bfloat16:
        assert torch.equal(got, src_vals.to(torch.bfloat16).float())
    else:
        assert torch.equal(got, src_vals)  # float32 holds bf16/bf8_b/int values exactly


def test_typecast_output_tensor(dev):
    x = torch.randn(32, 32)
    t = ttnn.from_torch(x, dtype=ttnn.float32, layout=TILE, device=dev)
    buf = ttnn.allocate_tensor_on_device((32, 32), ttnn.bfloat16, TILE, dev)
    assert ttnn.typecast(t, ttnn.bfloat16, output_tensor=buf) is buf
    assert torch.equal(ttnn.to_torch(buf), x.to(torch.bfloat16))
    f32 = ttnn.allocate_tensor_on_device((32, 32), ttnn.float32, TILE, dev)
    ttnn.typecast(t, ttnn.float32, output_tensor=f32)
    ttnn.copy(ttnn.from_torch(torch.zeros(32, 32), dtype=ttnn.float32, layout=TILE, device=dev), t)
    assert torch.equal(ttnn.to_torch(f32), x)  # the buffer does not alias the input


# ---------------------------------------------------------------------------------------------
# memory configs, sharding


def test_to_memory_config(dev):
    x = torch.randn(2, 32, 64)
    t = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=TILE, device=dev)
    l1 = ttnn.to_memory_config(t, ttnn.L1_MEMORY_CONFIG)
    assert l1 is not t and l1.memory_config() == ttnn.L1_MEMORY_CONFIG and t.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    assert torch.equal(ttnn.to_torch(l1), ttnn.to_torch(t))
    f32 = ttnn.to_memory_config(t, ttnn.DRAM_MEMORY_CONFIG, dtype=ttnn.float32)
    assert f32.dtype is ttnn.float32 and torch.equal(ttnn.to_torch(f32), x.to(torch.bfloat16).float())


@pytest.mark.parametrize("dst_dtype", [ttnn.float32, ttnn.bfloat16], ids=lambda d: d.value)
def test_to_memory_config_into_fixed_buffer(dev, dst_dtype):
    """The trace-input pattern (§9): refresh a preallocated buffer in place; the buffer stays the same object."""
    fixed = ttnn.allocate_tensor_on_device((1, 32, 64), dst_dtype, TILE, dev, ttnn.L1_MEMORY_CONFIG)
    before = dev.allocated_bytes
    for step in range(2):
        x = torch.randn(1, 32, 64) + step
        src = ttnn.from_torch(x, dtype=ttnn.float32, layout=TILE, device=dev)
        assert ttnn.to_memory_config(src, ttnn.L1_MEMORY_CONFIG, output_tensor=fixed) is fixed
        assert fixed.memory_config() == ttnn.L1_MEMORY_CONFIG and fixed.dtype is dst_dtype
        assert torch.equal(ttnn.to_torch(fixed).float(), stored(x, dst_dtype.value))
        ttnn.deallocate(src)
        assert dev.allocated_bytes == before
    # the buffer owns its values: the source changing later does not show through
    src = ttnn.from_torch(torch.ones(1, 32, 64), dtype=dst_dtype, layout=TILE, device=dev)
    ttnn.to_memory_config(src, ttnn.L1_MEMORY_CONFIG, output_tensor=fixed)
    ttnn.copy(ttnn.from_torch(torch.zeros(1, 32, 64), dtype=dst_dtype, layout=TILE, device=dev), src)
    assert (ttnn.to_torch(fixed) == 1).all()


@pytest.mark.parametrize("strategy, shard, layout", [
    (ttnn.ShardStrategy.HEIGHT, (32, 128), ttnn.TensorMemoryLayout.HEIGHT_SHARDED),
    (ttnn.ShardStrategy.WIDTH, (128, 32), ttnn.TensorMemoryLayout.WIDTH_SHARDED),
    (ttnn.ShardStrategy.BLOCK, (64, 64), ttnn.TensorMemoryLayout.BLOCK_SHARDED),
], ids=lambda v: getattr(v, "name", None))
def test_sharding_round_trip(dev, strategy, shard, layout):
    x = torch.randn(1, 2, 64, 128)  # every strategy's shards are whole tiles (a TILE tensor needs that)
    grid = ttnn.CoreGrid(y=2, x=2)
    mc = ttnn.create_sharded_memory_config(x.shape, grid, strategy)
    assert mc.is_sharded and mc.memory_layout is layout and mc.buffer_type is ttnn.BufferType.L1
    assert mc.shard_spec.grid == grid and mc.shard_spec.shape == shard
    assert mc.shard_spec.orientation is ttnn.ShardOrientation.ROW_MAJOR
    t = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=TILE, device=dev)
    sharded = ttnn.interleaved_to_sharded(t, mc)
    assert sharded.memory_config() == mc and torch.equal(ttnn.to_torch(sharded), ttnn.to_torch(t))
    inter = ttnn.sharded_to_interleaved(sharded)
    assert inter.memory_config() == ttnn.DRAM_MEMORY_CONFIG and torch.equal(ttnn.to_torch(inter), ttnn.to_torch(t))
    l1 = ttnn.sharded_to_interleaved(sharded, ttnn.L1_MEMORY_CONFIG)
    assert l1.memory_config() == ttnn.L1_MEMORY_CONFIG


def test_create_sharded_memory_config_shard_shape_and_orientation():
    mc = ttnn.create_sharded_memory_config((1, 3, 32, 64), ttnn.CoreGrid(y=1, x=3), ttnn.ShardStrategy.HEIGHT,
                                           ttnn.ShardOrientation.COL_MAJOR, use_height_and_width_as_shard_shape=True)
    assert mc.shard_spec.shape == (32, 64) and mc.shard_spec.orientation is ttnn.ShardOrientation.COL_MAJOR
    # uneven split rounds the shard up
    mc = ttnn.create_sharded_memory_config((1, 1, 100, 64), ttnn.CoreGrid(y=1, x=3), ttnn.ShardStrategy.HEIGHT)
    assert mc.shard_spec.shape == (34, 64)


# ---------------------------------------------------------------------------------------------
# clone, deallocate, allocate, copies


def test_clone(dev):
    x = torch.randn(32, 48)
    t = ttnn.from_torch(x, dtype=ttnn.float32, layout=TILE, device=dev)
    c = ttnn.clone(t)
    assert c is not t and c.dtype is t.dtype and c.layout is t.layout and torch.equal(ttnn.to_torch(c), x)
    ttnn.copy(ttnn.from_torch(torch.zeros(32, 48), dtype=ttnn.float32, layout=TILE, device=dev), c)
    assert torch.equal(ttnn.to_torch(t), x)  # independent storage
    c16 = ttnn.clone(t, dtype=ttnn.bfloat16, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert c16.dtype is ttnn.bfloat16 and c16.memory_config() == ttnn.L1_MEMORY_CONFIG
    assert torch.equal(ttnn.to_torch(c16), x.to(torch.bfloat16))


@pytest.mark.parametrize("use", [
    lambda t: t.shape, lambda t: t.padded_shape, lambda t: ttnn.to_torch(t), lambda t: ttnn.add(t, 1.0),
    lambda t: ttnn.clone(t), lambda t: ttnn.from_device(t), lambda t: ttnn.reshape(t, (64, 16)),
    lambda t: ttnn.linear(t, t), lambda t: ttnn.to_memory_config(t, ttnn.L1_MEMORY_CONFIG),
], ids=["shape", "padded_shape", "to_torch", "add", "clone", "from_device", "reshape", "linear", "to_memory_config"])
def test_deallocate_frees_and_later_use_raises(dev, use):
    t = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16, layout=TILE, device=dev)
    assert t.is_allocated() and dev.allocated_bytes == 32 * 32 * 2
    ttnn.deallocate(t)
    assert not t.is_allocated() and dev.allocated_bytes == 0
    ttnn.deallocate(t)  # idempotent
    assert dev.allocated_bytes == 0
    assert "deallocated" in repr(t)
    with pytest.raises(TTNNContractError, match="deallocated"):
        use(t)


@pytest.mark.parametrize("dtype, layout", [
    (ttnn.bfloat16, TILE), (ttnn.float32, RM), (ttnn.bfloat8_b, TILE), (ttnn.uint32, RM), (ttnn.int32, TILE),
], ids=lambda v: getattr(v, "value", None) or getattr(v, "name", None))
def test_allocate_tensor_on_device(dev, dtype, layout):
    t = ttnn.allocate_tensor_on_device(ttnn.Shape([2, 40, 64]), dtype, layout, dev, ttnn.L1_MEMORY_CONFIG)
    assert t.shape == (2, 40, 64) and t.dtype is dtype and t.layout is layout
    assert t.memory_config() == ttnn.L1_MEMORY_CONFIG and t.device() is dev
    assert dev.allocated_bytes == int(math.prod(t.padded_shape) * dtype.itemsize)
    assert (ttnn.to_torch(t) == 0).all()
    d = ttnn.allocate_tensor_on_device((32, 32), dtype, layout, dev)
    assert d.memory_config() == ttnn.DRAM_MEMORY_CONFIG


@pytest.mark.parametrize("dtype, layout", [(ttnn.bfloat16, RM), (ttnn.float32, TILE), (ttnn.bfloat8_b, TILE),
                                           (ttnn.uint32, RM)], ids=["bf16-rm", "f32-tile", "bf8b-tile", "u32-rm"])
def test_copy_host_to_device_tensor(dev, dtype, layout):
    dst = ttnn.allocate_tensor_on_device((4, 64), dtype, layout, dev)
    before = dev.allocated_bytes
    x = torch.randint(0, 9, (4, 64)) if dtype is ttnn.uint32 else torch.randn(4, 64)
    src = ttnn.from_torch(x, dtype=dtype, layout=layout)
    assert ttnn.copy_host_to_device_tensor(src, dst) is dst
    assert torch.equal(ttnn.to_torch(dst), ttnn.to_torch(src)) and dev.allocated_bytes == before


def test_copy_casts_to_destination_dtype(dev):
    x = torch.randn(32, 64)
    src = ttnn.from_torch(x, dtype=ttnn.float32, layout=TILE, device=dev)
    dst = ttnn.allocate_tensor_on_device((32, 64), ttnn.bfloat16, TILE, dev)
    assert ttnn.copy(src, dst) is dst
    assert dst.dtype is ttnn.bfloat16 and torch.equal(ttnn.to_torch(dst), x.to(torch.bfloat16))
    dst8 = ttnn.allocate_tensor_on_device((32, 64), ttnn.bfloat8_b, TILE, dev)
    ttnn.copy(src, dst8)
    assert ((ttnn.to_torch(dst8) - x).abs() <= bfp8_quantum(x)).all()


# ---------------------------------------------------------------------------------------------
# buffers own their values (in-place device ops must not write through to other tensors)


def _write_row(cache: ttnn.Tensor, make_value: float, pos: int) -> None:
    b, nkv, _, dh = cache.shape
    mc = ttnn.create_sharded_memory_config((1, b, 32, dh), ttnn.CoreGrid(y=1, x=b), ttnn.ShardStrategy.HEIGHT)
    x = ttnn.from_torch(torch.full((1, b, 32, dh), make_value), dtype=ttnn.bfloat16, layout=TILE,
                        device=cache.device(), memory_config=mc)
    ttnn.experimental.paged_update_cache(cache, x, update_idxs=[pos] * b)


def test_device_buffers_do_not_alias(dev):
    zeros = torch.zeros(1, 1, 8, 32)
    k = ttnn.from_torch(zeros, dtype=ttnn.float32, layout=TILE, device=dev)
    v = ttnn.from_torch(zeros, dtype=ttnn.float32, layout=TILE, device=dev)
    host = ttnn.from_torch(zeros, dtype=ttnn.float32, layout=TILE)
    up = ttnn.to_device(host, dev)
    snapshot = ttnn.to_torch(k)
    moved = ttnn.to_memory_config(k, ttnn.L1_MEMORY_CONFIG)
    read_back = ttnn.from_device(k)
    _write_row(k, 1.0, 3)
    _write_row(up, 2.0, 0)
    assert (ttnn.to_torch(k)[0, 0, 3] == 1).all() and ttnn.to_torch(k).sum() == 32
    for other in (zeros, snapshot, ttnn.to_torch(v), ttnn.to_torch(moved), ttnn.to_torch(read_back),
                  ttnn.to_torch(host)):
        assert (other == 0).all()


# ---------------------------------------------------------------------------------------------
# storage rounding


def test_bfloat16_rounding_matches_torch():
    x = torch.cat([torch.randn(4096) * torch.exp2(torch.randint(-60, 60, (4096,)).float()),
                   torch.tensor([0.0, -0.0, 1.0, 65504.0, 3.0e38, -1e-30, float("inf"), float("-inf")])])
    t = ttnn.from_torch(x, dtype=ttnn.bfloat16)
    assert torch.equal(ttnn.to_torch(t).float(), x.to(torch.bfloat16).float())
    # round to nearest, ties to even: 1 + 2^-8 is halfway between 1 and 1 + 2^-7
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 1 + 2**-8 + 2**-20])
    got = ttnn.to_torch(ttnn.from_torch(ties, dtype=ttnn.bfloat16)).float()
    assert got.tolist() == [1.0, 1 + 2**-6, -1.0, 1 + 2**-7]


@pytest.mark.parametrize("width", [64, 40, 5])
def test_bfloat8_b_error_bounded_by_block_max(width):
    """bf8_b: one shared exponent per 16 values along the last dim, sign + 7-bit mantissa per value.

    With E = floor(log2(block max)), every stored value is k * 2**(E-6) with |k| <= 127: the error is at most
    half a step (round to nearest), one step for values above 127 steps (saturated), so always <= max/64.
    """
    scale = torch.exp2(torch.randint(-20, 20, (8, 3, (width + 15) // 16, 1)).float())
    x = (torch.randn(8, 3, (width + 15) // 16, 16) * scale).reshape(8, 3, -1)[..., :width].contiguous()
    x[0, 0, :16] = 0.0  # an all-zero block
    x[1, 1, 3] = 0.0  # a zero inside a non-zero block
    q = ttnn.to_torch(ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=TILE))
    step, bmax = bfp8_quantum(x), block_max(x)
    err = (q - x).abs()
    assert (err <= bmax * 2**-6).all()
    assert (err <= step).all()
    unsaturated = x.abs() <= 127 * step
    assert (err[unsaturated] <= step[unsaturated] / 2).all()
    nz = step > 0
    k = q[nz] / step[nz]
    assert torch.equal(k, k.round()) and (k.abs() <= 127).all()  # on the block's grid
    assert (q[x == 0] == 0).all() and (q[0, 0, :16] == 0).all()


def test_bfloat8_b_blocks_are_independent_and_flush_small_values():
    x = torch.ones(1, 32) * 0.001
    x[0, 0] = 1000.0  # first block: 0.001 is far below the 1000-block's step and flushes to zero
    q = ttnn.to_torch(ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=TILE))
    assert q[0, 0] == 1000.0 and (q[0, 1:16] == 0).all()
    # the second block keeps its own exponent: half a step of a 0.001-block
    assert ((q[0, 16:] - x[0, 16:]).abs() <= bfp8_quantum(x[:, 16:]) / 2).all() and (q[0, 16:] != 0).all()


# ---------------------------------------------------------------------------------------------
# device byte accounting


@pytest.mark.parametrize("shape, dtype, layout, nbytes", [
    ((2, 33, 65), ttnn.float32, TILE, 2 * 64 * 96 * 4),
    ((2, 33, 65), ttnn.float32, RM, 2 * 33 * 65 * 4),
    ((3, 5), ttnn.bfloat16, RM, 3 * 5 * 2),
    ((3, 5), ttnn.bfloat16, TILE, 32 * 32 * 2),
    ((32, 32), ttnn.bfloat8_b, TILE, 1088),  # 1024 mantissas + 64 shared exponents per tile
    ((7,), ttnn.uint32, RM, 7 * 4),
    ((4, 64), ttnn.int32, TILE, 32 * 64 * 4),
], ids=["f32-tile", "f32-rm", "bf16-rm", "bf16-tile", "bf8b-tile", "u32-rm", "i32-tile"])
def test_allocated_bytes_count_padded_bytes(dev, shape, dtype, layout, nbytes):
    x = torch.randint(0, 5, shape) if not dtype.is_float else torch.randn(shape)
    t = ttnn.from_torch(x, dtype=dtype, layout=layout, device=dev)
    assert dev.allocated_bytes == dev.peak_bytes == nbytes
    host = ttnn.from_torch(x, dtype=dtype, layout=layout)
    assert dev.allocated_bytes == nbytes  # host tensors do not count
    ttnn.deallocate(t)
    assert dev.allocated_bytes == 0 and dev.peak_bytes == nbytes
    del host


def test_peak_bytes_and_garbage_collection(dev):
    a = ttnn.allocate_tensor_on_device((32, 32), ttnn.float32, TILE, dev)  # 4096 B
    b = ttnn.allocate_tensor_on_device((64, 32), ttnn.bfloat16, TILE, dev)  # 4096 B
    assert dev.allocated_bytes == dev.peak_bytes == 8192
    ttnn.deallocate(a)
    assert dev.allocated_bytes == 4096 and dev.peak_bytes == 8192
    dev.reset_peak()
    assert dev.peak_bytes == 4096
    c = ttnn.add(b, 1.0)  # op outputs count too
    assert dev.allocated_bytes == 8192 and dev.peak_bytes == 8192
    del b, c  # dropped without deallocate: freed when collected
    gc.collect()
    assert dev.allocated_bytes == 0
    tmp = [ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.float32, layout=TILE, device=dev) for _ in range(3)]
    assert dev.allocated_bytes == 3 * 4096
    del tmp
    gc.collect()
    assert dev.allocated_bytes == 0 and dev.peak_bytes == 3 * 4096


def test_devices_count_separately():
    d1, d2 = ttnn.open_device(0), ttnn.open_device(1)
    t = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16, layout=TILE, device=d1)
    u = ttnn.to_device(ttnn.from_device(t), d2)
    assert d1.allocated_bytes == d2.allocated_bytes == 2048
    ttnn.deallocate(t)
    assert d1.allocated_bytes == 0 and d2.allocated_bytes == 2048
    del u


# ---------------------------------------------------------------------------------------------
# contract rejections


def _closed(make):
    d = ttnn.open_device(1)
    ttnn.close_device(d)
    return d


REJECTIONS = [
    # from_torch / to_torch
    ("from_torch-list", lambda m: ttnn.from_torch([1.0, 2.0]), "expected a torch.Tensor or numpy array"),
    ("from_torch-int64-no-dtype", lambda m: ttnn.from_torch(torch.arange(4)), "has no ttnn equivalent"),
    ("from_torch-float64-no-dtype", lambda m: ttnn.from_torch(torch.zeros(2, dtype=torch.float64)),
     "has no ttnn equivalent"),
    ("from_torch-bf8b-rm", lambda m: ttnn.from_torch(torch.zeros(32, 32), dtype=ttnn.bfloat8_b),
     "bfloat8_b exists only in TILE layout"),
    ("from_torch-bf4b-rm", lambda m: ttnn.from_torch(torch.zeros(32, 32), dtype=ttnn.bfloat4_b, layout=RM),
     "bfloat4_b exists only in TILE layout"),
    ("from_torch-spec-and-dtype", lambda m: ttnn.from_torch(torch.zeros(2), dtype=ttnn.float32, spec=object()),
     "spec cannot be combined"),
    ("from_torch-col-tilize-bf16", lambda m: ttnn.from_torch(torch.zeros(32, 32), dtype=ttnn.bfloat16, layout=TILE,
                                                           col_tilize=True), "col_tilize=True needs"),
    ("from_torch-numpy-float64", lambda m: ttnn.from_torch(np.zeros(3)), "torch.float64 has no ttnn equivalent"),
    ("from_torch-closed-device", lambda m: ttnn.from_torch(torch.zeros(2), device=_closed(m)),
     "device must be an open ttnn device"),
    ("from_torch-memcfg-no-device", lambda m: ttnn.from_torch(torch.zeros(2), memory_config=ttnn.L1_MEMORY_CONFIG),
     "memory_config= needs device="),
    ("to_torch-not-tensor", lambda m: ttnn.to_torch(torch.zeros(2)), "expected a ttnn.Tensor"),
    ("to_torch-deallocated", lambda m: ttnn.to_torch(m.freed(32, 32)), "deallocated"),
    # to_device / from_device
    ("to_device-not-tensor", lambda m: ttnn.to_device(torch.zeros(2), m.device), "expected a ttnn.Tensor"),
    ("to_device-closed", lambda m: ttnn.to_device(m.host(2, 2), _closed(m)), "device must be an open ttnn device"),
    ("to_device-deallocated", lambda m: ttnn.to_device(m.freed(32, 32), m.device), "deallocated"),
    ("from_device-host", lambda m: ttnn.from_device(m.host(2, 2)), "must be on device"),
    # to_layout / typecast
    ("to_layout-deallocated", lambda m: ttnn.to_layout(m.freed(32, 32), RM), "tensor was deallocated"),
    ("to_layout-deallocated-dtype", lambda m: ttnn.to_layout(m.freed(32, 32), TILE, dtype=ttnn.bfloat16),
     "tensor was deallocated"),
    ("to_layout-bad-layout", lambda m: ttnn.to_layout(m.tile(32, 32), "TILE"), "layout must be"),
    ("to_layout-dtype-change-rm", lambda m: ttnn.to_layout(m.tile(32, 32), RM, dtype=ttnn.bfloat16),
     "a dtype change needs a TILE layout"),
    ("to_layout-bf8b-to-rm", lambda m: ttnn.to_layout(m.tile(32, 32, dtype=ttnn.bfloat8_b), RM),
     "bfloat8_b exists only in TILE layout"),
    ("typecast-host", lambda m: ttnn.typecast(m.host(32, 32), ttnn.bfloat16), "must be on device"),
    ("typecast-bad-dtype", lambda m: ttnn.typecast(m.tile(32, 32), torch.bfloat16), "dtype must be a ttnn dtype"),
    ("typecast-bf8b-rm", lambda m: ttnn.typecast(m.rm(32, 32), ttnn.bfloat8_b), "must be in TILE layout"),
    # memory configs
    ("to_memory_config-not-config", lambda m: ttnn.to_memory_config(m.tile(32, 32), "L1"),
     "memory_config must be a ttnn.MemoryConfig"),
    ("to_memory_config-host", lambda m: ttnn.to_memory_config(m.host(32, 32), ttnn.L1_MEMORY_CONFIG),
     "must be on device"),
    ("to_memory_config-output-shape", lambda m: ttnn.to_memory_config(m.tile(32, 32), ttnn.L1_MEMORY_CONFIG,
                                                                      output_tensor=m.tile(32, 64)),
     "output_tensor must match the input's shape and layout"),
    ("to_memory_config-output-layout", lambda m: ttnn.to_memory_config(m.tile(32, 32), ttnn.L1_MEMORY_CONFIG,
                                                                       output_tensor=m.rm(32, 32)),
     "output_tensor must match the input's shape and layout"),
    ("interleaved_to_sharded-interleaved", lambda m: ttnn.interleaved_to_sharded(m.tile(32, 32), ttnn.L1_MEMORY_CONFIG),
     "must be a sharded memory config"),
    ("interleaved_to_sharded-too-small", lambda m: ttnn.interleaved_to_sharded(
        m.tile(1, 4, 32, 32), ttnn.create_sharded_memory_config((1, 1, 64, 32), ttnn.CoreGrid(y=1, x=2),
                                                               ttnn.ShardStrategy.HEIGHT)), "does not cover 128 rows"),
    ("interleaved_to_sharded-partial-tiles", lambda m: ttnn.interleaved_to_sharded(
        m.tile(1, 2, 32, 24), ttnn.create_sharded_memory_config((32, 24), ttnn.CoreGrid(y=1, x=2),
                                                               ttnn.ShardStrategy.HEIGHT,
                                                               use_height_and_width_as_shard_shape=True)),
     "shard shape [32, 24] must be tile 32x32 sized"),
    ("to_memory_config-partial-tiles", lambda m: ttnn.to_memory_config(
        m.tile(1, 2, 32, 64), ttnn.create_sharded_memory_config((1, 2, 32, 64), ttnn.CoreGrid(y=1, x=4),
                                                               ttnn.ShardStrategy.HEIGHT)),
     "shard shape [16, 64] must be tile 32x32 sized"),
    ("interleaved_to_sharded-host", lambda m: ttnn.interleaved_to_sharded(m.host(32, 32),
                                                                          ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG),
     "must be on device"),
    ("sharded_to_interleaved-host", lambda m: ttnn.sharded_to_interleaved(m.host(32, 32)), "must be on device"),
    # allocation and copies
    ("clone-deallocated", lambda m: ttnn.clone(m.freed(32, 32)), "input_tensor was deallocated"),
    ("clone-host", lambda m: ttnn.clone(m.host(32, 32)), "must be on device"),
    ("reallocate-host", lambda m: ttnn.reallocate(m.host(32, 32)), "must be on device"),
    ("allocate-not-device", lambda m: ttnn.allocate_tensor_on_device((32, 32), ttnn.bfloat16, TILE, "cpu"),
     "device must be a ttnn device"),
    ("allocate-torch-dtype", lambda m: ttnn.allocate_tensor_on_device((32, 32), torch.float32, TILE, m.device),
     "dtype must be a ttnn dtype"),
    ("allocate-bf8b-rm", lambda m: ttnn.allocate_tensor_on_device((32, 32), ttnn.bfloat8_b, RM, m.device),
     "bfloat8_b exists only in TILE layout"),
    ("copy_h2d-src-on-device", lambda m: ttnn.copy_host_to_device_tensor(m.tile(32, 32), m.tile(32, 32)),
     "host_tensor must be a host ttnn.Tensor"),
    ("copy_h2d-dst-host", lambda m: ttnn.copy_host_to_device_tensor(m.host(32, 32), m.host(32, 32)),
     "must be on device"),
    ("copy_h2d-shape", lambda m: ttnn.copy_host_to_device_tensor(m.host(32, 32), m.tile(32, 64)),
     "shape, dtype and layout must match"),
    ("copy_h2d-dtype", lambda m: ttnn.copy_host_to_device_tensor(m.host(32, 32), m.tile(32, 32, dtype=ttnn.bfloat16)),
     "shape, dtype and layout must match"),
    ("copy_h2d-layout", lambda m: ttnn.copy_host_to_device_tensor(m.host(32, 32, layout=RM), m.tile(32, 32)),
     "shape, dtype and layout must match"),
    ("copy-shape", lambda m: ttnn.copy(m.tile(32, 32), m.tile(32, 64)), "shapes must match"),
    ("copy-dst-deallocated", lambda m: ttnn.copy(m.tile(32, 32), m.freed(32, 32)), "input_b was deallocated"),
]


@pytest.mark.parametrize("call, message", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_contract_rejections(dev, call, message):
    assert_rejected(call, dev, message)


@float_dtypes
def test_upload_helper_rounds_like_storage(dev, dtype_name):
    x = torch.randn(8, 8)
    assert torch.equal(ttnn.to_torch(upload(x, dtype_name, dev)).float(), stored(x, dtype_name))
