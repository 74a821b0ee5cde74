"""Device numerics (``numerics="device"``): the bit rules on hand-computed cases, each op's emulation, the defaults.

Hand values use a = b = 1.9921875 = 1.1111111b (a bfloat16 with all 7 mantissa bits set):
SrcA holds it as hi = 1.1111b = 1.9375 and lo = 0.0000111b = 0.0546875; SrcB as hi = 1.111111b = 1.984375 and
lo = 0.0000001b = 0.0078125.  The phases multiply B_hi*A_hi, B_hi*A_lo, B_lo*A_hi, B_lo*A_lo.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fx2ttnn.accuracy import pcc
from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn
from fx2ttnn.runtime.reference import device_ops
from fx2ttnn.runtime.reference import numerics as nm

MF = ttnn.MathFidelity
A = 1.9921875


@pytest.fixture
def dev():
    return ttnn.open_device(0, numerics="device")


@pytest.fixture
def exact():
    return ttnn.open_device(0)


def cfg(fidelity: str, fp32: bool, l1: bool = False):
    return ttnn.init_device_compute_kernel_config("wormhole_b0", math_fidelity=getattr(MF, fidelity),
                                                  math_approx_mode=False, fp32_dest_acc_en=fp32, packer_l1_acc=l1)


def up(x, device, dtype=ttnn.bfloat16):
    return ttnn.from_torch(x, dtype=dtype, layout=ttnn.TILE_LAYOUT, device=device)


def host(t):
    return ttnn.to_torch(t).float()


# -- the bit rules ---------------------------------------------------------------------------------------------

def test_source_register_parts():
    x = torch.tensor([A])
    a, b = nm.split_srca(x), nm.split_srcb(x)
    assert (a.hi.item(), a.lo.item(), a.full.item()) == (1.9375, 0.0546875, A)
    assert (b.hi.item(), b.lo.item(), b.full.item()) == (1.984375, 0.0078125, A)
    # float32 enters as TF32: 13 low mantissa bits truncated (1 + 2**-11 survives, 1 + 2**-12 does not)
    assert nm.split_srcb(torch.tensor([1 + 2 ** -10, 1 + 2 ** -11])).full.tolist() == [1 + 2 ** -10, 1.0]
    # SrcA reads 9 of TF32's 10 explicit bits over its two passes
    assert nm.split_srca(torch.tensor([1 + 2 ** -9, 1 + 2 ** -10])).full.tolist() == [1 + 2 ** -9, 1.0]
    # values below 2**-126 flush to zero
    assert nm.split_srcb(torch.tensor([2.0 ** -127, -(2.0 ** -130)])).full.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("fidelity,fp32_dest,expected", [
    ("LoFi", True, 1.984375 * 1.9375),                         # 3.8447265625
    ("HiFi2", True, 1.984375 * A),                             # B_hi * (A_hi + A_lo) = 3.9532470703125
    ("HiFi3", True, 1.984375 * A + 0.0078125 * 1.9375),        # + B_lo * A_hi = 3.9683837890625
    ("HiFi4", True, A * A),                                    # exact: 3.96881103515625
    # a 16-bit DST rounds to bfloat16 after every phase: 3.84375, 3.953125, 3.96875, 3.96875
    ("LoFi", False, 3.84375), ("HiFi2", False, 3.953125), ("HiFi3", False, 3.96875), ("HiFi4", False, 3.96875),
])
def test_fidelity_phases_hand_computed(fidelity, fp32_dest, expected):
    m = nm.Math(getattr(MF, fidelity), fp32_dest, False, False)
    x, w = torch.tensor([[A]]), torch.tensor([[A]])
    assert nm.matmul(x, nm.split_srca(w), m).item() == expected
    # the same product through the FPU multiply (in0 -> SrcA, in1 -> SrcB: symmetric here)
    assert nm.eltwise_mul(torch.tensor([A]), torch.tensor([A]), m).item() == expected


def test_operand_placement_matmul_vs_multiply():
    """matmul puts the weight (in1) in SrcA; an eltwise multiply puts in0 in SrcA.  With x = 1.9921875 and
    w = 1.0, LoFi keeps 6 of x's bits in SrcB (matmul: 1.984375) but 4 in SrcA (multiply: 1.9375)."""
    lofi = nm.Math(MF.LoFi, True, False, False)
    assert nm.matmul(torch.tensor([[A]]), nm.split_srca(torch.tensor([[1.0]])), lofi).item() == 1.984375
    assert nm.eltwise_mul(torch.tensor([A]), torch.tensor([1.0]), lofi).item() == 1.9375


