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
    enc = tts.variant("encoder", (1, bucket))
    env = dict(zip(enc.lowered.signature.outputs, enc.bound(ids_p, (ids_p != cfg.pad_token_id).float(), spk)))
    step = tts.variant("decoder_step", (1, bucket))
    specs = step.lowered.input_specs
    for name in specs:
        if name.startswith(("self_", "position", "frame")):
            env[name] = upload(ttnn, device, specs[name],
                               torch.zeros(specs[name].shape, dtype=torch.int32 if name == "position" else None))
    env.update(zip(step.prologue.output_names, step.prologue(*[env[n] for n in step.prologue.input_names])))
    spectrum, prob, _ = step.bound(*[env[n] for n in step.bound.input_names])
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


def test_attention_is_fused_in_every_layer(full_models, lowered):
    """12 encoder + 6 self + 6 cross SpeechT5Attention sites matched; none reaches the runtime as matmul/softmax."""
    from fx2ttnn.lowering import op_table as ops
    from fx2ttnn.lowering.ir import HostOp

    dtype, tts = lowered
    cfg = full_models[0].config
    enc, step = tts.programs["encoder"], tts.programs["decoder_step"]
    assert enc.graph_module.meta["attention"]["matched"] == {"encoder_self": cfg.encoder_layers}
    assert step.graph_module.meta["attention"]["matched"] == {"decoder_self": cfg.decoder_layers,
                                                               "decoder_cross": cfg.decoder_layers}
    assert not enc.graph_module.meta["attention"]["unmatched"] and not step.graph_module.meta["attention"]["unmatched"]
    for program in (enc, step):
        targets = [n.target for n in program.nodes()]
        assert ops.softmax not in targets and not any(isinstance(t, HostOp) for t in targets)
    # the only matmul left in the encoder is q @ P of the relative-position bias (folded into SDPA's attn_mask)
    assert sum(n.target is ops.matmul for n in enc.nodes()) == cfg.encoder_layers
    assert not any(n.target is ops.matmul for n in step.nodes())


def test_decode_step_dispatch_count(full_models, lowered):
    """Per decoder layer: 10 self-attention ops (fused QKV linear, sharded reshape, head split, 2 cache updates,
    SDPA-decode, head slice + merge, out_proj, residual layer_norm), 7 cross-attention ops (q linear, reshape,
    SDPA-decode, slice + merge, out_proj, residual layer_norm), 3 FFN ops; outside the layers: 5 prenet ops
    (2 linears, positional row gather, final linear with it as bias, speaker linear with the hoisted speaker
    projection as bias), feat_out, prob_out (sigmoid fused), the next-frame slice and the position increment."""
    from collections import Counter

    from fx2ttnn.lowering.ir import OpKind, source_module

    dtype, tts = lowered
    cfg = full_models[0].config
    rep = tts.report().program("decoder_step", (1, tts.text_buckets[0]))
    assert rep.transfers_per_call == 0 and rep.fallback_count == 0
    per_layer = Counter()
    step = tts.programs["decoder_step"]
    for n in step.nodes():
        if getattr(n.target, "kind", None) in (OpKind.COMPUTE, OpKind.DATA_MOVEMENT) and n.target.name != "from_torch":
            mod = source_module(n)
            layer = mod.split("layers.")[1].split(".")[0] if "wrapped_decoder.layers." in mod else "outside"
            per_layer[layer] += 1
    print(f"decode step: {rep.ops_per_call} TTNN ops per step; by layer {dict(per_layer)}")
    assert all(per_layer[str(i)] == 20 for i in range(cfg.decoder_layers))
    assert rep.ops_per_call == 20 * cfg.decoder_layers + 9
    assert tts.variant("decoder_step", (1, tts.text_buckets[0])).prologue is not None
