"""canonicalize: no-op removal, dropout at inference, in-place → functional, broadcasting expands."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.passes.canonicalize import Canonicalize

from .helpers import aten, assert_matches_eager, capture_module, count_ops, finish, nodes_of, run_pass


class NoOps(nn.Module):
    """Every value here is ``x``: identity ops, same-dtype ``to``, same-shape views/slices (and one real clone)."""

    def forward(self, x):
        a, b, c = x.contiguous(), x.detach(), x.to(torch.float32)
        d, e, f, g = x.view(2, 5), x.reshape(2, 5), x[:, :], x[:2]
        return a + b + c + d + e + f + g + x.clone()


def test_noops_and_asserts_are_removed_clone_is_kept():
    x = torch.randn(2, 5)
    m = NoOps()
    gm = capture_module(m, x)
    assert count_ops(gm)[aten._assert_tensor_metadata.default] == 1

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm) == {aten.add.Tensor: 7, aten.clone.default: 1}
    # detach, to, view, reshape, alias (x[:, :]) and the full slice x[:2]; the metadata assert of `to`
    assert res.modified and res.stats == {"noop_removed": 6, "asserts_removed": 1}
    assert_matches_eager(m, gm, [x])


class Dropout(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return self.drop(x) * 2


@pytest.mark.parametrize("p, training", [(0.1, False), (0.0, True)], ids=["eval", "p0-train"])
def test_inference_dropout_is_removed(p, training):
    x = torch.randn(3, 4)
    m = Dropout(p).train(training)
    gm = capture_module(m, x)
    assert count_ops(gm)[aten.dropout.default] == 1

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm) == {aten.mul.Tensor: 1}
    assert res.stats == {"noop_removed": 1}
    assert_matches_eager(m, gm, [x])


def test_training_mode_dropout_is_kept():
    x = torch.randn(3, 4)
    gm = capture_module(Dropout(0.5).train(), x)

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm) == {aten.dropout.default: 1, aten.mul.Tensor: 1}
    assert not res.modified and res.stats == {}
    fin = finish(gm, [x])  # later a (reported) host fallback
    assert [n.meta["fallback_reason"] for n in fin.graph.nodes if "fallback_reason" in n.meta][0] \
        == "no ttnn lowering for aten.dropout.default"


INPLACE = {"add_": (torch.Tensor.add_, aten.add_.Tensor, aten.add.Tensor),
           "mul_": (torch.Tensor.mul_, aten.mul_.Tensor, aten.mul.Tensor),
           "sub_": (torch.Tensor.sub_, aten.sub_.Tensor, aten.sub.Tensor),
           "div_": (torch.Tensor.div_, aten.div_.Tensor, aten.div.Tensor)}


class InplaceOnIntermediate(nn.Module):
    def __init__(self, method):
        super().__init__()
        self.method = method

    def forward(self, x, y):
        h = x * 2
        self.method(h, y)
        return h + 1


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_op_on_intermediate_becomes_functional(name):
    method, inplace, functional = INPLACE[name]
    x, y = torch.randn(3, 4), torch.rand(3, 4) + 0.5
    m = InplaceOnIntermediate(method)
    gm = capture_module(m, x, y)
    assert count_ops(gm)[inplace] == 1

    res = run_pass(gm, Canonicalize())

    counts = count_ops(gm)
    assert counts[inplace] == 0 and counts[functional] >= 1
    assert res.stats == {"inplace_functionalized": 1}
    assert_matches_eager(m, gm, [x, y])


class InplaceOnInput(nn.Module):
    """The decode step's ``position.add_(1)``: a program input written in place."""

    def forward(self, position, x):
        position.add_(1)
        return x * 2


class InplaceOnInputView(nn.Module):
    def forward(self, x):
        x.view(-1).add_(1)
        return x * 2


class InplaceUnderView(nn.Module):
    """A view taken before the write sees the write: functionalizing would read stale values."""

    def forward(self, x):
        h = x * 2
        v = h.view(-1)
        h.add_(1)
        return v * 3


@pytest.mark.parametrize("module, inputs", [
    (InplaceOnInput(), (torch.tensor([0]), torch.randn(2, 3))),
    (InplaceOnInputView(), (torch.randn(2, 3),)),
    (InplaceUnderView(), (torch.randn(2, 3),)),
], ids=["input", "view-of-input", "read-through-view"])
def test_shared_inplace_write_is_not_functionalized(module, inputs):
    gm = capture_module(module, *inputs)

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm)[aten.add_.Tensor] == 1
    assert "inplace_functionalized" not in res.stats


class ReadAfterWrite(nn.Module):
    def forward(self, x):
        h = x * 2
        h.add_(1)
        return h * 3


def test_inplace_op_on_intermediate_read_later_is_not_functionalized():
    """Hand-built: the reader after ``add_`` reads the written tensor ``h`` itself, not ``add_``'s result."""
    x = torch.randn(2, 3)
    m = ReadAfterWrite()
    gm = capture_module(m, x)
    (write,) = nodes_of(gm, aten.add_.Tensor)
    (reader,) = [u for u in write.users]
    reader.replace_input_with(write, write.args[0])
    gm.recompile()

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm) == {aten.mul.Tensor: 2, aten.add_.Tensor: 1}
    assert res.stats == {}
    assert_matches_eager(m, gm, [x])


class Expand(nn.Module):
    def forward(self, x, y):
        return x.expand(2, 4, 32) + y


class ExpandNotBroadcast(nn.Module):
    def forward(self, x, y):
        return x.expand(2, 4, 32) * 2, x.expand(2, 4, 32).sum(0) + y


def test_expand_feeding_broadcasting_op_is_removed():
    x, y = torch.randn(4, 32), torch.randn(2, 4, 32)
    m = Expand()
    gm = capture_module(m, x, y)

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm) == {aten.add.Tensor: 1}
    assert res.stats == {"expand_removed": 1}
    assert_matches_eager(m, gm, [x, y])


def test_expand_that_defines_the_result_shape_is_kept():
    """``expand * 2`` needs the expand for its shape; ``expand.sum`` is not a broadcasting op."""
    x, y = torch.randn(4, 32), torch.randn(4, 32)
    m = ExpandNotBroadcast()
    gm = capture_module(m, x, y)

    res = run_pass(gm, Canonicalize())

    assert count_ops(gm)[aten.expand.default] == 2
    assert "expand_removed" not in res.stats
    assert_matches_eager(m, gm, [x, y])
