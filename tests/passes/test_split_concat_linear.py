"""split_concat_linear: linear(cat([x, s])) with a loop-invariant ``s`` → linear(x, W₁, b) + linear(s, W₂)."""
from __future__ import annotations

import pytest
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


def test_a_program_without_invariant_inputs_has_nothing_to_split():
    """Not a step program (no invariant inputs): the pass does not look at its concats at all."""
    m = SpeakerProjection()
    gm, _ = _capture(m)

    res = run_pass(gm, SplitConcatLinear(set()))

    assert res.stats == {} and not res.modified
    assert count_ops(gm)[aten.cat.default] == 1
    assert "lowering_note" not in nodes_of(gm, aten.linear.default)[0].meta


class CatUsedTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32 + 16, 32)

    def forward(self, x, speaker):
        c = torch.cat([x, speaker], dim=-1)
        return self.proj(c), c


class ThreeParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32 + 16 + 16, 32)

    def forward(self, x, speaker):
        return self.proj(torch.cat([x, speaker, speaker], dim=-1))


class CatAlongRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 32)

    def forward(self, x, speaker):
        return self.proj(torch.cat([x[..., :16], speaker], dim=1))


class StepValuesOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(32 + 16, 32)

    def forward(self, x, speaker):
        return self.proj(torch.cat([x, x[..., :16] * 2], dim=-1)) + speaker.sum()


class ComputedWeight(nn.Module):
    def forward(self, x, speaker):
        return nn.functional.linear(torch.cat([x, speaker], dim=-1), torch.ones(32, 48) * x.sum())


@pytest.mark.parametrize("module, invariant, reason", [
    (StepValuesOnly(), {"speaker"}, "no part is loop-invariant"),
    (SpeakerProjection(), {"x", "speaker"}, "every part is loop-invariant"),
    (CatUsedTwice(), {"speaker"}, "the concat has other users"),
    (ThreeParts(), {"speaker"}, "3 parts"),
    (CatAlongRows(), {"speaker"}, "not along the last dim"),
    (ComputedWeight(), {"speaker"}, "weight is not a constant"),
], ids=["all-variant", "all-invariant", "cat-shared", "three-parts", "other-dim", "computed-weight"])
def test_every_linear_over_a_concat_it_leaves_alone_is_counted_with_its_reason(module, invariant, reason):
    m = module.eval()
    gm, inputs = _capture(m)
    before = count_ops(gm)

    res = run_pass(gm, SplitConcatLinear(invariant))

    assert res.stats == {"declined": 1} and not res.modified
    assert count_ops(gm) == before
    (node,) = nodes_of(gm, aten.linear.default)
    note = node.meta["lowering_note"]
    assert note.startswith("split_concat_linear declined:") and reason in note
    assert_matches_eager(m, gm, inputs)
