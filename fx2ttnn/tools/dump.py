"""``fx2ttnn dump``: the graph after every lowering pass, the final TTNN programs, and a summary.

    fx2ttnn dump [--program encoder|decoder_step|postnet|vocoder|all] [--print-after PASS|all]
                 [--format text|json|dot] [--out DIR] [--diff PASS_A PASS_B]
                 [--model PATH_OR_ID] [--vocoder PATH_OR_ID] [--dtype ...] [--max-steps N] [--backend ...]

The dump comes from the pass manager itself: ``dump_model`` lowers the chosen programs with
``dump_dir=DIR`` and a ``pass_manager.dump_settings`` that picks the format and the passes, so each pass
manager writes its own ``NNN_<pass>.<txt|json|dot>`` files (``000_captured`` is the graph torch.export
produced) into ``DIR/<program>_<variant>/`` (e.g. ``decoder_step_1x32``).  Each file starts with the pass's
stats: its match counts and the nodes it added and removed.  After lowering, each program folder also gets:

- ``program.txt``: the final TTNN program as a table, one op per line: when it runs (``bind``: once, when the
  executor binds the program, e.g. weight uploads; ``call``: every call), its kind, value, op, output spec
  (shape, dtype, layout, memory config), inputs, HF module (e.g. ``speecht5.decoder.wrapped_decoder.layers.3
  .self_attn``), attributes; ``decoder_step`` also gets ``prologue.txt`` (per-utterance work hoisted out of
  the step);
- ``program.json`` / ``program.dot`` (+ ``program.svg`` when Graphviz's ``dot`` is installed) for
  ``--format json`` / ``dot``; DOT fills ops by kind (compute blue, data movement orange, transfer purple,
  host fallback red), draws bind-time ops dashed, and clusters ops by HF layer;
- ``diff_<A>_<B>.diff`` for ``--diff A B``: a unified diff of the two passes' text graphs, headed by the
  nodes added, removed and changed.

``DIR/summary.txt`` (and ``summary.json`` for ``--format json``) holds, per program: the TTNN op histogram
(per call and bind-time), host fallbacks (ATen op, HF module, reason), host↔device transfers per call,
the longest dependency chain and ops per HF layer (``graph_analysis``, networkx), and bytes:

- ``weight_bytes``: bytes uploaded at bind time (``ttnn.from_torch`` of host constants; ``tts.report()``'s);
- ``constant_bytes``: device bytes of the bound constants the per-call code reads (resident after binding:
  prepared conv weights, not their host originals);
- ``per_call_read_bytes``: the bytes of those constants one call reads: whole tensors, except tables that
  ``ttnn.embedding`` gathers from, of which only the rows gathered count.  For ``decoder_step`` this is the
  **per-decode-step bytes**: the weights/constants each decode step reads;
- ``peak_device_bytes``: the peak device memory of a call (``plan_memory``): constants + inputs + the most
  intermediates live at once, each freed by ``ttnn.deallocate`` after its last use.

Without ``--out`` nothing is written: text prints the graphs after the ``--print-after`` passes (default
none), the program tables and the summary; json prints one ``dump`` document; dot prints the DOT graphs;
with ``--diff`` only the diff is printed.  With ``--out``, ``--print-after`` defaults to ``all`` and stdout
gets the summary.  Errors (unknown program or pass, unwritable ``--out``) are one ``error:`` line, exit 2.

JSON schema (``JSON_SCHEMA``, JSON Schema 2020-12 subset; ``schema_version`` 2; keys are stable, new keys
only with a new version; 2 added ``compute_configs`` and ``precision``).  Every document has ``schema_version`` and ``kind``:

- ``kind: "pass"`` (``NNN_<pass>.json``): ``program``, ``variant`` ([batch, bucket]), ``pass`` (a pass
  record: ``index``, ``name``, ``stats`` {name: count}, ``nodes_before`` (null for captured),
  ``nodes_after``, ``nodes_added``, ``nodes_removed``), ``graph``;
- ``kind: "program"`` (``program.json``): ``program``, ``variant``, ``inputs`` [{``name``, ``spec``}],
  ``outputs`` [{``name``, ``value``, ``spec``}], ``mutated_inputs``, ``stats`` (program stats),
  ``graph`` (with phases), ``prologue`` (a program document or null);
- ``kind: "summary"`` (``summary.json``): ``model``, ``backend``, ``dtype``, ``precision`` (the policy),
  ``max_steps``, ``prenet_dropout``, ``definitions`` {key: meaning}, ``programs`` [{``program``, ``variant``, ``stats``,
  ``passes`` [pass records], ``lowering_seconds``, ``prologue`` ({``program``, ``stats``} or null)}],
  ``per_decode_step`` ({``program``, ``variant``, ``ops``, ``transfers``, ``host_ops``,
  ``constant_read_bytes``, ``prologue_ops_per_utterance``} or null);
- ``kind: "dump"`` (stdout without ``--out``): ``summary``, ``programs`` [program documents],
  ``passes`` [pass documents].

``graph`` is {``nodes``: [node], ``outputs``: [value names]}; a node is {``name``, ``op`` (fx opcode),
``target`` (``ttnn.linear``, ``host.aten.…``, ``aten.…``, constant name; null for inputs/output), ``kind``
(``printer.NODE_KINDS``), ``spec`` (null if untyped), ``inputs`` [names], ``args`` [text], ``kwargs``
{name: text}, ``module`` (HF module path or ""), ``fallback_reason`` (or null), ``phase`` (``bind`` /
``call`` for ops of a final program, else null)}; a spec is {``shape``, ``dtype`` (``bfloat16`` …),
``layout`` (``TILE``/``ROW_MAJOR``; null: a torch tensor or an un-lowered ATen value), ``memory`` (``DRAM``,
``L1_HEIGHT_SHARDED`` …; null off device), ``on_device``, ``nbytes``}.  Program stats: ``nodes``,
``op_histogram`` (= ``tts.report()``'s ``ops``), ``op_histogram_per_call``, ``op_histogram_bind_time``,
``ttnn_ops``, ``ops_per_call``, ``transfers_per_call``, ``host_ops_per_call`` (as the executor counts),
``bind_time_ops``, ``host_fallbacks`` [{``op``, ``module``, ``reason``, ``node``}], ``transfers``
[{``node``, ``op``, ``direction``, ``module``, ``spec``, ``nbytes``}], ``weight_bytes``, ``constant_bytes``,
``per_call_read_bytes``, ``longest_chain`` {``length``, ``nodes``}, ``modules`` [{``module``,
``ops_per_call``, ``feeds``}], ``compute_configs`` [{``class`` (``fx2ttnn/precision.py``), ``config`` (its
compute kernel config and weight dtype, in words), ``ops`` (per-call ops with it)}].
"""
from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch.fx

