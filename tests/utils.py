"""Test helpers: PCC against a golden tensor (shape checked, NaN and constant inputs handled explicitly)."""
from __future__ import annotations

import math

import torch


def pcc(golden: torch.Tensor, actual: torch.Tensor) -> float:
    """Pearson correlation of two tensors of the same shape (1.0 for two identical constant tensors)."""
    g = golden.detach().flatten().to(torch.float64)
    a = actual.detach().flatten().to(torch.float64)
    if torch.isnan(g).any() or torch.isnan(a).any():
        return float("nan")
    if torch.equal(g, a):
        return 1.0
    gc, ac = g - g.mean(), a - a.mean()
    denom = gc.norm() * ac.norm()
    if denom == 0:
        return 0.0
    return float((gc @ ac) / denom)


def assert_pcc(golden: torch.Tensor, actual: torch.Tensor, min_pcc: float, what: str = "output") -> float:
    """Assert shape equality and PCC >= ``min_pcc``; returns the measured PCC (printed with -s)."""
    assert tuple(golden.shape) == tuple(actual.shape), f"{what}: shape {tuple(actual.shape)} != golden {tuple(golden.shape)}"
    value = pcc(golden, actual)
    print(f"PCC {what}: {value:.8f} (min {min_pcc})")
    assert not math.isnan(value), f"{what}: NaN in output"
    assert value >= min_pcc, f"{what}: PCC {value:.8f} < {min_pcc}"
    return value


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """Run the ``fx2ttnn`` command line in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from fx2ttnn.tools.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()
