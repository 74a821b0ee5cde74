"""decompose: ATen ops without a ttnn counterpart rewritten exactly into ones that have one."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.decompose import Decompose

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_lowered, run_pass, run_passes


class Normalize(nn.Module):
    """HF SpeechT5's speaker-embedding ``F.normalize``: a 2-norm, ``clamp_min(eps)`` and a division."""

    def forward(self, x):
        return nn.functional.normalize(x, dim=-1)


def test_normalize_decomposes_into_sum_sqrt_lt_where():
    m, x = Normalize(), torch.randn(3, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())
    assert count_ops(gm) == {aten.linalg_vector_norm.default: 1, aten.clamp_min.default: 1, aten.div.Tensor: 1}

    res = run_pass(gm, Decompose())

    assert count_ops(gm) == {aten.mul.Tensor: 1, aten.sum.dim_IntList: 1, aten.sqrt.default: 1, aten.lt.Scalar: 1,
                             aten.where.ScalarSelf: 1, aten.div.Tensor: 1}
    assert res.modified and res.stats == {"vector_norm": 1, "clamp_min": 1}
    assert_matches_eager(m, gm, [x])


class Rsub(nn.Module):
    def forward(self, x):
        return 1 - x


class Views(nn.Module):
    def forward(self, x):
        return x.unsqueeze(0).squeeze(0).flatten(0, 1), x.squeeze(), x[None].squeeze(0).squeeze(-1)


class Transposes(nn.Module):
    def forward(self, x):
        return x.t(), x.permute(1, 0), x.permute(0, 1), x.sum(0).t()


@pytest.mark.parametrize("module, x, before, after, stats", [
    (Rsub(), torch.randn(4, 32), {aten.rsub.Scalar: 1}, {aten.neg.default: 1, aten.add.Tensor: 1}, {"rsub": 1}),
    (Views(), torch.randn(4, 1),
     {aten.unsqueeze.default: 2, aten.squeeze.dim: 3, aten.flatten.using_ints: 1, aten.squeeze.default: 1},
     {aten.view.default: 7}, {"view": 7}),
    (Transposes(), torch.randn(4, 32),
     {aten.t.default: 2, aten.permute.default: 2, aten.sum.dim_IntList: 1},
     {aten.transpose.int: 2, aten.view.default: 2, aten.sum.dim_IntList: 1}, {"transpose": 2, "view": 2}),
], ids=["rsub", "squeeze-unsqueeze-flatten", "t-permute"])
def test_ops_decompose_exactly(module, x, before, after, stats):
    gm = run_passes(capture_module(module, x), Canonicalize())
    assert count_ops(gm) == before

    res = run_pass(gm, Decompose())

    assert count_ops(gm) == after
    assert res.stats == stats
    assert_matches_eager(module, gm, [x])


class NotDecomposed(nn.Module):
    """An L1 norm, ``rsub`` with ``alpha``, and a rank-3 permute: left for the lowering or a fallback."""

    def forward(self, x):
        return (torch.linalg.vector_norm(x, 1, dim=-1), torch.rsub(x, 2, alpha=3),
                x.unsqueeze(0).permute(0, 2, 1).contiguous())


def test_other_norms_alpha_rsub_and_rank3_permute_are_left_alone():
    m, x = NotDecomposed(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())

    res = run_pass(gm, Decompose())

    assert count_ops(gm) == {aten.linalg_vector_norm.default: 1, aten.rsub.Scalar: 1, aten.view.default: 1,
                             aten.permute.default: 1}
    assert res.stats == {"view": 1}  # the unsqueeze
    assert_matches_eager(m, gm, [x])


class ClampMin(nn.Module):
    def __init__(self, bound: float):
        super().__init__()
        self.bound = bound

    def forward(self, x):
        return torch.clamp_min(x, self.bound)


SPECIALS = [float("nan"), -0.0, 0.0, -1.0, 1.0, 0.5, 1e-12, float("inf"), -float("inf")]


def _same_bits(golden: torch.Tensor, actual: torch.Tensor) -> bool:
    """Equal values, NaN where the golden has NaN, and the same sign of every zero."""
    nan = torch.isnan(golden)
    return bool(torch.equal(nan, torch.isnan(actual)) and torch.equal(golden[~nan], actual[~nan])
                and torch.equal(torch.signbit(golden[~nan]), torch.signbit(actual[~nan])))


@pytest.mark.parametrize("bound", [0.0, -0.0, 0.5, 1e-12, -float("inf")])
def test_clamp_min_decomposes_exactly_nan_and_signed_zeros_included(bound):
    """clamp_min propagates NaN and keeps x when x equals the bound (-0.0 stays -0.0): ``where(x < c, c, x)``."""
    m = ClampMin(bound)
    x = torch.tensor(SPECIALS * 4).reshape(4, len(SPECIALS))
    gm = run_passes(capture_module(m, x), Canonicalize())

    res = run_pass(gm, Decompose())

    assert _same_bits(m(x), gm(x)[0])  # the rewritten ATen graph
    assert count_ops(gm) == {aten.lt.Scalar: 1, aten.where.ScalarSelf: 1}
    assert res.stats == {"clamp_min": 1}
    assert _same_bits(m(x), run_lowered(gm, [x])[0])  # lowered to ttnn.lt / ttnn.where on the reference


def test_clamp_min_with_a_nan_bound_is_left_alone():
    m, x = ClampMin(float("nan")), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())

    res = run_pass(gm, Decompose())

    assert count_ops(gm) == {aten.clamp_min.default: 1}
    assert res.stats == {"clamp_min_declined": 1} and not res.modified
    assert "NaN bound" in nodes_of(gm, aten.clamp_min.default)[0].meta["lowering_note"]


def test_rsub_keeps_the_sign_of_a_zero_result():
    """1 - x for x == 1 is +0.0 (``(x - 1) * -1`` gives -0.0); NaN and infinities pass through."""
    m, x = Rsub(), torch.tensor(SPECIALS * 4).reshape(4, len(SPECIALS))
    gm = run_passes(capture_module(m, x), Canonicalize())

    run_pass(gm, Decompose())

    assert _same_bits(m(x), gm(x)[0]) and _same_bits(m(x), run_lowered(gm, [x])[0])
