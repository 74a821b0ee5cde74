"""End-to-end on tiny SpeechT5 / HiFi-GAN configs (fast suite): lowered generate_speech vs HF generate_speech."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fx2ttnn import BackendUnavailableError, GenerationError, UnsupportedModelError, lower_model
from fx2ttnn.runtime.generate import dropout_tables
from tests.pcc_thresholds import PCC
from tests.utils import assert_pcc

SPK = 64  # tiny_config speaker_embedding_dim


@pytest.fixture(scope="module")
def lowered(tiny_models):
    model, vocoder = tiny_models
    return {dt: lower_model(model, vocoder=vocoder, backend="reference", dtype=dt, max_steps=128, prenet_dropout=False)
            for dt in ("float32", "bfloat16")}


def _inputs(seed: int, lengths: list[int], pad_id: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), pad_id, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, 40, (n,), generator=g)
    return ids, torch.randn(len(lengths), SPK, generator=g)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_spectrogram_and_waveform_match_hf(tiny_models, lowered, no_prenet_dropout, dtype):
    model, vocoder = tiny_models
    ids, spk = _inputs(0, [11])
    kw = dict(threshold=10.0, maxlenratio=8.0)  # threshold above reach: runs maxlen = 44 steps
    with torch.no_grad():
        ref_spec = model.generate_speech(ids, spk, **kw)
        ref_wave = model.generate_speech(ids, spk, vocoder=vocoder, **kw)
    spec = lowered[dtype].generate_speech(ids, spk, vocoder=False, **kw)
    wave = lowered[dtype].generate_speech(ids, spk, **kw)
    assert spec.shape == ref_spec.shape  # same number of frames
    assert_pcc(ref_spec, spec, PCC["spectrogram"][dtype], f"tiny spectrogram {dtype}")
    assert_pcc(ref_wave, wave, PCC["waveform"][dtype], f"tiny waveform {dtype}")


def _stop_threshold(model, ids, spk, maxlen_steps: int) -> float:
    """A threshold HF crosses at different steps for the two utterances (found from HF's own stop probabilities)."""
    sums = []
    hook = model.speech_decoder_postnet.prob_out.register_forward_hook(
        lambda m, i, o: sums.append(torch.sigmoid(o).sum(-1).flatten()))
    with torch.no_grad():
        model.generate_speech(ids, spk, threshold=1e9, maxlenratio=maxlen_steps * 2 / ids.shape[1] + 1e-6)
    hook.remove()
    traj = torch.stack(sums)  # [steps, batch]
    for t in sorted(set(traj.flatten().tolist()), reverse=True):
        first = [int((traj[:, b] >= t).nonzero()[0]) if (traj[:, b] >= t).any() else None for b in range(2)]
        if None not in first and first[0] != first[1] and min(first) >= 2:
            return t
    pytest.skip("no threshold separates the two utterances' stop steps for this seed")


def test_batch_of_two_with_different_lengths_and_stop_steps(tiny_models, lowered, no_prenet_dropout):
    model, vocoder = tiny_models
    ids, spk = _inputs(3, [13, 7])
    mask = (ids != model.config.pad_token_id).int()
    threshold = _stop_threshold(model, ids, spk, 40)
    kw = dict(attention_mask=mask, threshold=threshold, maxlenratio=40 * 2 / 13, return_output_lengths=True)
    with torch.no_grad():
        ref_spec, ref_len = model.generate_speech(ids, spk, **kw)
        ref_wave, ref_wlen = model.generate_speech(ids, spk, vocoder=vocoder, **kw)
    spec, lens = lowered["float32"].generate_speech(ids, spk, vocoder=False, **kw)
    wave, wlens = lowered["float32"].generate_speech(ids, spk, **kw)
    assert lens == ref_len and ref_len[0] != ref_len[1]  # identical, different stop steps
    assert wlens == ref_wlen
    assert_pcc(ref_spec, spec, PCC["spectrogram"]["float32"], "batch spectrogram")
    assert_pcc(ref_wave, wave, PCC["waveform"]["float32"], "batch waveform")
    # without lengths: HF pads the batch with zeros
    with torch.no_grad():
        ref = model.generate_speech(ids, spk, attention_mask=mask, threshold=threshold, maxlenratio=40 * 2 / 13)
    out = lowered["float32"].generate_speech(ids, spk, vocoder=False, attention_mask=mask, threshold=threshold,
                                             maxlenratio=40 * 2 / 13)
    assert_pcc(ref, out, PCC["spectrogram"]["float32"], "batch padded spectrogram")
    assert torch.count_nonzero(out[1, ref_len[1]:]) == 0


def test_stop_and_minlen_behaviour_match_hf(tiny_models, lowered, no_prenet_dropout):
    model, _ = tiny_models
    ids, spk = _inputs(5, [9])
    for kw in (dict(threshold=0.5), dict(threshold=0.5, minlenratio=2.0), dict(threshold=1.2, maxlenratio=3.0)):
        with torch.no_grad():
            ref = model.generate_speech(ids, spk, **kw)
        out = lowered["float32"].generate_speech(ids, spk, vocoder=False, **kw)
        assert out.shape == ref.shape, kw
        assert_pcc(ref, out, PCC["spectrogram"]["float32"], f"stop {kw}")


def test_one_stop_read_per_step(lowered, no_prenet_dropout):
    ids, spk = _inputs(1, [8])
    tts = lowered["float32"]
    tts.generate_speech(ids, spk, vocoder=False, threshold=10.0, maxlenratio=6.0)
    g = tts.last_generation
    assert g.steps == 24 and g.transfers_per_step <= 1.0
    step = tts.report().program("decoder_step")
    assert step.transfers_per_call == 0 and step.fallback_count == 0


def test_prenet_dropout_matches_hf_given_the_same_masks(tiny_models, monkeypatch):
    """With dropout on, HF fed our per-step masks produces our output: same place, same scaling."""
    from transformers.models.speecht5 import modeling_speecht5 as hf

    model, _ = tiny_models
    tts = lower_model(model, backend="reference", dtype="float32", max_steps=64, prenet_dropout=True)
    ids, spk = _inputs(2, [10])
    tables = dropout_tables(tts, seed=7)
    calls = {"n": 0}

    def consistent_dropout(self, x, p):  # HF's law, with our mask row for the newest frame
        layer = calls["n"] % len(tables)
        calls["n"] += 1
        mask = torch.zeros(x.shape[1:])
        mask[-1] = tables[layer][x.shape[1] - 1] * (1 - p)
        return torch.where(mask.unsqueeze(0).repeat(x.size(0), 1, 1) == 1, x, 0) * 1 / (1 - p)

    monkeypatch.setattr(hf.SpeechT5SpeechDecoderPrenet, "_consistent_dropout", consistent_dropout)
    with torch.no_grad():
        ref = model.generate_speech(ids, spk, threshold=10.0, maxlenratio=5.0)
    out = tts.generate_speech(ids, spk, threshold=10.0, maxlenratio=5.0, seed=7)
    assert_pcc(ref, out, PCC["spectrogram"]["float32"], "dropout with shared masks")
    # seeded: reproducible, and a different seed gives a different utterance
    again = tts.generate_speech(ids, spk, threshold=10.0, maxlenratio=5.0, seed=7)
    other = tts.generate_speech(ids, spk, threshold=10.0, maxlenratio=5.0, seed=8)
    assert torch.equal(out, again) and not torch.equal(out, other)


def test_prenet_dropout_law_matches_hf(tiny_models):
    """Kept fraction and scale of the masks equal HF's _consistent_dropout (statistically)."""
    model, _ = tiny_models
    p = model.config.speech_decoder_prenet_dropout
    prenet = model.speecht5.decoder.prenet
    torch.manual_seed(0)
    hf_out = prenet._consistent_dropout(torch.ones(1, 4096, 64), p)
    tts = lower_model(model, backend="reference", dtype="float32", max_steps=64, prenet_dropout=True)
    ours = torch.cat(dropout_tables(tts, seed=0))
    n_hf, n_ours = hf_out.numel(), ours.numel()
    for sample, n in ((hf_out, n_hf), (ours, n_ours)):
        kept = (sample != 0).float().mean().item()
        assert abs(kept - p) < 4 * (p * (1 - p) / n) ** 0.5  # 4 sigma
        assert torch.allclose(sample[sample != 0], torch.tensor(1 / (1 - p)))


def test_max_steps_truncates_with_a_warning(lowered, no_prenet_dropout):
    ids, spk = _inputs(4, [12])
    with pytest.warns(RuntimeWarning, match="max_steps=128"):
        out = lowered["float32"].generate_speech(ids, spk, vocoder=False, threshold=10.0, maxlenratio=30.0)
    assert out.shape[0] == 128 * 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(speaker_embeddings=None), "speaker_embeddings must be given"),
    (dict(speaker_embeddings=torch.randn(2, SPK)), r"must be a float tensor \[1, 64\], got a float32 tensor of shape \[2, 64\]"),
    (dict(speaker_embeddings=np.zeros((1, SPK), np.float32)), r"got a numpy.ndarray of shape \[1, 64\] .*torch.from_numpy"),
    (dict(speaker_embeddings=torch.full((1, SPK), float("nan"))), "64 NaN or infinite"),
    (dict(speaker_embeddings=torch.tensor([[float("inf")] + [0.0] * (SPK - 1)])), "1 NaN or infinite"),
    (dict(speaker_embeddings=torch.ones(1, SPK, dtype=torch.long)), "got a int64 tensor"),
    (dict(input_ids=torch.zeros(1, 0, dtype=torch.long)), "empty"),
    (dict(input_ids=torch.randn(1, 5)), r"integer \(torch.long\) tensor .*got a float32 tensor of shape \[1, 5\]"),
    (dict(input_ids=[[5, 6, 7]]), "got a list"),
    (dict(attention_mask=torch.full((1, 6), 2)), "only 0 .* and 1"),
    (dict(maxlenratio=float("inf")), "maxlenratio must be a finite number > 0, got inf"),
    (dict(maxlenratio=float("nan")), "maxlenratio must be a finite number > 0, got nan"),
    (dict(maxlenratio=0.0), "maxlenratio must be a finite number > 0, got 0.0"),
    (dict(minlenratio=float("inf")), "minlenratio must be a finite number >= 0, got inf"),
    (dict(minlenratio=-1.0), "minlenratio must be"),
    (dict(threshold=float("nan")), "threshold must be a finite number >= 0, got nan"),
    (dict(threshold=-0.5), "threshold must be a finite number >= 0, got -0.5"),
    (dict(threshold="0.5"), r"threshold must be a finite number >= 0, got '0.5' \(str\)"),
    (dict(seed=1.5), r"seed must be an integer >= 0 and <= \d+, got 1.5 \(float\)"),
    (dict(seed=-1), "seed must be an integer"),
    (dict(stop_check_interval=0), "stop_check_interval must be an integer >= 1, got 0"),
    (dict(stop_check_interval=2.0), "stop_check_interval must be an integer"),
    (dict(return_output_lengths="yes"), "return_output_lengths must be True or False"),
    (dict(input_ids=torch.full((1, 5), 10_000)), "token ids in"),
    (dict(input_ids=torch.full((1, 129), 5)), "exceeds"),
    (dict(attention_mask=torch.ones(1, 3)), "attention_mask must be"),
    (dict(vocoder="hifigan"), "vocoder must be"),
])
def test_generate_speech_rejects_bad_input(lowered, kwargs, match):
    args = dict(input_ids=torch.full((1, 6), 5), speaker_embeddings=torch.randn(1, SPK))
    args.update(kwargs)
    with pytest.raises(GenerationError, match=match):
        lowered["float32"].generate_speech(args.pop("input_ids"), args.pop("speaker_embeddings"), **args)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(dtype="float16"), UnsupportedModelError, "dtype must be one of 'bfloat16', 'float32', got 'float16'"),
    (dict(max_steps=100), UnsupportedModelError, "multiple of 32, got 100"),
    (dict(max_steps=64.5), UnsupportedModelError, r"max_steps must be .*, got 64.5 \(float\)"),
    (dict(max_steps=True), UnsupportedModelError, "max_steps must be an integer"),
    (dict(programs="encoder"), UnsupportedModelError, r"programs must be a list .*\(a string; use \['encoder'\]\)"),
    (dict(programs=["encoder", "decoder"]), UnsupportedModelError, "unknown name.*'decoder'"),
    (dict(print_after="canonicalize"), UnsupportedModelError, "print_after must be a list"),
    (dict(print_after=["no_such_pass"]), UnsupportedModelError, "print_after has unknown name.*'no_such_pass'"),
    (dict(stop_check_interval=0), UnsupportedModelError, "stop_check_interval must be an integer >= 1, got 0"),
    (dict(trace="yes"), UnsupportedModelError, "trace must be True or False"),
    (dict(prenet_dropout=None), UnsupportedModelError, "prenet_dropout must be True or False"),
    (dict(backend="gpu"), BackendUnavailableError, "backend must be one of 'auto', 'reference', 'ttnn', got 'gpu'"),
    (dict(backend="reference", device="foo"), BackendUnavailableError, "device must be a torch device .*got 'foo'"),
    (dict(backend="reference", device="meta"), BackendUnavailableError, "'meta' device cannot run"),
    (dict(backend="reference", device=3), BackendUnavailableError, r"device must be a torch device .*\(int\)"),
    (dict(backend="ttnn", device="cpu"), BackendUnavailableError, "backend='ttnn' always uses"),
])
def test_lower_model_rejects_bad_arguments(tiny_models, kwargs, error, match):
    model, vocoder = tiny_models
    with pytest.raises(error, match=match):
        lower_model(model, vocoder=vocoder, **kwargs)


