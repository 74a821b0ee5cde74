"""The ``fx2ttnn`` command line.

    fx2ttnn synth "Hello world." -o hello.wav [--model DIR_OR_ID] [--vocoder DIR_OR_ID] [--speaker X.npy] ...
    fx2ttnn dump [--program P] [--print-after PASS|all] [--format text|json|dot] [--out DIR] [--diff A B]
    fx2ttnn compare [--program P] [--dtype ...] [--steps N]
    fx2ttnn export --out DIR [--program P]
    fx2ttnn bench [--text-len N] [--steps N] [--dtype ...] [--repeat R] [--json FILE]
    fx2ttnn conformance [--config default|non-default] [--dtype ...] [--json FILE]

Each subcommand lives in its own module under ``fx2ttnn.tools`` exposing ``add_parser(subparsers)``, which
registers its argparse subparser with ``func=run`` (``run(args) -> int``).  ``main`` turns user errors
(``CliError``, unwritable output, any ``fx2ttnn.errors.Fx2TTNNError``) into one ``error: ...`` line on stderr
and exit code 2, with no traceback; argparse usage errors exit 2 as well.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from .. import __version__
from ..errors import Fx2TTNNError
from . import bench, compare, conformance, dump, export, synth
from .outputs import OutputPathError
from .common import CliError, one_line

SUBCOMMANDS = (synth, dump, compare, export, bench, conformance)
EXIT_USER_ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``error: fx2ttnn synth: argument --dtype: invalid choice ...``,
    pointing at ``--help`` instead of repeating the usage; exit code 2 like every user error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {one_line(message)} (see '{self.prog} --help')", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fx2ttnn", description="Lower Hugging Face SpeechT5 text-to-speech + HiFi-GAN onto TTNN programs "
                                    "and run them (real ttnn, or fx2ttnn's reference implementation).")
    parser.add_argument("--version", action="version", version=f"fx2ttnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2) and --help/--version (0): return the code, do not raise
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USER_ERROR)
    try:
        return int(args.func(args) or 0)
    except (CliError, OutputPathError, Fx2TTNNError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
