"""The real ttnn 0.81.1 in the loop (CPython 3.12 side environment, made and cached on first use; skipped with the
reason where it cannot exist): every emitted call binds, no check fires before the device one, the reference's host
conversions are bit-exact to ttnn's, and the backend says clearly that no device opened."""
from __future__ import annotations

import warnings

import pytest

from fx2ttnn.conformance import report as conformance
from fx2ttnn.conformance.calls import call_key
from fx2ttnn.conformance.sideenv import PROBE_SCRIPT, SideEnvUnavailable, ensure_side_env
from fx2ttnn.errors import BackendUnavailableError
from fx2ttnn.runtime import backend as backend_mod
from fx2ttnn.runtime import ttnn_probe

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="module")
def side():
    try:
        return ensure_side_env(log=lambda m: None)
    except SideEnvUnavailable as e:
        pytest.skip(f"real-ttnn conformance cannot run here: {e}")


@pytest.fixture(scope="module")
def report(side):
    return conformance.run_conformance(side=side, log=lambda m: None)


def test_every_emitted_call_binds_and_passes_the_checks_before_the_device(report):
    assert report.failures == [], "\n" + report.text()
    seen = {(r.config, r.dtype, r.call["program"], r.call["part"]) for r in report.results}
    for config in conformance.CONFIGS:
        for dtype in conformance.DTYPES:
            for program in ("encoder", "decoder_step", "postnet", "vocoder"):
                assert (config, dtype, program, "program") in seen
            assert (config, dtype, "decoder_step", "prologue") in seen
    # nothing is hidden: every call is counted under one status
    assert sum(report.count(s) for s in conformance.STATUSES) == len(report.results)


def test_host_conversions_are_bit_exact(report):
    assert report.numerics and all(row.ok for row in report.numerics), "\n" + report.text()
    names = {row.case for row in report.numerics}
    for dtype in ("bfloat16", "bfloat8_b", "bfloat4_b", "float32"):
        assert f"edge values -> {dtype} TILE" in names


def _tensor(shape, dtype, layout):
    return {"t": "tensor", "shape": shape, "dtype": dtype, "layout": layout, "on_device": True,
            "memory": {"memory_layout": "INTERLEAVED", "buffer_type": "DRAM", "shard_spec": None}}


def test_the_replay_catches_what_the_real_library_refuses(side):
    """The harness's own negative cases: the old position increment (a check before the device), an argument name
    ttnn does not have, a device-taking op called with an unknown keyword; and ops that kill their worker on the
    absent device (layer_norm reads the device first thing), recorded from the crash report while the calls after
    them still run - also as a worker's first call, before anything of its own touched tt-metal's context (the
    float32 case: its host tensors need no tile sizes)."""
    pos = _tensor([1], "int32", "ROW_MAJOR")
    x, w = _tensor([1, 1, 64], "bfloat16", "TILE"), _tensor([64, 64], "bfloat16", "TILE")
    x32, w32 = _tensor([1, 32, 64], "float32", "TILE"), _tensor([1, 64], "float32", "TILE")
    calls = {
        "layer_norm_f32": {"op": "layer_norm", "args": [x32], "kwargs": {"weight": w32, "epsilon": 1e-5}},
        "increment": {"op": "add", "args": [pos, 1], "kwargs": {"output_tensor": pos}},
        "layer_norm": {"op": "layer_norm", "args": [x], "kwargs": {"epsilon": 1e-5}},
        "plus_one": {"op": "plus_one", "args": [pos], "kwargs": {}},
        "bad_keyword": {"op": "linear", "args": [x, w], "kwargs": {"bias_tensor": w}},
        "bad_conv": {"op": "prepare_conv_bias", "args": [], "kwargs": {"bias_tensor": w, "device": {"t": "device"},
                                                                         "no_such_argument": 1}},
    }
    for c in calls.values():
        c.update(needs_device=True, takes_device=c["op"] == "prepare_conv_bias")
    response = side.run({"mode": "replay", "calls": calls})
    results = response["results"]
    assert list(results) == list(calls)
    assert response["workers"] == 3  # the first, and one after each layer_norm
    for name in ("layer_norm_f32", "layer_norm"):
        assert results[name]["status"] == "needs_device", results[name]
        assert results[name]["stage"] == "entered ttnn::layer_norm, which dereferences the (absent) device"
    assert results["increment"]["status"] == "check_failed"
    assert "Optional output tensor with Row Major input is not supported" in results["increment"]["message"]
    assert results["plus_one"]["status"] == "needs_device"
    assert results["bad_keyword"]["status"] == "binding_error"
    assert results["bad_conv"]["status"] == "binding_error" and "no_such_argument" in results["bad_conv"]["message"]
    assert call_key({**calls["increment"]}) != call_key({**calls["plus_one"]})


def test_backend_with_the_real_package_and_no_device(side, monkeypatch):
    """The backend's probe, run against the real ttnn in the side environment (no mock cluster: the machine as it
    is), finds the package and no device; the backend turns that into a clear error (``"ttnn"``) or a notice and the
    reference (``"auto"``)."""
    real = side.run({"mode": "probe", "probe_path": str(PROBE_SCRIPT)}, mock_cluster=False)
    assert real["importable"] and not real["device_opened"]
    assert "ttnn imported but no device opened" in real["reason"] and "No chips detected" in real["reason"]

    monkeypatch.setattr(ttnn_probe, "probe_real_ttnn",
                        lambda **kw: ttnn_probe.Probe(module=object(), reason=real["reason"]))
    with pytest.raises(BackendUnavailableError, match="backend='ttnn' requested but ttnn imported but no device"):
        backend_mod.open_backend("ttnn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        b = backend_mod.open_backend("auto")
    assert b.is_reference and b.fallback_reason == real["reason"]
    assert any(issubclass(w.category, RuntimeWarning) and "No chips detected" in str(w.message) for w in caught)