def test_lower_model_rejects_bad_models(tiny_models):
    model, vocoder = tiny_models
    with pytest.raises(UnsupportedModelError, match="SpeechT5ForTextToSpeech"):
        lower_model(vocoder)
    with pytest.raises(UnsupportedModelError, match="SpeechT5HifiGan"):
        lower_model(model, vocoder=model)


def test_non_default_configuration(no_prenet_dropout):
    """Reduction factor 3, 64 mel bins, 3 heads of 32, one decoder layer, two upsamplers of other rates."""
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    from tests.conftest import tiny_config, tiny_vocoder_config

    torch.manual_seed(1)
    model = SpeechT5ForTextToSpeech(tiny_config(reduction_factor=3, num_mel_bins=64, hidden_size=96,
                                                encoder_attention_heads=3, decoder_attention_heads=3,
                                                decoder_layers=1, encoder_layers=3)).eval()
    vocoder = SpeechT5HifiGan(tiny_vocoder_config(model_in_dim=64, upsample_rates=[2, 3],
                                                  upsample_kernel_sizes=[4, 7])).eval()
    tts = lower_model(model, vocoder=vocoder, backend="reference", dtype="float32", max_steps=64,
                      prenet_dropout=False)
    ids, spk = _inputs(9, [10])
    with torch.no_grad():
        ref = model.generate_speech(ids, spk, threshold=10.0, maxlenratio=3.0, vocoder=vocoder)
    out = tts.generate_speech(ids, spk, threshold=10.0, maxlenratio=3.0)
    assert out.shape == ref.shape
    assert_pcc(ref, out, PCC["waveform"]["float32"], "non-default config waveform")


