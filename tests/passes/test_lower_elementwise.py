"""lower_elementwise: elementwise ATen ops, comparisons, where and sum → one ttnn op each, by table."""
from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Ref
from fx2ttnn.passes.lower_elementwise import LowerElementwise

from .helpers import (aten, assert_matches_eager, capture_module, count_ops, eager, nodes_of, run_lowered,
                      run_pass)


class Binary(nn.Module):
    def __init__(self, fn, scalar: bool):
        super().__init__()
        self.fn, self.scalar = fn, scalar

    def forward(self, a, b):
        return self.fn(a, 0.5 if self.scalar else b)


BINARY = [  # (python op, aten op it captures as, ttnn op)
    (operator.add, aten.add.Tensor, ops.add), (operator.sub, aten.sub.Tensor, ops.subtract),
    (operator.mul, aten.mul.Tensor, ops.multiply), (operator.truediv, aten.div.Tensor, ops.divide),
    (operator.ge, None, ops.ge), (operator.gt, None, ops.gt), (operator.lt, None, ops.lt),
]
_CMP = {(operator.ge, False): aten.ge.Tensor, (operator.ge, True): aten.ge.Scalar,
        (operator.gt, False): aten.gt.Tensor, (operator.gt, True): aten.gt.Scalar,
        (operator.lt, False): aten.lt.Tensor, (operator.lt, True): aten.lt.Scalar}


@pytest.mark.parametrize("scalar", [False, True], ids=["tensor", "scalar"])
@pytest.mark.parametrize("fn, aten_op, ttnn_op", BINARY, ids=[b[0].__name__ for b in BINARY])
def test_binary_ops_lower(fn, aten_op, ttnn_op, scalar):
    torch.manual_seed(0)
    m, a, b = Binary(fn, scalar), torch.randn(2, 4, 32), torch.rand(4, 32) + 0.5  # b broadcasts
    gm = capture_module(m, a, b)
    assert count_ops(gm) == {aten_op or _CMP[fn, scalar]: 1}

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ttnn_op: 1}
    assert res.modified and res.stats == {"binary": 1}
    (node,) = nodes_of(gm, ttnn_op)
    assert node.args[0].name == "x0" and (node.args[1] == 0.5 if scalar else node.args[1].name == "x1")
    assert_matches_eager(m, gm, [a, b])


class Unary(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


UNARY = {  # name: (fn, aten op, ttnn op, kwargs, atol)
    "relu": (torch.relu, aten.relu.default, ops.relu, {}, 1e-6),
    "tanh": (torch.tanh, aten.tanh.default, ops.tanh, {}, 1e-6),
    "sqrt": (torch.sqrt, aten.sqrt.default, ops.sqrt, {}, 1e-6),
    "neg": (torch.neg, aten.neg.default, ops.neg, {}, 1e-6),
    # the contract takes sigmoid/gelu in bf16 only: a float32 program typecasts around them
    "sigmoid": (torch.sigmoid, aten.sigmoid.default, ops.sigmoid, {}, 2e-2),
    "gelu": (nn.functional.gelu, aten.gelu.default, ops.gelu, {}, 2e-2),
    "gelu-tanh": (lambda x: nn.functional.gelu(x, approximate="tanh"), aten.gelu.default, ops.gelu,
                  {"variant": Ref("GeluVariant.Tanh")}, 2e-2),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_ops_lower(name):
    fn, aten_op, ttnn_op, kwargs, atol = UNARY[name]
    torch.manual_seed(0)
    m, x = Unary(fn), torch.rand(2, 4, 32) + 0.1 if name == "sqrt" else torch.randn(2, 4, 32)
    gm = capture_module(m, x)
    assert count_ops(gm) == {aten_op: 1}

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ttnn_op: 1}
    assert res.stats == {"unary": 1}
    (node,) = nodes_of(gm, ttnn_op)
    assert node.kwargs == kwargs
    assert_matches_eager(m, gm, [x], atol=atol, rtol=1e-2)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_keeps_its_slope(slope):
    m, x = Unary(lambda x: nn.functional.leaky_relu(x, slope)), torch.randn(2, 4, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.leaky_relu: 1}
    assert res.stats == {"unary": 1}
    assert nodes_of(gm, ops.leaky_relu)[0].args[1] == slope
    assert_matches_eager(m, gm, [x])


class Where(nn.Module):
    def __init__(self, branches: str):
        super().__init__()
        self.branches = branches

    def forward(self, x, y):
        cond = x > y
        if self.branches == "tensors":
            return torch.where(cond, x, y)
        if self.branches == "scalar-other":
            return torch.where(cond, x, 0.0)
        if self.branches == "scalar-self":
            return torch.where(cond, -1.0, y)
        return torch.where(cond, 1.0, 0.0)


@pytest.mark.parametrize("branches, aten_op", [
    ("tensors", aten.where.self), ("scalar-other", aten.where.ScalarOther), ("scalar-self", aten.where.ScalarSelf),
    ("scalars", aten.where.Scalar),
])
def test_where_lowers_with_tensor_or_scalar_branches(branches, aten_op):
    torch.manual_seed(0)
    m, x, y = Where(branches), torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    gm = capture_module(m, x, y)
    assert count_ops(gm) == {aten.gt.Tensor: 1, aten_op: 1}

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.gt: 1, ops.where: 1}
    assert res.stats == {"binary": 1, "where": 1}
    assert_matches_eager(m, gm, [x, y])


