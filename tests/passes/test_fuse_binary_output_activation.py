"""fuse_binary_output_activation: an exact GELU reading only an add / sub / mul / div → that op's ``activations``."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Construct, Ref
from fx2ttnn.passes.fuse_binary_output_activation import FuseBinaryOutputActivation
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass, run_passes

GELU = Construct("UnaryWithParam", (Ref("UnaryOpType.GELU"), 0.0))


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, y):
        return self.fn(x, y)


CASES = [  # (fn, pattern that fuses it, ttnn op)
    (lambda x, s: F.gelu(x * s + 0.5), "add_gelu", ops.add),  # the speech encoder's group norm: centered*scale+beta
    (lambda x, y: F.gelu(x - y), "sub_gelu", ops.subtract),
    (lambda x, y: F.gelu(x * y), "mul_gelu", ops.multiply),
    (lambda x, y: F.gelu(x / (y + 2.0)), "div_gelu", ops.divide),
    (lambda x, y: F.gelu((x + y).view(1, 1, 64, 32)), "add_gelu_view", ops.add),  # a flattening view in between
]


@pytest.mark.parametrize("fn, pattern, ttnn_op", CASES, ids=[c[1] for c in CASES])
def test_gelu_read_after_the_op_becomes_its_activation(fn, pattern, ttnn_op):
    torch.manual_seed(0)
    m, x, y = Fn(fn), torch.randn(1, 64, 32), torch.rand(1, 1, 32) + 0.5  # y broadcasts (a per-channel scale)
    gm = capture_module(m, x, y)

    res = run_pass(gm, FuseBinaryOutputActivation())

    assert res.modified and res.stats == {pattern: 1}
    assert count_ops(gm)[aten.gelu.default] == 0
    (node,) = nodes_of(gm, ttnn_op)
    assert node.kwargs == {"activations": [GELU]}
    run_passes(gm, LowerElementwise(), LowerDataMovement())
    assert_matches_eager(m, gm, [x, y], atol=1e-6, rtol=1e-6)  # float32 throughout: no bfloat16 GELU


@pytest.mark.parametrize("fn, why", [
    (lambda x, y: (lambda a: (F.gelu(a), a * 2.0))(x + y), "the op has another reader"),
    (lambda x, y: F.gelu(x + y, approximate="tanh"), "tanh-approximate GELU"),
    (lambda x, y: torch.relu(x + y), "relu is not fused here"),
    (lambda x, y: F.gelu(torch.sigmoid(x)), "not a binary op"),
    (lambda x, y: F.gelu(torch.add(x, y, alpha=2.0)), "alpha != 1"),
], ids=["two-readers", "tanh", "relu", "unary-producer", "alpha"])
def test_left_alone(fn, why):
    torch.manual_seed(0)
    m, x, y = Fn(fn), torch.randn(1, 64, 32), torch.randn(1, 1, 32)
    gm = capture_module(m, x, y)
    before = count_ops(gm)

    res = run_pass(gm, FuseBinaryOutputActivation())

    assert not res.modified, why
    assert count_ops(gm) == before
