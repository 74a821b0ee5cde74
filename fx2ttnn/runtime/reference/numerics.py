"""Device numerics: the Tensix math that a compute kernel config selects, emulated in torch (vectorized).

A reference device opened with ``numerics="device"`` runs the ops that take a compute kernel config through
``device_ops.py``, which is built from the primitives here.  ``numerics="exact"`` (the default) never comes here.

The facts, and where they come from (ttnn 0.81.1 wheel unless said otherwise):

Source registers (``tt-llk/tests/python_tests/helpers/golden_generators.py``, ``SrcFormatModel``)
    Operands enter the FPU as TF32: sign, 8-bit exponent, hidden bit + 10 explicit mantissa bits.  float32
    loses its 13 low mantissa bits (truncated); bfloat16 / bfloat8_b values are exact.  Values below 2**-126
    flush to zero (``_apply_ftz``).
Math fidelity (``FidelityMasking``; the ``ttnn.MathFidelity`` docstring)
    The multiplier is 5 bits of SrcA by 7 bits of SrcB per pass.  Per phase, on the 11-bit significand
    (hidden bit = bit 10): SrcA keeps ``0b11111000000`` (hidden + 4 MSB) or ``0b00000111110`` (the next 5),
    SrcB keeps ``0b11111110000`` (hidden + 6 MSB) or ``0b00000001111`` (the 4 LSB).  Phases, in order:
    B_hi*A_hi, B_hi*A_lo, B_lo*A_hi, B_lo*A_lo; LoFi runs the first, HiFi2 two, HiFi3 three, HiFi4 all four.
    For bfloat16 operands (7 explicit bits): LoFi multiplies 4 bits of A by 6 of B, HiFi2 all 7 of A by 6 of
    B, HiFi3 adds A_hi*B's 7th bit, HiFi4 is exact.  (tt-llk's golden skips the masks at HiFi4; the masks
    differ from that only in SrcA's last TF32 bit, which bfloat16 never sets.)
Operand placement
    matmul / linear / conv: in0 (activation) -> SrcB, in1 (weight) -> SrcA (``MatmulGolden``: "lhs into
    SrcB, rhs into SrcA").  Eltwise multiply: in0 -> SrcA, in1 -> SrcB (``EltwiseBinaryGolden``).  Reduce:
    the input -> SrcA, the scaler tile -> SrcB (``ReduceGapoolGolden``: D = srcB @ srcA).  Eltwise add and
    subtract and reduce-max do not go through the multiplier (``ttnn.MathFidelity`` docstring).
Destination accumulation (``fp32_dest_acc_en``; ``tt-llk .../llk_math_matmul.h``)
    One MVMUL computes D[8x16] += B[8x16] @ A[16x16]: 16 products of the inner dimension per accumulation
    into DST (the matmul perf model in tt-metal's ``matmul_device_operation.cpp`` states the 8x16x16 shape).
    A tile's MVMUL sequence is replayed once per fidelity phase.  So per 32-wide K tile: for each phase, for
    each 16-wide face, DST += partial.  With a 32-bit DST each add is a float32 add; with a 16-bit DST the
    sum is stored as bfloat16 after every add (round to nearest even, as the golden's casts do).
Packer and circular buffers
    Results leave DST through the packer into a circular buffer in that buffer's format, rounded (bfloat16:
    round to nearest even; bfloat8_b / bfloat4_b: the reference's own conversion, ``tensor.quantize``).
    matmul's partial-sum buffer (tt-metal ``matmul_multicore_reuse_*_program_factory.cpp``): float32 with a
    32-bit DST; else bfloat16 with ``packer_l1_acc`` and the output format without it.

Not emulated (documented in README): ``math_approx_mode`` (the SFPU's approximate exp/recip/sqrt/gelu; the
wheel's ``sfpu_accuracy_budget.yaml`` bounds approximate bfloat16 exp at 6 ULP and reciprocal at 1 ULP);
the Wormhole HiFi4 + fp32-DST hardware bug that ``ttnn.matmul``'s docstring describes; matmul K-block
spills between partial-sum buffer and DST (the block width is chosen by ttnn at run time; they change the
result only when the partial-sum format differs from the DST format).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .types import DataType, MathFidelity, WormholeComputeKernelConfig

FACE = 16        # inner-dimension width of one MVMUL (one DST accumulation)
TILE_K = 32      # a tile's inner dimension: 2 faces, replayed once per fidelity phase
TF32_EXPLICIT = 10
_TINY = 2.0 ** -126  # smallest normal of float32 / bfloat16: smaller magnitudes flush to zero

# explicit mantissa bits of each source-register part (hi: first pass; full: all passes)
SRCA_HI, SRCA_FULL = 4, 9
SRCB_HI, SRCB_FULL = 6, 10

# fidelity phases, in order: (SrcB part, SrcA part)
PHASES: dict[MathFidelity, tuple[tuple[str, str], ...]] = {
    MathFidelity.LoFi: (("hi", "hi"),),
    MathFidelity.HiFi2: (("hi", "hi"), ("hi", "lo")),
    MathFidelity.HiFi3: (("hi", "hi"), ("hi", "lo"), ("lo", "hi")),
    MathFidelity.HiFi4: (("hi", "hi"), ("hi", "lo"), ("lo", "hi"), ("lo", "lo")),
}
# the same sums regrouped exactly (hi + lo == full), for a float32 DST where the phase order is immaterial
GROUPED: dict[MathFidelity, tuple[tuple[str, str], ...]] = {
    MathFidelity.LoFi: (("hi", "hi"),),
    MathFidelity.HiFi2: (("hi", "full"),),
    MathFidelity.HiFi3: (("hi", "full"), ("lo", "hi")),
    MathFidelity.HiFi4: (("full", "full"),),
}

# -- each op's own default config (what ttnn uses when compute_kernel_config is None) -------------------------
# tt-metal source (a commit the index holds, not necessarily 0.81.1's): init_device_compute_kernel_config(arch,
# config, fidelity, approx, fp32_acc, l1_acc) in each op's host code; the 0.81.1 .so carries the matmul path's
# HiFi3 warning string, so that source is at least as new.  (fidelity, approx, fp32 DST, packer L1 acc)
# ``"fp32_out"`` / ``"fp32_in"``: true when the output / input dtype is float32.
OP_DEFAULTS: dict[str, tuple[MathFidelity, bool, object, object]] = {
    # matmul_device_operation.cpp create_matmul_attributes: HiFi2 without a program config or core grid (LoFi
    # with one, or for bfloat8_b/bfloat4_b x bfloat8_b/bfloat4_b; HiFi3 for float32 x float32 on Wormhole)
    "matmul": (MathFidelity.HiFi2, False, "fp32_out", "not_fp32_out"),
    "linear": (MathFidelity.HiFi2, False, "fp32_out", "not_fp32_out"),
    # sdpa.cpp legacy_compute_config / sdpa_decode.cpp
    "scaled_dot_product_attention": (MathFidelity.HiFi2, True, False, False),
    "scaled_dot_product_attention_decode": (MathFidelity.HiFi2, True, False, False),
    # layernorm.cpp; softmax_device_operation.cpp (fp32 DST for a float32 input)
    "layer_norm": (MathFidelity.HiFi4, True, False, False),
    "softmax": (MathFidelity.HiFi4, True, "fp32_in", False),
    "scale_mask_softmax": (MathFidelity.HiFi4, True, "fp32_in", False),
    # conv2d_utils.cpp get_conv_default_compute_kernel_config (conv1d and conv_transpose2d share it)
    "conv2d": (MathFidelity.HiFi4, True, False, False),
    "conv1d": (MathFidelity.HiFi4, True, False, False),
    "conv_transpose2d": (MathFidelity.HiFi4, True, False, False),
    # paged_cache: init_device_compute_kernel_config(arch, config) with the header's defaults
    "paged_update_cache": (MathFidelity.LoFi, True, False, False),
    "paged_fused_update_cache": (MathFidelity.LoFi, True, False, False),
    "update_cache": (MathFidelity.LoFi, True, False, False),
    # batch_norm: no default found in the source; the header's defaults
    "batch_norm": (MathFidelity.LoFi, True, False, False),
}


def default_config(op: str, *, fp32_in: bool = False, fp32_out: bool = False) -> WormholeComputeKernelConfig:
    """The config ``op`` runs with when given none (``OP_DEFAULTS``)."""
    fidelity, approx, fp32, l1 = OP_DEFAULTS[op]
    flag = {"fp32_out": fp32_out, "not_fp32_out": not fp32_out, "fp32_in": fp32_in}
    return WormholeComputeKernelConfig(math_fidelity=fidelity, math_approx_mode=approx,
                                       fp32_dest_acc_en=flag.get(fp32, fp32), packer_l1_acc=flag.get(l1, l1))


@dataclass(frozen=True)
class Math:
    """The numerics one op call runs with (a resolved compute kernel config)."""

    fidelity: MathFidelity
    fp32_dest: bool
    packer_l1_acc: bool
    approx: bool

    @property
    def dest(self) -> DataType:
        return DataType.FLOAT32 if self.fp32_dest else DataType.BFLOAT16

    def round_dest(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.fp32_dest else x.bfloat16().float()


def resolve(op: str, config: WormholeComputeKernelConfig | None, *, fp32_in: bool = False,
            fp32_out: bool = False) -> Math:
    """The ``Math`` of ``op`` called with ``config``: the op's default when None, its default fidelity when the
    config's is ``Invalid`` (what ``WormholeComputeKernelConfig()`` holds)."""
    default = default_config(op, fp32_in=fp32_in, fp32_out=fp32_out)
    cfg = config if config is not None else default
    fidelity = cfg.math_fidelity if cfg.math_fidelity is not MathFidelity.Invalid else default.math_fidelity
    return Math(fidelity, bool(cfg.fp32_dest_acc_en), bool(cfg.packer_l1_acc), bool(cfg.math_approx_mode))


