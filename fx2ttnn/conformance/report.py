"""Run the conformance suite: lower the programs, replay every ttnn call through the real ttnn 0.81.1, convert the
numerics cases with it, and tabulate.  ``fx2ttnn conformance`` prints it; ``tests/conformance`` asserts it.

Per call, how far the real library got (``status``):
  ok            ran to completion (host-only calls: weight conversions for conv preparation)
  ran_on_host   ran to completion on host tensors; in the program the inputs are on the device, whose code path
                this does not exercise (data movement with a host implementation: reshape, deallocate, ...)
  needs_device  bound, and stopped where the op first needs the device: at a check on device/storage, or, for ops
                that use the device before checking, on entering the op; for ops that take a ``device`` argument the
                arguments were matched against ttnn's own signature (no MeshDevice can exist here)
  check_failed  a check of the real library fired before the device one: a defect in the lowering or reference
  binding_error the real bindings refused the arguments (a name, keyword, type or count ttnn does not have)
"""
from __future__ import annotations

import collections
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from . import numerics
from .calls import Blob, call_key, program_calls
from .sideenv import TTNN_VERSION, SideEnv, ensure_side_env

STATUSES = ("ok", "ran_on_host", "needs_device", "check_failed", "binding_error")
FAILURES = ("check_failed", "binding_error")
DTYPES = ("bfloat16", "float32")
# a non-default configuration: other widths, head count, depths, reduction factor, and vocoder upsampling
NON_DEFAULT_MODEL = dict(hidden_size=384, encoder_layers=3, decoder_layers=2, encoder_attention_heads=6,
                         decoder_attention_heads=6, encoder_ffn_dim=1024, decoder_ffn_dim=1536,
                         speech_decoder_prenet_units=128, speech_decoder_postnet_units=256, reduction_factor=3,
                         speaker_embedding_dim=256)
NON_DEFAULT_VOCODER = dict(upsample_initial_channel=128, upsample_rates=[5, 4, 3], upsample_kernel_sizes=[10, 8, 7],
                           resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 2], [2, 6]])
CONFIGS = ("default", "non-default")


def build_models(config: str, seed: int = 0):
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig
    torch.manual_seed(seed)
    kw, vkw = ({}, {}) if config == "default" else (NON_DEFAULT_MODEL, NON_DEFAULT_VOCODER)
    return (SpeechT5ForTextToSpeech(SpeechT5Config(**kw)).eval(),
            SpeechT5HifiGan(SpeechT5HifiGanConfig(**vkw)).eval())


@dataclass
class CallResult:
    config: str
    dtype: str
    call: dict
    result: dict


