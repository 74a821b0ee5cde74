"""lower_data_movement: views, transposes, permutes, concat, slice/select and expand → ttnn data movement."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.lower_data_movement import LowerDataMovement

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


CASES = {  # id: (fn, input shapes, aten ops captured, ttnn ops after, stats, expected args of the ttnn op)
    "view": (lambda x: x.view(-1, 32), [(2, 4, 32)], {aten.view.default: 1}, {ops.reshape: 1}, {"reshape": 1},
             (ops.reshape, ("x0", [8, 32]))),
    "reshape": (lambda x: x.reshape(2, 2, 2, 32), [(2, 4, 32)], {aten.reshape.default: 1}, {ops.reshape: 1},
                {"reshape": 1}, (ops.reshape, ("x0", [2, 2, 2, 32]))),
    "transpose": (lambda x: x.transpose(1, 2), [(2, 4, 32)], {aten.transpose.int: 1}, {ops.transpose: 1},
                  {"transpose": 1}, (ops.transpose, ("x0", 1, 2))),
    "t": (lambda x: x.t(), [(4, 32)], {aten.t.default: 1}, {ops.transpose: 1}, {"transpose": 1},
          (ops.transpose, ("x0", 0, 1))),
    "permute": (lambda x: x.permute(2, 0, 1), [(2, 4, 32)], {aten.permute.default: 1}, {ops.permute: 1},
                {"permute": 1}, (ops.permute, ("x0", [2, 0, 1]))),
    "cat": (lambda x, y: torch.cat([x, y], dim=-1), [(2, 4, 32), (2, 4, 32)], {aten.cat.default: 1},
            {ops.concat: 1}, {"concat": 1}, (ops.concat, (["x0", "x1"], -1))),
    "slice-negative-start": (lambda x: x[:, -3:], [(2, 4, 32)], {aten.slice.Tensor: 1}, {ops.slice_: 1},
                             {"slice": 1}, (ops.slice_, ("x0", [0, 1, 0], [2, 4, 32]))),
    "slice-end-clamped": (lambda x: x[:, 1:100], [(2, 4, 32)], {aten.slice.Tensor: 1}, {ops.slice_: 1},
                          {"slice": 1}, (ops.slice_, ("x0", [0, 1, 0], [2, 4, 32]))),
    "slice-step": (lambda x: x[..., 1:30:2], [(2, 4, 32)], {aten.slice.Tensor: 1}, {ops.slice_: 1},
                   {"slice": 1}, (ops.slice_, ("x0", [0, 0, 1], [2, 4, 30]))),
    "select": (lambda x: x[:, -1], [(2, 4, 32)], {aten.select.int: 1}, {ops.slice_: 1, ops.reshape: 1},
               {"slice": 1}, (ops.slice_, ("x0", [0, 3, 0], [2, 4, 32]))),
    "expand": (lambda x: x.expand(2, 4, 32), [(4, 1)], {aten.expand.default: 1}, {ops.reshape: 1, ops.repeat: 1},
               {"repeat": 1}, (ops.repeat, (None, [2, 1, 32]))),
}


def _names(a):
    """Node arguments by node name (lists elementwise), literals as they are."""
    if isinstance(a, list):
        return [_names(x) for x in a]
    return a.name if isinstance(a, torch.fx.Node) else a


@pytest.mark.parametrize("name", list(CASES))
def test_data_movement_lowers(name):
    fn, shapes, before, after, stats, (op, args) = CASES[name]
    torch.manual_seed(0)
    m, inputs = Fn(fn), [torch.randn(s) for s in shapes]
    gm = capture_module(m, *inputs)
    assert count_ops(gm) == before

    res = run_pass(gm, LowerDataMovement())

    assert count_ops(gm) == after
    assert res.modified and res.stats == stats
    node = nodes_of(gm, op)[0]
    got = tuple(_names(a) for a in node.args)
    assert got[1:] == args[1:] and (args[0] is None or got[0] == args[0])
    if name == "slice-step":
        assert node.kwargs == {"slice_step": [1, 1, 2]}
    assert_matches_eager(m, gm, inputs)


def test_ops_not_listed_are_left_alone():
    """``unsqueeze`` is decompose's job (→ view); ``flip`` has no lowering here."""
    m, x = Fn(lambda x: x.unsqueeze(0).flip(-1)), torch.randn(4, 32)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerDataMovement())

    assert count_ops(gm) == {aten.unsqueeze.default: 1, aten.flip.default: 1}
    assert not res.modified and res.stats == {}
    assert_matches_eager(m, gm, [x])