def test_bf16_dest_rounds_after_every_16_wide_face():
    """w = [1, 2**-9, 2**-9, 0 ... | 2**-9, 2**-9, 0 ...] (faces of 16) against x = ones.  Each face adds
    2**-8 = half a bfloat16 ulp of 1.0: a tie, kept at 1.0 (round to even) after each face.  A 32-wide
    accumulation would add 2**-7 at once (1.0078125), as does a 32-bit DST."""
    w = torch.zeros(32, 1)
    w[0] = 1.0
    w[[1, 2, 16, 17]] = 2.0 ** -9
    x = torch.ones(1, 32)
    assert nm.matmul(x, nm.split_srca(w), nm.Math(MF.HiFi4, False, False, False)).item() == 1.0
    assert nm.matmul(x, nm.split_srca(w), nm.Math(MF.HiFi4, True, False, False)).item() == 1.0078125


def test_reduce_row_sum_uses_srca_bits():
    """The reduction puts the input in SrcA: at LoFi only its 4 leading mantissa bits are summed."""
    x = torch.full((1, 32), A)
    assert nm.reduce_row_sum(x, nm.Math(MF.LoFi, True, False, False)).item() == 32 * 1.9375
    assert nm.reduce_row_sum(x, nm.Math(MF.HiFi2, True, False, False)).item() == 32 * A


def test_partial_sum_buffer_format():
    m32, m16, m16l1 = (nm.Math(MF.HiFi2, f, l1, False) for f, l1 in ((True, False), (False, False), (False, True)))
    assert nm.matmul_partials_format(m32, ttnn.bfloat8_b) is ttnn.float32
    assert nm.matmul_partials_format(m16, ttnn.bfloat8_b) is ttnn.bfloat8_b
    assert nm.matmul_partials_format(m16l1, ttnn.bfloat8_b) is ttnn.bfloat16


# -- configs and defaults --------------------------------------------------------------------------------------

def test_config_defaults_match_the_binding():
    c = ttnn.WormholeComputeKernelConfig()
    assert (c.math_fidelity, c.math_approx_mode, c.fp32_dest_acc_en, c.packer_l1_acc) == (MF.Invalid, True, False,
                                                                                         False)
    c = ttnn.init_device_compute_kernel_config("wormhole_b0")
    assert (c.math_fidelity, c.math_approx_mode, c.fp32_dest_acc_en, c.packer_l1_acc) == (MF.LoFi, True, False, False)
    given = cfg("HiFi3", True)
    assert ttnn.init_device_compute_kernel_config("wormhole_b0", given) is given
    with pytest.raises(TTNNContractError, match="math_fidelity must be a ttnn.MathFidelity"):
        ttnn.init_device_compute_kernel_config("wormhole_b0", math_fidelity="HiFi4")


@pytest.mark.parametrize("op,expected", [
    ("linear", (MF.HiFi2, False, False, True)), ("scaled_dot_product_attention_decode", (MF.HiFi2, True, False, False)),
    ("layer_norm", (MF.HiFi4, True, False, False)), ("conv2d", (MF.HiFi4, True, False, False)),
    ("paged_update_cache", (MF.LoFi, True, False, False)),
])
def test_op_defaults(op, expected):
    c = nm.default_config(op)
    assert (c.math_fidelity, c.math_approx_mode, c.fp32_dest_acc_en, c.packer_l1_acc) == expected


def test_resolve_none_and_invalid_fidelity():
    assert nm.resolve("linear", None) == nm.Math(MF.HiFi2, False, True, False)
    assert nm.resolve("linear", None, fp32_out=True) == nm.Math(MF.HiFi2, True, False, False)
    m = nm.resolve("layer_norm", ttnn.WormholeComputeKernelConfig(fp32_dest_acc_en=True))
    assert m.fidelity is MF.HiFi4 and m.fp32_dest  # Invalid -> the op's own fidelity


def test_float32_output_needs_a_32_bit_dest(exact):
    x, w = up(torch.ones(32, 32), exact, ttnn.float32), up(torch.ones(32, 32), exact, ttnn.float32)
    with pytest.raises(TTNNContractError, match="fp32_dest_acc_en=True"):
        ttnn.linear(x, w, compute_kernel_config=cfg("HiFi4", False))


# -- ops -------------------------------------------------------------------------------------------------------

