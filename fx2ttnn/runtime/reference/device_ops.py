"""The compute ops under ``numerics="device"``: each op's dataflow through DST and its circular buffers.

Built from ``numerics.py`` (read its docstring for the bit rules and their sources).  Every function takes the
stored (already rounded) input values and returns what the op's final pack receives: the DST values after the
last stage.  The calling op rounds them to its output dtype, as the packer does.  Buffer formats per op:

* matmul / linear / conv: DST accumulation over K (``numerics.matmul``); with a bias, the partial sum is packed
  to the partial-sum buffer (``numerics.matmul_partials_format``) and the bias added in DST; the fused
  activation runs on DST.  conv is the same matmul over its im2col matrix, K ordered (kH, kW, C_in) as the
  prepared weight matrix ``[kH*kW*C_in, C_out]``, C_in padded to whole faces; a transposed conv is the conv of
  the zero-stuffed input with the mirrored kernel (OP_CONTRACT §8).
* scaled_dot_product_attention(_decode): the flash loop over K chunks of ``k_chunk_size``.  Scores, exp, the
  running max / sum and the output accumulator live in bfloat16 buffers whatever the DST (``im_df`` and
  ``stats_df`` are Float16_b in tt-metal's ``sdpa_program_factory.cpp`` and ``sdpa_decode_program_factory.cpp``).
  Per chunk: S = Q K^T, S += mask (pre-divided by the scale in the mask's dtype: the kernels fold the scale into
  the exponent, ``sdpa.cpp``), m = max(m, rowmax S), P = exp(scale (S - m)), l = l exp(scale (m_old - m)) +
  rowsum P, O = O exp(scale (m_old - m)) + P V; finally O * (1 / l).  The scale is a bfloat16 tile, the fp32
  scale truncated (``scale_bf16 = scale_fp32 >> 16`` in ``compute_common.hpp``).  Decode splits K over cores and
  merges partials in a tree; the emulation merges the chunks in order.
* layer_norm (``layernorm.cpp``): x (+ residual) -> E[x] (row sum, times 1/W in DST) -> x - E[x] -> (x - E[x])^2
  -> Var -> rsqrt(Var + eps) (exact rsqrt) -> (x - E[x]) * rstd [* gamma] [+ beta]; intermediates in float32
  buffers with a 32-bit DST, else bfloat16.
* softmax: max, x - max, exp, row sum, 1/sum, multiply; intermediates float32 with a 32-bit DST, else in the
  input's format (``softmax_device_operation.cpp``).
SFPU results (exp, reciprocal, rsqrt, activations) are computed in float32 and rounded to the DST format.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import numerics as nm
from .numerics import Math, pack
from .tensor import Tensor, derived, require
from .types import DataType

_BF16 = DataType.BFLOAT16


def weight_split(t: Tensor, transpose: bool = False) -> nm.Split:
    """A weight's SrcA parts, computed once per stored value (``derived``), not per call."""
    return derived(t, ("srcA", transpose), lambda v: nm.split_srca(v.transpose(-1, -2) if transpose else v))


def finish_matmul(acc: torch.Tensor, m: Math, out_dtype: DataType, bias: torch.Tensor | None,
                  activation, apply_activation) -> torch.Tensor:
    """After the K loop: with a bias, the partial sum goes through the partial-sum buffer, the bias is added in
    DST; the fused activation runs on DST (SFPU)."""
    if bias is not None:
        acc = m.round_dest(pack(acc, nm.matmul_partials_format(m, out_dtype)) + bias)
    if activation is not None:
        acc = m.round_dest(apply_activation(acc, activation))
    return acc


# -- convolution ---------------------------------------------------------------------------------------------------

