"""insert_host_fallbacks: every ATen op left after lowering becomes an explicit, reported HostOp."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.errors import LoweringError
from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import HostOp, source_module
from fx2ttnn.passes.insert_host_fallbacks import InsertHostFallbacks
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_layer_norm import LowerLayerNorm

from .helpers import (ConvRelu, Host, aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass,
                      run_passes)


def test_unlowered_conv_becomes_a_reported_host_fallback():
    torch.manual_seed(0)
    m, x = ConvRelu().eval(), torch.randn(1, 4, 16)
    gm = run_passes(capture_module(m, x), LowerElementwise())

    res = run_pass(gm, InsertHostFallbacks())

    assert count_ops(gm) == {Host(aten.conv1d.default): 1, ops.relu: 1}
    assert res.modified and res.stats == {"host_fallbacks": 1}
    (conv,) = [n for n in gm.graph.nodes if isinstance(n.target, HostOp)]
    assert conv.meta["fallback_reason"] == "no ttnn lowering for aten.conv1d.default"
    assert conv.meta["source_op"] == "aten.conv1d.default"
    assert source_module(conv) == "conv"  # reported with the HF module it came from
    assert_matches_eager(m, gm, [x])


class TwoDimLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm((4, 32))

    def forward(self, x):
        return self.ln(x)


def test_fallback_reason_is_the_declining_lowerings_note():
    m, x = TwoDimLayerNorm().eval(), torch.randn(2, 4, 32)
    gm = run_passes(capture_module(m, x), LowerLayerNorm())

    res = run_pass(gm, InsertHostFallbacks())

    assert res.stats == {"host_fallbacks": 1}
    (ln,) = [n for n in gm.graph.nodes if isinstance(n.target, HostOp)]
    assert ln.meta["fallback_reason"].startswith("layer_norm declined: normalizes over [4, 32]")
    assert_matches_eager(m, gm, [x])


def test_graph_without_aten_ops_is_unchanged():
    m, x = nn.ReLU(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), LowerElementwise())

    res = run_pass(gm, InsertHostFallbacks())

    assert count_ops(gm) == {ops.relu: 1}
    assert not res.modified and res.stats == {}


class ScaleInput(nn.Module):
    def forward(self, x, y):
        x.mul_(2)
        return x + y


def test_inplace_write_to_program_input_without_lowering_raises():
    gm = capture_module(ScaleInput(), torch.randn(4, 32), torch.randn(4, 32), names=["state", "y"])

    with pytest.raises(LoweringError, match=r"aten\.mul_\.Tensor writes program input 'state' in place"):
        InsertHostFallbacks()(gm)


class ReadAfterWrite(nn.Module):
    def forward(self, x):
        h = x * 2
        h.add_(1)
        return h * 3


def test_readers_after_an_inplace_fallback_read_its_result():
    """Hand-built: the reader reads the written tensor ``h`` itself; ``h`` lives on device, the write on host."""
    m, x = ReadAfterWrite(), torch.randn(4, 32)
    gm = capture_module(m, x)
    (write,) = nodes_of(gm, aten.add_.Tensor)
    (reader,) = list(write.users)
    reader.replace_input_with(write, write.args[0])
    gm = run_passes(gm, LowerElementwise())  # h = ttnn.multiply(x, 2), reader = ttnn.multiply(h, 3)

    res = run_pass(gm, InsertHostFallbacks())

    assert res.stats == {"host_fallbacks": 1}
    (write,) = [n for n in gm.graph.nodes if isinstance(n.target, HostOp)]
    assert [u.target for u in write.users] == [ops.multiply]
    assert_matches_eager(m, gm, [x])


class MaxValues(nn.Module):
    def forward(self, x):
        values, _ = x.max(0)
        return values * 2


def test_tuple_valued_fallback_runs():
    m, x = MaxValues(), torch.randn(4, 32)
    gm = capture_module(m, x)
    run_pass(gm, InsertHostFallbacks())
    assert_matches_eager(m, gm, [x])
