"""Host conversions, the reference against the real ttnn 0.81.1, bit for bit.

Each case is a host array (float32, int32, uint32 or int64) converted to a ttnn dtype and layout: on the real side by
``ttnn.Tensor(array, data_type=, layout=)`` (the constructor ``ttnn.from_torch`` ends in) and read back both as values
(``to_numpy``; bfloat16 from its raw bytes) and as raw storage (for TILE: the padding too); on this side by the
reference's ``from_torch`` + ``to_torch``.  Values compare by bit pattern (any NaN equals any NaN); the TILE padding
of the real tensor must hold the pad value (the reference keeps no padding; its block floats pad a short block with
zeros, which is what ttnn stores there by default).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..runtime import reference as ref_ttnn
from .calls import Blob

TILE = 32


def _edge_floats() -> np.ndarray:
    f = np.float32
    bits = lambda *u: np.array(u, dtype=np.uint32).view(np.float32)  # noqa: E731
    rows = [
        # specials, signed zeros, subnormals, extremes
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 1.4e-45, np.finfo(f).max, -np.finfo(f).max,
         np.finfo(f).tiny, -np.finfo(f).tiny, 65504.0, 1.0, -1.0, 3.0],
        # bfloat16 ties: halfway with even / odd kept mantissa, and just above / below halfway
        list(bits(0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF808000, 0xBF818000, 0x7F7F8000, 0x00008000,
                  0x3F80FFFF, 0x3FFF8000, 0x407F8000, 0x7F7FFFFF, 0x80008000, 0x3F800001, 0x3F8000FF, 0x33800000)),
        # one block straddling exponents: the smaller values lose bits when aligned to the largest
        [1.0, 0.5, 0.25, 2**-7, 2**-7 + 2**-30, 2**-8, 3 * 2**-8, 2**-20, 1.99, -1.99, 1 / 3, 2 / 3, 0.999, 7.5, -7.5,
         2**-9],
        # a block of tiny normals and one of huge values
        [2**-126, 1.5 * 2**-126, 2**-125, 3 * 2**-125, 2**-120, -2**-124, 2**-126 * 1.0000001, 0.0,
         2**120, 1.5 * 2**127, -2**127, 2**126, 3e38, 1e38, -1e38, 2**100],
        # a NaN with a small payload (reads as inf in a block float), ties for bfloat8_b / bfloat4_b
        list(bits(0x7F800001, 0x7FC00000, 0xFFC00000, 0x3F810000, 0x3F830000, 0x3F900000, 0x3FB00000, 0x3F880000,
                  0x3F980000, 0xBF810000, 0xBF900000, 0x3F818000, 0x3F828000, 0x3F8F0000, 0x3F9F0000, 0x3FF80000)),
    ]
    return np.array(rows, dtype=np.float32)


@dataclass
class Case:
    name: str
    source: np.ndarray
    dtype: str        # ttnn dtype name
    layout: str       # TILE | ROW_MAJOR


def cases(seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    normals = rng.standard_normal((2, 40, 72)).astype(np.float32)           # W, H not multiples of 32: padding
    wide = (rng.standard_normal((3, 48)) * np.exp2(rng.integers(-30, 30, (3, 48)))).astype(np.float32)
    edges = _edge_floats()
    ints = np.array([[0, 1, -1, 2**31 - 1, -2**31, 1000, -1000, 7]], dtype=np.int32)
    uints = np.array([[0, 1, 2**32 - 1, 2**31, 12345, 7]], dtype=np.uint32)
    out = []
    for fname, arr in (("normals", normals), ("wide range", wide), ("edge values", edges)):
        for dtype, layouts in (("bfloat16", ("ROW_MAJOR", "TILE")), ("bfloat8_b", ("TILE",)),
                               ("bfloat4_b", ("TILE",)), ("float32", ("ROW_MAJOR", "TILE"))):
            out += [Case(f"{fname} -> {dtype} {layout}", arr, dtype, layout) for layout in layouts]
    for layout in ("ROW_MAJOR", "TILE"):
        out.append(Case(f"int32 -> int32 {layout}", ints, "int32", layout))
        out.append(Case(f"uint32 -> uint32 {layout}", uints, "uint32", layout))
    return out


def request(cs: list[Case], blob: Blob) -> list[dict]:
    return [{"name": c.name, "dtype": c.dtype, "layout": c.layout,
             "source": {"shape": list(c.source.shape), "dtype": c.source.dtype.name,
                        "data": blob.add(np.ascontiguousarray(c.source).tobytes())}} for c in cs]


def untilize(raw: np.ndarray, padded: list[int]) -> np.ndarray:
    """Raw TILE storage (32x32 tiles of four 16x16 faces, row-major) as the padded row-major array."""
    h, w = padded[-2], padded[-1]
    batch = int(np.prod(padded[:-2])) if len(padded) > 2 else 1
    t = raw.reshape(batch, h // TILE, w // TILE, 2, 2, 16, 16)
    return t.transpose(0, 1, 3, 5, 2, 4, 6).reshape(*padded)


_RAW = {"bfloat16": np.uint16, "float32": np.float32, "int32": np.int32, "uint32": np.uint32}


def real_values(case: Case, entry: dict, blob: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """The real tensor's logical values (float32 for float dtypes) and its TILE padding (None if none/unknown)."""
    shape, padded = entry["shape"], entry["padded_shape"]
    off, n = entry["raw"]
    raw = np.frombuffer(blob[off:off + n], dtype=np.uint8)
    full = None
    if case.dtype in _RAW:
        flat = raw.view(_RAW[case.dtype])
        full = untilize(flat, padded) if case.layout == "TILE" else flat.reshape(padded)
        if case.dtype == "bfloat16":
            full = (full.astype(np.uint32) << 16).view(np.float32)
    if "values" in entry:
        off, n = entry["values"]
        values = np.frombuffer(blob[off:off + n], dtype=np.float32 if case.dtype.startswith("bf") or case.dtype ==
                               "float32" else _RAW[case.dtype]).reshape(shape)
    else:
        values = full[tuple(slice(0, s) for s in shape)]
    padding = None
    if full is not None and case.layout == "TILE" and tuple(padded) != tuple(shape):
        mask = np.ones(padded, dtype=bool)
        mask[tuple(slice(0, s) for s in shape)] = False
        padding = full[mask]
    return values, padding


