"""``fx2ttnn dump``: per-pass files with stats headers, program tables / JSON / DOT, summary vs ``tts.report()``,
``--print-after`` filtering, ``--diff``, one-line errors; the pass manager's ``dump_settings``.

Lowerings (tiny checkpoint saved to disk, in-process ``main``): all four programs once (text), decoder_step
(json), postnet (dot, then three stdout runs); error cases fail before anything is loaded.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

from fx2ttnn.lowering.printer import KIND_COLORS, format_table, node_kind, to_dot
from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.passes.pass_manager import DumpFormat, DumpSettings, PassManager, dump_settings
from fx2ttnn.tools import dump as dump_mod
from fx2ttnn.tools import graph_analysis as ga
from fx2ttnn.tools import outputs
from fx2ttnn.tools.dump import JSON_SCHEMA, PROGRAMS, pass_names

from tests.utils import run_main
from tests.passes.helpers import ConvRelu, capture_module, finish, run_passes

COMMON = ["--dtype", "float32", "--max-steps", "64"]
HEADER = re.compile(r"^# (?P<prog>\w+): after (?P<pass>\w+)\n# stats: (?P<stats>.*)\n# nodes: (?P<nodes>.*)\n")
PROGRAM_LINE = re.compile(r"^\[(?P<prog>\w+) (?P<key>[\dx]+)\]: (?P<nodes>\d+) nodes; (?P<ops>\d+) TTNN ops per call, "
                          r"(?P<transfers>\d+) host<->device transfers per call, (?P<fallbacks>\d+) host fallbacks; "
                          r"(?P<bind>\d+) bind-time ops$", re.M)
STEP_LINE = re.compile(r"^per decode step \(decoder_step 1x32\): (?P<ops>\d+) TTNN ops, (?P<transfers>\d+) "
                       r"host<->device transfers, \d+ host ops; .*\n  weights/constants read per step: [\d.]+ [KM]iB "
                       r"\((?P<bytes>\d+) bytes\)$", re.M)




# -- a small JSON-schema (2020-12 subset) validator: jsonschema is not a dependency ----------------------------
_TYPES = {"object": dict, "array": list, "string": str, "null": type(None), "boolean": bool}


def _is(x, t: str) -> bool:
    if t == "integer":
        return isinstance(x, int) and not isinstance(x, bool)
    if t == "number":
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    return isinstance(x, _TYPES[t])


def validate(doc, schema=JSON_SCHEMA, path: str = "$") -> list[str]:
    if "$ref" in schema:
        target = JSON_SCHEMA
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return validate(doc, target, path)
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(doc, s, path)]
        return [] if len(ok) == 1 else [f"{path}: matches {len(ok)} of oneOf"]
    errs = []
    if "const" in schema and doc != schema["const"]:
        errs.append(f"{path}: {doc!r} != {schema['const']!r}")
    if "enum" in schema and doc not in schema["enum"]:
        errs.append(f"{path}: {doc!r} not in {schema['enum']}")
    types = schema.get("type")
    if types is not None and not any(_is(doc, t) for t in ([types] if isinstance(types, str) else types)):
        return errs + [f"{path}: {type(doc).__name__} is not {types}"]
    if "minimum" in schema and _is(doc, "number") and doc < schema["minimum"]:
        errs.append(f"{path}: {doc} < {schema['minimum']}")
    if isinstance(doc, dict):
        errs += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in doc]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in doc.items():
            if k in props:
                errs += validate(v, props[k], f"{path}.{k}")
            elif extra is False:
                errs.append(f"{path}: unexpected key {k!r}")
            elif isinstance(extra, dict):
                errs += validate(v, extra, f"{path}.{k}")
    if isinstance(doc, list) and "items" in schema:
        for i, x in enumerate(doc):
            errs += validate(x, schema["items"], f"{path}[{i}]")
    return errs


# -- fixtures --------------------------------------------------------------------------------------------------


def _recorded_run(argv: list[str]):
    """``main(argv)`` keeping the DumpResult (its ``tts`` is checked against ``tts.report()``)."""
    results = []
    real = dump_mod.dump_model

    def recording(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dump_mod, "dump_model", recording)
        rc, out, err = run_main(argv)
    return rc, out, err, results


@pytest.fixture(scope="module")
def text_dump(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "dump"
    rc, stdout, err, results = _recorded_run(["dump", "--model", str(checkpoint / "model"), "--vocoder",
                                              str(checkpoint / "vocoder"), "--out", str(out), *COMMON])
    return rc, stdout, err, out, results


@pytest.fixture(scope="module")
def json_dump(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("json") / "dump"
    rc, stdout, err, results = _recorded_run(
        ["dump", "--model", str(checkpoint / "model"), "--program", "decoder_step", "--format", "json", "--out",
         str(out), "--print-after", "lower_linear", "--print-after", "assign_layouts",
         "--diff", "lower_linear", "assign_layouts", *COMMON])
    return rc, stdout, err, out, results


@pytest.fixture(scope="module")
def dot_dump(checkpoint, tmp_path_factory):
    """--format dot with a stand-in ``dot`` on PATH (Graphviz is not a dependency): it writes an SVG stub."""
    root = tmp_path_factory.mktemp("dot")
    fake = root / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n# fake graphviz: dot -Tsvg IN -o OUT\necho "<svg><!-- $2 --></svg>" > "$4"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    out = root / "dump"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        rc, stdout, err, results = _recorded_run(["dump", "--model", str(checkpoint / "model"), "--program",
                                                  "postnet", "--format", "dot", "--out", str(out),
                                                  "--print-after", "captured,assign_layouts", *COMMON])
    return rc, stdout, err, out, results


# -- text: per-pass files with stats headers, program tables, summary ---------------------------------------------
def test_text_dump_writes_numbered_pass_files_for_every_program(text_dump):
    rc, stdout, err, out, (res,) = text_dump
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["decoder_step_1x32", "encoder_1x32", "postnet_1x64",
                                                     "summary.txt", "vocoder_1x64"]
    for v in res.tts.variants:
        folder = out / f"{v.name}_{'x'.join(map(str, v.key))}"
        names = pass_names(v.name, "float32")
        expected = [f"{i:03d}_{n}.txt" for i, n in enumerate(names)] + ["program.txt"]
        expected += ["prologue.txt"] if v.name == "decoder_step" else []
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected)
        for i, rec in enumerate(v.lowered.pass_records, start=1):  # the header is that pass's record
            text = (folder / f"{i:03d}_{rec.name}.txt").read_text()
            m = HEADER.match(text)
            assert m and m["prog"] == v.name and m["pass"] == rec.name, text[:200]
            assert m["stats"] == (str(rec.stats) if rec.stats else "no change")
            assert m["nodes"] == f"{rec.nodes_before} -> {rec.nodes_after} (+{rec.nodes_added} -{rec.nodes_removed})"
            body = [line for line in text.splitlines() if not line.startswith("#")]
            assert len(body) == rec.nodes_after
            assert rec.nodes_after - rec.nodes_before == rec.nodes_added - rec.nodes_removed
        assert HEADER.match((folder / "000_captured.txt").read_text())["stats"] == "no change"
    assert "error:" not in err


def test_program_table_has_one_line_per_op_with_spec_and_module(text_dump):
    rc, stdout, err, out, (res,) = text_dump
    v = next(v for v in res.tts.variants if v.name == "decoder_step")
    table = (out / "decoder_step_1x32" / "program.txt").read_text()
    lines = table.splitlines()
    calls = [n for n in v.lowered.graph_module.graph.nodes if n.op == "call_function"]
    assert lines[0].startswith("program decoder_step 1x32: ")
    head = next(i for i, line in enumerate(lines) if line.split()[:3] == ["#", "when", "kind"])
    assert lines[head].split() == ["#", "when", "kind", "value", "op", "output", "inputs", "module", "attrs"]
    rows = lines[head + 1:head + 1 + len(calls)]
    assert lines[head + 1 + len(calls)].startswith("outputs: ")
    for row, n in zip(rows, calls):
        assert f"%{n.name} " in row
        spec = n.meta.get("tensor_spec")
        if spec is not None:
            assert str(spec) in row  # shape, dtype, layout, memory config
    linear = next(r for r in rows if " ttnn.linear " in r and "self_attn" in r)
    assert re.search(r"speecht5\.decoder\.wrapped_decoder\.layers\.\d\.self_attn", linear)
    assert all(r.split()[1] in ("bind", "call") for r in rows)
    assert sum(r.split()[1] == "bind" for r in rows) == ga.program_stats(v.lowered.graph_module)["bind_time_ops"]


def test_summary_matches_report(text_dump):
    rc, stdout, err, out, (res,) = text_dump
    report = res.tts.report()
    summary = res.summary
    text = (out / "summary.txt").read_text()
    written = [p for p in out.rglob("*") if p.is_file()]
    assert stdout.startswith(text) and stdout.rstrip().endswith(f"wrote {len(written)} files under {out}")
    assert sorted(res.files) == sorted(written)
    assert validate(summary) == []
    lines = {m["prog"]: m for m in PROGRAM_LINE.finditer(text)}
    assert sorted(lines) == sorted(PROGRAMS)
    for p in summary["programs"]:
        rep, st, m = report.program(p["program"], tuple(p["variant"])), p["stats"], lines[p["program"]]
        assert st["op_histogram"] == rep.ops
        assert st["ops_per_call"] == rep.ops_per_call == int(m["ops"])
        assert st["transfers_per_call"] == rep.transfers_per_call == int(m["transfers"])
        assert len(st["host_fallbacks"]) == rep.fallback_count == int(m["fallbacks"])
        assert st["ttnn_ops"] == rep.ttnn_ops and st["weight_bytes"] == rep.weight_bytes
        assert [(r["name"], r["stats"]) for r in p["passes"]] == [(n, s) for n, s in rep.passes]
        merged = dict(st["op_histogram_per_call"])
        for k, c in st["op_histogram_bind_time"].items():
            merged[k] = merged.get(k, 0) + c
        assert merged == rep.ops
        assert 0 < st["per_call_read_bytes"] <= st["constant_bytes"]
        assert 0 < st["longest_chain"]["length"] <= st["ops_per_call"] + st["transfers_per_call"]
    step = STEP_LINE.search(text)
    rep = report.program("decoder_step")
    assert step and int(step["ops"]) == rep.ops_per_call and int(step["transfers"]) == rep.transfers_per_call
    assert int(step["bytes"]) == summary["per_decode_step"]["constant_read_bytes"]
    # the positional-encoding table is gathered one row per step: the step reads less than it keeps resident
    st = next(p["stats"] for p in summary["programs"] if p["program"] == "decoder_step")
    assert st["per_call_read_bytes"] < st["constant_bytes"]


# -- json: --print-after filtering, schema, diff ---------------------------------------------------------------
def test_json_dump_files_and_print_after_filter(json_dump):
    rc, stdout, err, out, (res,) = json_dump
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["decoder_step_1x32", "summary.json", "summary.txt"]
    assert sorted(p.name for p in (out / "decoder_step_1x32").iterdir()) == [
        "011_lower_linear.json", "022_assign_layouts.json", "diff_lower_linear_assign_layouts.diff",
        "program.json", "program.txt", "prologue.txt"]


def test_json_documents_validate_against_the_schema(json_dump):
    rc, stdout, err, out, (res,) = json_dump
    folder = out / "decoder_step_1x32"
    docs = {p.name: json.loads(p.read_text()) for p in [*folder.glob("*.json"), out / "summary.json"]}
    for name, doc in docs.items():
        assert doc["schema_version"] == 2
        assert validate(doc) == [], name
    linear = docs["011_lower_linear.json"]
    assert linear["kind"] == "pass" and linear["variant"] == [1, 32]
    rec = next(r for r in res.tts.variants[0].lowered.pass_records if r.name == "lower_linear")
    assert linear["pass"] == {"index": 11, "name": "lower_linear", "stats": rec.stats, "nodes_before": rec.nodes_before,
                              "nodes_after": rec.nodes_after, "nodes_added": rec.nodes_added,
                              "nodes_removed": rec.nodes_removed}
    assert len(linear["graph"]["nodes"]) == rec.nodes_after
    program = docs["program.json"]
    assert program["kind"] == "program" and program["prologue"]["program"] == "decoder_step.prologue"
    assert {n["phase"] for n in program["graph"]["nodes"] if n["op"] == "call_function"} == {"bind", "call"}
    assert program["stats"] == next(p["stats"] for p in docs["summary.json"]["programs"])
    assert docs["summary.json"]["precision"] == "accuracy"
    assert {c["class"] for c in program["stats"]["compute_configs"]} >= {"linear.small", "layer_norm", "sdpa_decode"}
    # the validator is not vacuous
    broken = json.loads(json.dumps(program))
    del broken["graph"]["nodes"][0]["spec"]
    broken["stats"]["ops_per_call"] = -1
    assert len(validate(broken)) >= 1 and validate({"schema_version": 1, "kind": "nope"})


def test_diff_between_two_passes(json_dump):
    rc, stdout, err, out, _ = json_dump
    folder = out / "decoder_step_1x32"
    diff = (folder / "diff_lower_linear_assign_layouts.diff").read_text()
    a, b = ({n["name"] for n in json.loads((folder / f).read_text())["graph"]["nodes"]}
            for f in ("011_lower_linear.json", "022_assign_layouts.json"))
    assert diff.splitlines()[0] == (f"# decoder_step after lower_linear -> decoder_step after assign_layouts: "
                                    f"{len(b - a)} nodes added, {len(a - b)} removed, "
                                    f"{diff.splitlines()[0].split(', ')[-1]}")
    assert diff.splitlines()[1:3] == ["--- decoder_step after lower_linear", "+++ decoder_step after assign_layouts"]
    assert any(line.startswith("+%ttnn_from_torch") for line in diff.splitlines())


# -- dot: colours by kind, node/edge counts, SVG only with Graphviz ---------------------------------------------
_NODE = re.compile(r'^\s*"(?P<name>[^"]+)" \[(?P<attrs>.*)\];$')
_EDGE = re.compile(r'^\s*"(?P<a>[^"]+)" -> "(?P<b>[^"]+)";$')


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    assert text.startswith("digraph ") and text.rstrip().endswith("}") and text.count("{") == text.count("}")
    nodes, edges = {}, []
    for line in text.splitlines():
        if m := _EDGE.match(line):
            edges.append((m["a"], m["b"]))
        elif m := _NODE.match(line):
            nodes[m["name"]] = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s]+)', m["attrs"]))
    return {k: {a: v.strip('"') for a, v in d.items()} for k, d in nodes.items()}, edges


def test_dot_files_parse_with_kind_colours_and_svg(dot_dump):
    rc, stdout, err, out, (res,) = dot_dump
    assert rc == 0, err
    folder = out / "postnet_1x64"
    assert sorted(p.name for p in folder.iterdir()) == ["000_captured.dot", "022_assign_layouts.dot", "program.dot",
                                                        "program.svg", "program.txt"]
    assert (folder / "program.svg").read_text().startswith("<svg>")
    gm = res.tts.variants[0].lowered.graph_module
    nodes, edges = parse_dot((folder / "program.dot").read_text())
    g = ga.to_networkx(gm)
    assert len(nodes) == g.number_of_nodes() and len(edges) == len(set(edges)) == g.number_of_edges()
    by_name = {n.name: n for n in gm.graph.nodes}
    assert {(a, b) for a, b in edges} == {(a.name, b.name) for a, b in g.edges}
    for name, attrs in nodes.items():
        kind = node_kind(by_name[name])
        assert attrs["kind"] == kind and attrs["fillcolor"] == KIND_COLORS[kind]
    kinds = {a["kind"] for a in nodes.values()}
    assert {"compute", "data_movement", "transfer"} <= kinds
    bound = {n.name for n in ga.bind_time(g)}
    assert {n for n, a in nodes.items() if "dashed" in a["style"]} == bound
    captured, _ = parse_dot((folder / "000_captured.dot").read_text())
    assert {a["kind"] for a in captured.values()} >= {"aten", "input", "output"}


def test_no_svg_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(dump_mod.shutil, "which", lambda name: None)
    dot = tmp_path / "g.dot"
    dot.write_text("digraph g { a -> b; }\n")
    assert dump_mod.write_svg(dot) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]


# -- stdout (no --out) ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["text", "json", "dot"])
def test_stdout_without_out(checkpoint, fmt):
    rc, out, err = run_main(["dump", "--model", str(checkpoint / "model"), "--program", "postnet", "--format", fmt,
                             "--print-after", "assign_layouts", *COMMON])
    assert rc == 0, err
    if fmt == "text":
        assert out.startswith("# postnet: after assign_layouts\n# stats: {'from_torch': ")
        assert "\nprogram postnet 1x64: " in out and "\nfx2ttnn dump summary: " in out
    elif fmt == "json":
        doc = json.loads(out)
        assert doc["kind"] == "dump" and validate(doc) == []
        assert [p["pass"]["name"] for p in doc["passes"]] == ["assign_layouts"]
        assert [p["program"] for p in doc["programs"]] == ["postnet"]
    else:
        chunks = ["digraph " + c for c in out.split("digraph ")[1:]]
        assert len(chunks) == 2 and "after assign_layouts" in chunks[0]  # the pass asked for, the final program
        assert all(parse_dot(c)[0] for c in chunks)


def test_diff_to_stdout_matches_the_pass_record(checkpoint):
    rc, out, err, (res,) = _recorded_run(["dump", "--model", str(checkpoint / "model"), "--program", "postnet",
                                          "--diff", "fold_batchnorm", "conv1d_to_conv2d", *COMMON])
    assert rc == 0, err
    rec = next(r for r in res.tts.variants[0].lowered.pass_records if r.name == "conv1d_to_conv2d")
    assert out.startswith(f"# postnet after fold_batchnorm -> postnet after conv1d_to_conv2d: {rec.nodes_added} "
                          f"nodes added, {rec.nodes_removed} removed, ")
    assert "-%conv1d_default: " in out and "+%ttnn_conv2d: " in out  # the conv became ttnn.conv2d
    assert "program postnet" not in out  # with --diff, stdout is the diff only


# -- errors: one `error:` line, exit 2, nothing lowered ------------------------------------------------------------
def _error_cases(tmp: Path) -> dict[str, list[str]]:
    (tmp / "a_file").write_text("x")
    return {
        "unknown program": ["dump", "--program", "decoder"],
        "unknown pass": ["dump", "--print-after", "lower_linaer"],
        "pass of another program": ["dump", "--program", "vocoder", "--print-after", "hoist_invariants"],
        "unknown diff pass": ["dump", "--diff", "captured", "lower_everything"],
        "out is a file": ["dump", "--out", str(tmp / "a_file")],
        "out under a file": ["dump", "--out", str(tmp / "a_file" / "dump")],
        "missing model": ["dump", "--model", str(tmp / "nope")],
    }


@pytest.mark.parametrize("case", ["unknown program", "unknown pass", "pass of another program", "unknown diff pass",
                                  "out is a file", "out under a file", "missing model"])
def test_errors_are_one_line_exit_2(case, tmp_path, monkeypatch):
    def no_lowering(*a, **k):
        raise AssertionError("lowered before the error")
    monkeypatch.setattr(dump_mod, "dump_model", no_lowering)
    rc, out, err = run_main(_error_cases(tmp_path)[case])
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_unwritable_out_directory(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root writes anywhere: let the permission check say no for this directory
            real = os.access
            monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
        rc, out, err = run_main(["dump", "--out", str(ro / "dump")])
    finally:
        ro.chmod(0o700)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: cannot write --out '{ro / 'dump'}': '{ro}' is not writable")
    assert list(ro.iterdir()) == []


# -- the pieces: pass manager dump settings, analyses on a program with a host fallback ----------------------------
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(32, 32)

    def forward(self, x):
        return torch.relu(self.lin(x)) * 2


def test_dump_settings_pick_formats_and_passes(tmp_path):
    seen = []
    settings = DumpSettings((DumpFormat("j", lambda gm, d: f"{d.name} {d.nodes_before} {d.nodes_after}\n",
                                        after_write=lambda p: seen.append(p.name)),),
                            frozenset({"captured", "lower_linear"}), lambda gm, d: seen.append(d.name))
    gm = capture_module(Block().eval(), torch.randn(2, 32))
    with dump_settings(settings):
        pm = PassManager([Canonicalize(), LowerLinear(), LowerElementwise()], dump_dir=tmp_path, program="block")
    pm(gm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000_captured.j", "002_lower_linear.j"]
    assert (tmp_path / "002_lower_linear.j").read_text().startswith("lower_linear ")
    assert seen == ["captured", "000_captured.j", "canonicalize", "lower_linear", "002_lower_linear.j",
                    "lower_elementwise"]
    plain = PassManager([Canonicalize()], dump_dir=tmp_path / "plain")  # outside the block: text files as before
    plain(capture_module(Block().eval(), torch.randn(2, 32)))
    assert [p.name for p in (tmp_path / "plain").iterdir()] != [] and all(
        p.suffix == ".txt" for p in (tmp_path / "plain").iterdir())


def test_host_fallback_and_transfers_in_stats_table_and_dot():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 32)
    gm = finish(run_passes(capture_module(ConvRelu().eval(), x), LowerElementwise()), [x], device_inputs=["x0"])
    st = ga.program_stats(gm)
    assert [(f["op"], f["module"]) for f in st["host_fallbacks"]] == [("aten.conv1d.default", "conv")]
    assert st["host_fallbacks"][0]["reason"] == "no ttnn lowering for aten.conv1d.default"
    directions = sorted(t["direction"] for t in st["transfers"])
    assert directions == ["device_to_host", "host_to_device"] and st["transfers_per_call"] == 2
    assert st["host_ops_per_call"] == 1 and st["ops_per_call"] == 1  # the relu
    table = format_table(gm, bind_time=ga.bind_time(ga.to_networkx(gm)))
    assert "[host fallback: no ttnn lowering for aten.conv1d.default]" in table
    nodes, _ = parse_dot(to_dot(gm))
    assert [a["fillcolor"] for a in nodes.values() if a["kind"] == "host"] == [KIND_COLORS["host"]]


def test_longest_chain_and_module_groups():
    assert ga.module_group("speecht5.decoder.wrapped_decoder.layers.3.self_attn") == \
        "speecht5.decoder.wrapped_decoder.layers.3"
    assert ga.module_group("vocoder.conv_pre") == "vocoder.conv_pre" and ga.module_group("") == ""
    torch.manual_seed(0)
    x = torch.randn(2, 32)
    gm = finish(run_passes(capture_module(Block().eval(), x), LowerLinear(), LowerElementwise()), [x],
                device_inputs=["x0"])
    g = ga.to_networkx(gm)
    chain = ga.longest_chain(g, ga.bind_time(g))
    assert [n.target.name for n in chain] == ["linear", "multiply"]  # relu fused into the linear
    mg = ga.module_graph(g, ga.bind_time(g))
    assert mg.nodes["lin"]["ops"] == 1
