"""conv1d_to_conv2d, conv_transpose1d_to_conv_transpose2d and sink_layout_conversions on tiny conv graphs.

Each case lowers a small module with the conv passes + layout sinking + elementwise/data-movement lowering and
compares the reference-ttnn run with eager torch.  The geometry variants cover stride, padding, dilation,
groups, bias, fused activations, and the transposed-conv upsamplers of SpeechT5HifiGanConfig (K 8, s 4, p 2) and
of another HiFi-GAN (K 16, s 8, p 4; K 7, s 3).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.conv1d_to_conv2d import Conv1dToConv2d
from fx2ttnn.passes.conv_layout import from_flat, to_flat
from fx2ttnn.passes.conv_transpose1d_to_conv_transpose2d import ConvTranspose1dToConvTranspose2d
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.sink_layout_conversions import SinkLayoutConversions

from .helpers import aten, assert_program_matches, capture_module, count_ops, finish, run_pass, run_passes

REST = (LowerElementwise(), LowerDataMovement())


def _lower(module, *inputs, **kw):
    torch.manual_seed(0)
    gm = run_passes(capture_module(module.eval(), *inputs), Canonicalize())
    res = [run_pass(gm, p) for p in (Conv1dToConv2d("float32"), ConvTranspose1dToConvTranspose2d("float32"),
                                     SinkLayoutConversions())]
    return gm, res


def _check_numerics(module, gm, inputs, **kw):
    program = finish(run_passes(gm, *REST), list(inputs), **kw)
    assert_program_matches(module, program, list(inputs), atol=1e-4, rtol=1e-4)
    return program


class Conv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0, dilation=1, groups=1, bias=True, act=None):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
        self.act = act

    def forward(self, x):
        y = self.conv(x)
        return self.act(y) if self.act is not None else y


@pytest.mark.parametrize("kw", [
    dict(k=3, padding=1), dict(k=5, padding=2, bias=False), dict(k=3, stride=2, padding=1),
    dict(k=3, dilation=3, padding=3), dict(k=11, dilation=5, padding=25), dict(k=3, padding=1, groups=4),
    dict(k=7, padding=3, act=torch.tanh), dict(k=3, padding=1, act=lambda y: nn.functional.leaky_relu(y, 0.1)),
    dict(k=1, act=torch.relu), dict(k=10, stride=5, act=nn.functional.gelu),
], ids=["k3", "k5-nobias", "stride2", "dilation3", "k11-dilation5", "groups4", "tanh", "leaky0.1", "k1-relu",
        "k10s5-gelu"])
@pytest.mark.parametrize("batch", [1, 2])
def test_conv1d_becomes_conv2d_on_flattened_nhwc(kw, batch):
    m = Conv(32, 32, **kw)
    x = torch.randn(batch, 32, 40)
    gm, (conv, _, sink) = _lower(m, x)

    counts = count_ops(gm)
    assert counts[ops.conv2d] == 1 and counts[aten.conv1d.default] == 0
    assert conv.stats.get("activation_fused", 0) == (kw.get("act") is not None)
    node = next(n for n in gm.graph.nodes if n.target is ops.conv2d)
    assert node.kwargs["kernel_size"] == (1, kw["k"]) and node.kwargs["input_height"] == 1
    assert node.kwargs["batch_size"] == batch and node.kwargs["input_width"] == 40
    assert ("bias_tensor" in node.kwargs) == kw.get("bias", True)
    assert node.kwargs["weight_tensor"].target is ops.prepare_conv_weights  # prepared once, at bind time
    assert not any(n.target in (to_flat, from_flat) for n in gm.graph.nodes)  # markers never survive the sink
    _check_numerics(m, gm, [x])


def test_gelu_fuses_as_the_accurate_ttnn_gelu_and_tanh_gelu_does_not():
    x = torch.randn(1, 32, 40)
    gm, (conv, _, _) = _lower(Conv(32, 32, 3, act=nn.functional.gelu), x)
    cfg = next(n for n in gm.graph.nodes if n.target is ops.conv2d).kwargs["conv_config"]
    assert conv.stats["activation_fused"] == 1 and count_ops(gm)[aten.gelu.default] == 0
    assert repr(dict(cfg.kwargs)["activation"]) == "ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 0.0)"

    m = Conv(32, 32, 3, act=lambda y: nn.functional.gelu(y, approximate="tanh"))
    gm, (conv, _, _) = _lower(m, x)
    assert conv.stats.get("activation_fused", 0) == 0 and count_ops(gm)[aten.gelu.default] == 1


class CroppedConv(nn.Module):
    """HF SpeechT5PositionalConvEmbedding's shape: an even kernel with "same" padding, the last output dropped
    (SpeechT5SamePadLayer), then the activation; ``crop`` selects other slices for the cases left alone."""

    def __init__(self, k, padding, stride=1, groups=1, crop=(0, -1), act=nn.functional.gelu):
        super().__init__()
        self.conv = nn.Conv1d(32, 32, k, stride=stride, padding=padding, groups=groups)
        self.crop, self.act = crop, act

    def forward(self, x):
        y = self.conv(x)
        return self.act(y[:, :, self.crop[0]:self.crop[1]])


@pytest.mark.parametrize("kw, padding", [
    (dict(k=16, padding=8, groups=2), (0, 0, 8, 7)),        # HF's VC test config: 16-tap kernel, 2 groups
    (dict(k=6, padding=4, stride=2, crop=(0, -2)), (0, 0, 4, 0)),  # two outputs at stride 2: four padding columns
], ids=["same-pad-even-kernel", "stride2-crop2"])
def test_trailing_crop_folds_into_the_right_padding(kw, padding):
    m = CroppedConv(**kw)
    x = torch.randn(2, 32, 40)
    gm, (conv, _, _) = _lower(m, x)

    assert conv.stats["crop_folded"] == 1 and conv.stats["activation_fused"] == 1
    node = next(n for n in gm.graph.nodes if n.target is ops.conv2d)
    assert node.kwargs["padding"] == padding
    assert node.kwargs["weight_tensor"].kwargs["padding"] == padding  # prepared for the same geometry
    assert count_ops(gm)[aten.slice.Tensor] == 0
    _check_numerics(m, gm, [x])


@pytest.mark.parametrize("kw", [
    dict(k=4, padding=2, crop=(1, None)),      # not a trailing crop: drops the first output
    dict(k=4, padding=1, crop=(0, -2)),        # cuts more than the right padding
    dict(k=4, padding=2, stride=2, crop=(0, -2)),  # two outputs at stride 2 need 4 padding columns, there are 2
], ids=["leading", "beyond-padding", "beyond-padding-stride2"])
def test_other_crops_stay_slices(kw):
    m = CroppedConv(**kw, act=torch.relu)  # (a float32 program keeps relu in float32: exact comparison)
    x = torch.randn(1, 32, 40)
    gm, (conv, _, _) = _lower(m, x)

    assert conv.stats.get("crop_folded", 0) == 0 and conv.stats.get("activation_fused", 0) == 0
    assert count_ops(gm)[aten.slice.Tensor] == 1
    _check_numerics(m, gm, [x])


class TwoConvs(nn.Module):
    """HiFi-GAN resblock shape: leaky → mask → conv → leaky → mask → conv → + residual."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(16, 16, 3, padding=1)
        self.c2 = nn.Conv1d(16, 16, 3, padding=3, dilation=3)

    def forward(self, x, mask):
        h = nn.functional.leaky_relu(x, 0.1) * mask
        h = nn.functional.leaky_relu(self.c1(h), 0.1) * mask
        return self.c2(h) + x