from ..lowering.printer import format_table, graph_dict, render_graph, spec_dict, to_dot
from ..precision import DEFAULT_PRECISION, PRECISIONS, describe_policy
from ..passes.pass_manager import DumpFormat, DumpSettings, PassDump, dump_settings
from . import graph_analysis as ga
from .common import CliError, check_lowering_flags, load_models, notice, seed_int, step_count
from .outputs import check_out_dir

SCHEMA_VERSION = 2  # 2: program stats "compute_configs", summary "precision"
PROGRAMS = ("encoder", "decoder_step", "postnet", "vocoder")
FORMATS = ("text", "json", "dot")
SUFFIX = {"text": "txt", "json": "json", "dot": "dot"}
BACKENDS = ("reference", "auto", "ttnn")
DTYPES = ("bfloat16", "float32")
DEFINITIONS = {
    "weight_bytes": "bytes uploaded at bind time: ttnn.from_torch of host constants (tts.report()'s weight_bytes)",
    "constant_bytes": "device bytes of the bound constants the per-call code reads (resident after binding)",
    "per_call_read_bytes": "bytes of bound device constants one call reads: whole tensors, except ttnn.embedding "
                           "tables, of which only the gathered rows count",
    "per_decode_step.constant_read_bytes": "decoder_step's per_call_read_bytes: weights/constants one decode "
                                           "step reads",
    "peak_device_bytes": "plan_memory's peak: constants + inputs + the most per-call intermediates live at once, "
                         "each freed by ttnn.deallocate after its last use",
    "ops_per_call": "TTNN compute and data-movement ops run per call (bind-time ops excluded)",
    "longest_chain": "longest chain of per-call ops each reading the previous one",
}

# -- JSON schema ----------------------------------------------------------------------------------------
_S, _I, _B, _N = {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "boolean"}, {"type": "number"}


def _obj(props: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "required": list(props), "properties": props, "additionalProperties": extra}


def _arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


