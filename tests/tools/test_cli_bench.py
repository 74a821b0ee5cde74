"""``fx2ttnn bench`` on a tiny saved checkpoint (reference backend, float32).

* one in-process run (``--steps 3 --repeat 1 --text-len 8 --json FILE``): exit 0, every row ``format_table``
  emits, each with a number or ``-`` in its three columns (``-`` exactly where the HF side or the ratio has
  no value); the JSON file parses, has ``schema_version`` 2 and ``config``/``hf``/``lowered``/``floor_ms``/
  ``floor_samples_ms``/``ratios``/``emulated`` (null without ``--emulation-cost``) with finite numbers (times and ratios positive; one floor sample per
  repeat, ``floor_ms`` their median), and agrees with the table on the counts;
* usage errors (an unwritable ``--json`` path, ``--steps 0``) exit 2 with one ``error:`` line, nothing on
  stdout, before any lowering.

Timings are never compared: they depend on the machine and its load.
"""
from __future__ import annotations

import json
import math
import re
import statistics

import pytest

from tests.utils import run_main

STEPS, REPEAT, TEXT_LEN = 3, 1, 8
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[+-]\d+)?$")
# (row label, HF column has a value, ratio column has a value): the rows format_table emits, in order
ROWS = [
    ("lower_model (s)", False, False),
    ("encoder (ms)", True, True),
    ("decode step median (ms)", True, True),
    ("decode step p90 (ms)", True, True),
    ("postnet (ms)", True, True),
    ("vocoder (ms)", True, True),
    ("end to end (s)", True, True),
    ("real-time factor", True, True),
    ("peak RSS (MB)", True, True),
    ("TTNN ops per decode step", False, False),
    ("host<->device transfers per step", False, False),
    ("decode step floor (ms)", False, False),
    ("decode step / floor", False, False),
]
SIDE_TIMES = ["encoder_ms", "step_ms_median", "step_ms_p90", "postnet_ms", "vocoder_ms", "end_to_end_s",
              "real_time_factor", "peak_rss_mb"]





def argv(ckpt, *extra: str) -> list[str]:
    return ["bench", "--model", str(ckpt / "model"), "--vocoder", str(ckpt / "vocoder"), *extra]


@pytest.fixture(scope="module")
def bench(checkpoint, tmp_path_factory):
    report = tmp_path_factory.mktemp("json") / "bench.json"
    rc, out, err = run_main(argv(checkpoint, "--steps", str(STEPS), "--repeat", str(REPEAT), "--text-len",
                                 str(TEXT_LEN), "--dtype", "float32", "--json", str(report)))
    return rc, out, err, report


