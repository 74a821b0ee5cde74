"""An ordered pass pipeline over torch.fx GraphModules, with dumps, printing and checks after each pass.

Passes are :class:`torch.fx.passes.infra.pass_base.PassBase` subclasses (``requires`` → ``call`` →
``ensures``) returning a :class:`PassResult` that also carries ``stats`` (what the pass changed).
The manager writes ``000_captured.txt``, ``001_<pass>.txt``, … when given ``dump_dir``, prints the
graph after the passes named in ``print_after`` (or ``"all"``), runs ``gm.graph.lint()`` after every
pass when ``check`` is set, and re-raises a failing pass's error with its name and the passes before it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import torch.fx
from torch.fx.passes.infra.pass_base import PassBase
from torch.fx.passes.infra.pass_base import PassResult as _FxPassResult

from ..errors import LoweringError


class PassResult(_FxPassResult):
    """torch.fx's ``PassResult(graph_module, modified)`` plus ``stats``: counts of what the pass changed."""

    def __new__(cls, graph_module: torch.fx.GraphModule, modified: bool, stats: dict[str, int] | None = None):
        self = super().__new__(cls, graph_module, modified)
        self.stats = {k: v for k, v in (stats or {}).items() if v}
        return self


class FxPass(PassBase):
    """Base of fx2ttnn passes: a name, and a result built from stats.

    ``modified`` iff a stat other than a ``*declined`` count is non-zero (declining changes nothing).
    """

    name: str = ""

    def result(self, gm: torch.fx.GraphModule, stats: dict[str, int]) -> PassResult:
        modified = any(v for k, v in stats.items() if not k.endswith("declined"))
        if modified:
            gm.graph.lint()
            gm.recompile()
        return PassResult(gm, modified, stats)


@dataclass
class PassRecord:
    name: str
    stats: dict[str, int]
    seconds: float
    nodes_before: int
    nodes_after: int


@dataclass
class PipelineResult:
    graph_module: torch.fx.GraphModule
    records: list[PassRecord] = field(default_factory=list)

    @property
    def passes_run(self) -> list[str]:
        return [r.name for r in self.records]


GraphRenderer = Callable[[torch.fx.GraphModule], str]


def default_render(gm: torch.fx.GraphModule) -> str:
    return gm.print_readable(print_output=False, include_stride=False, include_device=False)


class PassManager:
    """Run ``passes`` in order. ``render`` turns a graph into the text that is dumped/printed."""

    def __init__(self, passes: Sequence[FxPass], *, dump_dir: Path | str | None = None,
                 print_after: Iterable[str] | Literal["all"] = (), check: bool = True,
                 render: GraphRenderer = default_render, printer: Callable[[str], None] = print,
                 program: str = ""):
        self.passes = list(passes)
        self.dump_dir = Path(dump_dir) if dump_dir is not None else None
        self.print_after = print_after if print_after == "all" else set(print_after)
        self.check = check
        self.render = render
        self.printer = printer
        self.program = program
        known = {p.name for p in self.passes}
        if self.print_after != "all":
            unknown = set(self.print_after) - known - {"captured"}
            if unknown:
                raise LoweringError(f"unknown pass name(s) {sorted(unknown)}; passes are: {', '.join(sorted(known))}")

    def _emit(self, index: int, name: str, gm: torch.fx.GraphModule, stats: dict[str, int]) -> None:
        want_print = self.print_after == "all" or name in self.print_after
        if self.dump_dir is None and not want_print:
            return
        header = f"# {self.program + ': ' if self.program else ''}after {name}\n# stats: {stats or 'no change'}\n"
        text = header + self.render(gm)
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            (self.dump_dir / f"{index:03d}_{name}.txt").write_text(text)
        if want_print:
            self.printer(text)

    def __call__(self, gm: torch.fx.GraphModule) -> PipelineResult:
        out = PipelineResult(gm)
        self._emit(0, "captured", gm, {})
        for i, p in enumerate(self.passes, start=1):
            before = len(gm.graph.nodes)
            t0 = time.perf_counter()
            try:
                res = p(gm)
                if self.check:
                    gm.graph.lint()
            except Exception as e:  # re-raise with the pipeline position, keeping the original type's message
                ran = ", ".join(out.passes_run) or "none"
                msg = f"pass '{p.name}' failed{' on ' + self.program if self.program else ''} (passes before it: {ran}): {e}"
                if isinstance(e, LoweringError):
                    raise type(e)(msg) from e
                raise LoweringError(msg) from e
            gm = res.graph_module if res is not None else gm
            stats = getattr(res, "stats", {}) if res is not None else {}
            out.graph_module = gm
            out.records.append(PassRecord(p.name, stats, time.perf_counter() - t0, before, len(gm.graph.nodes)))
            self._emit(i, p.name, gm, stats)
        return out
