"""fuse_binary_activations: relu / leaky_relu read only by an add or multiply → the op's input_tensor_a_activations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Construct, Ref
from fx2ttnn.passes.fuse_binary_activations import FuseBinaryActivations
from fx2ttnn.passes.lower_elementwise import LowerElementwise

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass, run_passes


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, y):
        return self.fn(x, y)


CASES = [  # (fn, pattern that fuses it, ttnn op, activation as UnaryWithParam args)
    (lambda x, m: F.leaky_relu(x, 0.1) * m, "mul_leaky_relu_a", ops.multiply, (Ref("UnaryOpType.LEAKY_RELU"), 0.1)),
    (lambda x, m: m * F.leaky_relu(x, 0.2), "mul_leaky_relu_b", ops.multiply, (Ref("UnaryOpType.LEAKY_RELU"), 0.2)),
    (lambda x, y: F.leaky_relu(x) + y, "add_leaky_relu_a", ops.add, (Ref("UnaryOpType.LEAKY_RELU"), 0.01)),
    (lambda x, y: y + torch.relu(x), "add_relu_b", ops.add, (Ref("UnaryOpType.RELU"),)),
    (lambda x, m: torch.relu(x) * m, "mul_relu_a", ops.multiply, (Ref("UnaryOpType.RELU"),)),
]


@pytest.mark.parametrize("fn, pattern, ttnn_op, act_args", CASES, ids=[c[1] for c in CASES])
def test_activation_read_only_by_the_op_becomes_its_input_activation(fn, pattern, ttnn_op, act_args):
    torch.manual_seed(0)
    m, x, y = Fn(fn), torch.randn(1, 64, 32), (torch.rand(1, 1, 32) > 0.3).float()  # y: a broadcast mask
    gm = capture_module(m, x, y)

    res = run_pass(gm, FuseBinaryActivations())

    assert res.modified and res.stats == {pattern: 1}
    assert count_ops(gm) == {ttnn_op: 1}
    (node,) = nodes_of(gm, ttnn_op)
    assert [a.name for a in node.args] == ["x0", "x1"]  # the activation's operand is input a
    assert node.kwargs == {"input_tensor_a_activations": [Construct("UnaryWithParam", act_args)]}
    assert_matches_eager(m, gm, [x, y], atol=0, rtol=0)


def test_the_hifigan_masked_conv_input_fuses_and_the_conv_is_unchanged():
    class MaskedConv(nn.Module):  # HiFi-GAN resblock, as captured: each conv's input is leaky_relu(h) * mask
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(32, 32, 3, padding=1)

        def forward(self, h, mask):
            return self.conv(F.leaky_relu(h, 0.1) * mask) + h

    torch.manual_seed(0)
    m, h, mask = MaskedConv().eval(), torch.randn(1, 32, 64), (torch.arange(64) < 50).float().view(1, 1, 64)
    gm = capture_module(m, h, mask)
    res = run_pass(gm, FuseBinaryActivations())
    assert res.stats == {"mul_leaky_relu_a": 1}
    assert count_ops(gm)[aten.leaky_relu.default] == 0 and count_ops(gm)[aten.conv1d.default] == 1
    assert_matches_eager(m, gm, [h, mask])


@pytest.mark.parametrize("fn, why", [
    (lambda x, y: (lambda a: (a * y, a + 1.0))(F.leaky_relu(x, 0.1)), "the activation has another reader"),
    (lambda x, y: F.gelu(x) * y, "gelu is not fused"),
    (lambda x, y: torch.sigmoid(x) * y, "sigmoid is not fused"),
    (lambda x, y: F.leaky_relu(x, 0.1) - y, "sub is not fused"),
    (lambda x, y: torch.relu(x) / y, "div is not fused"),
], ids=["two-readers", "gelu", "sigmoid", "sub", "div"])
def test_left_alone(fn, why):  # (the lowered result is compared in test_lower_elementwise)
    torch.manual_seed(0)
    m, x, y = Fn(fn), torch.randn(1, 64, 32), torch.rand(1, 1, 32) + 0.5
    gm = capture_module(m, x, y)
    before = count_ops(gm)

    res = run_pass(gm, FuseBinaryActivations())

    assert not res.modified, why
    assert count_ops(gm) == before


def test_a_scalar_other_operand_is_declined_with_a_reason():
    m, x = Fn(lambda x, _: F.leaky_relu(x, 0.1) * 3.0), torch.randn(1, 64, 32)
    gm = capture_module(m, x, x)
    res = run_pass(gm, FuseBinaryActivations())
    assert not res.modified and res.stats == {"mul_leaky_relu_a_declined": 1}
    (mul,) = [n for n in gm.graph.nodes if n.target is aten.mul.Tensor]
    assert "scalar" in mul.meta["lowering_note"]
    run_passes(gm, LowerElementwise())
    assert_matches_eager(m, gm, [x, x])