_COUNTS = {"type": "object", "additionalProperties": _I}
_HEAD = {"schema_version": {"const": SCHEMA_VERSION}}
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fx2ttnn dump",
    "oneOf": [_ref("pass_doc"), _ref("program_doc"), _ref("summary_doc"), _ref("dump_doc")],
    "$defs": {
        "spec": _obj({"shape": _arr({"type": "integer"}), "dtype": _S, "layout": {"type": ["string", "null"]},
                      "memory": {"type": ["string", "null"]}, "on_device": _B, "nbytes": _I}),
        "node": _obj({"name": _S, "op": {"enum": ["placeholder", "get_attr", "call_function", "output"]},
                      "target": {"type": ["string", "null"]},
                      "kind": {"enum": ["input", "constant", "output", "compute", "data_movement", "transfer",
                                        "host", "memory", "aten", "getitem", "other"]},
                      "spec": {"oneOf": [{"type": "null"}, _ref("spec")]}, "inputs": _arr(_S), "args": _arr(_S),
                      "kwargs": {"type": "object", "additionalProperties": _S}, "module": _S,
                      "fallback_reason": {"type": ["string", "null"]}, "phase": {"enum": ["bind", "call", None]}}),
        "graph": _obj({"nodes": _arr(_ref("node")), "outputs": _arr(_S)}),
        "pass_record": _obj({"index": _I, "name": _S, "stats": _COUNTS, "nodes_before": {"type": ["integer", "null"]},
                             "nodes_after": _I, "nodes_added": _I, "nodes_removed": _I}),
        "program_stats": _obj({
            "nodes": _I, "op_histogram": _COUNTS, "op_histogram_per_call": _COUNTS, "op_histogram_bind_time": _COUNTS,
            "ttnn_ops": _I, "ops_per_call": _I, "transfers_per_call": _I, "host_ops_per_call": _I, "bind_time_ops": _I,
            "host_fallbacks": _arr(_obj({"op": _S, "module": _S, "reason": _S, "node": _S})),
            "transfers": _arr(_obj({"node": _S, "op": _S, "module": _S, "spec": _S, "nbytes": _I, "direction": {
                "enum": ["host_to_device", "device_to_host", "host", "device"]}})),
            "weight_bytes": _I, "constant_bytes": _I, "per_call_read_bytes": _I, "peak_device_bytes": _I,
            "deallocations_per_call": _I,
            "longest_chain": _obj({"length": _I, "nodes": _arr(_S)}),
            "modules": _arr(_obj({"module": _S, "ops_per_call": _I, "feeds": _arr(_S)})),
            "compute_configs": _arr(_obj({"class": _S, "config": _S, "ops": _I}))}),
        "pass_doc": _obj({**_HEAD, "kind": {"const": "pass"}, "program": _S, "variant": _arr(_I),
                          "pass": _ref("pass_record"), "graph": _ref("graph")}),
        "program_doc": _obj({**_HEAD, "kind": {"const": "program"}, "program": _S, "variant": _arr(_I),
                             "inputs": _arr(_obj({"name": _S, "spec": {"oneOf": [{"type": "null"}, _ref("spec")]}})),
                             "outputs": _arr(_obj({"name": _S, "value": _S,
                                                   "spec": {"oneOf": [{"type": "null"}, _ref("spec")]}})),
                             "mutated_inputs": _arr(_S), "stats": _ref("program_stats"), "graph": _ref("graph"),
                             "prologue": {"oneOf": [{"type": "null"}, _ref("program_doc")]}}),
        "summary_doc": _obj({
            **_HEAD, "kind": {"const": "summary"}, "model": _S, "backend": _S, "dtype": _S, "precision": _S,
            "max_steps": _I,
            "prenet_dropout": _B, "definitions": {"type": "object", "additionalProperties": _S},
            "programs": _arr(_obj({"program": _S, "variant": _arr(_I), "stats": _ref("program_stats"),
                                   "passes": _arr(_ref("pass_record")), "lowering_seconds": _N,
                                   "prologue": {"oneOf": [{"type": "null"}, _obj({"program": _S,
                                                                                  "stats": _ref("program_stats")})]}})),
            "per_decode_step": {"oneOf": [{"type": "null"}, _obj({
                "program": _S, "variant": _arr(_I), "ops": _I, "transfers": _I, "host_ops": _I,
                "constant_read_bytes": _I, "prologue_ops_per_utterance": _I})]}}),
        "dump_doc": _obj({**_HEAD, "kind": {"const": "dump"}, "summary": _ref("summary_doc"),
                          "programs": _arr(_ref("program_doc")), "passes": _arr(_ref("pass_doc"))}),
    },
}