def conv2d(x: torch.Tensor, w: torch.Tensor, stride, pad4, dilation, groups: int, m: Math) -> torch.Tensor:
    """DST after the convolution (no bias): x NCHW (in0 -> SrcB), w OIHW (in1 -> SrcA); pad4 = (top, bottom,
    left, right)."""
    require(groups == 1, "conv2d", "numerics='device' emulates groups=1 convolutions only")
    t, btm, left, right = pad4
    x = F.pad(x, (left, right, t, btm)) if any(pad4) else x
    b, a = nm.split_srcb(x), nm.split_srca(w)
    if m.fp32_dest:
        out = None
        for pb, pa in nm.GROUPED[m.fidelity]:
            p = F.conv2d(getattr(b, pb), getattr(a, pa), None, tuple(stride), 0, tuple(dilation))
            out = p if out is None else out.add_(p)
        return out
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (s0, s1), (d0, d1) = stride, dilation
    ho, wo = (h - d0 * (kh - 1) - 1) // s0 + 1, (wd - d1 * (kw - 1) - 1) // s1 + 1
    cf = -(-c // nm.FACE)  # faces per tap: C_in padded to whole faces
    faces = [(i, j, f) for i in range(kh) for j in range(kw) for f in range(cf)]
    terms = [(nm.pad_faces(getattr(b, pb), 1, cf), nm.pad_faces(getattr(a, pa), 1, cf)) for pb, pa in nm.PHASES[m.fidelity]]

    def partials(term: int, f0: int, f1: int) -> torch.Tensor:
        xb, wa = terms[term]
        out, f = [], f0
        while f < f1:  # faces of one tap at a time: one strided view of the input, one product
            i, j, c = faces[f]
            g = min(f1 - f, cf - c)
            xs = xb[:, c * nm.FACE:(c + g) * nm.FACE, i * d0:i * d0 + s0 * (ho - 1) + 1:s0,
                    j * d1:j * d1 + s1 * (wo - 1) + 1:s1].unflatten(1, (g, nm.FACE))  # [N, G, 16, Ho, Wo]
            ws = wa[:, c * nm.FACE:(c + g) * nm.FACE, i, j].unflatten(1, (g, nm.FACE))  # [O, G, 16]
            out.append(torch.einsum("ngchw,ogc->gnohw", xs, ws))
            f += g
        return out[0] if len(out) == 1 else torch.cat(out)

    return nm.accumulate_bf16(len(faces), len(terms), 4 * n * o * ho * wo, partials)


def conv_transpose2d(x: torch.Tensor, w: torch.Tensor, stride, padding, output_padding, dilation, groups: int,
                     m: Math) -> torch.Tensor:
    """DST after the transposed convolution (no bias): w is the IOHW kernel with ``nn.ConvTranspose2d`` meaning."""
    if m.fp32_dest:
        require(groups == 1, "conv_transpose2d", "numerics='device' emulates groups=1 convolutions only")
        b, a = nm.split_srcb(x), nm.split_srca(w)
        out = None
        for pb, pa in nm.GROUPED[m.fidelity]:
            p = F.conv_transpose2d(getattr(b, pb), getattr(a, pa), None, tuple(stride), tuple(padding),
                                   tuple(output_padding), 1, tuple(dilation))
            out = p if out is None else out.add_(p)
        return out
    n, c, h, wd = x.shape
    (s0, s1), (p0, p1), (op0, op1), (d0, d1) = stride, padding, output_padding, dilation
    kh, kw = w.shape[-2:]
    stuffed = x.new_zeros(n, c, (h - 1) * s0 + 1, (wd - 1) * s1 + 1)
    stuffed[:, :, ::s0, ::s1] = x
    lo0, lo1 = d0 * (kh - 1) - p0, d1 * (kw - 1) - p1
    require(lo0 >= 0 and lo1 >= 0, "conv_transpose2d", "numerics='device' needs padding <= dilation * (kernel - 1)")
    return conv2d(stuffed, w.flip(-2, -1).transpose(0, 1), (1, 1), (lo0, lo0 + op0, lo1, lo1 + op1), (d0, d1),
                  groups, m)


# -- attention -------------------------------------------------------------------------------------------------------

def _scale_tile(scale: float) -> float:
    """The scale as the kernels hold it: the float32 value truncated to bfloat16."""
    return float(nm.keep_mantissa(torch.tensor([scale], dtype=torch.float32), 7))


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                    mask_dtype: DataType, scale: float, causal: bool, k_chunk: int, m: Math) -> torch.Tensor:
    """DST after the final normalization of the flash loop (see the module doc).

    q ``[..., Sq, D]``; k, v ``[..., Sk, D]`` (heads already matched to q's); mask broadcastable to
    ``[..., Sq, Sk]`` (additive, as the user passed it) or None; ``causal``: query i sees keys 0..i.
    """
    sc = _scale_tile(scale)
    sq, sk = q.shape[-2], k.shape[-2]
    if mask is not None:
        mask = pack(mask * (1.0 / scale), mask_dtype)
    m_run = l_run = o_run = None
    for c0 in range(0, sk, k_chunk):
        c1 = min(sk, c0 + k_chunk)
        s = pack(nm.matmul(q, nm.split_srca(k[..., c0:c1, :].transpose(-1, -2)), m), _BF16)
        if mask is not None:
            s = pack(m.round_dest(s + mask[..., c0:c1]), _BF16)
        if causal:
            rows = torch.arange(sq, device=q.device).unsqueeze(-1)
            cols = torch.arange(c0, c1, device=q.device)
            s = s.masked_fill(cols > rows, float("-inf"))
        m_new = s.amax(-1, keepdim=True) if m_run is None else torch.maximum(m_run, s.amax(-1, keepdim=True))
        m_new = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # a row with every key masked
        p = pack(m.round_dest(torch.exp(sc * m.round_dest(s - m_new))), _BF16)
        l_chunk = pack(nm.reduce_row_sum(p, m), _BF16).unsqueeze(-1)
        o_chunk = pack(nm.matmul(p, nm.split_srca(v[..., c0:c1, :]), m), _BF16)
        if o_run is None:
            o_run, l_run = o_chunk, l_chunk
        else:
            corr = pack(m.round_dest(torch.exp(sc * m.round_dest(m_run - m_new))), _BF16)
            l_run = pack(m.round_dest(pack(nm.eltwise_mul(l_run, corr, m), _BF16) + l_chunk), _BF16)
            o_run = pack(m.round_dest(pack(nm.eltwise_mul(o_run, corr, m), _BF16) + o_chunk), _BF16)
        m_run = m_new
    inv = pack(m.round_dest(1.0 / l_run), _BF16)
    return nm.eltwise_mul(o_run, inv, m)


