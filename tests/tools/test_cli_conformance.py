"""``fx2ttnn conformance``'s command line (the conformance run itself is tested in ``tests/conformance``):

* usage errors (``--json`` naming a directory, a negative ``--seed``, an unknown ``--config``) exit 2 with one
  ``error:`` line before any side environment is made or anything lowered;
* no CPython 3.12: exit 2 with the reason in one line, before any lowering;
* exit 1 and a ``FAIL`` line naming the call when a call fails, 0 otherwise; ``--json`` writes every call's record;
  a configuration or dtype given twice is checked once.
"""
from __future__ import annotations

import json

import pytest

from fx2ttnn.conformance import report as conformance
from fx2ttnn.conformance import sideenv
from tests.utils import run_main


def _no_run(*a, **k):
    pytest.fail("the conformance run started before the usage error")


@pytest.mark.parametrize("argv, message", [
    (["--json", "{tmp}"], "is a directory"),
    (["--seed", "-1"], "--seed"),
    (["--config", "tiny"], "invalid choice"),
])
def test_usage_errors(argv, message, tmp_path, monkeypatch):
    monkeypatch.setattr(conformance, "run_conformance", _no_run)
    rc, out, err = run_main(["conformance", *[a.format(tmp=tmp_path) for a in argv]])
    assert rc == 2 and out == ""
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], err


def test_no_python312_is_one_error_line_before_any_lowering(monkeypatch):
    def missing():
        raise sideenv.SideEnvUnavailable("no CPython 3.12 found (FX2TTNN_PYTHON312, python3.12 on PATH, pyenv "
                                         "versions 3.12*)")
    monkeypatch.setattr(sideenv, "find_python312", missing)
    monkeypatch.setattr(conformance, "lower", lambda *a, **k: pytest.fail("lowered without a side environment"))
    rc, out, err = run_main(["conformance"])
    assert rc == 2 and out == ""
    assert err.strip().splitlines() == ["error: no CPython 3.12 found (FX2TTNN_PYTHON312, python3.12 on PATH, pyenv "
                                        "versions 3.12*)"]


def _report(status: str) -> conformance.ConformanceReport:
    call = {"program": "decoder_step", "part": "program", "node": "ttnn_add", "op": "add", "when": "call",
            "module": "speecht5.decoder", "args": [], "kwargs": {}}
    result = {"status": status, "stage": "stopped at binary.cpp:90 (cond)" if status == "check_failed" else "ok",
              "message": "Optional output tensor with Row Major input is not supported" if status == "check_failed"
              else ""}
    return conformance.ConformanceReport(results=[conformance.CallResult("default", "bfloat16", call, result)],
                                         distinct_calls=1)


@pytest.mark.parametrize("status, code", [("check_failed", 1), ("needs_device", 0)])
def test_exit_code_table_and_json(status, code, tmp_path, monkeypatch):
    seen = {}

    def fake_run(**kwargs):
        seen.update(kwargs)
        return _report(status)
    monkeypatch.setattr(conformance, "run_conformance", fake_run)
    out_json = tmp_path / "new" / "conformance.json"
    rc, out, err = run_main(["conformance", "--config", "default", "--config", "default", "--dtype", "bfloat16",
                             "--json", str(out_json)])
    assert rc == code, err
    assert seen["configs"] == ("default",) and seen["dtypes"] == ("bfloat16",)
    assert "ttnn.add" in out and f"{status} 1" in out
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    if code:
        assert fails == ["FAIL default bfloat16 decoder_step/program ttnn_add ttnn.add (speecht5.decoder): "
                         "check_failed at stopped at binary.cpp:90 (cond): Optional output tensor with Row Major "
                         "input is not supported"]
        assert out.splitlines()[-1].startswith("FAIL: 0 binding errors, 1 pre-device check failures")
    else:
        assert not fails and out.splitlines()[-1].startswith("PASS: 0 binding errors, 0 pre-device check failures")
    data = json.loads(out_json.read_text())
    assert [(c["node"], c["status"]) for c in data["calls"]] == [("ttnn_add", status)]
