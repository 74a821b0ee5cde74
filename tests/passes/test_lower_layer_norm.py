"""lower_layer_norm: aten.layer_norm over the last dim → ttnn.layer_norm with epsilon and [1, W] gamma/beta."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.graph_utils import const_tensor
from fx2ttnn.passes.lower_layer_norm import LowerLayerNorm

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass


class ResidualLayerNorm(nn.Module):
    def __init__(self, eps: float, affine: bool):
        super().__init__()
        self.ln = nn.LayerNorm(64, eps=eps, elementwise_affine=affine)
        if affine:
            with torch.no_grad():
                self.ln.weight.uniform_(0.5, 1.5)
                self.ln.bias.uniform_(-0.5, 0.5)

    def forward(self, x, y):
        return self.ln(x + y)


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_layer_norm_lowers_with_explicit_epsilon(eps, affine):
    torch.manual_seed(0)
    m = ResidualLayerNorm(eps, affine).eval()
    x, y = torch.randn(2, 5, 64), torch.randn(2, 5, 64)
    gm = capture_module(m, x, y)

    res = run_pass(gm, LowerLayerNorm())

    assert count_ops(gm) == {ops.layer_norm: 1}  # the residual add is fused into the op
    assert res.modified and res.stats == {"layer_norm_residual": 1}
    (node,) = nodes_of(gm, ops.layer_norm)
    assert node.kwargs["epsilon"] == eps  # ttnn's default is 1e-12: always passed
    assert node.kwargs["residual_input_tensor"].op == "placeholder"
    if affine:
        torch.testing.assert_close(const_tensor(gm, node.kwargs["weight"]), m.ln.weight.detach().reshape(1, 64))
        torch.testing.assert_close(const_tensor(gm, node.kwargs["bias"]), m.ln.bias.detach().reshape(1, 64))
    else:
        assert "weight" not in node.kwargs and "bias" not in node.kwargs
    assert_matches_eager(m, gm, [x, y])


class TwoDimLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm((4, 32))

    def forward(self, x):
        return self.ln(x)


class ComputedGamma(nn.Module):
    def forward(self, x, gamma):
        return nn.functional.layer_norm(x, (32,), gamma * 2)


@pytest.mark.parametrize("module, inputs, reason", [
    (TwoDimLayerNorm(), (torch.randn(2, 4, 32),), "only over the last dim"),
    (ComputedGamma(), (torch.randn(2, 4, 32), torch.rand(32)), "gamma/beta are not constants"),
], ids=["two-dims", "computed-gamma"])
def test_layer_norm_is_not_lowered(module, inputs, reason):
    gm = capture_module(module.eval(), *inputs)

    res = run_pass(gm, LowerLayerNorm())

    assert count_ops(gm)[aten.layer_norm.default] == 1 and count_ops(gm)[ops.layer_norm] == 0
    assert not res.modified and res.stats == {"layer_norm_declined": 1}
    (node,) = nodes_of(gm, aten.layer_norm.default)
    assert reason in node.meta["lowering_note"]
    assert_matches_eager(module, gm, list(inputs))


class PlainLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(64)

    def forward(self, x):
        return self.ln(x * 2)


class BroadcastResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(64)

    def forward(self, x, row):
        return self.ln(x + row)


class SharedSum(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(64)

    def forward(self, x, y):
        s = x + y
        return self.ln(s) + s


@pytest.mark.parametrize("module, inputs, stats, adds", [
    (PlainLayerNorm(), (torch.randn(2, 5, 64),), {"layer_norm": 1}, 0),
    (BroadcastResidual(), (torch.randn(2, 5, 64), torch.randn(64)),
     {"layer_norm_residual_declined": 1, "layer_norm": 1}, 1),
    (SharedSum(), (torch.randn(2, 5, 64), torch.randn(2, 5, 64)), {"layer_norm": 1}, 2),
], ids=["no-residual", "broadcast-residual-not-fused", "sum-used-elsewhere-not-fused"])
def test_residual_fusion_only_for_a_private_same_shape_add(module, inputs, stats, adds):
    torch.manual_seed(0)
    gm = capture_module(module.eval(), *inputs)

    res = run_pass(gm, LowerLayerNorm())

    assert res.stats == stats
    assert count_ops(gm)[ops.layer_norm] == 1 and count_ops(gm)[aten.add.Tensor] == adds
    assert all("residual_input_tensor" not in n.kwargs for n in nodes_of(gm, ops.layer_norm))
    assert_matches_eager(module, gm, list(inputs))


class BroadcastFirstOperand(nn.Module):
    """LN(a + b) with the broadcast operand first: ``a`` [1, 1, 64], ``b`` [2, 5, 64]."""

    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(64)

    def forward(self, a, b):
        return self.ln(a + b)


@pytest.mark.parametrize("shapes", [((1, 1, 64), (2, 5, 64)), ((2, 5, 64), (1, 1, 64)), ((1, 5, 64), (2, 1, 64))],
                         ids=["first-broadcasts", "second-broadcasts", "both-broadcast"])
def test_residual_is_fused_only_when_both_operands_have_the_output_shape(shapes):
    """residual_input_tensor must match the input's shape (OP_CONTRACT §6): a broadcast add in either operand,
    or in both (each smaller than the sum), stays an add and the layer norm is lowered on its own."""
    torch.manual_seed(0)
    m = BroadcastFirstOperand().eval()
    inputs = [torch.randn(*s) for s in shapes]
    gm = capture_module(m, *inputs)

    res = run_pass(gm, LowerLayerNorm())

    assert res.stats == {"layer_norm_residual_declined": 1, "layer_norm": 1}
    assert count_ops(gm)[ops.layer_norm] == 1 and count_ops(gm)[aten.add.Tensor] == 1
    (node,) = nodes_of(gm, ops.layer_norm)
    assert "residual_input_tensor" not in node.kwargs
    assert_matches_eager(m, gm, inputs)