@pytest.mark.parametrize("interval", [3, 8])
def test_stop_check_interval_changes_only_how_often_the_host_reads(tiny_models, lowered, no_prenet_dropout, interval):
    model, _ = tiny_models
    ids, spk = _inputs(3, [13, 7])
    mask = (ids != model.config.pad_token_id).int()
    threshold = _stop_threshold(model, ids, spk, 40)
    kw = dict(attention_mask=mask, threshold=threshold, maxlenratio=40 * 2 / 13, return_output_lengths=True)
    tts = lowered["float32"]
    every, every_len = tts.generate_speech(ids, spk, vocoder=False, stop_check_interval=1, **kw)
    steps = tts.last_generation.steps
    out, lens = tts.generate_speech(ids, spk, vocoder=False, stop_check_interval=interval, **kw)
    g = tts.last_generation
    assert lens == every_len and torch.equal(out, every)
    assert g.steps == steps and g.steps_discarded < interval
    assert g.transfers_per_step <= 1 / interval + 1 / (g.steps + g.steps_discarded)


def test_traced_decode_step_matches_the_bound_step(tiny_models):
    """trace=True (the real device's default) replays the captured step: the same output bit for bit, across
    utterances of different inputs (fixed buffers refreshed, dropout masks included), one trace per variant."""
    model, _ = tiny_models
    kw = dict(backend="reference", dtype="bfloat16", max_steps=128, prenet_dropout=True)
    bound = lower_model(model, **kw)
    traced = lower_model(model, trace=True, **kw)
    assert traced.trace and not bound.trace
    for seed, lengths in [(1, [11]), (2, [7]), (3, [13, 9])]:
        ids, spk = _inputs(seed, lengths)
        gen = dict(threshold=10.0, maxlenratio=3.0, seed=seed, return_output_lengths=True)
        want, want_len = bound.generate_speech(ids, spk, **gen)
        got, got_len = traced.generate_speech(ids, spk, **gen)
        assert got_len == want_len and torch.equal(got, want)
    device = traced.backend.device
    assert sorted(traced._traces) == [(1, 32), (2, 32)] and len(device.traces) == 2
    traced.release_traces()
    assert not device.traces


