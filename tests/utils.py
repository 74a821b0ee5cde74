"""Test helpers: PCC against a golden tensor (shape checked, NaN and constant inputs handled explicitly)."""
from __future__ import annotations

import math

import torch

from fx2ttnn.accuracy import OP_ATOL, PCC, SMALL_NUMEL, pcc


def assert_pcc(golden: torch.Tensor, actual: torch.Tensor, min_pcc: float, what: str = "output") -> float:
    """Assert shape equality and PCC >= ``min_pcc``; returns the measured PCC (printed with -s)."""
    assert tuple(golden.shape) == tuple(actual.shape), f"{what}: shape {tuple(actual.shape)} != golden {tuple(golden.shape)}"
    value = pcc(golden, actual)
    print(f"PCC {what}: {value:.8f} (min {min_pcc})")
    assert not math.isnan(value), f"{what}: NaN in output"
    assert value >= min_pcc, f"{what}: PCC {value:.8f} < {min_pcc}"
    return value


def assert_matches_stage(golden: torch.Tensor, actual: torch.Tensor, stage: str, dtype: str, what: str) -> None:
    """``actual`` matches HF's ``golden`` at ``stage``'s threshold for ``dtype`` (fx2ttnn/accuracy.py): by PCC, or
    for values under ``SMALL_NUMEL`` elements by max abs error <= ``OP_ATOL[dtype]``."""
    if golden.numel() >= SMALL_NUMEL:
        assert_pcc(golden, actual, PCC[stage][dtype], what)
        return
    assert tuple(golden.shape) == tuple(actual.shape), f"{what}: shape {tuple(actual.shape)} != {tuple(golden.shape)}"
    err = float((golden.double() - actual.double()).abs().max()) if golden.numel() else 0.0
    assert err <= OP_ATOL[dtype], f"{what}: max abs err {err:.3g} > {OP_ATOL[dtype]} ({golden.numel()} elements)"


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """Run the ``fx2ttnn`` command line in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from fx2ttnn.tools.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()