# -- source registers ------------------------------------------------------------------------------------------

def round_bf16(x: torch.Tensor) -> torch.Tensor:
    return x.bfloat16().float()


def keep_mantissa(x: torch.Tensor, explicit_bits: int) -> torch.Tensor:
    """``x`` (float32) with only its ``explicit_bits`` most significant mantissa bits (sign and exponent kept)."""
    return (x.view(torch.int32) & -(1 << (23 - explicit_bits))).view(torch.float32)


def flush_subnormals(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x.abs() < _TINY, torch.zeros((), dtype=x.dtype, device=x.device), x)


@dataclass(frozen=True)
class Split:
    """An operand as one source register holds it: ``hi`` (first-pass bits), ``lo`` (the rest the passes read,
    without the hidden bit) and ``full`` (= hi + lo exactly)."""

    hi: torch.Tensor
    lo: torch.Tensor
    full: torch.Tensor


def _split(x: torch.Tensor, hi_bits: int, full_bits: int) -> Split:
    x = flush_subnormals(x.float().contiguous())
    hi = keep_mantissa(x, hi_bits)
    full = keep_mantissa(x, full_bits)
    return Split(hi, full - hi, full)  # same sign and exponent: the difference is exact


def split_srca(x: torch.Tensor) -> Split:
    """``x`` in SrcA: 4 explicit bits in the first pass, 9 over all passes."""
    return _split(x, SRCA_HI, SRCA_FULL)


