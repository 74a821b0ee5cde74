"""An ordered pass pipeline over torch.fx GraphModules, with dumps, printing and checks after each pass.

Passes are :class:`torch.fx.passes.infra.pass_base.PassBase` subclasses (``requires`` → ``call`` →
``ensures``) returning a :class:`PassResult` that also carries ``stats`` (what the pass changed).
The manager writes ``000_captured.txt``, ``001_<pass>.txt``, … when given ``dump_dir``, prints the
graph after the passes named in ``print_after`` (or ``"all"``), runs ``gm.graph.lint()`` after every
pass when ``check`` is set, and re-raises a failing pass's error with its name and the passes before it.

Dump formats: inside ``with dump_settings(DumpSettings(...)):`` every PassManager built in the block (e.g. the
ones ``lower_model(dump_dir=...)`` builds, several calls down) writes each of the given ``DumpFormat``s
(``NNN_<pass>.<suffix>``) instead of the text file, only for the passes named in ``passes``, and calls
``observe`` after every pass; a scoped switch like ``torch.fx.traceback.preserve_node_meta()``, so the
pipeline's signature does not grow a parameter per debugging need (``fx2ttnn dump`` uses it).
"""
from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Sequence

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
    nodes_added: int = 0     # nodes the pass created (still in the graph after it)
    nodes_removed: int = 0   # nodes of the graph before the pass that it erased


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


@dataclass(frozen=True)
class PassDump:
    """One dumped graph: which program, which pass (index 0 is ``captured``) and what that pass changed."""

    program: str
    index: int
    name: str
    stats: dict[str, int]
    nodes_before: int | None  # None for the captured graph
    nodes_after: int
    nodes_added: int = 0
    nodes_removed: int = 0

    @property
    def header(self) -> str:
        """The ``# ...`` lines the text dump starts with."""
        if self.nodes_before is None:
            nodes = f"{self.nodes_after}"
        else:
            nodes = f"{self.nodes_before} -> {self.nodes_after} (+{self.nodes_added} -{self.nodes_removed})"
        return (f"# {self.program + ': ' if self.program else ''}after {self.name}\n"
                f"# stats: {self.stats or 'no change'}\n# nodes: {nodes}\n")


PassDumper = Callable[[torch.fx.GraphModule, PassDump], str]


@dataclass(frozen=True)
class DumpFormat:
    """Dump files ``NNN_<pass>.<suffix>`` holding ``render(gm, dump)``; ``after_write(path)`` runs on each file."""

    suffix: str
    render: PassDumper
    after_write: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class DumpSettings:
    """What PassManagers built inside ``dump_settings(...)`` dump (see the module docstring)."""

    formats: tuple[DumpFormat, ...] = ()
    passes: frozenset[str] | None = None  # dump files only for these pass names ("captured" included); None: all
    observe: Callable[[torch.fx.GraphModule, PassDump], None] | None = None  # called after every pass


_DUMP_SETTINGS: ContextVar[DumpSettings | None] = ContextVar("fx2ttnn_dump_settings", default=None)


@contextlib.contextmanager
def dump_settings(settings: DumpSettings) -> Iterator[DumpSettings]:
    """Use ``settings`` for every PassManager constructed inside the block."""
    token = _DUMP_SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _DUMP_SETTINGS.reset(token)


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
        self.settings = _DUMP_SETTINGS.get()
        known = {p.name for p in self.passes}
        if self.print_after != "all":
            unknown = set(self.print_after) - known - {"captured"}
            if unknown:
                raise LoweringError(f"unknown pass name(s) {sorted(unknown)}; passes are: {', '.join(sorted(known))}")

    def _emit(self, dump: PassDump, gm: torch.fx.GraphModule) -> None:
        settings = self.settings
        if settings is not None and settings.observe is not None:
            settings.observe(gm, dump)
        want_print = self.print_after == "all" or dump.name in self.print_after
        want_file = self.dump_dir is not None and (settings is None or settings.passes is None
                                                   or dump.name in settings.passes)
        if not want_file and not want_print:
            return
        formats = settings.formats if settings is not None else ()
        text = dump.header + self.render(gm) if want_print or not formats else ""
        if want_file:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            stem = f"{dump.index:03d}_{dump.name}"
            if not formats:
                (self.dump_dir / f"{stem}.txt").write_text(text)
            for fmt in formats:
                path = self.dump_dir / f"{stem}.{fmt.suffix}"
                path.write_text(fmt.render(gm, dump))
                if fmt.after_write is not None:
                    fmt.after_write(path)
        if want_print:
            self.printer(text)

    def __call__(self, gm: torch.fx.GraphModule) -> PipelineResult:
        out = PipelineResult(gm)
        self._emit(PassDump(self.program, 0, "captured", {}, None, len(gm.graph.nodes)), gm)
        for i, p in enumerate(self.passes, start=1):
            before_nodes = set(gm.graph.nodes)
            before = len(before_nodes)
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
            seconds = time.perf_counter() - t0
            after_nodes = set(gm.graph.nodes)
            rec = PassRecord(p.name, stats, seconds, before, len(after_nodes), len(after_nodes - before_nodes),
                             len(before_nodes - after_nodes))
            out.records.append(rec)
            self._emit(PassDump(self.program, i, p.name, stats, before, rec.nodes_after, rec.nodes_added,
                                rec.nodes_removed), gm)
        return out
