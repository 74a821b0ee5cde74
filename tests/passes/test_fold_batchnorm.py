"""fold_batchnorm: eval-mode batch_norm(conv(x)) → conv(x) with w' = w·s, b' = (b − mean)·s + β, s = γ/√(var+ε)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.passes.fold_batchnorm import FoldBatchNorm
from fx2ttnn.passes.graph_utils import const_tensor

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass


def randomize(bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Non-trivial running statistics and affine parameters (a fresh BN is the identity in eval mode)."""
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        if bn.affine:
            bn.weight.normal_()
            bn.bias.normal_()


class ConvBN(nn.Module):
    def __init__(self, dims: int = 1, bias: bool = True, groups: int = 1, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        conv, bn = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.conv = conv(8, 16, 3, padding=1, bias=bias, groups=groups)
        self.bn = bn(16, affine=affine, eps=eps)
        randomize(self.bn)

    def forward(self, x):
        return self.bn(self.conv(x))


@pytest.fixture
def decomposed(monkeypatch):
    """Capture through core ATen: conv → ``convolution``, BN → ``_native_batch_norm_legit_no_training``+getitem."""
    export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: export(*a, **k).run_decompositions())


@pytest.mark.parametrize("bias, groups, affine", [
    (True, 1, True), (False, 1, True), (True, 4, True), (False, 4, False),
], ids=["bias", "no-bias", "grouped", "grouped-no-bias-no-affine"])
def test_conv1d_batch_norm_is_folded(bias, groups, affine):
    torch.manual_seed(0)
    m = ConvBN(1, bias, groups, affine).eval()
    x = torch.randn(2, 8, 12)
    gm = capture_module(m, x)
    (orig,) = nodes_of(gm, aten.conv1d.default)
    geometry = orig.args[3:]

    res = run_pass(gm, FoldBatchNorm())

    assert count_ops(gm) == {aten.conv1d.default: 1}
    assert res.modified and res.stats == {"folded": 1}
    (conv,) = nodes_of(gm, aten.conv1d.default)
    assert conv.args[0].op == "placeholder" and conv.args[3:] == geometry  # stride, padding, ..., groups kept
    w, b = const_tensor(gm, conv.args[1]), const_tensor(gm, conv.args[2])
    scale = (m.bn.weight if affine else 1) / torch.sqrt(m.bn.running_var + m.bn.eps)
    shift = (m.bn.bias if affine else 0) - m.bn.running_mean * scale
    torch.testing.assert_close(w, m.conv.weight.detach() * scale.detach().reshape(-1, 1, 1))
    torch.testing.assert_close(b, (m.conv.bias * scale if bias else 0) + shift.detach())
    assert w.dtype == b.dtype == torch.float32
    assert_matches_eager(m, gm, [x])


@pytest.mark.parametrize("dims, core_aten, op", [
    (2, False, aten.conv2d.default),
    (1, True, aten.convolution.default),
    (2, True, aten.convolution.default),
], ids=["conv2d", "convolution-1d-native-bn", "convolution-2d-native-bn"])
def test_other_conv_forms_are_folded(request, dims, core_aten, op):
    if core_aten:
        request.getfixturevalue("decomposed")
    torch.manual_seed(0)
    m = ConvBN(dims, bias=dims == 1, groups=2, eps=1e-3).eval()
    x = torch.randn(2, 8, 6, 7) if dims == 2 else torch.randn(2, 8, 12)
    gm = capture_module(m, x)

    res = run_pass(gm, FoldBatchNorm())

    assert count_ops(gm) == {op: 1}
    assert res.stats == {"folded": 1}
    assert_matches_eager(m, gm, [x])


class SharedConv(ConvBN):
    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class BNAfterMul(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(8)
        randomize(self.bn)

    def forward(self, x):
        return self.bn(x * 2)


class ComputedStats(ConvBN):
    def forward(self, x, mean):
        return nn.functional.batch_norm(self.conv(x), mean, self.bn.running_var, self.bn.weight, self.bn.bias)


@pytest.mark.parametrize("module, inputs, reason", [
    (SharedConv().eval(), (torch.randn(2, 8, 12),), "convolution output has other users"),
    (BNAfterMul().eval(), (torch.randn(2, 8, 12),), "input is not a convolution"),
    (ConvBN().train(), (torch.randn(2, 8, 12),), "training-mode"),
    (ComputedStats().eval(), (torch.randn(2, 8, 12), torch.randn(16)), "parameters are not constants"),
], ids=["conv-has-two-users", "not-after-conv", "training-mode", "computed-running-mean"])
def test_batch_norm_is_not_folded(module, inputs, reason):
    torch.manual_seed(0)
    gm = capture_module(module, *inputs)
    before = count_ops(gm)

    res = run_pass(gm, FoldBatchNorm())

    assert count_ops(gm) == before
    assert not res.modified and res.stats == {"declined": 1}
    (bn,) = nodes_of(gm, aten.batch_norm.default)
    assert reason in bn.meta["lowering_note"]
    assert_matches_eager(module, gm, list(inputs))
