"""Test helpers: PCC against a golden tensor (shape checked, NaN and constant inputs handled explicitly)."""
from __future__ import annotations

import math

import torch

from fx2ttnn.accuracy import pcc


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
