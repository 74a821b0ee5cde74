"""``fx2ttnn compare`` on a tiny saved checkpoint (reference backend, float32).

* healthy model: exit 0, one table row per compared module (encoder layers, cross K/V, per decode step the speech
  prenet / decoder layers / feat_out / prob_out, postnet layers and output, every vocoder stage), all ``ok``;
  the text prenet is reported as not comparable (its positional add is fused into the next layer norm);
* a corrupted weight: after lowering, decoder layer 1's FFN ``output_dense`` weight is scaled by 3 (half of its
  output features) *in the lowered decode-step program's constants* (the HF model is untouched), as a lowering bug would: exit 1, and the first
  row below the threshold is decode step 1's ``layers.1``, every row before it passing (with ``detail``: the
  layer's ``feed_forward``, after its passing attention blocks);
* the tapped node-by-node run is bit-identical to the bound program's (same waveform);
* usage errors (unknown program, bad threshold, bad steps) exit 2 with one ``error:`` line.
"""
from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import tiny_config, tiny_vocoder_config
from tests.utils import run_main

STEPS = 2
TEXT_LEN = 12
DECODER = "speecht5.decoder.wrapped_decoder"
BAD_LAYER = 1





def argv(ckpt, *extra: str) -> list[str]:
    return ["compare", "--model", str(ckpt / "model"), "--vocoder", str(ckpt / "vocoder"), "--dtype", "float32",
            "--steps", str(STEPS), "--text-len", str(TEXT_LEN), *extra]


def run_recording(args: list[str], after_lowering=None):
    """Run the CLI in-process; returns (rc, out, err, [the LoweredSpeechT5 it made])."""
    import fx2ttnn.model
    made = []
    real = fx2ttnn.model.lower_model

    def recording(*a, **k):
        tts = real(*a, **k)
        if after_lowering is not None:
            after_lowering(tts)
        made.append(tts)
        return tts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fx2ttnn.model, "lower_model", recording)
        rc, out, err = run_main(args)
    return rc, out, err, made


