"""``tts.report()``: what was lowered, per program variant: TTNN ops, host fallbacks, transfers, passes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .lowering.ir import OpKind
from .lowering.pipeline import FallbackRecord

if TYPE_CHECKING:
    from .model import LoweredSpeechT5


def _uploaded_weight_bytes(lp) -> int:
    """Device bytes of the host constants a program uploads when it is bound (weights, tables)."""
    return sum(n.meta["tensor_spec"].nbytes for n in lp.nodes()
               if getattr(n.target, "name", "") == "from_torch" and all(a.op == "get_attr" for a in n.all_input_nodes))


@dataclass
class ProgramReport:
    name: str
    key: tuple[int, ...]
    ops: dict[str, int]
    ttnn_ops: int
    transfer_ops: int
    host_fallbacks: list[FallbackRecord]
    ops_per_call: int
    transfers_per_call: int
    passes: list[tuple[str, dict[str, int]]]
    capture_seconds: float
    lowering_seconds: float
    weight_bytes: int
    device_constant_bytes: int = 0   # bound once: weights, tables, prepared conv weights (plan_memory)
    device_peak_bytes: int = 0       # constants + inputs + the most intermediates live at once (plan_memory)
    constants_reused: int = 0        # device constants taken from earlier variants when bound (ConstantPool)
    compute_configs: list = field(default_factory=list)  # [{class, config, ops}] (graph_analysis.compute_configs)

    @property
    def fallback_count(self) -> int:
        return len(self.host_fallbacks)


@dataclass
class Report:
    backend: str
    dtype: str
    precision: str
    numerics: str
    max_steps: int
    prenet_dropout: bool
    programs: list[ProgramReport] = field(default_factory=list)
    lower_seconds: float = 0.0
    backend_note: str = ""
    device_constants_shared_bytes: int = 0  # device bytes variants did not upload again (ConstantPool)

    @staticmethod
    def of(tts: "LoweredSpeechT5") -> "Report":
        from .tools.graph_analysis import compute_configs
        rep = Report(tts.backend.description, tts.dtype, tts.precision, tts.backend.numerics, tts.max_steps,
                     tts.prenet_dropout,
                     lower_seconds=tts.lower_seconds, backend_note=tts.backend.fallback_reason,
                     device_constants_shared_bytes=tts.constant_pool.bytes_reused)
        for v in tts.variants:
            programs = [(v.name, v.lowered, v.bound)]
            if v.prologue is not None:  # the per-utterance part hoisted out of the step
                programs.append((f"{v.name}.prologue", v.lowered.prologue, v.prologue))
            for name, lp, bound in programs:
                rep.programs.append(ProgramReport(
                    name, v.key, lp.op_histogram(), lp.count(OpKind.COMPUTE) + lp.count(OpKind.DATA_MOVEMENT),
                    lp.count(OpKind.TRANSFER), lp.fallbacks(), bound.counts.ttnn_ops, bound.counts.transfers,
                    [(r.name, r.stats) for r in lp.pass_records], lp.capture_seconds, lp.lowering_seconds,
                    _uploaded_weight_bytes(lp), lp.graph_module.meta.get("memory", {}).get("constants", 0),
                    lp.graph_module.meta.get("memory", {}).get("peak", 0), bound.constants_reused,
                    compute_configs(n for n in lp.nodes() if getattr(n.target, "kind", None) is OpKind.COMPUTE)))
        return rep

    def program(self, name: str, key: tuple[int, ...] | None = None) -> ProgramReport:
        """The report of program ``name`` (its ``key`` variant, or the first one lowered)."""
        for p in self.programs:
            if p.name == name and (key is None or tuple(key) == p.key):
                return p
        raise KeyError(f"no lowered variant of {name!r}{'' if key is None else f' with key {tuple(key)}'}")

    def __str__(self) -> str:
        lines = [f"fx2ttnn report — backend: {self.backend}; dtype {self.dtype}; precision {self.precision} "
                 f"({self.numerics} numerics); max_steps {self.max_steps}; "
                 f"prenet dropout {'on' if self.prenet_dropout else 'off'}; lowering {self.lower_seconds:.1f} s"]
        if self.backend_note:
            lines.append(f"(not on a device: {self.backend_note})")
        if self.device_constants_shared_bytes:
            lines.append(f"device constants shared between variants: {self.device_constants_shared_bytes / 2**20:.1f} "
                         "MiB not uploaded again")
        for p in self.programs:
            lines.append(f"\n[{p.name} {'x'.join(map(str, p.key))}] {p.ops_per_call} TTNN ops per call, "
                         f"{p.transfers_per_call} host<->device transfers per call, {len(p.host_fallbacks)} host "
                         f"fallbacks, weights {p.weight_bytes / 2**20:.1f} MiB, peak device memory "
                         f"{p.device_peak_bytes / 2**20:.1f} MiB, {p.constants_reused} constants shared, "
                         f"capture {p.capture_seconds:.1f} s, "
                         f"passes {p.lowering_seconds:.1f} s")
            lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in p.ops.items()))
            if p.compute_configs:
                lines.append("  compute kernel configs: " + "; ".join(f"{c['class']} x{c['ops']} ({c['config']})"
                                                                   for c in p.compute_configs))
            for f in p.host_fallbacks:
                lines.append(f"  fallback: {f.op} in {f.module or '?'} — {f.reason}")
        return "\n".join(lines)
