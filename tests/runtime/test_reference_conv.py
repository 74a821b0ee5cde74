"""Reference ttnn convolutions (OP_CONTRACT §8): conv2d, conv1d, conv_transpose2d and the prepare_* ops against
torch goldens (HiFi-GAN and SpeechT5-postnet shapes included), input forms, fused activations, output
dtype/layout/memory, return forms, prepared-weight reuse, meta-tensor shape evaluation, and every contract
rejection."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fx2ttnn.runtime import reference as ttnn
from fx2ttnn.runtime.reference import conv as conv_module
from fx2ttnn.runtime.reference.conv import PreparedConvTensor

from ..pcc_thresholds import OP_ATOL
from ..utils import pcc
from .helpers import FLOAT_DTYPES, RM, TILE, assert_rejected, float_dtypes, stored

UWP, UOT = ttnn.UnaryWithParam, ttnn.UnaryOpType


def host(x: torch.Tensor, dtype_name: str = "float32", layout=RM) -> ttnn.Tensor:
    return ttnn.from_torch(x, dtype=FLOAT_DTYPES[dtype_name], layout=layout)


def rand_w(*shape: int, fan_in: int) -> torch.Tensor:
    """Weights scaled so that outputs are O(1) (keeps bfloat16 output rounding well inside OP_ATOL)."""
    return torch.randn(shape) / fan_in ** 0.5


def nhwc(x_nchw: torch.Tensor) -> torch.Tensor:
    return x_nchw.permute(0, 2, 3, 1).contiguous()


def as_nchw(out: ttnn.Tensor, n: int, h: int, w: int, c: int) -> torch.Tensor:
    """A flattened NHWC conv output back to NCHW (checks it is exactly [1, 1, N*H*W, C])."""
    assert tuple(out.shape) == (1, 1, n * h * w, c), tuple(out.shape)
    return ttnn.to_torch(out).to(torch.float32).reshape(n, h, w, c).permute(0, 3, 1, 2)


def assert_close(actual: torch.Tensor, golden: torch.Tensor, dtype_name: str) -> None:
    torch.testing.assert_close(actual, golden, atol=OP_ATOL[dtype_name], rtol=0)


def golden_conv2d(x, w, b, stride, padding, dilation, groups):
    p = padding if len(padding) == 4 else (padding[0], padding[0], padding[1], padding[1])
    x = F.pad(x, (p[2], p[3], p[0], p[1]))
    return F.conv2d(x, w, b, stride, 0, dilation, groups)


def golden_conv1d(x, w, b, stride, padding, dilation, groups):
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    return F.conv1d(F.pad(x, (lo, hi)), w, b, stride, 0, dilation, groups)


# ---------------------------------------------------------------------------------------------
# conv2d against torch


CONV2D_CASES = {
    # name: (N, H, W, C_in, C_out, kernel, stride, padding, dilation, groups, bias)
    "3x3_same": (1, 8, 8, 4, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    "stride_rect_kernel": (2, 9, 7, 6, 4, (3, 2), (2, 1), (1, 0), (1, 1), 1, False),
    "asymmetric_padding": (1, 10, 12, 4, 6, (3, 3), (1, 2), (1, 2, 0, 1), (1, 1), 1, True),
    "dilation_groups": (2, 11, 11, 4, 8, (3, 3), (1, 1), (2, 2), (2, 2), 2, True),
    "depthwise_2d": (1, 6, 6, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 8, True),
    "pointwise": (1, 5, 5, 16, 32, (1, 1), (1, 1), (0, 0), (1, 1), 1, False),
    "stride2_no_pad": (1, 9, 9, 3, 5, (3, 3), (2, 2), (0, 0), (1, 1), 1, True),
    "conv1d_as_H1": (1, 1, 40, 16, 8, (1, 7), (1, 1), (0, 3), (1, 1), 1, True),
    "postnet_as_Kx1": (2, 37, 1, 8, 8, (5, 1), (1, 1), (2, 0), (1, 1), 1, False),  # tt-metal SpeechT5 postnet form
}


@float_dtypes
@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_matches_torch(dev, case, dtype_name):
    n, h, w, cin, cout, k, s, p, d, g, bias = CONV2D_CASES[case]
    x = torch.randn(n, cin, h, w)
    wt = rand_w(cout, cin // g, *k, fan_in=cin // g * k[0] * k[1])
    b = torch.randn(cout) if bias else None
    out, (ho, wo) = ttnn.conv2d(
        input_tensor=host(nhwc(x), dtype_name), weight_tensor=host(wt, dtype_name), device=dev, in_channels=cin,
        out_channels=cout, batch_size=n, input_height=h, input_width=w, kernel_size=k, stride=s, padding=p,
        dilation=d, groups=g, bias_tensor=host(b.reshape(1, 1, 1, -1), dtype_name) if bias else None,
        return_output_dim=True)
    golden = golden_conv2d(stored(x, dtype_name), stored(wt, dtype_name), stored(b, dtype_name) if bias else None,
                           s, p, d, g)
    assert (ho, wo) == tuple(golden.shape[2:])
    assert ho == ttnn.get_conv_output_dim(h, k[0], s[0], p[0], d[0]) or len(p) == 4
    assert out.dtype is FLOAT_DTYPES[dtype_name] and out.layout is TILE and out.device() is dev
    assert_close(as_nchw(out, n, ho, wo, cout), golden, dtype_name)


@pytest.mark.parametrize("form", ["nhwc_host_rm", "flat_host_rm", "nhwc_host_tile", "flat_device_tile",
                                  "nhwc_device_rm", "flat_device_l1"])
def test_conv2d_input_forms_agree(dev, form):
    n, h, w, cin, cout = 2, 7, 5, 4, 6
    x = nhwc(torch.randn(n, cin, h, w))
    wt, b = rand_w(cout, cin, 3, 3, fan_in=36), torch.randn(1, 1, 1, cout)
    shape = (n, h, w, cin) if form.startswith("nhwc") else (1, 1, n * h * w, cin)
    layout = TILE if "tile" in form or "l1" in form else RM
    kw = {}
    if "device" in form:
        kw = dict(device=dev, memory_config=ttnn.L1_MEMORY_CONFIG if "l1" in form else None)
    t = ttnn.from_torch(x.reshape(shape), dtype=ttnn.float32, layout=layout, **kw)
    out = ttnn.conv2d(input_tensor=t, weight_tensor=host(wt), device=dev, in_channels=cin, out_channels=cout,
                      batch_size=n, input_height=h, input_width=w, kernel_size=(3, 3), padding=(1, 1),
                      bias_tensor=host(b))
    golden = F.conv2d(x.permute(0, 3, 1, 2), wt, b.reshape(-1), padding=1)
    assert_close(as_nchw(out, n, h, w, cout), golden, "float32")


def test_conv2d_bfloat8_b_input_and_weights(dev):
    n, h, w, cin, cout = 1, 8, 8, 16, 32
    x = torch.randn(n, cin, h, w)
    wt = rand_w(cout, cin, 3, 3, fan_in=cin * 9)
    t = ttnn.from_torch(nhwc(x), dtype=ttnn.bfloat8_b, layout=TILE, device=dev)
    cfg = ttnn.Conv2dConfig(weights_dtype=ttnn.bfloat8_b)
    out, (wp, bp) = ttnn.conv2d(input_tensor=t, weight_tensor=host(wt), device=dev, in_channels=cin,
                                out_channels=cout, batch_size=n, input_height=h, input_width=w, kernel_size=(3, 3),
                                padding=(1, 1), conv_config=cfg, return_weights_and_bias=True)
    assert out.dtype is ttnn.bfloat8_b and wp.dtype is ttnn.bfloat8_b and bp is None
    golden = F.conv2d(x, wt, padding=1)
    assert pcc(golden, as_nchw(out, n, h, w, cout)) > 0.999


@pytest.mark.parametrize("activation, fn", [
    (UWP(UOT.RELU), torch.relu),
    (UWP(UOT.LEAKY_RELU, 0.1), lambda y: F.leaky_relu(y, 0.1)),
    (UWP(UOT.TANH), torch.tanh),
    (UWP(UOT.SIGMOID), torch.sigmoid),
    (UWP(UOT.SILU), F.silu),
    (UWP(UOT.GELU), F.gelu),
], ids=["relu", "leaky_relu_0.1", "tanh", "sigmoid", "silu", "gelu"])
def test_conv2d_fused_activation(dev, activation, fn):
    x, wt, b = torch.randn(1, 4, 6, 6), rand_w(8, 4, 3, 3, fan_in=36), torch.randn(8)
    out = ttnn.conv2d(input_tensor=host(nhwc(x)), weight_tensor=host(wt), device=dev, in_channels=4, out_channels=8,
                      batch_size=1, input_height=6, input_width=6, kernel_size=(3, 3), padding=(1, 1),
                      bias_tensor=host(b.reshape(1, 1, 1, -1)), conv_config=ttnn.Conv2dConfig(activation=activation))
    assert_close(as_nchw(out, 1, 6, 6, 8), fn(F.conv2d(x, wt, b, padding=1)), "float32")


def test_conv2d_output_dtype_layout_and_memory(dev):
    x, wt = torch.randn(1, 4, 6, 6), rand_w(8, 4, 3, 3, fan_in=36)
    args = dict(weight_tensor=host(wt), device=dev, in_channels=4, out_channels=8, batch_size=1, input_height=6,
                input_width=6, kernel_size=(3, 3), padding=(1, 1))
    golden = F.conv2d(x, wt, padding=1)
    # dtype: output dtype (default: the input's); output_layout from conv_config
    out = ttnn.conv2d(input_tensor=host(nhwc(x)), dtype=ttnn.bfloat16,
                      conv_config=ttnn.Conv2dConfig(output_layout=RM), **args)
    assert out.dtype is ttnn.bfloat16 and out.layout is RM
    assert_close(as_nchw(out, 1, 6, 6, 8), golden, "bfloat16")
    # memory: DRAM-interleaved device input -> DRAM-sliced run, DRAM output
    dram_in = ttnn.from_torch(nhwc(x), dtype=ttnn.float32, layout=TILE, device=dev)
    assert ttnn.conv2d(input_tensor=dram_in, **args).memory_config() == ttnn.DRAM_MEMORY_CONFIG
    # host or L1 input -> L1 sharded output (height sharded here: 36 rows >= 8 channels), or conv_config.shard_layout
    mc = ttnn.conv2d(input_tensor=host(nhwc(x)), **args).memory_config()
    assert mc.is_sharded and mc.buffer_type is ttnn.BufferType.L1
    assert mc.memory_layout is ttnn.TensorMemoryLayout.HEIGHT_SHARDED
    cfg = ttnn.Conv2dConfig(shard_layout=ttnn.TensorMemoryLayout.BLOCK_SHARDED)
    assert ttnn.conv2d(input_tensor=host(nhwc(x)), conv_config=cfg, **args).memory_config().memory_layout is \
        ttnn.TensorMemoryLayout.BLOCK_SHARDED
    # memory_config given -> that one
    out = ttnn.conv2d(input_tensor=host(nhwc(x)), memory_config=ttnn.L1_MEMORY_CONFIG, **args)
    assert out.memory_config() == ttnn.L1_MEMORY_CONFIG and out.device() is dev


def test_conv2d_positional_call_and_unchecked_kernel(dev):
    x, wt = torch.randn(1, 3, 5, 5), rand_w(4, 3, 3, 3, fan_in=27)
    args = (host(nhwc(x)), host(wt), dev, 3, 4, 1, 5, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1)
    a = ttnn.conv2d(*args)
    b = ttnn.conv2d.unchecked(*args)  # what the executor binds after abstract validation
    assert torch.equal(ttnn.to_torch(a), ttnn.to_torch(b))
    assert_close(as_nchw(a, 1, 5, 5, 4), F.conv2d(x, wt, padding=1), "float32")


# ---------------------------------------------------------------------------------------------
# return forms and prepared weights


def _conv2d_call(dev, x, wt, b, **kw):
    return ttnn.conv2d(input_tensor=host(nhwc(x)), weight_tensor=wt, device=dev, in_channels=4, out_channels=8,
                       batch_size=2, input_height=6, input_width=5, kernel_size=(3, 3), stride=(2, 1),
                       padding=(1, 1), bias_tensor=b, **kw)


@pytest.mark.parametrize("dims, wb", [(False, False), (True, False), (False, True), (True, True)])
def test_conv2d_return_forms(dev, dims, wb):
    x, wt, b = torch.randn(2, 4, 6, 5), rand_w(8, 4, 3, 3, fan_in=36), torch.randn(1, 1, 1, 8)
    r = _conv2d_call(dev, x, host(wt), host(b), return_output_dim=dims, return_weights_and_bias=wb)
    if not dims and not wb:
        assert isinstance(r, ttnn.Tensor)
        return
    assert isinstance(r, tuple) and len(r) == 1 + dims + wb and isinstance(r[0], ttnn.Tensor)
    if dims:
        assert r[1] == (3, 5) and all(type(v) is int for v in r[1])
    if wb:
        wp, bp = r[-1]
        for t in (wp, bp):
            assert isinstance(t, PreparedConvTensor) and t.device() is dev and t.layout is TILE
        assert tuple(bp.shape) == (1, 1, 1, 8)


def test_conv2d_prepared_weights_reuse(dev):
    x, wt, b = torch.randn(2, 4, 6, 5), rand_w(8, 4, 3, 3, fan_in=36), torch.randn(1, 1, 1, 8)
    first, (wp, bp) = _conv2d_call(dev, x, host(wt), host(b), return_weights_and_bias=True)
    again, (wp2, bp2) = _conv2d_call(dev, x, wp, bp, return_weights_and_bias=True)
    assert wp2 is wp and bp2 is bp  # already prepared: handed back as is
    assert torch.equal(ttnn.to_torch(first), ttnn.to_torch(again))
    # separate preparation gives tensors the op accepts, with the same result
    geo = dict(in_channels=4, out_channels=8, batch_size=2, input_height=6, input_width=5, kernel_size=(3, 3),
               stride=(2, 1), padding=(1, 1), dilation=(1, 1), groups=1, device=dev,
               input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=RM, input_dtype=ttnn.float32)
    pw = ttnn.prepare_conv_weights(weight_tensor=host(wt), weights_format="OIHW", has_bias=True, **geo)
    pb = ttnn.prepare_conv_bias(bias_tensor=host(b), **geo)
    assert isinstance(pw, PreparedConvTensor) and pw.storage_type() == "DEVICE" and pw.layout is TILE
    assert torch.equal(ttnn.to_torch(first), ttnn.to_torch(_conv2d_call(dev, x, pw, pb)))
    golden = F.conv2d(x, wt, b.reshape(-1), stride=(2, 1), padding=1)
    assert_close(as_nchw(first, 2, 3, 5, 8), golden, "float32")


@pytest.mark.parametrize("weights_dtype", [None, ttnn.bfloat16, ttnn.bfloat8_b])
def test_prepared_dtype(dev, weights_dtype):
    x, wt = torch.randn(2, 4, 6, 5), rand_w(8, 4, 3, 3, fan_in=36)
    cfg = ttnn.Conv2dConfig(weights_dtype=weights_dtype)
    out, (wp, bp) = _conv2d_call(dev, x, host(wt), None, conv_config=cfg, return_weights_and_bias=True)
    assert bp is None and wp.dtype is (weights_dtype or ttnn.float32) and out.dtype is ttnn.float32
    golden = F.conv2d(x, wt, stride=(2, 1), padding=1)
    if weights_dtype is None:
        assert_close(as_nchw(out, 2, 3, 5, 8), golden, "float32")
    else:
        assert pcc(golden, as_nchw(out, 2, 3, 5, 8)) > 0.999
    # a prepare op can pick the dtype with output_dtype
    pw = ttnn.prepare_conv_weights(
        weight_tensor=host(wt), input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=RM, weights_format="OIHW",
        in_channels=4, out_channels=8, batch_size=2, input_height=6, input_width=5, kernel_size=(3, 3),
        stride=(2, 1), padding=(1, 1), dilation=(1, 1), has_bias=False, groups=1, device=dev,
        input_dtype=ttnn.float32, output_dtype=ttnn.bfloat16)
    assert pw.dtype is ttnn.bfloat16


@pytest.mark.parametrize("groups", [1, 2, 16])
def test_grouped_weight_is_stored_ungrouped(dev, groups):
    """ttnn zero-pads a grouped weight [O, I/g, kH, kW] to the dense block-diagonal [O, I, kH, kW]
    (convert_conv_weight_tensor_to_grouped_layout): the device holds, and the conv multiplies by, g times the
    weights.  The SpeechT5 positional conv (768 channels, kernel 128, 16 groups) as a 32-channel miniature."""
    geo = dict(in_channels=32, out_channels=32, batch_size=1, input_height=1, input_width=40, kernel_size=(1, 16),
               stride=(1, 1), padding=(0, 0, 8, 7), dilation=(1, 1), groups=groups, device=dev,
               input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=TILE, input_dtype=ttnn.float32)
    wt = rand_w(32, 32 // groups, 1, 16, fan_in=32 // groups * 16)
    before = dev.allocated_bytes
    pw = ttnn.prepare_conv_weights(weight_tensor=host(wt), weights_format="OIHW", has_bias=False, **geo)
    assert pw.device_shape == (1, 1, 16 * 32, 32)  # kW * C_in rows whatever the groups
    assert dev.allocated_bytes - before == 16 * 32 * 32 * 4
    x = torch.randn(1, 32, 1, 40)
    geo = {k: v for k, v in geo.items() if not k.startswith("input_") or k in ("input_height", "input_width")}
    out = ttnn.conv2d(input_tensor=ttnn.from_torch(nhwc(x), dtype=ttnn.float32, layout=TILE, device=dev),
                      weight_tensor=pw, memory_config=ttnn.DRAM_MEMORY_CONFIG, **geo)
    golden = F.conv2d(F.pad(x, (8, 7)), wt, groups=groups)
    assert_close(as_nchw(out, 1, 1, 40, 32), golden, "float32")


# ---------------------------------------------------------------------------------------------
# conv1d against torch (HiFi-GAN and SpeechT5 postnet shapes)


CONV1D_CASES = {
    # name: (N, L, C_in, C_out, K, stride, padding, dilation, groups)
    "hifigan_conv_pre_k7": (1, 24, 80, 32, 7, 1, 3, 1, 1),
    "hifigan_conv_post_k7": (2, 30, 16, 1, 7, 1, 3, 1, 1),
    "postnet_k5": (2, 21, 80, 32, 5, 1, 2, 1, 1),
    "res_k3_d1": (1, 33, 8, 8, 3, 1, 1, 1, 1),
    "res_k3_d3": (1, 33, 8, 8, 3, 1, 3, 3, 1),
    "res_k3_d5": (1, 33, 8, 8, 3, 1, 5, 5, 1),
    "res_k7_d3": (1, 40, 8, 8, 7, 1, 9, 3, 1),
    "res_k11_d1": (1, 40, 8, 8, 11, 1, 5, 1, 1),
    "res_k11_d5": (2, 64, 8, 8, 11, 1, 25, 5, 1),
    "strided_lr_padding": (2, 19, 6, 4, 4, 2, [1, 2], 1, 1),
    "groups": (1, 16, 8, 12, 3, 1, 1, 2, 4),
}


@float_dtypes
@pytest.mark.parametrize("case", list(CONV1D_CASES))
def test_conv1d_matches_torch(dev, case, dtype_name):
    n, length, cin, cout, k, s, p, d, g = CONV1D_CASES[case]
    x = torch.randn(n, cin, length)
    wt = rand_w(cout, cin // g, k, fan_in=cin // g * k)
    b = torch.randn(cout)
    out, out_len = ttnn.conv1d(
        input_tensor=host(x.transpose(1, 2).contiguous(), dtype_name), weight_tensor=host(wt, dtype_name),
        device=dev, in_channels=cin, out_channels=cout, batch_size=n, input_length=length, kernel_size=k, stride=s,
        padding=p, dilation=d, groups=g, bias_tensor=host(b.reshape(1, 1, 1, -1), dtype_name),
        return_output_dim=True)
    golden = golden_conv1d(stored(x, dtype_name), stored(wt, dtype_name), stored(b, dtype_name), s, p, d, g)
    assert type(out_len) is int and out_len == golden.shape[-1]
    if isinstance(p, int) and k % 2 and s == 1 and p == d * (k - 1) // 2:
        assert out_len == length  # 'same' padding of the HiFi-GAN resblocks
    actual = as_nchw(out, n, 1, out_len, cout).reshape(n, cout, out_len)
    assert_close(actual, golden, dtype_name)


@pytest.mark.parametrize("form", ["NLC", "N1LC", "NL1C", "flat"])
@pytest.mark.parametrize("weight_form", ["OIK", "OI1K", "OIK1"])
def test_conv1d_input_and_weight_forms(dev, form, weight_form):
    n, length, cin, cout, k = 2, 12, 4, 6, 3
    x = torch.randn(n, length, cin)
    shape = {"NLC": (n, length, cin), "N1LC": (n, 1, length, cin), "NL1C": (n, length, 1, cin),
             "flat": (1, 1, n * length, cin)}[form]
    wt = rand_w(cout, cin, k, fan_in=cin * k)
    wshape = {"OIK": (cout, cin, k), "OI1K": (cout, cin, 1, k), "OIK1": (cout, cin, k, 1)}[weight_form]
    out = ttnn.conv1d(input_tensor=host(x.reshape(shape)), weight_tensor=host(wt.reshape(wshape)), device=dev,
                      in_channels=cin, out_channels=cout, batch_size=n, input_length=length, kernel_size=k, stride=1,
                      padding=1, dilation=1, groups=1)
    golden = F.conv1d(x.transpose(1, 2), wt, padding=1)
    assert_close(as_nchw(out, n, 1, length, cout).reshape(n, cout, length), golden, "float32")


@pytest.mark.parametrize("dims, wb", [(False, False), (True, False), (False, True), (True, True)])
def test_conv1d_return_forms_and_reuse(dev, dims, wb):
    x, wt, b = torch.randn(1, 20, 8), rand_w(4, 8, 5, fan_in=40), torch.randn(1, 1, 1, 4)
    args = dict(device=dev, in_channels=8, out_channels=4, batch_size=1, input_length=20, kernel_size=5, stride=2,
                padding=[2, 1], dilation=1, groups=1)
    r = ttnn.conv1d(input_tensor=host(x), weight_tensor=host(wt), bias_tensor=host(b), return_output_dim=dims,
                    return_weights_and_bias=wb, **args)
    if not dims and not wb:
        assert isinstance(r, ttnn.Tensor) and tuple(r.shape) == (1, 1, 10, 4)
        return
    assert isinstance(r, tuple) and len(r) == 1 + dims + wb
    if dims:
        assert r[1] == 10 and type(r[1]) is int
    if wb:
        wp, bp = r[-1]
        assert isinstance(wp, PreparedConvTensor) and isinstance(bp, PreparedConvTensor)
        again = ttnn.conv1d(input_tensor=host(x), weight_tensor=wp, bias_tensor=bp, **args)
        assert torch.equal(ttnn.to_torch(again), ttnn.to_torch(r[0]))


def test_conv1d_accepts_weights_prepared_for_the_equivalent_conv2d(dev):
    """A weight prepared by prepare_conv_weights for conv2d with H=1, W=L (the contract's reading) or H=L, W=1
    (tt-metal's conv1d implementation) is accepted by conv1d with the matching geometry."""
    x, wt = torch.randn(1, 16, 4), rand_w(6, 4, 3, fan_in=12)
    golden = F.conv1d(x.transpose(1, 2), wt, padding=1)
    common = dict(input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=RM, weights_format="OIHW", in_channels=4,
                  out_channels=6, batch_size=1, groups=1, has_bias=False, device=dev, input_dtype=ttnn.float32)
    wide = ttnn.prepare_conv_weights(weight_tensor=host(wt.reshape(6, 4, 1, 3)), input_height=1, input_width=16,
                                     kernel_size=(1, 3), stride=(1, 1), padding=(0, 1), dilation=(1, 1), **common)
    tall = ttnn.prepare_conv_weights(weight_tensor=host(wt.reshape(6, 4, 3, 1)), input_height=16, input_width=1,
                                     kernel_size=(3, 1), stride=(1, 1), padding=(1, 0), dilation=(1, 1), **common)
    for wp in (wide, tall):
        out = ttnn.conv1d(input_tensor=host(x), weight_tensor=wp, device=dev, in_channels=4, out_channels=6,
                          batch_size=1, input_length=16, kernel_size=3, stride=1, padding=1, dilation=1, groups=1)
        assert_close(as_nchw(out, 1, 1, 16, 6).reshape(1, 6, 16), golden, "float32")


def test_conv1d_output_is_sharded_unless_memory_config(dev):
    x, wt = torch.randn(1, 64, 8), rand_w(8, 8, 3, fan_in=24)
    args = dict(weight_tensor=host(wt), device=dev, in_channels=8, out_channels=8, batch_size=1, input_length=64,
                kernel_size=3, stride=1, padding=1, dilation=1, groups=1)
    t = ttnn.from_torch(x, dtype=ttnn.float32, layout=TILE, device=dev)  # DRAM input: still L1 (no DRAM slicing)
    assert ttnn.conv1d(input_tensor=t, **args).memory_config().memory_layout is ttnn.TensorMemoryLayout.HEIGHT_SHARDED
    out = ttnn.conv1d(input_tensor=t, memory_config=ttnn.DRAM_MEMORY_CONFIG, **args)
    assert out.memory_config() == ttnn.DRAM_MEMORY_CONFIG


# ---------------------------------------------------------------------------------------------
# conv_transpose2d against torch


@float_dtypes
@pytest.mark.parametrize("kernel, stride, padding", [(8, 4, 2), (16, 8, 4), (4, 2, 1), (3, 1, 1)],
                         ids=["K8_s4_p2", "K16_s8_p4", "K4_s2_p1", "K3_s1_p1"])
def test_conv_transpose1d_hifigan_upsampler(dev, kernel, stride, padding, dtype_name):
    """HiFi-GAN's ConvTranspose1d as conv_transpose2d with H=1: kernel (1,K), stride (1,s), padding (0,p)."""
    n, length, cin, cout = 2, 10, 16, 8
    x = torch.randn(n, cin, length)
    wt = rand_w(cin, cout, kernel, fan_in=cin * kernel // stride)
    b = torch.randn(cout)
    out, (ho, wo) = ttnn.conv_transpose2d(
        input_tensor=host(x.transpose(1, 2).reshape(n, 1, length, cin), dtype_name),
        weight_tensor=host(wt.reshape(cin, cout, 1, kernel), dtype_name), device=dev, in_channels=cin,
        out_channels=cout, batch_size=n, input_height=1, input_width=length, kernel_size=(1, kernel),
        stride=(1, stride), padding=(0, padding), output_padding=(0, 0), dilation=(1, 1), groups=1,
        bias_tensor=host(b.reshape(1, 1, 1, -1), dtype_name), mirror_kernel=True, return_output_dim=True)
    golden = F.conv_transpose1d(stored(x, dtype_name), stored(wt, dtype_name), stored(b, dtype_name), stride, padding)
    assert (ho, wo) == (1, golden.shape[-1])
    if kernel == 2 * stride:
        assert wo == length * stride
    assert_close(as_nchw(out, n, 1, wo, cout).reshape(n, cout, wo), golden, dtype_name)


CONVT_CASES = {
    # name: (N, H, W, C_in, C_out, kernel, stride, padding, output_padding, dilation, groups, bias shape)
    "s2_outpad": (2, 5, 4, 4, 6, (3, 3), (2, 2), (1, 1), (1, 0), (1, 1), 1, "1x1x1xO"),
    "rect_dilated_groups": (1, 4, 4, 4, 4, (3, 2), (1, 2), (0, 1), (0, 1), (2, 1), 2, "O"),
    "s3_no_pad": (1, 3, 3, 3, 5, (2, 2), (3, 3), (0, 0), (2, 1), (1, 1), 1, None),
    "same_size": (2, 6, 6, 8, 8, (3, 3), (1, 1), (1, 1), (0, 0), (1, 1), 1, "1x1x1xO"),
}


@float_dtypes
@pytest.mark.parametrize("case", list(CONVT_CASES))
def test_conv_transpose2d_matches_torch(dev, case, dtype_name):
    n, h, w, cin, cout, k, s, p, op, d, g, bias_shape = CONVT_CASES[case]
    x = torch.randn(n, cin, h, w)
    wt = rand_w(cin, cout // g, *k, fan_in=cin // g * k[0] * k[1])
    b = torch.randn(cout)
    bias = None if bias_shape is None else host(b.reshape(1, 1, 1, -1) if bias_shape == "1x1x1xO" else b, dtype_name)
    out, (ho, wo) = ttnn.conv_transpose2d(
        input_tensor=host(nhwc(x), dtype_name), weight_tensor=host(wt, dtype_name), device=dev, in_channels=cin,
        out_channels=cout, batch_size=n, input_height=h, input_width=w, kernel_size=k, stride=s, padding=p,
        output_padding=op, dilation=d, groups=g, bias_tensor=bias, mirror_kernel=True, return_output_dim=True)
    golden = F.conv_transpose2d(stored(x, dtype_name), stored(wt, dtype_name),
                                None if bias is None else stored(b, dtype_name), s, p, op, g, d)
    expect = tuple((size - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, size in enumerate((h, w)))
    assert (ho, wo) == expect == tuple(golden.shape[2:])
    assert_close(as_nchw(out, n, ho, wo, cout), golden, dtype_name)


def test_conv_transpose2d_mirror_kernel(dev):
    """mirror_kernel=True: the op mirrors a PyTorch-format kernel itself; False (the default): the kernel must
    already be mirrored."""
    x, wt = torch.randn(1, 4, 5, 5), rand_w(4, 6, 3, 2, fan_in=24)
    golden = F.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1)
    args = dict(device=dev, in_channels=4, out_channels=6, batch_size=1, input_height=5, input_width=5,
                kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(1, 1), groups=1)
    mirrored_by_op = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=host(wt), mirror_kernel=True,
                                           **args)
    pre_mirrored = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=host(wt.flip(-2, -1)), **args)
    unmirrored = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=host(wt), **args)
    assert tuple(golden.shape) == (1, 6, 10, 9)
    for out in (mirrored_by_op, pre_mirrored):
        assert_close(as_nchw(out, 1, 10, 9, 6), golden, "float32")
    assert not torch.allclose(as_nchw(unmirrored, 1, 10, 9, 6), golden, atol=1e-3)


@pytest.mark.parametrize("dims, wb", [(False, False), (True, False), (False, True), (True, True)])
def test_conv_transpose2d_return_forms_and_prepared(dev, dims, wb):
    x, wt, b = torch.randn(1, 8, 1, 6), rand_w(8, 4, 1, 8, fan_in=16), torch.randn(1, 1, 1, 4)
    args = dict(device=dev, in_channels=8, out_channels=4, batch_size=1, input_height=1, input_width=6,
                kernel_size=(1, 8), stride=(1, 4), padding=(0, 2), output_padding=(0, 0), dilation=(1, 1), groups=1)
    r = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=host(wt), bias_tensor=host(b),
                              mirror_kernel=True, return_output_dim=dims, return_weights_and_bias=wb, **args)
    golden = F.conv_transpose2d(x, wt, b.reshape(-1), (1, 4), (0, 2))
    if not dims and not wb:
        assert_close(as_nchw(r, 1, 1, 24, 4), golden, "float32")
        return
    assert isinstance(r, tuple) and len(r) == 1 + dims + wb
    if dims:
        assert r[1] == (1, 24)
    if wb:
        wp, bp = r[-1]
        assert wp.geometry.op == "conv_transpose2d" and wp.layout is TILE
        # prepared weights hold the mirrored kernel: mirror_kernel no longer matters
        again = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=wp, bias_tensor=bp, **args)
        assert torch.equal(ttnn.to_torch(again), ttnn.to_torch(r[0]))
        # separate preparation (output_padding included) gives the same
        common = dict(input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=RM, input_dtype=ttnn.float32,
                      **{k: v for k, v in args.items()})
        pw = ttnn.prepare_conv_transpose2d_weights(weight_tensor=host(wt), weights_format="IOHW", has_bias=True,
                                                   mirror_kernel=True, **common)
        pb = ttnn.prepare_conv_transpose2d_bias(bias_tensor=host(b), **common)
        sep = ttnn.conv_transpose2d(input_tensor=host(nhwc(x)), weight_tensor=pw, bias_tensor=pb, **args)
        assert torch.equal(ttnn.to_torch(sep), ttnn.to_torch(r[0]))