class Sum(nn.Module):
    def __init__(self, dims, keepdim: bool):
        super().__init__()
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        return x.sum(self.dims, keepdim=self.keepdim)


@pytest.mark.parametrize("keepdim", [True, False])
@pytest.mark.parametrize("dims", [[-1], [1, 2]], ids=["last", "two"])
def test_sum_lowers(dims, keepdim):
    torch.manual_seed(0)
    m, x = Sum(dims, keepdim), torch.randn(2, 4, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.sum_: 1}
    assert res.stats == {"sum": 1}
    assert nodes_of(gm, ops.sum_)[0].args[1:] == ((dims[0] if len(dims) == 1 else dims), keepdim)
    assert_matches_eager(m, gm, [x])


class InPlaceAdd(nn.Module):
    """The decode step's ``position.add_(1)`` on its ``[B]`` position input (or another amount)."""

    def __init__(self, amount: int = 1):
        super().__init__()
        self.amount = amount

    def forward(self, position, x):
        position.add_(self.amount)
        return x * 2


def test_position_increment_becomes_plus_one():
    inputs = (torch.tensor([3, 3]), torch.randn(2, 32))
    m = InPlaceAdd()
    gm = capture_module(m, *inputs, names=["position", "x"])

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.plus_one: 1, ops.multiply: 1}
    assert res.stats == {"inplace": 1, "binary": 1}
    (inc,) = nodes_of(gm, ops.plus_one)
    assert inc.args[0].name == "position" and len(inc.args) == 1 and inc.kwargs == {}
    golden, golden_inputs = eager(m, *inputs)
    outs, after = run_lowered(gm, inputs, device_inputs=["position"], return_inputs=True)
    torch.testing.assert_close(outs[0], golden[0])
    torch.testing.assert_close(after[0].long(), golden_inputs[0])


def test_inplace_add_of_another_amount_writes_output_tensor_and_the_contract_refuses_it():
    """ttnn 0.81.1 refuses ``add(x, b, output_tensor=x)`` on a ROW_MAJOR ``x`` (seen through the real bindings); the
    lowering emits it (there is no other in-place add) and the contract check at lowering time refuses it."""
    inputs = (torch.tensor([3, 3]), torch.randn(2, 32))
    m = InPlaceAdd(2)
    gm = capture_module(m, *inputs, names=["position", "x"])

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.add_: 1, ops.multiply: 1}
    assert res.stats == {"inplace": 1, "binary": 1}
    (inc,) = nodes_of(gm, ops.add_)
    assert inc.args[1] == 2 and inc.kwargs == {"output_tensor": inc.args[0]}
    with pytest.raises(TTNNContractError, match="Optional output tensor with Row Major input is not supported"):
        run_lowered(gm, inputs, device_inputs=["position"])


class Alpha(nn.Module):
    def forward(self, a, b):
        return torch.add(a, b, alpha=2) + torch.sub(a, b, alpha=0.5)


def test_alpha_adds_and_subs_are_not_lowered():
    torch.manual_seed(0)
    m, a, b = Alpha(), torch.randn(4, 32), torch.randn(4, 32)
    gm = capture_module(m, a, b)

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {aten.add.Tensor: 1, aten.sub.Tensor: 1, ops.add: 1}
    assert res.stats == {"declined": 2, "binary": 1}
    for node in nodes_of(gm, aten.add.Tensor) + nodes_of(gm, aten.sub.Tensor):
        assert node.meta["lowering_note"] == "declined: alpha != 1"
    assert_matches_eager(m, gm, [a, b])


class Scaled(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x, 2.0)


@pytest.mark.parametrize("fn, aten_op, ttnn_op", [
    (operator.mul, aten.mul.Tensor, ops.multiply), (operator.add, aten.add.Tensor, ops.add),
    (operator.sub, aten.sub.Tensor, None), (operator.truediv, aten.div.Tensor, None),
], ids=["mul", "add", "sub", "div"])
def test_scalar_first_operand(fn, aten_op, ttnn_op):
    """Hand-built ``op(2.0, x)``: commuted for add/mul, declined for the non-commutative sub/div."""
    m, x = Scaled(fn), torch.randn(4, 32)
    gm = capture_module(m, x)
    (node,) = nodes_of(gm, aten_op)
    node.args = (node.args[1], node.args[0])
    gm.recompile()

    res = run_pass(gm, LowerElementwise())

    if ttnn_op is None:
        assert count_ops(gm) == {aten_op: 1}
        assert res.stats == {"declined": 1}
        assert node.meta["lowering_note"] == "declined: scalar first operand of a non-commutative op"
        return
    assert count_ops(gm) == {ttnn_op: 1}
    assert res.stats == {"binary": 1}
    (new,) = nodes_of(gm, ttnn_op)
    assert new.args[0].name == "x0" and new.args[1] == 2.0
    assert_matches_eager(m, gm, [x])


class Untouched(nn.Module):
    def forward(self, x):
        h = x * 2
        h.add_(1)  # an in-place op on an intermediate (canonicalize makes these functional)
        return torch.exp(h)  # not in the tables


def test_inplace_on_intermediate_and_unknown_ops_are_left_alone():
    m, x = Untouched(), torch.randn(4, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerElementwise())

    assert count_ops(gm) == {ops.multiply: 1, aten.add_.Tensor: 1, aten.exp.default: 1}
    assert res.stats == {"binary": 1}
    assert_matches_eager(m, gm, [x])