# -- documents and renderings of one graph / program ------------------------------------------------------
def _record(d: PassDump) -> dict[str, Any]:
    return {"index": d.index, "name": d.name, "stats": dict(d.stats), "nodes_before": d.nodes_before,
            "nodes_after": d.nodes_after, "nodes_added": d.nodes_added, "nodes_removed": d.nodes_removed}


def pass_doc(gm: torch.fx.GraphModule, dump: PassDump, variant: Sequence[int] = ()) -> dict[str, Any]:
    """The ``kind: "pass"`` document of the graph after one pass."""
    return {"schema_version": SCHEMA_VERSION, "kind": "pass", "program": dump.program, "variant": list(variant),
            "pass": _record(dump), "graph": graph_dict(gm)}


def pass_text(gm: torch.fx.GraphModule, dump: PassDump) -> str:
    return dump.header + render_graph(gm)


def pass_dot(gm: torch.fx.GraphModule, dump: PassDump) -> str:
    title = f"{dump.program}: after {dump.name}; stats: {dump.stats or 'no change'}"
    return to_dot(gm, title=title)


def _title(lp: Any, key: Sequence[int]) -> str:
    return f"{lp.name} {'x'.join(map(str, key))}" if key else lp.name


def program_table(lp: Any, key: Sequence[int] = ()) -> str:
    """The final program ``lp`` (a ``LoweredProgram``) as a table (``printer.format_table``), with a headline."""
    gm = lp.graph_module
    st = ga.program_stats(gm)
    head = (f"program {_title(lp, key)}: {st['nodes']} nodes; {st['ops_per_call']} TTNN ops per call, "
            f"{st['transfers_per_call']} host<->device transfers per call, {len(st['host_fallbacks'])} host "
            f"fallbacks, {st['bind_time_ops']} bind-time ops")
    return format_table(gm, title=head, bind_time=ga.bind_time(ga.to_networkx(gm)))


def program_dot(lp: Any, key: Sequence[int] = ()) -> str:
    gm = lp.graph_module
    return to_dot(gm, title=_title(lp, key), bind_time=ga.bind_time(ga.to_networkx(gm)), groups=ga.module_groups(gm))


def program_doc(lp: Any, key: Sequence[int] = ()) -> dict[str, Any]:
    """The ``kind: "program"`` document of a lowered program (its prologue nested)."""
    gm = lp.graph_module
    nodes = {n.name: n for n in gm.graph.nodes}
    out = next(n for n in gm.graph.nodes if n.op == "output")
    values = list(out.args[0])
    names = list(lp.signature.outputs) + [f"output_{i}" for i in range(len(lp.signature.outputs), len(values))]
    return {"schema_version": SCHEMA_VERSION, "kind": "program", "program": lp.name, "variant": list(key),
            "inputs": [{"name": n, "spec": spec_dict(nodes[n])} for n in lp.signature.inputs if n in nodes],
            "outputs": [{"name": name, "value": v.name, "spec": spec_dict(v)} for name, v in zip(names, values)
                        if isinstance(v, torch.fx.Node)],
            "mutated_inputs": list(lp.signature.mutated_inputs), "stats": ga.program_stats(gm),
            "graph": graph_dict(gm, ga.bind_time(ga.to_networkx(gm))),
            "prologue": program_doc(lp.prologue, key) if lp.prologue is not None else None}


def diff_passes(text_a: str, text_b: str, label_a: str, label_b: str) -> str:
    """A unified diff of two text graphs (``render_graph``), headed by nodes added / removed / changed."""
    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("#")]

    def by_name(lines: list[str]) -> dict[str, str]:
        return {line.split(":", 1)[0]: line for line in lines if line.startswith("%")}

    a, b = body(text_a), body(text_b)
    na, nb = by_name(a), by_name(b)
    changed = sum(1 for k in na.keys() & nb.keys() if na[k] != nb[k])
    head = (f"# {label_a} -> {label_b}: {len(nb.keys() - na.keys())} nodes added, {len(na.keys() - nb.keys())} "
            f"removed, {changed} changed\n")
    return head + "".join(line + "\n" for line in difflib.unified_diff(a, b, label_a, label_b, lineterm=""))