def test_consecutive_convs_stay_flattened():
    m = TwoConvs()
    x, mask = torch.randn(2, 16, 48), (torch.arange(48) < 30).float().view(1, 1, 48).expand(2, 1, 48).contiguous()
    gm, (_, _, sink) = _lower(m, x, mask)

    assert sink.stats["cancelled"] >= 1
    program = _check_numerics(m, gm, [x, mask])
    counts = count_ops(program)
    assert counts[ops.conv2d] == 2 and counts[ops.permute] == 2  # x into flat, the result back out: nothing between
    assert counts[ops.leaky_relu] == 1  # the other leaky_relu is fused into the first conv


class Postnet(nn.Module):
    """SpeechT5's postnet layout: [B, L, C] transposed to NCL, convs, transposed back, residual in NLC."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(32, 32, 5, padding=2) for _ in range(2)])

    def forward(self, spec):
        h = spec.transpose(1, 2)
        for conv in self.convs:
            h = torch.tanh(conv(h))
        return spec + h.transpose(1, 2)


def test_transposes_around_the_conv_stack_become_views():
    m = Postnet()
    x = torch.randn(1, 40, 32)
    gm, _ = _lower(m, x)
    program = _check_numerics(m, gm, [x])
    counts = count_ops(program)
    assert counts[ops.permute] == counts[ops.transpose] == 0
    assert counts[ops.conv2d] == 2 and counts[ops.tanh] == 0  # both tanh fused


class ConvThenSoftmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x), dim=-1)  # not elementwise: needs NCL back


def test_non_elementwise_consumer_gets_ncl_back():
    m = ConvThenSoftmax()
    x = torch.randn(1, 8, 32)
    gm, (_, _, sink) = _lower(m, x)

    assert sink.stats["materialized"] == 2  # to_flat before and from_flat after the conv stay real layout ops
    assert count_ops(gm)[aten.permute.default] == 2
    _check_numerics(m, gm, [x])


class ComputedWeight(nn.Module):
    def forward(self, x, w):
        return nn.functional.conv1d(x, w, padding=1)


def test_conv_with_a_computed_weight_is_left_alone():
    m = ComputedWeight()
    gm, (conv, _, _) = _lower(m, torch.randn(1, 4, 16), torch.randn(4, 4, 3))
    assert conv.stats == {"declined": 1} and not conv.modified
    assert count_ops(gm)[aten.conv1d.default] == 1


class Upsample(nn.Module):
    def __init__(self, cin, cout, k, s, p, op=0):
        super().__init__()
        self.up = nn.ConvTranspose1d(cin, cout, k, stride=s, padding=p, output_padding=op)

    def forward(self, x):
        return self.up(nn.functional.leaky_relu(x, 0.1))


@pytest.mark.parametrize("geometry", [(8, 4, 2, 0), (16, 8, 4, 0), (7, 3, 2, 0), (4, 2, 1, 1)],
                         ids=["speecht5-k8s4", "k16s8", "k7s3", "k4s2-outpad1"])
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_transpose1d_becomes_conv_transpose2d(geometry, batch):
    k, s, p, op = geometry
    m = Upsample(32, 16, k, s, p, op)
    x = torch.randn(batch, 32, 24)
    gm, (_, convt, _) = _lower(m, x)

    assert convt.stats == {"conv_transpose": 1}
    node = next(n for n in gm.graph.nodes if n.target is ops.conv_transpose2d)
    assert node.kwargs["mirror_kernel"] is True and node.kwargs["output_padding"] == (0, op)
    assert node.kwargs["weight_tensor"].target is ops.prepare_conv_transpose2d_weights
    _check_numerics(m, gm, [x])