# ---------------------------------------------------------------------------------------------
# meta tensors (compile-time shape evaluation)


def meta(shape, dtype=ttnn.float32, layout=RM, device=None, mc=None) -> ttnn.Tensor:
    return ttnn.Tensor(torch.empty(shape, device="meta"), dtype, layout, mc, device)


def test_meta_shapes():
    mdev = ttnn.open_device(0, torch_device="meta")
    out, hw, (wp, bp) = ttnn.conv2d(
        input_tensor=meta((2, 9, 7, 6), ttnn.bfloat16, TILE, mdev), weight_tensor=meta((4, 6, 3, 2)), device=mdev,
        in_channels=6, out_channels=4, batch_size=2, input_height=9, input_width=7, kernel_size=(3, 2),
        stride=(2, 1), padding=(1, 0), bias_tensor=meta((1, 1, 1, 4)),
        conv_config=ttnn.Conv2dConfig(activation=UWP(UOT.RELU), weights_dtype=ttnn.bfloat8_b),
        return_output_dim=True, return_weights_and_bias=True)
    assert hw == (5, 6) and tuple(out.shape) == (1, 1, 60, 4) and out.dtype is ttnn.bfloat16
    assert out._value.device.type == "meta" and wp.dtype is ttnn.bfloat8_b and tuple(bp.shape) == (1, 1, 1, 4)
    again = ttnn.conv2d(input_tensor=meta((1, 1, 126, 6), ttnn.bfloat16, TILE, mdev), weight_tensor=wp,
                        device=mdev, in_channels=6, out_channels=4, batch_size=2, input_height=9, input_width=7,
                        kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), bias_tensor=bp)
    assert tuple(again.shape) == (1, 1, 60, 4)

    out, length = ttnn.conv1d(
        input_tensor=meta((2, 50, 16)), weight_tensor=meta((8, 16, 7)), device=mdev, in_channels=16, out_channels=8,
        batch_size=2, input_length=50, kernel_size=7, stride=1, padding=9, dilation=3, groups=1,
        bias_tensor=meta((1, 1, 1, 8)), return_output_dim=True)
    assert length == 50 and tuple(out.shape) == (1, 1, 100, 8)

    out, hw = ttnn.conv_transpose2d(
        input_tensor=meta((1, 1, 12, 16), ttnn.float32, TILE, mdev), weight_tensor=meta((16, 8, 1, 16)), device=mdev,
        in_channels=16, out_channels=8, batch_size=1, input_height=1, input_width=12, kernel_size=(1, 16),
        stride=(1, 8), padding=(0, 4), output_padding=(0, 0), dilation=(1, 1), groups=1,
        bias_tensor=meta((8,)), return_output_dim=True)
    assert hw == (1, 96) and tuple(out.shape) == (1, 1, 96, 8) and out._value.device.type == "meta"

    pw = ttnn.prepare_conv_weights(
        weight_tensor=meta((4, 6, 3, 2)), input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=TILE,
        weights_format="OIHW", in_channels=6, out_channels=4, batch_size=2, input_height=9, input_width=7,
        kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 1), has_bias=False, groups=1, device=mdev,
        input_dtype=ttnn.bfloat16)
    assert isinstance(pw, PreparedConvTensor) and tuple(pw.shape) == (4, 6, 3, 2)