def test_linear_hifi4_fp32_dest_equals_exact(dev, exact):
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 32, 96), torch.randn(96, 64), torch.randn(1, 64)
    c = cfg("HiFi4", True, True)
    got = host(ttnn.linear(up(x, dev), up(w, dev), bias=up(b, dev), compute_kernel_config=c))
    want = host(ttnn.linear(up(x, exact), up(w, exact), bias=up(b, exact), compute_kernel_config=c))
    assert torch.equal(got, want)


def test_linear_lofi_hand_computed(dev):
    """LoFi, 32-bit DST, K = 1: 1.9921875 * 1.9921875 -> 1.984375 * 1.9375 = 3.8447265625 -> bfloat16 3.84375."""
    x = torch.zeros(1, 32)
    x[0, 0] = A
    w = torch.zeros(32, 32)
    w[0, 0] = A
    out = host(ttnn.linear(up(x, dev), up(w, dev), compute_kernel_config=cfg("LoFi", True)))
    assert out[0, 0].item() == 3.84375
    # with a bias the partial sum passes the partial-sum buffer (float32 here) before the add in DST
    bias = torch.full((1, 32), 0.5)
    out = host(ttnn.linear(up(x, dev), up(w, dev), bias=up(bias, dev), compute_kernel_config=cfg("LoFi", True)))
    assert out[0, 0].item() == torch.tensor(3.8447265625 + 0.5).bfloat16().item()


def test_linear_default_config_differs_from_exact(dev, exact):
    """Without a config the linear runs at its default (HiFi2, 16-bit DST): visibly not the exact product."""
    torch.manual_seed(1)
    x, w = torch.randn(32, 768), torch.randn(768, 64) * 0.05
    got, want = host(ttnn.linear(up(x, dev), up(w, dev))), host(ttnn.linear(up(x, exact), up(w, exact)))
    assert not torch.equal(got, want) and pcc(want, got) > 0.999


def test_conv2d_bf16_dest_matches_a_face_by_face_loop(dev, exact):
    torch.manual_seed(2)
    n, c, h, wd, o, k = 1, 20, 6, 5, 8, 3
    x, w = torch.randn(n, c, h, wd).bfloat16().float(), torch.randn(o, c, k, k).bfloat16().float()
    m = nm.Math(MF.HiFi2, False, False, False)
    got = device_ops.conv2d(x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1, m)
    # the reference loop: im2col with K ordered (kh, kw, C_in padded to 32), faces of 16, phases inside a tile
    xp = F.pad(x, (1, 1, 1, 1))
    cols = torch.stack([F.pad(xp[:, :, i:i + h, j:j + wd], (0, 0, 0, 0, 0, 32 - c))
                        for i in range(k) for j in range(k)], 1)                      # [N, taps, 32, H, W]
    wk = torch.stack([F.pad(w[:, :, i, j], (0, 32 - c)) for i in range(k) for j in range(k)], 1)  # [O, taps, 32]
    xb, wa = nm.split_srcb(cols), nm.split_srca(wk)
    dest = torch.zeros(n, o, h, wd)
    for t in range(k * k):
        for pb, pa in nm.PHASES[MF.HiFi2]:
            for f in range(2):
                part = torch.einsum("nchw,oc->nohw", getattr(xb, pb)[:, t, f * 16:(f + 1) * 16],
                                    getattr(wa, pa)[:, t, f * 16:(f + 1) * 16])
                dest = (dest + part).bfloat16().float()
    assert torch.equal(got, dest)
    # HiFi4 with a 32-bit DST is the exact convolution
    full = device_ops.conv2d(x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1, nm.Math(MF.HiFi4, True, False, False))
    torch.testing.assert_close(full, F.conv2d(x, w, padding=1), atol=1e-5, rtol=1e-6)


def test_conv_transpose2d_is_the_conv_of_the_zero_stuffed_input():
    torch.manual_seed(3)
    x, w = torch.randn(1, 16, 1, 7).bfloat16().float(), torch.randn(16, 8, 1, 4).bfloat16().float()
    want = F.conv_transpose2d(x, w, stride=(1, 2), padding=(0, 1))
    exact = device_ops.conv_transpose2d(x, w, (1, 2), (0, 1), (0, 0), (1, 1), 1, nm.Math(MF.HiFi4, True, False, False))
    torch.testing.assert_close(exact, want, atol=1e-5, rtol=1e-6)
    stuffed = device_ops.conv_transpose2d(x, w, (1, 2), (0, 1), (0, 0), (1, 1), 1,
                                          nm.Math(MF.HiFi4, False, False, False))
    assert stuffed.shape == want.shape and pcc(want, stuffed) > 0.9999


