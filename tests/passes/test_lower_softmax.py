"""lower_softmax: aten.softmax / aten._softmax → ttnn.softmax(x, dim)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.lower_softmax import LowerSoftmax

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass


class MaskedSoftmax(nn.Module):
    def __init__(self, dim: int, internal: bool):
        super().__init__()
        self.dim, self.internal = dim, internal

    def forward(self, scores, mask):
        x = scores + mask
        if self.internal:
            return torch.ops.aten._softmax.default(x, self.dim, False)
        return torch.softmax(x, dim=self.dim)


@pytest.mark.parametrize("internal", [False, True], ids=["softmax", "_softmax"])
@pytest.mark.parametrize("dim", [-1, 1])
def test_softmax_lowers(dim, internal):
    torch.manual_seed(0)
    m, scores, mask = MaskedSoftmax(dim, internal), torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    gm = capture_module(m, scores, mask)
    aten_op = aten._softmax.default if internal else aten.softmax.int
    assert count_ops(gm) == {aten_op: 1, aten.add.Tensor: 1}

    res = run_pass(gm, LowerSoftmax())

    assert count_ops(gm) == {ops.softmax: 1, aten.add.Tensor: 1}
    assert res.modified and res.stats == {"softmax": 1}
    (node,) = nodes_of(gm, ops.softmax)
    assert node.args[1] == dim and node.kwargs == {}
    assert_matches_eager(m, gm, [scores, mask])


def test_upcasting_softmax_is_not_lowered():
    """Hand-built ``_softmax(x, -1, half_to_float=True)`` (CPU eager can't run it, so no numerics)."""
    m, scores, mask = MaskedSoftmax(-1, True), torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    gm = capture_module(m, scores, mask)
    (node,) = nodes_of(gm, aten._softmax.default)
    node.args = (node.args[0], node.args[1], True)

    res = run_pass(gm, LowerSoftmax())

    assert count_ops(gm) == {aten._softmax.default: 1, aten.add.Tensor: 1}
    assert not res.modified and res.stats == {}
    assert node.meta["lowering_note"] == "softmax declined: half_to_float"
