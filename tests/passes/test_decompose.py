"""decompose: ATen ops without a ttnn counterpart rewritten exactly into ones that have one."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.decompose import Decompose

from .helpers import aten, assert_matches_eager, capture_module, count_ops, run_pass, run_passes


class Normalize(nn.Module):
    """HF SpeechT5's speaker-embedding ``F.normalize``: a 2-norm, ``clamp_min(eps)`` and a division."""

    def forward(self, x):
        return nn.functional.normalize(x, dim=-1)


def test_normalize_decomposes_into_sum_sqrt_where():
    m, x = Normalize(), torch.randn(3, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())
    assert count_ops(gm) == {aten.linalg_vector_norm.default: 1, aten.clamp_min.default: 1, aten.div.Tensor: 1}

    res = run_pass(gm, Decompose())

    assert count_ops(gm) == {aten.mul.Tensor: 1, aten.sum.dim_IntList: 1, aten.sqrt.default: 1, aten.ge.Scalar: 1,
                             aten.where.ScalarOther: 1, aten.div.Tensor: 1}
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
    (Rsub(), torch.randn(4, 32), {aten.rsub.Scalar: 1}, {aten.sub.Tensor: 1, aten.mul.Tensor: 1}, {"rsub": 1}),
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