def test_sdpa_device_close_to_exact_and_rejects_float32(dev, exact):
    torch.manual_seed(4)
    q, k, v = (torch.randn(1, 2, 64, 64) for _ in range(3))
    mask = torch.randn(1, 1, 64, 64)
    args = dict(attn_mask=None, is_causal=False, compute_kernel_config=cfg("HiFi4", True))
    got = host(ttnn.transformer.scaled_dot_product_attention(up(q, dev), up(k, dev), up(v, dev),
                                                             **{**args, "attn_mask": up(mask, dev)}))
    want = host(ttnn.transformer.scaled_dot_product_attention(up(q, exact), up(k, exact), up(v, exact),
                                                              **{**args, "attn_mask": up(mask, exact)}))
    assert 0.999 < pcc(want, got) < 1.0  # bfloat16 scores, exp and running sums whatever the DST
    with pytest.raises(TTNNContractError, match="numerics='device'"):
        ttnn.transformer.scaled_dot_product_attention(up(q, dev, ttnn.float32), up(k, dev, ttnn.float32),
                                                      up(v, dev, ttnn.float32), is_causal=True)


def test_flash_chunks_merge_like_one_pass():
    """Two K chunks merged with the running max / sum equal one chunk up to bfloat16 rounding."""
    torch.manual_seed(5)
    q, k, v = (torch.randn(1, 1, 32, 64).bfloat16().float() for _ in range(3))
    k = torch.cat((k, k * 0.5), 2)
    v = torch.cat((v, -v), 2)
    m = nm.Math(MF.HiFi4, True, False, False)
    one = device_ops.flash_attention(q, k, v, None, None, 0.125, False, 64, m)
    two = device_ops.flash_attention(q, k, v, None, None, 0.125, False, 32, m)
    want = F.scaled_dot_product_attention(q, k, v, scale=0.125)
    assert pcc(want, one) > 0.9999 and pcc(want, two) > 0.9999 and not torch.equal(one, two)


def test_sdpa_decode_device(dev, exact):
    torch.manual_seed(6)
    q = torch.randn(1, 1, 4, 64)
    k, v = torch.randn(1, 4, 128, 64), torch.randn(1, 4, 128, 64)
    pos = ttnn.from_torch(torch.tensor([77], dtype=torch.int32), dtype=ttnn.int32, device=dev)
    pos_e = ttnn.from_torch(torch.tensor([77], dtype=torch.int32), dtype=ttnn.int32, device=exact)
    c = cfg("HiFi2", False)
    got = host(ttnn.transformer.scaled_dot_product_attention_decode(up(q, dev), up(k, dev), up(v, dev),
                                                                    cur_pos_tensor=pos, compute_kernel_config=c))
    want = host(ttnn.transformer.scaled_dot_product_attention_decode(up(q, exact), up(k, exact), up(v, exact),
                                                                     cur_pos_tensor=pos_e, compute_kernel_config=c))
    assert 0.99 < pcc(want[:, :, :4], got[:, :, :4]) < 1.0


def test_layer_norm_device(dev, exact):
    torch.manual_seed(7)
    x, g, b = torch.randn(1, 32, 768) * 3 + 1, torch.randn(1, 768), torch.randn(1, 768)
    out = {}
    for name, d in (("dev", dev), ("exact", exact)):
        for fp32 in (True, False):
            out[name, fp32] = host(ttnn.layer_norm(up(x, d), epsilon=1e-5, weight=up(g, d), bias=up(b, d),
                                                   compute_kernel_config=cfg("HiFi4", fp32)))
    err32 = (out["dev", True] - out["exact", True]).abs().max()
    err16 = (out["dev", False] - out["exact", False]).abs().max()
    assert err32 < err16 and pcc(out["exact", True], out["dev", False]) > 0.9999


def test_softmax_device(dev, exact):
    torch.manual_seed(8)
    x = torch.randn(1, 2, 32, 64) * 4
    got = host(ttnn.softmax(up(x, dev), -1, compute_kernel_config=cfg("HiFi2", False)))
    want = host(ttnn.softmax(up(x, exact), -1))
    assert 0.999 < pcc(want, got) < 1.0
    torch.testing.assert_close(got.sum(-1), torch.ones(1, 2, 32), atol=0.05, rtol=0)


def test_unknown_numerics_is_an_error():
    with pytest.raises(TTNNContractError, match="numerics must be one of exact, device"):
        ttnn.open_device(0, numerics="fast")