def table(out: str) -> dict[str, list[str]]:
    """{row label: [HF eager, fx2ttnn, fx2ttnn/HF]} for the rows after the header."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "HF eager" in line and "fx2ttnn/HF" in line)
    rows = {}
    for line in lines[start + 1:]:
        label = next((name for name, _, _ in ROWS if line.startswith(name + " ")), None)
        assert label is not None, f"unexpected table row: {line!r}"
        rows[label] = line[len(label):].split()
    return rows


def test_bench_prints_every_row(bench):
    rc, out, err, _ = bench
    assert rc == 0, out + err
    assert "error:" not in err
    head = out.splitlines()[0]
    assert head.startswith(f"fx2ttnn bench: {STEPS} decode steps, {TEXT_LEN} tokens, float32, ") and \
        "; reference ttnn on cpu;" in head, head
    rows = table(out)
    assert list(rows) == [name for name, _, _ in ROWS]
    for name, has_hf, has_ratio in ROWS:
        cells = rows[name]
        assert len(cells) == 3, (name, cells)
        assert all(c == "-" or NUMBER.match(c) for c in cells), (name, cells)
        assert NUMBER.match(cells[1]), (name, cells)  # every row has the fx2ttnn value
        assert (cells[0] != "-") == has_hf and (cells[2] != "-") == has_ratio, (name, cells)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_bench_json(bench):
    rc, out, err, report = bench
    assert rc == 0, out + err
    doc = json.loads(report.read_text())
    assert doc["schema_version"] == 2
    assert set(doc) == {"schema_version", "config", "hf", "lowered", "floor_ms", "floor_samples_ms", "ratios",
                        "emulated"}
    assert doc["emulated"] is None
    cfg = doc["config"]
    assert (cfg["precision"], cfg["numerics"]) == ("accuracy", "exact")
    assert (cfg["text_len"], cfg["steps"], cfg["dtype"], cfg["repeat"]) == (TEXT_LEN, STEPS, "float32", REPEAT)
    assert cfg["backend"].startswith("reference ttnn on cpu")
    assert _finite(cfg["torch_threads"]) and cfg["torch_threads"] >= 1
    assert all(isinstance(cfg[k], str) and cfg[k] for k in ("cpu", "python", "torch"))
    for side in ("hf", "lowered"):
        for k in SIDE_TIMES:
            assert _finite(doc[side][k]) and doc[side][k] > 0, (side, k, doc[side][k])
    # per-step counts and lower_model time exist on the lowered side only
    assert doc["hf"]["lower_model_s"] is None and doc["hf"]["ops_per_step"] is None
    assert doc["hf"]["transfers_per_step"] is None
    low = doc["lowered"]
    assert _finite(low["lower_model_s"]) and low["lower_model_s"] > 0
    assert isinstance(low["ops_per_step"], int) and low["ops_per_step"] > 0
    assert _finite(low["transfers_per_step"]) and low["transfers_per_step"] >= 0
    assert _finite(doc["floor_ms"]) and doc["floor_ms"] > 0
    # one floor sample per repeat, taken beside the steps it is compared with; the table's floor is their median
    samples = doc["floor_samples_ms"]
    assert len(samples) == REPEAT and all(_finite(x) and x > 0 for x in samples)
    assert doc["floor_ms"] == pytest.approx(statistics.median(samples))
    assert set(doc["ratios"]) == {*SIDE_TIMES, "step_vs_floor"}
    assert all(_finite(v) and v > 0 for v in doc["ratios"].values()), doc["ratios"]
    # the table prints the same counts the JSON holds (the only cells that are not timings)
    rows = table(out)
    assert rows["TTNN ops per decode step"][1] == str(low["ops_per_step"])
    assert float(rows["host<->device transfers per step"][1]) == pytest.approx(low["transfers_per_step"], rel=5e-3)


def test_bench_emulation_cost_rows(checkpoint):
    """``--emulation-cost``: one generation with numerics='device'; each stage's time and its ratio to the timed
    (exact) runs, in rows of their own."""
    rc, out, err = run_main(argv(checkpoint, "--steps", "2", "--repeat", "1", "--text-len", str(TEXT_LEN),
                                 "--dtype", "bfloat16", "--emulation-cost"))
    assert rc == 0, out + err
    rows = {line.split("(")[0].strip(): line.split()[-2:] for line in out.splitlines()
            if line.startswith("device numerics: ")}
    assert list(rows) == ["device numerics: encoder", "device numerics: decode step",
                          "device numerics: postnet", "device numerics: vocoder", "device numerics: end to end"]
    assert all(NUMBER.match(a) and NUMBER.match(b) and float(b) > 0 for a, b in rows.values()), rows


def test_float32_with_device_numerics_is_a_usage_error(checkpoint):
    rc, out, err = run_main(argv(checkpoint, "--dtype", "float32", "--emulation-cost"))
    assert rc == 2 and "reference-only" in err and out == ""


@pytest.mark.parametrize("case", ["json under a file", "json is a directory", "zero steps", "zero repeat"])
def test_usage_errors(case, checkpoint, tmp_path):
    (tmp_path / "file").write_text("x")
    extra = {"json under a file": ["--json", str(tmp_path / "file" / "b.json")],
             "json is a directory": ["--json", str(tmp_path)],
             "zero steps": ["--steps", "0"],
             "zero repeat": ["--repeat", "0"]}[case]
    import fx2ttnn.model
    with pytest.MonkeyPatch.context() as mp:  # every error must come before any lowering
        mp.setattr(fx2ttnn.model, "lower_model", lambda *a, **k: pytest.fail("lowered before the usage error"))
        rc, out, err = run_main(argv(checkpoint, "--text-len", str(TEXT_LEN), *extra))
    assert rc == 2, (case, out, err)
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert err.rstrip().splitlines()[-1] == errors[0]
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no JSON file, no temp file left behind