def table_rows(out: str) -> list[dict[str, str]]:
    """The table's rows as {program, step, module, status, line}, cut at the header's column positions."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("program "))
    head = lines[start]
    s_step, s_module, s_shape = head.index("step"), head.index("module"), head.index("HF shape")
    s_status = head.index("max abs err") + len("max abs err") + 2
    rows = []
    for line in lines[start + 2:]:
        if line.startswith(("PASS", "FAIL")):
            break
        rows.append({"program": line[:s_step].strip(), "step": line[s_step:s_module].strip(),
                     "module": line[s_module:s_shape].strip().split(" (")[0], "status": line[s_status:].strip(),
                     "line": line})
    return rows


def expected_rows() -> list[tuple[str, str, str]]:
    cfg, voc = tiny_config(), tiny_vocoder_config()
    rows = [("encoder", "", "speecht5.encoder.prenet"), ("encoder", "", "speecht5.encoder.wrapped_encoder.layer_norm")]
    rows += [("encoder", "", f"speecht5.encoder.wrapped_encoder.layers.{i}") for i in range(cfg.encoder_layers)]
    for i in range(cfg.decoder_layers):
        rows += [("encoder", "", f"{DECODER}.layers.{i}.encoder_attn.{p}") for p in ("k_proj", "v_proj")]
    for s in range(1, STEPS + 1):
        rows.append(("decoder_step", str(s), "speecht5.decoder.prenet"))
        rows += [("decoder_step", str(s), f"{DECODER}.layers.{i}") for i in range(cfg.decoder_layers)]
        rows += [("decoder_step", str(s), "speech_decoder_postnet.feat_out"),
                 ("decoder_step", str(s), "speech_decoder_postnet.prob_out")]
    rows += [("postnet", "", f"speech_decoder_postnet.layers.{i}") for i in range(cfg.speech_decoder_postnet_layers)]
    rows.append(("postnet", "", "speech_decoder_postnet.postnet()"))
    k = len(voc.resblock_kernel_sizes)
    rows.append(("vocoder", "", "vocoder.conv_pre"))
    for i in range(len(voc.upsample_rates)):
        rows.append(("vocoder", "", f"vocoder.upsampler.{i}"))
        rows += [("vocoder", "", f"vocoder.resblocks.{j}") for j in range(i * k, (i + 1) * k)]
    rows += [("vocoder", "", "vocoder.conv_post"), ("vocoder", "", "vocoder")]
    return rows


@pytest.fixture(scope="module")
def healthy(checkpoint, tmp_path_factory):
    report = tmp_path_factory.mktemp("json") / "report.json"
    rc, out, err, made = run_recording(argv(checkpoint, "--json", str(report)))
    return rc, out, err, made, report


def test_healthy_model_passes_with_every_module_row(healthy):
    rc, out, err, _, _ = healthy
    assert rc == 0, out + err
    assert "error:" not in err
    rows = table_rows(out)
    assert [(r["program"], r["step"], r["module"]) for r in rows] == expected_rows()
    for r in rows:
        if r["module"] == "speecht5.encoder.prenet":  # its positional add is fused into the next layer norm
            assert r["status"].startswith("n/a: output not materialized"), r["line"]
            assert "speecht5.encoder.wrapped_encoder.layer_norm" in r["status"]
        elif r["module"] == "speech_decoder_postnet.prob_out":  # r = 2 values: judged by max abs error
            assert r["status"] == "ok (by atol)" and "(+sigmoid)" in r["line"], r["line"]
        else:
            assert r["status"] == "ok", r["line"]
    assert "vocoder.conv_pre (+leaky_relu 0.1)" in out and "vocoder.conv_post (+tanh)" in out
    assert out.splitlines()[0].startswith("fx2ttnn compare: float32")
    assert out.rstrip().splitlines()[-1].startswith(f"PASS: {len(rows) - 1} values compared, all PCC >= 0.9999")


def test_json_report(healthy):
    rc, out, _, _, path = healthy
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["first_failure"] is None and data["threshold"] == 0.9999
    assert len(data["rows"]) == len(expected_rows())
    compared = [r for r in data["rows"] if r["status"] == "ok"]
    assert len(compared) == len(expected_rows()) - 1
    assert all(r["pcc"] >= 0.9999 and r["max_abs_err"] < 1e-3 for r in compared)


def test_tapped_run_is_bit_identical(healthy):
    """TapProgram (node-by-node, recording every node) gives exactly the bound programs' waveform."""
    from fx2ttnn.tools.compare import tapped

    _, _, _, (tts,), _ = healthy
    g = torch.Generator().manual_seed(5)
    ids, spk = torch.randint(4, 81, (1, TEXT_LEN), generator=g), torch.randn(1, 64, generator=g)
    kw = dict(threshold=10.0, maxlenratio=3 * 2 / TEXT_LEN + 1e-6)
    ref = tts.generate_speech(ids, spk, **kw)
    taps = {}
    for v in tts.variants:
        graphs = {"main": set(v.lowered.graph_module.graph.nodes)}
        if v.prologue is not None:
            graphs["prologue"] = set(v.prologue.graph_module.graph.nodes)
        taps[(v.name, v.key)] = graphs
    with tapped(tts, taps) as runners:
        got = tts.generate_speech(ids, spk, **kw)
    assert torch.equal(ref, got)
    step = next(r for (name, _), r in runners.items() if name == "decoder_step")
    assert len(step["main"].records) == 3 and all(step["main"].records)
    assert all(v.bound.__class__.__name__ == "BoundProgram" for v in tts.variants)  # restored


def test_program_subset_via_api(healthy):
    from fx2ttnn.tools.compare import compare_model

    _, _, _, (tts,), _ = healthy
    rep = compare_model(tts.model, tts=tts, steps=1, text_len=TEXT_LEN, programs=["postnet"])
    assert rep.passed and {r.program for r in rep.rows} == {"postnet"}
    assert len(rep.rows) == tiny_config().speech_decoder_postnet_layers + 1


