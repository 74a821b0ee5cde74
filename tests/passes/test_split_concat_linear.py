"""split_concat_linear: linear(cat([x, s])) with a loop-invariant ``s`` → linear(x, W₁, b) + linear(s, W₂)."""
from __future__ import annotations

import torch
from torch import nn

from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.graph_utils import const_tensor
from fx2ttnn.passes.split_concat_linear import SplitConcatLinear

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass, run_passes


class SpeakerProjection(nn.Module):
    """HF's prenet: relu(speaker_embeds_layer(cat([x, speaker])))."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32 + 16, 32)

    def forward(self, x, speaker):
        return torch.relu(self.proj(torch.cat([x, speaker], dim=-1)))


def _capture(m):
    torch.manual_seed(0)
    inputs = [torch.randn(1, 1, 32), torch.randn(1, 1, 16)]
    return run_passes(capture_module(m, *inputs, names=["x", "speaker"]), Canonicalize()), inputs


def test_invariant_half_becomes_its_own_linear():
    m = SpeakerProjection()
    gm, inputs = _capture(m)

    res = run_pass(gm, SplitConcatLinear({"speaker"}))

    assert res.stats == {"split": 1}
    assert count_ops(gm) == {aten.linear.default: 2, aten.add.Tensor: 1, aten.relu.default: 1}
    per_step, per_utterance = nodes_of(gm, aten.linear.default)
    assert per_step.args[0].name == "x" and len(per_step.args) == 3  # keeps the bias
    assert per_utterance.args[0].name == "speaker" and len(per_utterance.args) == 2
    torch.testing.assert_close(const_tensor(gm, per_step.args[1]), m.proj.weight[:, :32])
    assert_matches_eager(m, gm, inputs)


def test_without_an_invariant_part_nothing_changes():
    m = SpeakerProjection()
    gm, _ = _capture(m)

    res = run_pass(gm, SplitConcatLinear(set()))  # both parts vary per call

    assert res.stats == {} and not res.modified
    assert count_ops(gm)[aten.cat.default] == 1