def test_trace_capture_rejects_host_work_inside_the_step(tiny_models):
    """A step that reads to the host mid-step cannot be captured: the reference raises as the device would."""
    from fx2ttnn.errors import TTNNContractError
    from fx2ttnn.runtime.trace import TracedStep

    model, _ = tiny_models
    tts = lower_model(model, backend="reference", dtype="float32", max_steps=32, prenet_dropout=False,
                      programs=["decoder_step"], trace=True)
    ttnn = tts.backend.ttnn
    step = tts.variant("decoder_step", (1, 32)).bound
    real_run = step.run_checked
    step._run_checked = lambda *a: (ttnn.to_torch(a[0]), real_run(*a))[1]
    traced = TracedStep(ttnn, tts.backend.device, step, {})
    env = {n: ttnn.allocate_tensor_on_device(ttnn.Shape(list(s.shape)), getattr(ttnn, s.dtype),
                                             getattr(ttnn, f"{s.layout}_LAYOUT"), tts.backend.device)
           for n, s in zip(step.input_names, step.input_specs)}
    with pytest.raises(TTNNContractError, match="host-synchronizing work is not supported while a trace capture"):
        traced.start(env)
    assert not ttnn.is_trace_capture_active(tts.backend.device)


def test_host_weights_are_released_after_upload_unless_kept(tiny_models, no_prenet_dropout, tmp_path):
    """lower_model frees the host copies of uploaded weights (the graphs keep meta tensors); the output is the
    same; tools that re-bind or export refuse such a lowering with a clear error."""
    from fx2ttnn.tools.export import ExportError, export_variant

    model, vocoder = tiny_models
    kw = dict(backend="reference", dtype="float32", max_steps=32, prenet_dropout=False)
    kept = lower_model(model, vocoder=vocoder, keep_host_weights=True, **kw)
    freed = lower_model(model, vocoder=vocoder, **kw)
    assert kept.host_bytes_released == 0 and freed.host_bytes_released > 0
    gm = freed.variant("decoder_step", (1, 32)).lowered.graph_module
    consts = [t for n, t in gm.named_buffers()] + [getattr(gm, n.target) for n in gm.graph.nodes
                                                    if n.op == "get_attr" and "." not in n.target]
    assert consts and any(t.device.type == "meta" for t in consts if isinstance(t, torch.Tensor))
    ids, spk = _inputs(4, [9])
    assert torch.equal(kept.generate_speech(ids, spk, threshold=10.0, maxlenratio=2.0),
                       freed.generate_speech(ids, spk, threshold=10.0, maxlenratio=2.0))
    with pytest.raises(ExportError, match="keep_host_weights=True"):
        export_variant(freed, freed.variant("postnet", freed.default_key("postnet")), tmp_path / "out",
                       source="test", seed=0)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing half-written


