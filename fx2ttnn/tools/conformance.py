"""``fx2ttnn conformance``: every ttnn call of the lowered programs through the real ttnn 0.81.1, and the reference's
host conversions against ttnn's, bit for bit (``fx2ttnn.conformance``; no device needed).

Exit code 0 when there is no binding error, no pre-device check failure and every numerics case is bit-exact; 1
otherwise; 2 when it cannot run here (no CPython 3.12, the side environment cannot be made).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import CliError, seed_int
from .outputs import check_writable, write_text


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..conformance.report import CONFIGS, DTYPES
    p = subparsers.add_parser(
        "conformance", help="bind every emitted ttnn call through the real ttnn 0.81.1 and compare host conversions",
        description="Lower the four programs (and the decode step's prologue) of the default and a non-default "
                    "SpeechT5 configuration (random weights) in both dtypes, replay every ttnn call through the real "
                    "ttnn 0.81.1 in a CPython 3.12 side environment (made and cached on first use), and compare "
                    "the reference's host conversions with ttnn's bit for bit. No device is needed or used.")
    p.add_argument("--config", action="append", choices=CONFIGS, default=None,
                   help="configuration(s) to check (default: both)")
    p.add_argument("--dtype", action="append", choices=DTYPES, default=None, help="dtype(s) (default: both)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write every call's record as JSON")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N", help="seed for the random weights (default: 0)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..conformance.report import CONFIGS, DTYPES, run_conformance
    from ..conformance.sideenv import SideEnvUnavailable
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.json:
        check_writable(args.json, "--json")
    try:
        # a flag given twice still lowers and replays its configuration once
        report = run_conformance(configs=tuple(dict.fromkeys(args.config or CONFIGS)),
                                 dtypes=tuple(dict.fromkeys(args.dtype or DTYPES)), seed=args.seed, log=log)
    except SideEnvUnavailable as e:
        raise CliError(str(e)) from None
    print(report.text(), flush=True)
    if args.json:
        data = {"side_env": report.side_env, "calls": [
            {"config": r.config, "dtype": r.dtype, **{k: r.call[k] for k in ("program", "part", "node", "op", "when",
                                                                              "module")}, **r.result}
            for r in report.results],
            "numerics": [row.__dict__ for row in report.numerics]}
        write_text(args.json, json.dumps(data, indent=1) + "\n")
    return 0 if report.ok else 1
