"""Full-size SpeechT5Config() / SpeechT5HifiGanConfig() with seeded random weights: PCC per stage vs HF eager.

Stages: encoder hidden states, one decoder step, the spectrogram after >= 120 decode steps, the waveform.
HF's prenet dropout is patched off on both sides (``no_prenet_dropout`` / ``prenet_dropout=False``).
"""
from __future__ import annotations

import pytest
import torch

from fx2ttnn import lower_model
from tests.pcc_thresholds import PCC
from tests.utils import assert_pcc

STEPS = 125
TEXT = 24


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def lowered(request, full_models):
    model, vocoder = full_models
    tts = lower_model(model, vocoder=vocoder, backend="reference", dtype=request.param, max_steps=256,
                      prenet_dropout=False)
    return request.param, tts


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(11)
    return torch.randint(4, 80, (1, TEXT), generator=g), torch.randn(1, 512, generator=g)


def test_encoder_stage(full_models, lowered, inputs):
    dtype, tts = lowered
    model, _ = full_models
    ids, spk = inputs
    ttnn = tts.backend.ttnn
    bucket = tts.text_buckets[0]
    enc = tts.variant("encoder", (1, bucket)).bound
    ids_p = torch.nn.functional.pad(ids, (0, bucket - TEXT), value=model.config.pad_token_id)
    mask = (ids_p != model.config.pad_token_id).float()
    hidden = ttnn.to_torch(enc(ids_p, mask, spk)[0]).float()[:, :TEXT]
    with torch.no_grad():
        ref = model.speecht5.encoder(input_values=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert_pcc(ref, hidden, PCC["encoder"][dtype], f"encoder {dtype}")


def test_decoder_step_stage(full_models, lowered, inputs, no_prenet_dropout):
    """One decode step program (zero frame, position 0) vs HF's first step: mel frames and stop probabilities."""
    from fx2ttnn.runtime.generate import upload

    dtype, tts = lowered
    model, _ = full_models
    ids, spk = inputs
    cfg = model.config
    ttnn, device = tts.backend.ttnn, tts.backend.device
    got = {}
    hooks = [model.speech_decoder_postnet.feat_out.register_forward_hook(lambda m, i, o: got.setdefault("spec", o)),
             model.speech_decoder_postnet.prob_out.register_forward_hook(lambda m, i, o: got.setdefault("prob", o))]
    with torch.no_grad():
        model.generate_speech(ids, spk, threshold=10.0, maxlenratio=cfg.reduction_factor / TEXT + 1e-6)
    for h in hooks:
        h.remove()

    bucket = tts.text_buckets[0]
    ids_p = torch.nn.functional.pad(ids, (0, bucket - TEXT), value=cfg.pad_token_id)
    _, cross_mask, speaker, *cross = tts.variant("encoder", (1, bucket)).bound(
        ids_p, (ids_p != cfg.pad_token_id).float(), spk)
    step = tts.variant("decoder_step", (1, bucket))
    specs = step.lowered.input_specs
    zeros = {n: upload(ttnn, device, specs[n], torch.zeros(specs[n].shape, dtype=torch.int32 if n == "position" else None))
             for n in specs if n.startswith(("self_", "position", "frame"))}
    n = cfg.decoder_layers
    spectrum, prob, _ = step.bound(zeros["frame"], zeros["position"], speaker, cross_mask,
                                   *[zeros[f"self_k_{i}"] for i in range(n)], *[zeros[f"self_v_{i}"] for i in range(n)],
                                   *cross[0::2], *cross[1::2])
    spectrum = ttnn.to_torch(spectrum).float().reshape(1, -1)
    prob = ttnn.to_torch(prob).float()
    assert_pcc(got["spec"], spectrum, PCC["decoder_step"][dtype], f"decoder step mel frames {dtype}")
    assert torch.allclose(torch.sigmoid(got["prob"]), prob, atol=1e-5 if dtype == "float32" else 2e-2)


@pytest.fixture(scope="module")
def hf_reference(full_models, inputs):
    """HF's spectrogram after STEPS steps and its waveform (HF's vocoder on it, as generate_speech does)."""
    from transformers.models.speecht5 import modeling_speecht5 as hf

    model, vocoder = full_models
    ids, spk = inputs
    mp = pytest.MonkeyPatch()
    mp.setattr(hf.SpeechT5SpeechDecoderPrenet, "_consistent_dropout", lambda self, x, p: x)
    with torch.no_grad():
        spec = model.generate_speech(ids, spk, threshold=10.0, maxlenratio=STEPS * 2 / TEXT + 1e-6)
        wave = vocoder(spec)
    mp.undo()
    return spec, wave


def test_spectrogram_and_waveform_120_steps(lowered, inputs, hf_reference):
    dtype, tts = lowered
    ids, spk = inputs
    ref_spec, ref_wave = hf_reference
    kw = dict(threshold=10.0, maxlenratio=STEPS * 2 / TEXT + 1e-6)
    spec = tts.generate_speech(ids, spk, vocoder=False, **kw)
    assert tts.last_generation.steps == STEPS >= 120
    assert spec.shape == ref_spec.shape
    assert_pcc(ref_spec, spec, PCC["spectrogram"][dtype], f"spectrogram {STEPS} steps {dtype}")
    wave = tts.generate_speech(ids, spk, **kw)
    assert wave.shape == ref_wave.shape
    assert_pcc(ref_wave, wave, PCC["waveform"][dtype], f"waveform {dtype}")