def test_text_bucket_variants_share_device_weights(tiny_models, no_prenet_dropout):
    """A longer input lowers the 64-token variants of the encoder and the decode step; they reuse the device
    weights the 32-token variants uploaded, and generate exactly what a lowering that never had them does."""
    model, _ = tiny_models
    kw = dict(backend="reference", dtype="float32", max_steps=64, prenet_dropout=False)
    tts = lower_model(model, **kw)
    ids, spk = _inputs(5, [40])  # bucket 64
    gen = dict(threshold=10.0, maxlenratio=1.0, vocoder=False)
    spec = tts.generate_speech(ids, spk, **gen)
    alone = lower_model(model, programs=(), **kw)  # nothing lowered before the 64-token variants
    assert torch.equal(spec, alone.generate_speech(ids, spk, **gen))
    with torch.no_grad():
        ref = model.generate_speech(ids, spk, threshold=10.0, maxlenratio=1.0)
    assert_pcc(ref, spec, PCC["spectrogram"]["float32"], "tiny spectrogram, 64-token bucket, shared weights")

    rep, rep_alone = tts.report(), alone.report()
    for name in ("encoder", "decoder_step"):  # (random init: equal LayerNorm / bias tensors are shared anyway)
        assert rep.program(name, (1, 64)).constants_reused > rep_alone.program(name, (1, 64)).constants_reused
    extra = rep.device_constants_shared_bytes - rep_alone.device_constants_shared_bytes
    assert extra >= rep.program("decoder_step", (1, 64)).weight_bytes  # the decoder's weights, at least
    assert "device constants shared between variants" in str(rep)