def _scale_ffn_weight(tts, layer: int = BAD_LAYER, factor: float = 3.0) -> None:
    """Lowering-bug stand-in: scale decoder layer ``layer``'s FFN output weight in the lowered decode step's
    constants (a fresh tensor: the HF parameter is untouched) — half of its output features, since PCC cannot see
    a uniform scale of a block's output (only the layer norm after it would)."""
    from fx2ttnn.lowering.ir import source_module
    gm = tts.variant("decoder_step", tts.default_key("decoder_step")).lowered.graph_module
    target = f"{DECODER}.layers.{layer}.feed_forward.output_dense"
    (lin,) = [n for n in gm.graph.nodes if source_module(n) == target and getattr(n.target, "name", "") == "linear"]
    (attr,) = [a for a in lin.args[1].all_input_nodes if a.op == "get_attr"]
    w = getattr(gm, attr.target).clone()  # [in, out]: the lowered linear's transposed weight
    w[:, : w.shape[1] // 2] *= factor
    setattr(gm, attr.target, w)


def test_corrupted_weight_names_that_layer(checkpoint):
    rc, out, err, (tts,) = run_recording(argv(checkpoint), after_lowering=_scale_ffn_weight)
    assert rc == 1, out + err
    assert "error:" not in err
    rows = table_rows(out)
    first = next(i for i, r in enumerate(rows) if r["status"] == "FAIL")
    assert (rows[first]["program"], rows[first]["step"], rows[first]["module"]) == \
        ("decoder_step", "1", f"{DECODER}.layers.{BAD_LAYER}")
    assert all(r["status"] in ("ok", "ok (by atol)") or r["status"].startswith("n/a") for r in rows[:first])
    assert [r["module"] for r in rows[:first] if r["program"] == "decoder_step"] == \
        ["speecht5.decoder.prenet", f"{DECODER}.layers.0"]
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith("FAIL: ") and f"first: decoder_step step 1 {DECODER}.layers.{BAD_LAYER} " in summary
    # --detail narrows it to the layer's feed-forward block: its attention blocks still pass
    from fx2ttnn.tools.compare import compare_model
    rep = compare_model(tts.model, tts=tts, steps=1, text_len=TEXT_LEN, programs=["decoder_step"], detail=True)
    bad = rep.first_failure
    assert (bad.step, bad.module) == (1, f"{DECODER}.layers.{BAD_LAYER}.feed_forward")
    before = rep.rows[:rep.rows.index(bad)]
    assert [r.module for r in before][-2:] == [f"{DECODER}.layers.{BAD_LAYER}.{p}" for p in ("self_attn", "encoder_attn")]
    assert all(r.status == "ok" for r in before)
    # the HF model was not touched: its layer still has the checkpoint's weight
    from transformers import SpeechT5ForTextToSpeech
    saved = SpeechT5ForTextToSpeech.from_pretrained(checkpoint / "model")
    w = lambda m: m.speecht5.decoder.wrapped_decoder.layers[BAD_LAYER].feed_forward.output_dense.weight  # noqa: E731
    assert torch.equal(w(saved), w(tts.model))


@pytest.mark.parametrize("extra, message", [
    (["--program", "decoder"], "unknown program 'decoder'"),
    (["--threshold", "1.5"], "--threshold must be a finite number > 0 and <= 1, got 1.5"),
    (["--threshold", "0"], "--threshold must be a finite number > 0 and <= 1, got 0.0"),
    (["--threshold", "nan"], "--threshold must be a finite number > 0 and <= 1, got nan"),
    (["--steps", "0"], "fx2ttnn compare: argument --steps: must be an integer >= 1, got 0"),
    (["--steps", "2.5"], "fx2ttnn compare: argument --steps: must be an integer, got '2.5'"),
    (["--seed", "-1"], "fx2ttnn compare: argument --seed: must be an integer >= 0"),
    (["--atol", "-1"], "--atol must be a finite number >= 0, got -1.0"),
    (["--atol", "inf"], "--atol must be a finite number >= 0, got inf"),
])
def test_usage_errors(checkpoint, extra, message):
    rc, out, err = run_main(argv(checkpoint, *extra))
    assert rc == 2 and out == "", (out, err)
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), err
    assert "Traceback" not in err


def test_threshold_defaults_are_the_projects():
    from fx2ttnn.tools.compare import DEFAULT_THRESHOLDS
    from tests.pcc_thresholds import PCC
    assert DEFAULT_THRESHOLDS == {d: max(stage[d] for stage in PCC.values()) for d in ("float32", "bfloat16")}


def test_stages_report_one_pcc_per_stage(checkpoint, tmp_path):
    """``--stages`` with the bfloat16 'performance' policy under device numerics: one row per stage, each PCC high
    (a healthy tiny model), the JSON with the same numbers and the decode step's weight bytes."""
    from fx2ttnn.tools.stages import STAGES

    report = tmp_path / "stages.json"
    rc, out, err = run_main(["compare", "--model", str(checkpoint / "model"), "--vocoder", str(checkpoint / "vocoder"),
                             "--stages", "--steps", "4", "--text-len", str(TEXT_LEN), "--dtype", "bfloat16",
                             "--precision", "performance", "--json", str(report)])
    assert rc == 0, out + err
    assert out.startswith("fx2ttnn compare --stages: bfloat16 performance (device numerics); 4 decode steps")
    rows = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[2:] if line.split()}
    assert list(rows) == list(STAGES) and all(v > 0.99 for v in rows.values()), rows
    doc = json.loads(report.read_text())
    assert doc["kind"] == "stages" and doc["pcc"] == pytest.approx(rows, abs=1e-6)
    assert doc["weight_bytes_per_step"] > 0


def test_stages_float32_with_device_numerics_is_a_usage_error(checkpoint):
    rc, out, err = run_main(argv(checkpoint, "--stages"))  # float32 (argv's) with --stages' default device numerics
    assert rc == 2 and "reference-only" in err and out == ""
