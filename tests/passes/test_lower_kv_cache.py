"""lower_kv_cache: the decode step's ``cache.index_copy_(2, pos, k)`` → ttnn.experimental.paged_update_cache."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.errors import LoweringError
from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Construct
from fx2ttnn.passes.lower_kv_cache import LowerKVCache

from .helpers import aten, capture_module, count_ops, eager, finish, nodes_of, run_lowered, run_pass

H, S, DH = 2, 8, 32


class CacheWrite(nn.Module):
    """``PositionKVLayer.update`` (lowering/speecht5.py): write K at ``position[:1]``, then read the whole cache."""

    def forward(self, cache, position, k):
        cache.index_copy_(2, position[:1], k)
        return cache * 2


def _inputs(batch: int, steps: int = 1, dh: int = DH) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(batch, H, S, dh), torch.full((batch,), 3), torch.randn(batch, H, steps, dh)


@pytest.mark.parametrize("dh", [DH, 24], ids=["dh32", "dh24"])
@pytest.mark.parametrize("batch", [1, 2])
def test_cache_write_lowers_to_paged_update_cache(batch, dh):
    """A head dim that is not a multiple of 32 is sharded at its tile-padded width (whole tiles per shard, and
    paged_update_cache wants the shard as wide as the padded row)."""
    torch.manual_seed(0)
    m, inputs = CacheWrite(), _inputs(batch, dh=dh)
    gm = capture_module(m, *inputs, names=["cache", "position", "k"])

    res = run_pass(gm, LowerKVCache())

    assert count_ops(gm) == {ops.reshape: 1, ops.interleaved_to_sharded: 1, ops.paged_update_cache: 1,
                             aten.mul.Tensor: 1}
    assert res.modified and res.stats == {"cache_update": 1}
    (upd,) = nodes_of(gm, ops.paged_update_cache)
    cache, x = upd.args
    assert cache.name == "cache" and upd.kwargs["update_idxs_tensor"].name == "position"  # the [B] device input
    assert x.args[0].args == (gm.graph.find_nodes(op="placeholder", target="k")[0], [1, batch, H, dh])
    sharding = x.args[1]
    assert isinstance(sharding, Construct) and sharding.args == ((32, 32),)  # H and dh padded to tiles; user per core
    # numerics: the returned reader and the cache input, written in place on the device
    golden, golden_inputs = eager(m, *inputs)
    outs, after = run_lowered(gm, inputs, device_inputs=["cache"], return_inputs=True)
    torch.testing.assert_close(outs[0], golden[0])
    torch.testing.assert_close(after[0], golden_inputs[0])


class CopyIntoIntermediate(nn.Module):
    def forward(self, cache, position, k):
        c = cache * 1
        c.index_copy_(2, position[:1], k)
        return c * 2


class FunctionalCopy(nn.Module):
    def forward(self, cache, position, k):
        return cache.index_copy(2, position[:1], k) * 2


class TwoSteps(nn.Module):
    def forward(self, cache, position, k):
        cache.index_copy_(2, position, k)
        return cache * 2


@pytest.mark.parametrize("module, inputs", [
    (CopyIntoIntermediate(), _inputs(1)),
    (FunctionalCopy(), _inputs(1)),
    (TwoSteps(), (torch.randn(1, H, S, DH), torch.tensor([2, 5]), torch.randn(1, H, 2, DH))),
], ids=["into-intermediate", "functional", "two-positions"])
def test_other_cache_writes_are_not_lowered(module, inputs):
    gm = capture_module(module, *inputs, names=["cache", "position", "k"])

    res = run_pass(gm, LowerKVCache())

    assert count_ops(gm)[ops.paged_update_cache] == 0
    assert not res.modified and res.stats == {"declined": 1}
    note = next(n.meta["lowering_note"] for n in gm.graph.nodes if "lowering_note" in n.meta)
    assert note.startswith("cache update declined")
    if isinstance(module, TwoSteps):  # an input written on the host: insert_host_fallbacks refuses it
        with pytest.raises(LoweringError, match="writes program input 'cache' in place"):
            finish(gm, inputs, device_inputs=["cache"])
        return
    golden, _ = eager(module, *inputs)
    torch.testing.assert_close(run_lowered(gm, inputs)[0], golden[0])


class CacheWriteDim1(nn.Module):
    def forward(self, cache, position, k):
        cache.index_copy_(1, position[:1], k)
        return cache * 2


def test_cache_write_along_other_dim_is_not_lowered_and_cannot_fall_back():
    inputs = (torch.randn(1, H, S, DH), torch.tensor([1]), torch.randn(1, 1, S, DH))
    gm = capture_module(CacheWriteDim1(), *inputs, names=["cache", "position", "k"])

    res = run_pass(gm, LowerKVCache())

    assert count_ops(gm)[aten.index_copy_.default] == 1
    assert res.stats == {"declined": 1}
    with pytest.raises(LoweringError, match="index_copy_.* writes program input 'cache'.*cache update declined"):
        finish(gm, inputs, device_inputs=["cache"])