# -- normalization ----------------------------------------------------------------------------------------------------

def layer_norm(x: torch.Tensor, residual: torch.Tensor | None, gamma: torch.Tensor | None,
               beta: torch.Tensor | None, eps: float, m: Math) -> torch.Tensor:
    """DST after layer_norm's last stage (see the module doc)."""
    im = m.dest  # intermediate buffers: float32 with a 32-bit DST, else bfloat16
    if residual is not None:
        x = pack(m.round_dest(x + residual), im)
    w = x.shape[-1]
    mean = pack(m.round_dest(nm.reduce_row_sum(x, m) * (1.0 / w)), im).unsqueeze(-1)
    xmm = pack(m.round_dest(x - mean), im)
    var = pack(m.round_dest(nm.reduce_row_sum(pack(nm.eltwise_mul(xmm, xmm, m), im), m) * (1.0 / w)), im)
    rstd = pack(m.round_dest(torch.rsqrt(m.round_dest(var + pack(torch.tensor(eps), im)))), im).unsqueeze(-1)
    y = nm.eltwise_mul(xmm, rstd, m)
    if gamma is not None:
        y = nm.eltwise_mul(pack(y, im), gamma, m)
    if beta is not None:
        y = m.round_dest(pack(y, im) + beta)
    return y


def softmax(x: torch.Tensor, dim: int, in_dtype: DataType, m: Math) -> torch.Tensor:
    """DST after softmax's final multiply (see the module doc)."""
    im = DataType.FLOAT32 if m.fp32_dest else in_dtype
    x = x.movedim(dim, -1)
    xm = pack(m.round_dest(x - x.amax(-1, keepdim=True)), im)
    e = pack(m.round_dest(torch.exp(xm)), im)
    inv = pack(m.round_dest(1.0 / pack(nm.reduce_row_sum(e, m), im)), im).unsqueeze(-1)
    return nm.eltwise_mul(e, inv, m).movedim(-1, dim)

