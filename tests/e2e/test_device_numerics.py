"""Device numerics end to end: bfloat16 stop-step agreement with HF, float32 as an exact reference-only mode, and
``numerics="exact"`` unaffected by the compute kernel configs.

Stop step: HF eager (prenet dropout off) runs 100 decode steps of the full-size model with its stop threshold out
of reach, recording each step's stop-probability sum.  The threshold is then placed where HF's decision is best
conditioned: at the step (from 20 on) whose sum rises most above every earlier step's, halfway between the two, so
HF stops there and the margin either way is known.  The lowered bfloat16 model, with the reference emulating the
device's math (``numerics="device"``), must stop at the same step, under the "accuracy" and "performance" policies.
"""
from __future__ import annotations

import pytest
import torch

from fx2ttnn import lower_model
from fx2ttnn.errors import UnsupportedModelError
from fx2ttnn.tools.compare import no_hf_prenet_dropout

TEXT = 24
PROBE_STEPS = 100


@pytest.fixture(scope="module")
def stop_case(full_models):
    """(ids, speaker, threshold, HF's stop step, margin): the best-conditioned stop decision of HF's first 100
    steps (see the module doc)."""
    model, _ = full_models
    g = torch.Generator().manual_seed(11)
    ids, spk = torch.randint(4, 80, (1, TEXT), generator=g), torch.randn(1, 512, generator=g)
    sums: list[float] = []
    hook = model.speech_decoder_postnet.prob_out.register_forward_hook(
        lambda m, a, o: sums.append(float(torch.sigmoid(o).sum())))
    try:
        with no_hf_prenet_dropout(), torch.no_grad():
            model.generate_speech(ids, spk, threshold=10.0, maxlenratio=PROBE_STEPS * 2 / TEXT + 1e-6)
    finally:
        hook.remove()
    k = max(range(20, len(sums)), key=lambda i: sums[i] - max(sums[:i]))
    below = max(sums[:k])
    threshold = (sums[k] + below) / 2
    with no_hf_prenet_dropout(), torch.no_grad():
        hf_spec = model.generate_speech(ids, spk, threshold=threshold, maxlenratio=PROBE_STEPS * 2 / TEXT + 1e-6)
    steps = hf_spec.shape[0] // model.config.reduction_factor
    assert steps == k + 1  # HF stops at the chosen step
    return ids, spk, threshold, steps, (sums[k] - below) / 2


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["accuracy", "performance"])
def test_bfloat16_stop_step_agrees_with_hf(full_models, stop_case, precision):
    model, _ = full_models
    ids, spk, threshold, hf_steps, margin = stop_case
    tts = lower_model(model, backend="reference", dtype="bfloat16", precision=precision, numerics="device",
                      prenet_dropout=False, max_steps=128, programs=("encoder", "decoder_step"))
    spec = tts.generate_speech(ids, spk, vocoder=False, threshold=threshold, maxlenratio=PROBE_STEPS * 2 / TEXT + 1e-6)
    print(f"{precision}: HF stops at step {hf_steps} (threshold {threshold:.4f}, margin {margin:.4f}); lowered at "
          f"{tts.last_generation.steps}")
    assert tts.last_generation.steps == hf_steps
    assert spec.shape[0] == hf_steps * model.config.reduction_factor


def test_float32_is_reference_only(tiny_models, monkeypatch):
    model, vocoder = tiny_models
    with pytest.raises(UnsupportedModelError, match="exact, reference-only mode"):
        lower_model(model, backend="reference", dtype="float32", numerics="device", programs=())
    # on a device backend (the real ttnn; stood in for here) float32 is refused before anything is lowered
    import fx2ttnn.model as model_module
    from fx2ttnn.runtime import reference
    from fx2ttnn.runtime.backend import Backend

    closed, opened = [], []
    fake = Backend(reference, reference.open_device(0), "ttnn", "ttnn (Tenstorrent device 0)")
    monkeypatch.setattr(fake, "close", lambda: closed.append(True))
    monkeypatch.setattr(model_module, "open_backend", lambda *a, **k: opened.append(True) or fake)
    with pytest.raises(UnsupportedModelError, match="backend='reference' runs it"):
        lower_model(model, backend="ttnn", dtype="float32", programs=())
    assert opened == [] and closed == []  # backend='ttnn' asked for: refused before a device is opened
    with pytest.raises(UnsupportedModelError, match="backend='reference' runs it"):
        lower_model(model, backend="auto", dtype="float32", programs=())
    assert opened == [True] and closed == [True]  # 'auto' found a device: closed again, nothing lowered


def test_exact_numerics_ignore_the_compute_configs(tiny_models):
    """``numerics="exact"`` is the float32 path whatever config an op carries: two policies that differ only in
    configs (no bfloat8_b weights in the tiny model) give bit-identical audio."""
    model, vocoder = tiny_models
    ids = torch.randint(4, 60, (1, 12), generator=torch.Generator().manual_seed(3))
    spk = torch.randn(1, 64, generator=torch.Generator().manual_seed(4))
    outs = []
    for precision in ("accuracy", "ttnn-defaults"):
        tts = lower_model(model, vocoder=vocoder, backend="reference", precision=precision, prenet_dropout=False)
        outs.append(tts.generate_speech(ids, spk, threshold=10.0, maxlenratio=2.0))
        assert tts.backend.numerics == "exact"
    assert torch.equal(outs[0], outs[1])


def test_device_numerics_change_the_result(tiny_models):
    model, vocoder = tiny_models
    ids = torch.randint(4, 60, (1, 12), generator=torch.Generator().manual_seed(3))
    spk = torch.randn(1, 64, generator=torch.Generator().manual_seed(4))
    outs = {}
    for numerics in ("exact", "device"):
        tts = lower_model(model, backend="reference", precision="ttnn-defaults", numerics=numerics,
                          prenet_dropout=False, programs=("encoder", "decoder_step"))
        outs[numerics] = tts.generate_speech(ids, spk, vocoder=False, threshold=10.0, maxlenratio=2.0)
    assert not torch.equal(outs["exact"], outs["device"])
    from fx2ttnn.accuracy import pcc
    assert pcc(outs["exact"], outs["device"]) > 0.999


NON_DEFAULT = dict(hidden_size=512, encoder_layers=6, decoder_layers=4, encoder_attention_heads=8,
                   decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, speech_decoder_prenet_units=256)
NON_DEFAULT_VOCODER = dict(upsample_initial_channel=128, upsample_rates=[5, 4, 3], upsample_kernel_sizes=[10, 8, 7],
                           resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 2], [2, 6]])


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["accuracy", "performance"])
def test_device_numerics_targets_non_default_config(precision):
    """The README's second accuracy table (a non-default SpeechT5 + HiFi-GAN), 125 steps, device numerics: the
    end-to-end stages meet the policy's targets (``accuracy.DEVICE_PCC``); every stage stays above 0.99."""
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig

    from fx2ttnn.accuracy import DEVICE_PCC
    from fx2ttnn.tools.stages import stage_accuracy

    torch.manual_seed(0)
    model = SpeechT5ForTextToSpeech(SpeechT5Config(**NON_DEFAULT)).eval()
    torch.manual_seed(2)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**NON_DEFAULT_VOCODER)).eval()
    report = stage_accuracy(model, vocoder, dtype="bfloat16", precision=precision, numerics="device", steps=125)
    print(report.format())
    for stage, target in DEVICE_PCC[precision].items():
        assert report.pcc[stage] >= target, (stage, report.pcc[stage])
    assert min(report.pcc.values()) > 0.99, report.pcc