def split_srcb(x: torch.Tensor) -> Split:
    """``x`` in SrcB: 6 explicit bits in the first pass, 10 (all of TF32) over all passes."""
    return _split(x, SRCB_HI, SRCB_FULL)


# -- destination accumulation ----------------------------------------------------------------------------------

PARTIALS_BUDGET = 1 << 26  # bytes of face partial products held at once by a 16-bit-DST accumulation


def accumulate_bf16(n_faces: int, n_terms: int, face_bytes: int,
                    partials: Callable[[int, int, int], torch.Tensor]) -> torch.Tensor:
    """A 16-bit DST accumulating ``n_faces`` K faces (2 per tile) x ``n_terms`` fidelity phases (replayed per
    tile): for each tile, for each phase, for each face, ``DST = bf16(DST + partial)``.

    ``partials(term, f0, f1)`` gives the float32 partial products of faces ``f0..f1-1`` of one phase, stacked on
    dim 0; they are computed in blocks that keep ``PARTIALS_BUDGET`` bytes (``face_bytes`` per face and phase).
    """
    block = max(2, (PARTIALS_BUDGET // max(1, face_bytes * n_terms)) // 2 * 2)
    dest = rounded = None  # DST in float32 holding bfloat16 values; ``rounded``: a bfloat16 buffer to round through
    for f0 in range(0, n_faces, block):
        f1 = min(n_faces, f0 + block)
        parts = [partials(t, f0, f1) for t in range(n_terms)]
        for tile in range(f0, f1, 2):
            for p in parts:
                for f in range(tile, min(tile + 2, f1)):
                    if dest is None:
                        dest = p[f - f0].clone()
                        rounded = torch.empty_like(dest, dtype=torch.bfloat16)
                    else:
                        dest.add_(p[f - f0])
                    rounded.copy_(dest)  # round to nearest even (in place, vectorized: the fastest form here)
                    dest.copy_(rounded)
    return dest


def pad_faces(x: torch.Tensor, dim: int, n_faces: int) -> torch.Tensor:
    """``x`` zero-padded along ``dim`` to ``n_faces`` whole faces of 16 (zeros add nothing to DST)."""
    pad = n_faces * FACE - x.shape[dim]
    if not pad:
        return x
    shape = list(x.shape)
    shape[dim] = pad
    return torch.cat((x, x.new_zeros(shape)), dim)


def matmul(x: torch.Tensor, a: Split, m: Math) -> torch.Tensor:
    """DST after ``x @ w`` (x: in0 -> SrcB, ``[..., M, K]``; ``a``: in1 -> SrcA, split, ``[..., K, N]``)."""
    b = split_srcb(x)
    if m.fp32_dest:
        out = None
        for pb, pa in GROUPED[m.fidelity]:
            p = torch.matmul(getattr(b, pb), getattr(a, pa))
            out = p if out is None else out.add_(p)
        return out
    k = x.shape[-1]
    nf = -(-k // FACE)
    terms = [(pad_faces(getattr(b, pb), -1, nf), pad_faces(getattr(a, pa), -2, nf)) for pb, pa in PHASES[m.fidelity]]
    bshape = torch.broadcast_shapes(x.shape[:-2], a.full.shape[:-2])
    mrows, n = x.shape[-2], a.full.shape[-1]
    face_bytes = 4 * mrows * n * max(1, math.prod(bshape))

    def partials(t: int, f0: int, f1: int) -> torch.Tensor:
        xb, wa = terms[t]
        xs = xb[..., f0 * FACE:f1 * FACE].unflatten(-1, (f1 - f0, FACE)).movedim(-2, 0)   # [F, *bx, M, 16]
        ws = wa[..., f0 * FACE:f1 * FACE, :].unflatten(-2, (f1 - f0, FACE)).movedim(-3, 0)  # [F, *bw, 16, N]
        rank = max(xs.dim(), ws.dim())  # align the batch dims after F
        xs = xs.reshape(xs.shape[0], *([1] * (rank - xs.dim())), *xs.shape[1:])
        ws = ws.reshape(ws.shape[0], *([1] * (rank - ws.dim())), *ws.shape[1:])
        return torch.matmul(xs, ws)

    return accumulate_bf16(nf, len(terms), face_bytes, partials)


def eltwise_mul(x: torch.Tensor, y: torch.Tensor, m: Math) -> torch.Tensor:
    """DST after the FPU multiply ``x * y`` (in0 ``x`` -> SrcA, in1 ``y`` -> SrcB; broadcasting like torch)."""
    a, b = split_srca(x), split_srcb(y)
    if m.fp32_dest:
        out = None
        for pb, pa in GROUPED[m.fidelity]:
            p = getattr(b, pb) * getattr(a, pa)
            out = p if out is None else out.add_(p)
        return out
    out = None
    for pb, pa in PHASES[m.fidelity]:
        p = getattr(b, pb) * getattr(a, pa)
        out = p if out is None else out.add_(p)
        out = out.bfloat16().float()
    return out


def reduce_row_sum(x: torch.Tensor, m: Math) -> torch.Tensor:
    """DST after the FPU row reduction (sum over the last dim, scaler tile 1.0): ``x`` in SrcA, the scaler
    (exact in every pass, its low part zero) in SrcB; faces of 16 accumulated tile by tile, phase by phase."""
    a = split_srca(x)
    parts = [a.hi] if m.fidelity is MathFidelity.LoFi else [a.hi, a.lo]  # phases 3-4 multiply B_lo = 0
    if m.fp32_dest:
        return (a.hi if len(parts) == 1 else a.full).sum(-1)
    nf = -(-x.shape[-1] // FACE)
    faces = [pad_faces(p, -1, nf).unflatten(-1, (nf, FACE)).sum(-1).movedim(-1, 0) for p in parts]  # [F, ...]
    return accumulate_bf16(nf, len(faces), 4 * faces[0][0].numel(), lambda t, f0, f1: faces[t][f0:f1])


def pack(x: torch.Tensor, dtype: DataType) -> torch.Tensor:
    """Values the packer writes to a buffer of ``dtype`` (the reference's conversion: ``tensor.quantize``)."""
    from .tensor import quantize
    return quantize(x, dtype)


def matmul_partials_format(m: Math, out_dtype: DataType) -> DataType:
    """The format of matmul's partial-sum buffer (interm0): float32 with a 32-bit DST, else bfloat16 with
    packer L1 accumulation and the output format without it."""
    if m.fp32_dest:
        return DataType.FLOAT32
    return DataType.BFLOAT16 if m.packer_l1_acc else out_dtype