def test_api_surface():
    for name in conv_module.__all__:
        assert getattr(ttnn, name) is getattr(conv_module, name)
    assert {"conv1d", "conv2d", "conv_transpose2d", "prepare_conv_weights", "prepare_conv_bias",
            "prepare_conv_transpose2d_weights", "get_conv_output_dim"} <= set(conv_module.__all__)
    assert not hasattr(ttnn, "PreparedConvTensor")  # reference-only type, not a ttnn name
    assert ttnn.get_conv_output_dim(10, 3) == 8
    assert ttnn.get_conv_output_dim(10, 3, stride=2, pad=1) == 5
    assert ttnn.get_conv_output_dim(33, 3, pad=5, dilation=5) == 33


# ---------------------------------------------------------------------------------------------
# contract rejections


def c2d(m, **over):
    """A valid conv2d call (N=2, 6x6, 4 -> 8 channels, 3x3, padding 1), with ``over`` replacing arguments."""
    kw = dict(device=m.device, in_channels=4, out_channels=8, batch_size=2, input_height=6, input_width=6,
              kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    kw.update(over)
    if "input_tensor" not in kw:
        kw["input_tensor"] = host(torch.randn(2, 6, 6, 4))
    if "weight_tensor" not in kw:
        kw["weight_tensor"] = host(torch.randn(8, 4, 3, 3))
    return ttnn.conv2d(**kw)


def prepared2d(m, bias=False, **over):
    """(w, b) prepared by a valid conv2d call with ``over``."""
    b = host(torch.randn(1, 1, 1, 8)) if bias else None
    _, wb = c2d(m, bias_tensor=b, return_weights_and_bias=True, **over)
    return wb


def c1d(m, **over):
    kw = dict(device=m.device, in_channels=4, out_channels=8, batch_size=1, input_length=20, kernel_size=3,
              stride=1, padding=1, dilation=1, groups=1)
    kw.update(over)
    if "input_tensor" not in kw:
        kw["input_tensor"] = host(torch.randn(1, 20, 4))
    if "weight_tensor" not in kw:
        kw["weight_tensor"] = host(torch.randn(8, 4, 3))
    return ttnn.conv1d(**kw)


def ct2d(m, **over):
    kw = dict(device=m.device, in_channels=4, out_channels=8, batch_size=1, input_height=1, input_width=10,
              kernel_size=(1, 8), stride=(1, 4), padding=(0, 2), output_padding=(0, 0), dilation=(1, 1), groups=1)
    kw.update(over)
    if "input_tensor" not in kw:
        kw["input_tensor"] = host(torch.randn(1, 1, 10, 4))
    if "weight_tensor" not in kw:
        kw["weight_tensor"] = host(torch.randn(4, 8, 1, 8))
    return ttnn.conv_transpose2d(**kw)


PREP_GEO = dict(input_memory_config=ttnn.DRAM_MEMORY_CONFIG, input_layout=RM, in_channels=4, out_channels=8,
                batch_size=2, input_height=6, input_width=6, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1),
                dilation=(1, 1), groups=1, input_dtype=ttnn.float32)