def reference_values(case: Case) -> np.ndarray:
    dtype = getattr(ref_ttnn, case.dtype)
    layout = ref_ttnn.TILE_LAYOUT if case.layout == "TILE" else ref_ttnn.ROW_MAJOR_LAYOUT
    t = ref_ttnn.from_torch(torch.from_numpy(case.source.copy()), dtype=dtype, layout=layout)
    out = ref_ttnn.to_torch(t)
    return out.float().numpy() if out.dtype == torch.bfloat16 else out.numpy()


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return (a.view(np.uint32) == b.astype(np.float32).view(np.uint32)) | (np.isnan(a) & np.isnan(b))
    return a.astype(np.int64) == b.astype(np.int64)


@dataclass
class NumericsRow:
    case: str
    elements: int
    differ: int
    padding: str      # "n/a", "0 (n)", or what the padding held
    first: str        # the first difference: source -> reference vs ttnn

    @property
    def ok(self) -> bool:
        return self.differ == 0 and not self.padding.startswith("nonzero")


def compare(cs: list[Case], response: dict, blob: bytes) -> list[NumericsRow]:
    rows = []
    for c in cs:
        entry = response["cases"][c.name]
        if "error" in entry:
            rows.append(NumericsRow(c.name, c.source.size, c.source.size, "n/a", f"ttnn: {entry['error'][:200]}"))
            continue
        real, padding = real_values(c, entry, blob)
        ref = reference_values(c)
        same = same_bits(real, ref)
        first = ""
        if not same.all():
            i = tuple(np.argwhere(~same)[0])
            first = f"{c.source[i]!r} -> reference {ref[i]!r}, ttnn {real[i]!r}"
        pad = "n/a"
        if padding is not None:
            nonzero = int(np.count_nonzero(padding.astype(np.float64) != 0))
            pad = f"0 ({padding.size})" if nonzero == 0 else f"nonzero: {nonzero} of {padding.size}"
        rows.append(NumericsRow(c.name, int(same.size), int((~same).sum()), pad, first))
    return rows