@dataclass
class ConformanceReport:
    results: list[CallResult] = field(default_factory=list)
    host_fallbacks: list[str] = field(default_factory=list)
    numerics: list[numerics.NumericsRow] = field(default_factory=list)
    distinct_calls: int = 0
    workers: int = 0                 # forked replay workers (1 + the calls that killed one)
    seconds: dict[str, float] = field(default_factory=dict)  # lowering per config/dtype, replay, numerics
    side_env: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(r.result["status"] == status for r in self.results)

    @property
    def failures(self) -> list[CallResult]:
        return [r for r in self.results if r.result["status"] in FAILURES]

    @property
    def ok(self) -> bool:
        return not self.failures and all(row.ok for row in self.numerics)

    def per_op(self) -> dict[str, collections.Counter]:
        table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for r in self.results:
            table[r.call["op"]][r.result["status"]] += 1
        return dict(sorted(table.items()))

    def furthest(self, op: str) -> str:
        """The most common stage reached by the calls of ``op`` (how far the real library validated them)."""
        stages = collections.Counter(r.result["stage"] for r in self.results if r.call["op"] == op)
        return stages.most_common(1)[0][0] if stages else ""

    def programs(self) -> dict[tuple[str, str, str], collections.Counter]:
        table: dict[tuple[str, str, str], collections.Counter] = collections.defaultdict(collections.Counter)
        for r in self.results:
            table[(r.config, r.dtype, r.call["program"])][r.result["status"]] += 1
        return dict(table)

    def text(self) -> str:
        lines = []
        env = self.side_env
        lines.append(f"fx2ttnn conformance: real ttnn {env.get('ttnn', '?')} in {env.get('root', '?')} "
                     f"({env.get('size_mib', 0):.0f} MiB{', made in %.0f s' % env['created_s'] if env.get('created_s') else ''}); "
                     f"{len(self.results)} calls ({self.distinct_calls} distinct) replayed in "
                     f"{self.seconds.get('replay', 0):.0f} s ({self.workers} workers)")
        lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()))
        lines.append("")
        lines.append("calls per program (config, dtype, program: statuses)")
        for (cfg, dt, prog), c in sorted(self.programs().items()):
            lines.append(f"  {cfg:11s} {dt:8s} {prog:12s} " + ", ".join(f"{s} {c[s]}" for s in STATUSES if c[s]))
        lines.append("")
        lines.append(f"{'ttnn op':50s} {'calls':>6s}  statuses / how far the real library validated it")
        for op, c in self.per_op().items():
            statuses = ", ".join(f"{s} {c[s]}" for s in STATUSES if c[s])
            lines.append(f"  ttnn.{op:45s} {sum(c.values()):6d}  {statuses}")
            lines.append(f"  {'':51s}        {self.furthest(op)}")
            approximated = collections.Counter(a for r in self.results if r.call["op"] == op
                                               for a in r.result.get("approximated", ()))
            for what, n in approximated.items():
                lines.append(f"  {'':51s}        {n} with an argument approximated: {what}")
        if self.host_fallbacks:
            lines.append(f"host fallbacks (torch, not ttnn): {dict(collections.Counter(self.host_fallbacks))}")
        lines.append("")
        lines.append(f"{'host conversion (numerics)':44s} {'elements':>8s} {'differ':>6s}  {'TILE padding':14s} first difference")
        for row in self.numerics:
            lines.append(f"  {row.case:42s} {row.elements:8d} {row.differ:6d}  {row.padding:14s} {row.first}")
        lines.append("")
        fails = self.failures
        for r in fails[:40]:
            c = r.call
            lines.append(f"FAIL {r.config} {r.dtype} {c['program']}/{c['part']} {c['node']} ttnn.{c['op']} "
                         f"({c['module'] or '-'}): {r.result['status']} at {r.result['stage']}: {r.result['message']}")
        bad_rows = [row for row in self.numerics if not row.ok]
        lines.append(f"{'PASS' if self.ok else 'FAIL'}: {self.count('binding_error')} binding errors, "
                     f"{self.count('check_failed')} pre-device check failures, {self.count('needs_device')} calls "
                     f"need a device to go further, {self.count('ran_on_host') + self.count('ok')} ran on host; "
                     f"numerics {len(self.numerics) - len(bad_rows)}/{len(self.numerics)} cases bit-exact")
        return "\n".join(lines)


def lower(config: str, dtype: str, *, seed: int = 0):
    from ..model import lower_model
    model, vocoder = build_models(config, seed)
    return lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype, keep_host_weights=True)


def run_conformance(*, configs=CONFIGS, dtypes=DTYPES, side: SideEnv | None = None, seed: int = 0,
                    log: Callable[[str], None] = print) -> ConformanceReport:
    side = side or ensure_side_env(log=log)
    report = ConformanceReport()
    report.side_env = {"root": str(side.root), "size_mib": side.size_bytes / 2**20, "created_s": side.created_seconds}
    blob = Blob()
    gathered: list[tuple[str, str, dict]] = []
    for config in configs:
        for dtype in dtypes:
            t0 = time.perf_counter()
            tts = lower(config, dtype, seed=seed)
            for name, lowered in tts.programs.items():
                calls, host = program_calls(lowered, name, blob)
                gathered += [(config, dtype, c) for c in calls]
                report.host_fallbacks += host
            report.seconds[f"lowering {config} {dtype}"] = time.perf_counter() - t0
            log(f"conformance: {config} {dtype}: lowered and serialized in {time.perf_counter() - t0:.0f} s")
            del tts
    distinct = {call_key(c): c for _, _, c in gathered}
    report.distinct_calls = len(distinct)
    cases = numerics.cases(seed)
    with tempfile.TemporaryDirectory(prefix="fx2ttnn-conformance-") as tmp:
        num_req = numerics.request(cases, blob)
        blob.write(Path(tmp) / "in.bin")
        t0 = time.perf_counter()
        log(f"conformance: replaying {len(distinct)} distinct calls through the real ttnn ...")
        resp = side.run({"mode": "replay", "calls": distinct, "blob": str(Path(tmp) / "in.bin")})
        report.workers = resp["workers"]
        t1 = time.perf_counter()
        num = side.run({"mode": "numerics", "cases": num_req, "blob": str(Path(tmp) / "in.bin"),
                        "out_blob": str(Path(tmp) / "out.bin")})
        report.seconds["replay"] = t1 - t0
        report.seconds["numerics"] = time.perf_counter() - t1
        report.side_env["ttnn"] = TTNN_VERSION
        report.numerics = numerics.compare(cases, num, (Path(tmp) / "out.bin").read_bytes())
    for config, dtype, c in gathered:
        report.results.append(CallResult(config, dtype, c, resp["results"][call_key(c)]))
    return report
