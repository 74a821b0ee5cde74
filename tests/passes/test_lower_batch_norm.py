"""lower_batch_norm: eval-mode aten.batch_norm → reshape to [N, C, H, W] → ttnn.batch_norm → reshape back."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.graph_utils import const_tensor, shape
from fx2ttnn.passes.lower_batch_norm import LowerBatchNorm

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass
from .test_fold_batchnorm import randomize


@pytest.fixture
def decomposed(monkeypatch):
    """Capture through core ATen: BN → ``_native_batch_norm_legit_no_training`` + ``getitem(·, 0)``."""
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: export(*a, **k).run_decompositions())


class ScaledBN(nn.Module):
    def __init__(self, dims: int = 1, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(16, affine=affine, eps=eps)
        randomize(self.bn)

    def forward(self, x):
        return self.bn(x * 2)  # not after a conv: fold_batchnorm leaves it to this pass


@pytest.mark.parametrize("dims, x_shape, affine, eps", [
    (1, (2, 16, 40), True, 1e-5),
    (1, (3, 16), True, 1e-3),
    (1, (2, 16, 40), False, 1e-5),
    (2, (2, 16, 5, 7), True, 1e-5),
], ids=["NCL", "NC", "NCL-no-affine", "NCHW"])
def test_batch_norm_lowers_to_rank4_ttnn_batch_norm(dims, x_shape, affine, eps):
    torch.manual_seed(0)
    m = ScaledBN(dims, affine, eps).eval()
    x = torch.randn(*x_shape)
    gm = capture_module(m, x)

    res = run_pass(gm, LowerBatchNorm())

    reshapes = 0 if len(x_shape) == 4 else 2
    assert count_ops(gm) == {aten.mul.Tensor: 1, ops.batch_norm: 1, **({ops.reshape: reshapes} if reshapes else {})}
    assert res.modified and res.stats == {"batch_norm": 1}
    (bn,) = nodes_of(gm, ops.batch_norm)
    x4 = tuple(x_shape) + (1,) * (4 - len(x_shape))
    assert shape(bn.args[0]) == shape(bn) == x4
    assert bn.kwargs["training"] is False and bn.kwargs["eps"] == eps  # ttnn's default eps is not HF's: passed
    params = {"running_mean": m.bn.running_mean, "running_var": m.bn.running_var}
    if affine:
        params.update(weight=m.bn.weight.detach(), bias=m.bn.bias.detach())
    assert set(bn.kwargs) == {*params, "training", "eps"}
    for key, t in params.items():
        torch.testing.assert_close(const_tensor(gm, bn.kwargs[key]), t.reshape(1, 16, 1, 1))
    if reshapes:
        (r_in, r_out) = nodes_of(gm, ops.reshape)
        assert r_in.args[1] == list(x4) and r_out.args[1] == list(x_shape) and shape(r_out) == tuple(x_shape)
    assert_matches_eager(m, gm, [x], atol=1e-6, rtol=1e-6)


def test_native_batch_norm_form_is_lowered(decomposed):
    torch.manual_seed(0)
    m = ScaledBN().eval()
    x = torch.randn(2, 16, 40)
    gm = capture_module(m, x)
    assert count_ops(gm)[aten._native_batch_norm_legit_no_training.default] == 1

    res = run_pass(gm, LowerBatchNorm())

    assert count_ops(gm) == {aten.mul.Tensor: 1, ops.reshape: 2, ops.batch_norm: 1}
    assert res.stats == {"native_batch_norm": 1}
    assert_matches_eager(m, gm, [x], atol=1e-6, rtol=1e-6)


class ComputedVar(ScaledBN):
    def forward(self, x, var):
        return nn.functional.batch_norm(x * 2, self.bn.running_mean, var, self.bn.weight, self.bn.bias)


@pytest.mark.parametrize("module, inputs, reason", [
    (ScaledBN().train(), (torch.randn(2, 16, 40),), "training-mode"),
    (ComputedVar().eval(), (torch.randn(2, 16, 40), torch.rand(16) + 0.5), "parameters are not constants"),
], ids=["training-mode", "computed-running-var"])
def test_batch_norm_is_left_alone(module, inputs, reason):
    gm = capture_module(module, *inputs)

    res = run_pass(gm, LowerBatchNorm())

    assert count_ops(gm)[aten.batch_norm.default] == 1 and count_ops(gm)[ops.batch_norm] == 0
    assert not res.modified and res.stats == {"batch_norm_declined": 1}
    (bn,) = nodes_of(gm, aten.batch_norm.default)
    assert reason in bn.meta["lowering_note"]
    assert_matches_eager(module, gm, list(inputs))