def bf8_row_major(*shape):
    return ttnn.Tensor(torch.randn(shape), ttnn.bfloat8_b, RM)  # cannot be built through from_torch


REJECTIONS = {
    # -- conv2d input
    "conv2d_nchw_input": (lambda m: c2d(m, input_tensor=host(torch.randn(2, 4, 6, 6))),
                          "conv2d input must be NHWC or flattened [1, 1, N*H*W, C]"),
    "conv2d_nchw_hint": (lambda m: c2d(m, input_tensor=host(torch.randn(2, 4, 6, 6))), "is this NCHW"),
    "conv2d_channel_mismatch": (lambda m: c2d(m, in_channels=5, weight_tensor=host(torch.randn(8, 5, 3, 3))),
                                "last dim 4 != in_channels 5"),
    "conv2d_wrong_batch": (lambda m: c2d(m, batch_size=3), "conv2d input must be NHWC"),
    "conv2d_wrong_height": (lambda m: c2d(m, input_tensor=host(torch.randn(1, 1, 2 * 6 * 5, 4))),
                            "conv2d input must be NHWC"),
    "conv2d_bf8_row_major_input": (lambda m: c2d(m, input_tensor=bf8_row_major(2, 6, 6, 4)),
                                   "a bfloat8_b input_tensor must be in TILE layout"),
    "conv2d_int_input": (lambda m: c2d(m, input_tensor=ttnn.from_torch(torch.zeros(2, 6, 6, 4, dtype=torch.int32))),
                         "input_tensor dtype int32 is not supported"),
    "conv2d_deallocated_input": (lambda m: c2d(m, input_tensor=m.freed(2, 6, 6, 4)), "input_tensor was deallocated"),
    "conv2d_not_a_tensor": (lambda m: c2d(m, input_tensor=torch.randn(2, 6, 6, 4)),
                            "input_tensor must be a ttnn.Tensor"),
    "conv2d_other_device": (lambda m: c2d(m, input_tensor=ttnn.from_torch(torch.randn(2, 6, 6, 4),
                                                                         device=ttnn.open_device(1))),
                            "input_tensor is on another device"),
    "conv2d_no_device": (lambda m: c2d(m, device=None), "device must be a ttnn device"),
    # -- conv2d geometry arguments
    "conv2d_padding_3_values": (lambda m: c2d(m, padding=(1, 1, 1)),
                                "padding must be (ph, pw) or (top, bottom, left, right)"),
    "conv2d_padding_int": (lambda m: c2d(m, padding=1), "padding must be (ph, pw) or (top, bottom, left, right)"),
    "conv2d_negative_padding": (lambda m: c2d(m, padding=(-1, 1)), "padding values must be >= 0"),
    "conv2d_kernel_int": (lambda m: c2d(m, kernel_size=3), "kernel_size must be a pair of ints"),
    "conv2d_zero_stride": (lambda m: c2d(m, stride=(0, 1)), "stride values must be >= 1"),
    "conv2d_zero_dilation": (lambda m: c2d(m, dilation=(1, 0)), "dilation values must be >= 1"),
    "conv2d_groups_divisibility": (lambda m: c2d(m, groups=3), "in_channels 4 is not divisible by groups 3"),
    "conv2d_out_groups_divisibility": (lambda m: c2d(m, groups=4, out_channels=6,
                                                     weight_tensor=host(torch.randn(6, 1, 3, 3))),
                                       "out_channels 6 is not divisible by groups 4"),
    "conv2d_zero_channels": (lambda m: c2d(m, out_channels=0), "out_channels must be >= 1"),
    "conv2d_kernel_too_large": (lambda m: c2d(m, kernel_size=(7, 7), padding=(0, 0),
                                              weight_tensor=host(torch.randn(8, 4, 7, 7))),
                                "the (dilated) kernel is larger than the padded input"),
    # -- conv2d weights / bias
    "conv2d_wrong_weight_shape": (lambda m: c2d(m, weight_tensor=host(torch.randn(8, 4, 5, 5))),
                                  "weight_tensor must be OIHW [8, 4, 3, 3]"),
    "conv2d_weight_ignores_groups": (lambda m: c2d(m, groups=2), "weight_tensor must be OIHW [8, 2, 3, 3]"),
    "conv2d_iohw_weight": (lambda m: c2d(m, weight_tensor=host(torch.randn(4, 8, 3, 3))),
                           "weight_tensor must be OIHW [8, 4, 3, 3]"),
    "conv2d_tile_host_weight": (lambda m: c2d(m, weight_tensor=host(torch.randn(8, 4, 3, 3), layout=TILE)),
                                "an unprepared weight_tensor must be in ROW_MAJOR layout"),
    "conv2d_bf8_weight": (lambda m: c2d(m, weight_tensor=ttnn.from_torch(torch.randn(8, 4, 3, 3),
                                                                        dtype=ttnn.bfloat8_b, layout=TILE)),
                          "weight_tensor dtype bfloat8_b is not supported on the host"),
    "conv2d_unprepared_device_weight": (lambda m: c2d(m, weight_tensor=m.rm(8, 4, 3, 3)),
                                        "weight_tensor is on device but is not a prepared conv weight"),
    "conv2d_bias_1d": (lambda m: c2d(m, bias_tensor=host(torch.randn(8))), "bias_tensor must be [1, 1, 1, 8]"),
    "conv2d_bias_wrong_channels": (lambda m: c2d(m, bias_tensor=host(torch.randn(1, 1, 1, 4))),
                                   "bias_tensor must be [1, 1, 1, 8]"),
    "conv2d_unprepared_device_bias": (lambda m: c2d(m, bias_tensor=m.rm(1, 1, 1, 8)),
                                      "bias_tensor is on device but is not a prepared conv bias"),
    "conv2d_depthwise_1d_bias": (lambda m: c2d(m, in_channels=8, out_channels=8, groups=8, batch_size=1,
                                               input_height=1, input_width=16, kernel_size=(1, 3), padding=(0, 1),
                                               input_tensor=host(torch.randn(1, 1, 16, 8)),
                                               weight_tensor=host(torch.randn(8, 1, 1, 3)),
                                               bias_tensor=host(torch.randn(1, 1, 1, 8))),
                                 "Bias is not supported for depthwise conv1d"),
    # -- prepared weights
    "prepared_other_height": (lambda m: c2d(m, weight_tensor=prepared2d(
                                  m, input_height=8, input_tensor=host(torch.randn(2, 8, 6, 4)))[0]),
                              "weight_tensor was prepared for a different convolution (input_height: prepared 8 vs "
                              "call 6)"),
    "prepared_other_stride": (lambda m: c2d(m, weight_tensor=prepared2d(m, stride=(2, 2))[0]),
                              "stride: prepared (2, 2) vs call (1, 1)"),
    "prepared_other_padding": (lambda m: c2d(m, weight_tensor=prepared2d(m, padding=(1, 1, 0, 2))[0]),
                               "padding: prepared (1, 1, 0, 2) vs call (1, 1, 1, 1)"),
    "prepared_other_channels": (lambda m: c2d(m, out_channels=4, weight_tensor=prepared2d(m)[0]),
                                "out_channels: prepared 8 vs call 4"),
    "prepared_transpose_weight_in_conv2d": (lambda m: c2d(m, weight_tensor=ct2d(m, return_weights_and_bias=True)[1][0]),
                                            "op: prepared 'conv_transpose2d' vs call 'conv2d'"),
    "prepared_has_bias_without_bias": (lambda m: c2d(m, weight_tensor=prepared2d(m, bias=True)[0]),
                                       "weight_tensor was prepared with has_bias=True but this call has no "
                                       "bias_tensor"),
    "prepared_weight_host_bias": (lambda m: c2d(m, weight_tensor=prepared2d(m, bias=True)[0],
                                                bias_tensor=host(torch.randn(1, 1, 1, 8))),
                                  "must be both prepared (on device) or both unprepared"),
    "host_weight_prepared_bias": (lambda m: c2d(m, bias_tensor=prepared2d(m, bias=True)[1]),
                                  "must be both prepared (on device) or both unprepared"),
    "prepared_bias_as_weight": (lambda m: c2d(m, weight_tensor=prepared2d(m, bias=True)[1]),
                                "weight_tensor is a prepared conv bias, not a weight"),
    "prepared_other_device": (lambda m: c2d(m, device=ttnn.open_device(1), weight_tensor=prepared2d(m)[0]),
                              "weight_tensor was prepared for another device"),
    # -- conv2d config / output
    "conv2d_string_activation": (lambda m: c2d(m, conv_config=ttnn.Conv2dConfig(activation="relu")),
                                 "conv_config.activation must be None or a ttnn.UnaryWithParam"),
    "conv2d_bf4_weights_dtype": (lambda m: c2d(m, conv_config=ttnn.Conv2dConfig(weights_dtype=ttnn.bfloat4_b)),
                                 "conv_config.weights_dtype bfloat4_b is not supported"),
    "conv2d_bf4_output": (lambda m: c2d(m, dtype=ttnn.bfloat4_b), "dtype bfloat4_b is not supported for the output"),
    "conv2d_bf8_row_major_output": (lambda m: c2d(m, dtype=ttnn.bfloat8_b,
                                                  conv_config=ttnn.Conv2dConfig(output_layout=RM)),
                                    "a bfloat8_b output needs conv_config.output_layout=ttnn.TILE_LAYOUT"),
    "conv2d_config_type": (lambda m: c2d(m, conv_config={"activation": None}),
                           "conv_config must be a ttnn.Conv2dConfig"),
    "conv2d_compute_config_type": (lambda m: c2d(m, compute_config="HiFi4"), "compute_config must come from"),
    "conv2d_memory_config_type": (lambda m: c2d(m, memory_config="DRAM"), "memory_config must be a ttnn.MemoryConfig"),
    "conv2d_return_flag_type": (lambda m: c2d(m, return_output_dim=1), "must be bools"),
    # -- conv1d
    "conv1d_ncl_input": (lambda m: c1d(m, input_tensor=host(torch.randn(1, 4, 20))), "conv1d input must be NLC"),
    "conv1d_channel_mismatch": (lambda m: c1d(m, input_tensor=host(torch.randn(1, 20, 6))),
                                "last dim 6 != in_channels 4"),
    "conv1d_depthwise_bias": (lambda m: c1d(m, in_channels=8, out_channels=8, groups=8,
                                            input_tensor=host(torch.randn(1, 20, 8)),
                                            weight_tensor=host(torch.randn(8, 1, 3)),
                                            bias_tensor=host(torch.randn(1, 1, 1, 8))),
                              "Bias is not supported for depthwise conv1d"),
    "conv1d_padding_3_values": (lambda m: c1d(m, padding=(1, 2, 3)), "padding must be an int or [left, right]"),
    "conv1d_padding_negative": (lambda m: c1d(m, padding=-1), "padding must be an int or [left, right]"),
    "conv1d_kernel_tuple": (lambda m: c1d(m, kernel_size=(3,)), "kernel_size must be an int"),
    "conv1d_wrong_weight": (lambda m: c1d(m, weight_tensor=host(torch.randn(8, 4, 5))),
                            "weight_tensor must be [C_out, C_in/groups, K] [8, 4, 3]"),
    "conv1d_bias_1d": (lambda m: c1d(m, bias_tensor=host(torch.randn(8))), "bias_tensor must be [1, 1, 1, 8]"),
    "conv1d_prepared_other_length": (
        lambda m: c1d(m, weight_tensor=c1d(m, input_length=24, input_tensor=host(torch.randn(1, 24, 4)),
                                           return_weights_and_bias=True)[1][0]),
        "input_width: prepared 24 vs call 20"),
    "conv1d_bf8_row_major_input": (lambda m: c1d(m, input_tensor=bf8_row_major(1, 20, 4)),
                                   "a bfloat8_b input_tensor must be in TILE layout"),
    # -- conv_transpose2d
    "convt_nchw_input": (lambda m: ct2d(m, input_tensor=host(torch.randn(1, 4, 1, 10))),
                         "conv2d input must be NHWC or flattened [1, 1, N*H*W, C]"),
    "convt_oihw_weight": (lambda m: ct2d(m, weight_tensor=host(torch.randn(8, 4, 1, 8))),
                          "weight_tensor must be IOHW [4, 8, 1, 8]"),
    "convt_padding_4_values": (lambda m: ct2d(m, padding=(0, 0, 2, 2)), "padding must be (ph, pw)"),
    "convt_output_padding_too_large": (lambda m: ct2d(m, output_padding=(0, 4)),
                                       "output_padding[1] = 4 must be smaller than stride or dilation"),
    "convt_output_padding_int": (lambda m: ct2d(m, output_padding=0), "output_padding must be a pair of ints"),
    "convt_bias_per_group": (lambda m: ct2d(m, groups=2, weight_tensor=host(torch.randn(4, 4, 1, 8)),
                                            bias_tensor=host(torch.randn(4))),
                             "bias_tensor must be [1, 1, 1, 8] or [8]"),
    "convt_prepared_other_output_padding": (
        lambda m: ct2d(m, output_padding=(0, 1), weight_tensor=ct2d(m, return_weights_and_bias=True)[1][0]),
        "output_padding: prepared (0, 0) vs call (0, 1)"),
    "convt_prepared_conv2d_weight": (lambda m: ct2d(m, weight_tensor=prepared2d(m)[0]),
                                     "op: prepared 'conv2d' vs call 'conv_transpose2d'"),
    "convt_mirror_kernel_type": (lambda m: ct2d(m, mirror_kernel=None), "mirror_kernel must be a bool"),
    "convt_empty_output": (lambda m: ct2d(m, input_width=1, input_tensor=host(torch.randn(1, 1, 1, 4)),
                                          padding=(0, 4), kernel_size=(1, 1), stride=(1, 1),
                                          weight_tensor=host(torch.randn(4, 8, 1, 1))),
                           "leaves an empty output"),
    "convt_bf8_row_major_input": (lambda m: ct2d(m, input_tensor=bf8_row_major(1, 1, 10, 4)),
                                  "a bfloat8_b input_tensor must be in TILE layout"),
    # -- prepare_* ops
    "prepare_weights_format": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=host(torch.randn(8, 4, 3, 3)), weights_format="IOHW", has_bias=False, device=m.device,
        **PREP_GEO),
        'weights_format must be "OIHW"'),
    "prepare_weights_shape": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=host(torch.randn(8, 4, 3)), weights_format="OIHW", has_bias=False, device=m.device, **PREP_GEO),
        "weight_tensor must be OIHW [8, 4, 3, 3]"),
    "prepare_weights_twice": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=prepared2d(m)[0], weights_format="OIHW", has_bias=False, device=m.device, **PREP_GEO),
        "weight_tensor is already prepared"),
    "prepare_weights_tile": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=host(torch.randn(8, 4, 3, 3), layout=TILE), weights_format="OIHW", has_bias=False,
        device=m.device, **PREP_GEO), "weight_tensor must be in ROW_MAJOR layout"),
    "prepare_weights_input_dtype": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=host(torch.randn(8, 4, 3, 3)), weights_format="OIHW", has_bias=False, device=m.device,
        **{**PREP_GEO, "input_dtype": ttnn.uint32}), "input_dtype must be float32, bfloat16 or bfloat8_b"),
    "prepare_weights_padding": (lambda m: ttnn.prepare_conv_weights(
        weight_tensor=host(torch.randn(8, 4, 3, 3)), weights_format="OIHW", has_bias=False, device=m.device,
        **{**PREP_GEO, "padding": (1,)}), "padding must be (ph, pw) or (top, bottom, left, right)"),
    "prepare_bias_shape": (lambda m: ttnn.prepare_conv_bias(
        bias_tensor=host(torch.randn(8)), device=m.device, **PREP_GEO), "bias_tensor must be [1, 1, 1, 8]"),
    "prepare_transpose_format": (lambda m: ttnn.prepare_conv_transpose2d_weights(
        weight_tensor=host(torch.randn(4, 8, 3, 3)), weights_format="OIHW", has_bias=False, device=m.device,
        output_padding=(0, 0), **PREP_GEO), 'weights_format must be "IOHW"'),
    "prepare_transpose_shape": (lambda m: ttnn.prepare_conv_transpose2d_weights(
        weight_tensor=host(torch.randn(8, 4, 3, 3)), weights_format="IOHW", has_bias=False, device=m.device,
        output_padding=(0, 0), **PREP_GEO), "weight_tensor must be IOHW [4, 8, 3, 3]"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_contract_rejections(dev, case):
    call, message = REJECTIONS[case]
    assert_rejected(call, dev, message)


def test_prepare_ops_are_keyword_only(dev):
    with pytest.raises(TypeError):
        ttnn.prepare_conv_weights(host(torch.randn(8, 4, 3, 3)))  # the binding is keyword-only