def write_svg(dot_file: Path, timeout: float = 300.0) -> Path | None:
    """``dot -Tsvg`` next to ``dot_file`` when Graphviz is installed; None (and a note) otherwise."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    svg = dot_file.with_suffix(".svg")
    try:
        subprocess.run([exe, "-Tsvg", str(dot_file), "-o", str(svg)], check=True, capture_output=True,
                       timeout=timeout)
    except (subprocess.SubprocessError, OSError) as e:
        notice(f"no SVG for {dot_file.name}: dot failed ({type(e).__name__})")
        return None
    return svg


# -- the summary ------------------------------------------------------------------------------------------
def summarize(tts: Any, *, model: str = "") -> dict[str, Any]:
    """The ``kind: "summary"`` document of every lowered variant of ``tts`` (a ``LoweredSpeechT5``)."""
    programs, step = [], None
    for v in tts.variants:
        lp = v.lowered
        stats = ga.program_stats(lp.graph_module)
        pro = lp.prologue
        passes = [{"index": i, "name": r.name, "stats": dict(r.stats), "nodes_before": r.nodes_before,
                   "nodes_after": r.nodes_after, "nodes_added": r.nodes_added, "nodes_removed": r.nodes_removed}
                  for i, r in enumerate(lp.pass_records, start=1)]
        prologue = {"program": pro.name, "stats": ga.program_stats(pro.graph_module)} if pro is not None else None
        programs.append({"program": v.name, "variant": list(v.key), "stats": stats, "passes": passes,
                         "lowering_seconds": round(lp.lowering_seconds, 3), "prologue": prologue})
        if v.name == "decoder_step" and step is None:
            step = {"program": v.name, "variant": list(v.key), "ops": stats["ops_per_call"],
                    "transfers": stats["transfers_per_call"], "host_ops": stats["host_ops_per_call"],
                    "constant_read_bytes": stats["per_call_read_bytes"],
                    "prologue_ops_per_utterance": prologue["stats"]["ops_per_call"] if prologue else 0}
    return {"schema_version": SCHEMA_VERSION, "kind": "summary", "model": model, "backend": tts.backend.description,
            "dtype": tts.dtype, "precision": tts.precision, "max_steps": tts.max_steps, "prenet_dropout": tts.prenet_dropout,
            "definitions": dict(DEFINITIONS), "programs": programs, "per_decode_step": step}


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _hist(h: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in h.items()) or "none"


def _wrap(head: str, items: Iterable[str], indent: str) -> list[str]:
    """``head item, item, ...`` wrapped at 120 columns, continuation lines indented under the first item."""
    return textwrap.wrap(head + (", ".join(items) or "none"), width=120, initial_indent=indent,
                         subsequent_indent=indent + "    ", break_long_words=False, break_on_hyphens=False)


def _stats_lines(name: str, st: dict[str, Any], indent: str = "  ") -> list[str]:
    chain = st["longest_chain"]
    lines = [f"{name}: {st['nodes']} nodes; {st['ops_per_call']} TTNN ops per call, {st['transfers_per_call']} "
             f"host<->device transfers per call, {len(st['host_fallbacks'])} host fallbacks; "
             f"{st['bind_time_ops']} bind-time ops",
             f"{indent}bytes: weights uploaded {_mib(st['weight_bytes'])}, constants resident "
             f"{_mib(st['constant_bytes'])}, constants read per call {_mib(st['per_call_read_bytes'])}, peak device "
             f"memory {_mib(st['peak_device_bytes'])} ({st['deallocations_per_call']} deallocations per call)"]
    lines += _wrap("ops per call: ", _hist(st["op_histogram_per_call"]).split(", "), indent)
    lines += _wrap("bind-time ops: ", _hist(st["op_histogram_bind_time"]).split(", "), indent)
    lines.append(f"{indent}longest dependency chain: {chain['length']} ops"
                 + (f" (%{chain['nodes'][0]} ... %{chain['nodes'][-1]})" if chain["nodes"] else ""))
    for f in st["host_fallbacks"]:
        lines.append(f"{indent}host fallback: {f['op']} in {f['module'] or '?'} (%{f['node']}): {f['reason']}")
    for t in st["transfers"]:
        lines.append(f"{indent}transfer per call: %{t['node']} {t['op']} {t['direction']} {t['spec']} "
                     f"({_mib(t['nbytes'])}){' in ' + t['module'] if t['module'] else ''}")
    lines += _wrap("compute kernel configs: ", [f"{c['class']} x{c['ops']} ({c['config']})"
                                              for c in st["compute_configs"]], indent)
    lines += _wrap("ops per call by HF module: ",
                   [f"{m['module'] or '(no module)'} x{m['ops_per_call']}" for m in st["modules"]], indent)
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """The text form of a summary document."""
    s = summary
    lines = [f"fx2ttnn dump summary: {s['model'] or 'model'}; backend {s['backend']}; dtype {s['dtype']}; "
             f"precision {s['precision']}; max_steps {s['max_steps']}; "
             f"prenet dropout {'on' if s['prenet_dropout'] else 'off'}",
             f"precision policy {s['precision']!r} (fx2ttnn/precision.py), per op class:"]
    lines += ["  " + line for line in describe_policy(s["precision"])]
    for p in s["programs"]:
        lines.append("")
        lines += _stats_lines(f"[{p['program']} {'x'.join(map(str, p['variant']))}]", p["stats"])
        if p["prologue"] is not None:
            lines += ["  " + x for x in _stats_lines(f"prologue {p['prologue']['program']} (once per utterance)",
                                                      p["prologue"]["stats"])]
        changed = [r for r in p["passes"] if r["stats"]]
        lines.append(f"  passes that changed the graph ({len(changed)} of {len(p['passes'])}): nodes, stats")
        width = max((len(r["name"]) for r in changed), default=0)
        lines += [f"    {r['name']:<{width}}  {r['nodes_before']:>5} -> {r['nodes_after']:<5} "
                  f"{'(+%d -%d)' % (r['nodes_added'], r['nodes_removed']):<12}  {r['stats']}" for r in changed]
    step = s["per_decode_step"]
    if step is not None:
        lines += ["", f"per decode step ({step['program']} {'x'.join(map(str, step['variant']))}): {step['ops']} "
                      f"TTNN ops, {step['transfers']} host<->device transfers, {step['host_ops']} host ops; "
                      f"prologue {step['prologue_ops_per_utterance']} ops once per utterance",
                  f"  weights/constants read per step: {_mib(step['constant_read_bytes'])} "
                  f"({step['constant_read_bytes']} bytes)",
                  "  (device tensors bound as constants and read by per-call ops; of ttnn.embedding tables only "
                  "the rows gathered)"]
    return "\n".join(lines) + "\n"


# -- lowering with dumps ----------------------------------------------------------------------------------
def pass_names(program: str | None = None, dtype: str = "bfloat16") -> list[str]:
    """The dump names of ``program``'s pipeline (all programs': ``None``), ``captured`` first."""
    from ..lowering.pipeline import default_passes
    step = program in (None, "decoder_step")
    return ["captured"] + [p.name for p in default_passes(dtype, {}, [], ["speaker"] if step else [])]


def variant_dir(out: Path, name: str, key: Sequence[int]) -> Path:
    """Where ``lower_model(dump_dir=out)`` puts a variant's per-pass files (``model._dump_dir``'s naming)."""
    return Path(out) / f"{name}_{'x'.join(map(str, key))}"


@dataclass
class DumpResult:
    tts: Any                                        # the LoweredSpeechT5 (only the dumped programs lowered)
    summary: dict[str, Any]
    files: list[Path] = field(default_factory=list)
    passes: dict[tuple[str, str], Any] = field(default_factory=dict)  # (program, pass) → text / doc kept
    diffs: dict[str, str] = field(default_factory=dict)               # program → diff text


def _open(model: Any, vocoder: Any, *, backend: str, dtype: str, max_steps: int | None, prenet_dropout: bool,
          dump_dir: Path | None, precision: str = DEFAULT_PRECISION) -> Any:
    """A ``LoweredSpeechT5`` with nothing lowered yet (``lower_model(programs=())``: its checks, no programs)."""
    from ..model import lower_model

    return lower_model(model, vocoder=vocoder, backend=backend, dtype=dtype, max_steps=max_steps,
                       prenet_dropout=prenet_dropout, dump_dir=dump_dir, programs=(), keep_host_weights=True,
                       precision=precision)


def dump_model(model: Any, vocoder: Any = None, *, out: str | Path | None = None, fmt: str = "text",
               programs: Iterable[str] = PROGRAMS, passes: Iterable[str] | str | None = "all",
               diff: tuple[str, str] | None = None, backend: str = "reference", dtype: str = "bfloat16",
               max_steps: int | None = None, prenet_dropout: bool = True, model_label: str = "",
               keep: Callable[[str, str], bool] | None = None, precision: str = DEFAULT_PRECISION) -> DumpResult:
    """Lower ``programs`` of ``model`` (+ ``vocoder``) with per-pass dumps; write them and the program and
    summary files under ``out`` (nothing written when ``out`` is None).

    ``passes``: the pass names to dump (``"all"``, or None/empty for none).  ``diff=(A, B)``: diff the graphs
    after passes A and B for every program that runs both.  ``keep(program, pass)``: also keep that pass's
    rendering in ``fmt`` in ``DumpResult.passes`` (how the CLI prints passes without ``--out``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    programs = list(programs)
    selected = None if passes == "all" else frozenset(passes or ())
    out_dir = Path(out) if out is not None else None
    result = DumpResult(None, {})
    current: list[Sequence[int]] = [()]
    render: dict[str, Callable[[torch.fx.GraphModule, PassDump], Any]] = {
        "text": pass_text, "json": lambda gm, d: pass_doc(gm, d, current[0]), "dot": pass_dot}
    diff_texts: dict[tuple[str, str], str] = {}

    def observe(gm: torch.fx.GraphModule, d: PassDump) -> None:
        if diff is not None and d.name in diff:
            diff_texts[(d.program, d.name)] = pass_text(gm, d)
        if keep is not None and keep(d.program, d.name):
            result.passes[(d.program, d.name)] = render[fmt](gm, d)

    suffix = SUFFIX[fmt]
    file_render = (lambda gm, d: json.dumps(render["json"](gm, d), indent=1) + "\n") if fmt == "json" else render[fmt]
    settings = DumpSettings((DumpFormat(suffix, file_render, result.files.append),), selected, observe)
    tts = _open(model, vocoder, backend=backend, dtype=dtype, max_steps=max_steps, prenet_dropout=prenet_dropout,
                dump_dir=out_dir, precision=precision)
    result.tts = tts
    with dump_settings(settings):
        for name in programs:
            current[0] = tts.default_key(name)
            tts.variant(name, tts.default_key(name))
    result.summary = summarize(tts, model=model_label)
    for v in tts.variants:
        if diff is not None and all((v.name, p) in diff_texts for p in diff):
            a, b = diff
            result.diffs[v.name] = diff_passes(diff_texts[(v.name, a)], diff_texts[(v.name, b)],
                                               f"{v.name} after {a}", f"{v.name} after {b}")
    if out_dir is not None:
        _write(result, out_dir, fmt, diff)
    return result


def _write(result: DumpResult, out: Path, fmt: str, diff: tuple[str, str] | None) -> None:
    files = result.files
    for v in result.tts.variants:
        folder = variant_dir(out, v.name, v.key)
        folder.mkdir(parents=True, exist_ok=True)
        programs = [("program", v.lowered)] + ([("prologue", v.lowered.prologue)] if v.lowered.prologue else [])
        for stem, lp in programs:
            files.append(_put(folder / f"{stem}.txt", program_table(lp, v.key)))
            if fmt == "json" and stem == "program":
                files.append(_put(folder / "program.json", json.dumps(program_doc(lp, v.key), indent=1) + "\n"))
            if fmt == "dot":
                files.append(_put(folder / f"{stem}.dot", program_dot(lp, v.key)))
                svg = write_svg(files[-1])
                if svg is not None:
                    files.append(svg)
        if v.name in result.diffs:
            files.append(_put(folder / f"diff_{diff[0]}_{diff[1]}.diff", result.diffs[v.name]))
    files.append(_put(out / "summary.txt", format_summary(result.summary)))
    if fmt == "json":
        files.append(_put(out / "summary.json", json.dumps(result.summary, indent=1) + "\n"))


def _put(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- command line -----------------------------------------------------------------------------------------
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "dump", help="dump the graph after every lowering pass, the final TTNN programs and a summary",
        description="Lower SpeechT5 (+ HiFi-GAN) and dump the graph after each pass (NNN_<pass>.* files with "
                    "the pass's stats), the final TTNN programs as tables (op, output spec, inputs, attributes, "
                    "HF module), and a summary (op histograms, host fallbacks, transfers, weight bytes per "
                    "program and per decode step). Without --model: the default SpeechT5 config, random weights. "
                    "Without --out, prints to stdout.")
    p.add_argument("--program", default="all", metavar="|".join(PROGRAMS + ("all",)),
                   help="program to lower and dump (default: all)")
    p.add_argument("--print-after", action="append", default=None, metavar="PASS|all",
                   help="dump the graph after this pass ('captured' is the graph before any pass; repeat it or "
                        "give a comma-separated list; default: all with --out, none without)")
    p.add_argument("--format", choices=FORMATS, default="text", help="per-pass and program files (default: text)")
    p.add_argument("--out", metavar="DIR", default=None, help="directory to write the dump into (default: stdout)")
    p.add_argument("--diff", nargs=2, metavar=("PASS_A", "PASS_B"), default=None,
                   help="diff the graphs after two passes (e.g. --diff lower_linear assign_layouts)")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint: a save_pretrained directory or a Hugging Face Hub id "
                        "(downloaded into the HF cache if not there) (default: random weights, default config)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint, like --model (default: random weights, default config)")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16", help="weights and activations (default: %(default)s)")
    p.add_argument("--max-steps", type=step_count, default=None, metavar="N",
                   help="decode steps the KV cache holds, a multiple of 32 (default: lower_model's, 1024)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="precision policy: the compute kernel config of every op that takes one (default: "
                        "%(default)s)")
    p.add_argument("--backend", choices=BACKENDS, default="reference",
                   help="what the programs are bound to (binding uploads the weights; nothing runs). "
                        "Default: reference")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N", help="seed for random weights (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _selection(args: argparse.Namespace) -> tuple[list[str], Any]:
    if args.program not in PROGRAMS + ("all",):
        raise CliError(f"unknown program {args.program!r}; programs are {', '.join(PROGRAMS)} (or all)")
    programs = list(PROGRAMS) if args.program == "all" else [args.program]
    known = {n for prog in programs for n in pass_names(prog, args.dtype)}
    order = pass_names(None, args.dtype)
    if args.print_after is None:
        passes: Any = "all" if args.out else ()
    else:
        names = [n.strip() for item in args.print_after for n in item.split(",") if n.strip()]
        passes = "all" if "all" in names else names
        for n in names:
            if n != "all" and n not in known:
                raise CliError(f"unknown pass {n!r} for --print-after; passes ({'+'.join(programs)}): "
                               f"{', '.join(x for x in order if x in known)}")
    for n in args.diff or ():
        if n not in known:
            raise CliError(f"unknown pass {n!r} for --diff; passes ({'+'.join(programs)}): "
                           f"{', '.join(x for x in order if x in known)}")
    return programs, passes


def run(args: argparse.Namespace) -> int:
    programs, passes = _selection(args)
    out = check_out_dir(args.out) if args.out else None
    model, vocoder, label = load_models(args.model, args.vocoder, seed=args.seed,
                                       with_vocoder="vocoder" in programs)
    check_lowering_flags(args, model.config)
    fmt = args.format
    to_stdout = out is None and args.diff is None
    keep = (lambda prog, name: passes == "all" or name in passes) if to_stdout and passes else None
    print(f"lowering {', '.join(programs)} ...", file=sys.stderr, flush=True)
    try:
        res = dump_model(model, vocoder, out=out, fmt=fmt, programs=programs, passes=passes,
                         diff=tuple(args.diff) if args.diff else None, backend=args.backend, dtype=args.dtype,
                         max_steps=args.max_steps, model_label=label, keep=keep, precision=args.precision)
    except OSError as e:  # writing the dump (e.g. a read-only file system, disk full)
        if out is None:
            raise
        raise CliError(f"cannot write to --out {args.out!r}: {e.strerror or type(e).__name__}") from None
    if args.diff:
        missing = [p for p in programs if p not in res.diffs]
        if missing:
            notice(f"no diff for {', '.join(missing)}: it does not run both {args.diff[0]} and {args.diff[1]}")
    if out is not None:
        sys.stdout.write(format_summary(res.summary))
        print(f"wrote {len(res.files)} files under {out}", flush=True)
    elif args.diff:
        sys.stdout.write("".join(res.diffs.values()))
    else:
        _print(res, fmt)
    return 0


def _print(res: DumpResult, fmt: str) -> None:
    programs = [(v, v.lowered) for v in res.tts.variants]
    if fmt == "json":
        docs = [program_doc(lp, v.key) for v, lp in programs]
        doc = {"schema_version": SCHEMA_VERSION, "kind": "dump", "summary": res.summary, "programs": docs,
               "passes": list(res.passes.values())}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    for text in res.passes.values():
        sys.stdout.write(text + ("\n" if fmt == "text" else ""))
    for v, lp in programs:
        parts = [lp] + ([lp.prologue] if lp.prologue is not None else [])
        for part in parts:
            sys.stdout.write((program_table(part, v.key) + "\n") if fmt == "text" else program_dot(part, v.key))
    if fmt == "text":
        sys.stdout.write(format_summary(res.summary))
    sys.stdout.flush()

