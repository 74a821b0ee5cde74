"""lower_linear: aten.linear (+ a row) (+ activation) → one ttnn.linear with pre-transposed weight and [1, out] bias."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.graph_utils import const_tensor
from fx2ttnn.passes.lower_linear import LowerLinear

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass

ACTIVATIONS = {"relu": torch.relu, "gelu": nn.functional.gelu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


class LinearAct(nn.Module):
    def __init__(self, activation: str | None, bias: bool = True):
        super().__init__()
        self.lin = nn.Linear(64, 32, bias=bias)
        self.act = ACTIVATIONS[activation] if activation else (lambda x: x)

    def forward(self, x):
        return self.act(self.lin(x))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", [*ACTIVATIONS, None])
def test_linear_and_activation_become_one_ttnn_linear(activation, bias):
    torch.manual_seed(0)
    m, x = LinearAct(activation, bias).eval(), torch.randn(2, 5, 64)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerLinear())

    assert count_ops(gm) == {ops.linear: 1}
    name = f"linear{'_' + activation if activation else ''}"
    assert res.modified and res.stats == {name: 1}
    (node,) = nodes_of(gm, ops.linear)
    assert node.kwargs.get("activation") == activation
    w_t = const_tensor(gm, node.args[1])
    torch.testing.assert_close(w_t, m.lin.weight.detach().t())  # [in, out]: the op computes a @ b
    assert w_t.is_contiguous()
    if bias:
        assert const_tensor(gm, node.kwargs["bias"]).shape == (1, 32)
    else:
        assert "bias" not in node.kwargs
    assert_matches_eager(m, gm, [x])


class TwoUsers(nn.Module):
    """The linear's output feeds the activation and a residual add: the activation can't be fused."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(32, 32)

    def forward(self, x):
        h = self.lin(x)
        return torch.relu(h) + h


def test_linear_with_other_users_is_lowered_without_activation():
    torch.manual_seed(0)
    m, x = TwoUsers().eval(), torch.randn(3, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerLinear())

    assert count_ops(gm) == {ops.linear: 1, aten.relu.default: 1, aten.add.Tensor: 1}
    assert res.stats == {"linear": 1}  # SubgraphMatcher never offers linear+relu: `h` escapes the match
    assert "activation" not in nodes_of(gm, ops.linear)[0].kwargs
    assert_matches_eager(m, gm, [x])


class ComputedWeight(nn.Module):
    def forward(self, x, w):
        return nn.functional.linear(x, w)


class ComputedBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(32, 64))

    def forward(self, x, b):
        return nn.functional.linear(x, self.weight, b)


@pytest.mark.parametrize("module, inputs, pattern, reason", [
    (ComputedWeight(), (torch.randn(4, 64), torch.randn(32, 64)), "linear", "weight is not a constant"),
    (ComputedBias(), (torch.randn(4, 64), torch.randn(32)), "linear", "bias is not a constant"),
], ids=["weight", "bias"])
def test_linear_with_non_constant_parameters_is_not_lowered(module, inputs, pattern, reason):
    gm = capture_module(module.eval(), *inputs)

    res = run_pass(gm, LowerLinear())

    assert count_ops(gm) == {aten.linear.default: 1}
    assert not res.modified and res.stats == {f"{pattern}_declined": 1}
    (node,) = nodes_of(gm, aten.linear.default)
    assert reason in node.meta["lowering_note"]
    assert_matches_eager(module, gm, list(inputs))


class TanhGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(32, 32)

    def forward(self, x):
        return nn.functional.gelu(self.lin(x), approximate="tanh")


def test_tanh_approximate_gelu_is_not_fused():
    torch.manual_seed(0)
    m, x = TanhGelu().eval(), torch.randn(3, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerLinear())

    assert count_ops(gm) == {ops.linear: 1, aten.gelu.default: 1}
    assert res.stats == {"linear": 1}
    assert "activation" not in nodes_of(gm, ops.linear)[0].kwargs
    assert_matches_eager(m, gm, [x])


class LinearPlusGatheredRow(nn.Module):
    """The decode step's ``final_layer(x) + alpha * pe[position]``, after fold_constants scaled the table."""

    def __init__(self, act: str | None):
        super().__init__()
        self.lin = nn.Linear(64, 32)
        self.register_buffer("table", torch.randn(16, 32))
        self.act = ACTIVATIONS[act] if act else (lambda x: x)

    def forward(self, x, pos):
        return self.act(self.lin(x) + self.table.index_select(0, pos))


@pytest.mark.parametrize("activation", ["relu", None])
def test_gathered_row_becomes_the_bias_with_the_linear_bias_folded_into_the_table(activation):
    torch.manual_seed(0)
    m, x, pos = LinearPlusGatheredRow(activation).eval(), torch.randn(1, 1, 64), torch.tensor([5])
    gm = capture_module(m, x, pos)

    res = run_pass(gm, LowerLinear())

    assert res.stats == {f"linear_row{'_' + activation if activation else ''}": 1}
    assert count_ops(gm) == {ops.linear: 1, aten.index_select.default: 1}
    (node,) = nodes_of(gm, ops.linear)
    gather = node.kwargs["bias"]
    assert gather.target is aten.index_select.default
    torch.testing.assert_close(const_tensor(gm, gather.args[0]), m.table + m.lin.bias.detach())
    assert_matches_eager(m, gm, [x, pos])


class LinearPlusInputRow(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 32)

    def forward(self, x, row):
        return torch.relu(self.lin(x) + row)


def test_input_row_becomes_the_bias_plus_the_linear_bias():
    torch.manual_seed(0)
    m, x, row = LinearPlusInputRow().eval(), torch.randn(1, 1, 64), torch.randn(1, 1, 32)
    gm = capture_module(m, x, row)

    res = run_pass(gm, LowerLinear())

    assert res.stats == {"linear_row_relu": 1}
    assert count_ops(gm) == {ops.linear: 1, aten.view.default: 1, aten.add.Tensor: 1}  # [1, 32] row + bias
    assert_matches_eager(m, gm, [x, row])


class LinearPlusFullTensor(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 32)

    def forward(self, x, y):
        return self.lin(x) + y


def test_a_full_tensor_added_is_not_a_bias():
    torch.manual_seed(0)
    m, x, y = LinearPlusFullTensor().eval(), torch.randn(2, 3, 64), torch.randn(2, 3, 32)
    gm = capture_module(m, x, y)

    res = run_pass(gm, LowerLinear())

    assert res.stats == {"linear_row_declined": 1, "linear": 1}
    assert count_ops(gm) == {ops.linear: 1, aten.add.Tensor: 1}
    assert_matches_eager(m, gm, [x, y])
