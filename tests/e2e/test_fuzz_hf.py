"""Property-based fuzzing against HF: random small SpeechT5 / HiFi-GAN configurations, lowered and compared.

Each example draws a ``SpeechT5ForTextToSpeech`` configuration (attention heads and head dims — mostly not
multiples of 32 —, layers, FFN widths, reduction factor 1..3, mel bins, prenet / postnet layers, units and
kernel, speaker embedding dim, activation, layer-norm epsilon, text / speech positions, relative-position
range, vocabulary, init scale), a ``SpeechT5HifiGan`` (initial channels, upsample rates and kernels, resblock
kernels and dilations, leaky-ReLU slope, input normalization), seeded random weights with non-trivial
BatchNorm statistics, LayerNorm affines, positional-encoding scales and vocoder mean / scale, a batch of 1..3
utterances of 1..40 tokens, and the lowering options that must not change the output (``trace``,
``stop_check_interval``).  It lowers them with ``lower_model(..., dtype="float32", prenet_dropout=False,
backend="reference")``, runs ``generate_speech`` for the spectrogram and for the waveform on both sides (HF
eager in float32, its prenet dropout off), and checks: the output lengths exactly, the spectrogram and the
waveform against ``fx2ttnn/accuracy.py``'s thresholds (PCC; values under ``SMALL_NUMEL`` elements by max abs
error), and that no program needs a host fallback.

Only what HF itself cannot build or run is kept out of the strategy: odd hidden sizes (HF's
``SpeechT5ScaledPositionalEncoding`` fails to build), even postnet / resblock kernels (HF's "same" padding
changes the length and its residual adds fail), upsample kernels smaller than their rate (negative padding).

Deterministic lengths: ``maxlenratio`` (and ``minlenratio``) are chosen so that ``int(S * ratio / r)`` is a
drawn step count with half a step of slack (S the padded text length, r the reduction factor), and the stop
threshold is either out of reach (``STOP_UNREACHABLE``: a sum of r ≤ 3 sigmoids never gets there, so every
utterance decodes exactly maxlen steps) or taken from HF's own stop trajectory: a first run with the
threshold out of reach records every step's stop sum, and the threshold is the middle of a gap between two
consecutive recorded values that is at least ``STOP_MARGIN`` wide.  No recorded sum is then within
``STOP_MARGIN / 2`` of the threshold, far more than float32 rounding moves it, so HF and the lowering take
the same stop decision at every step (utterances of a batch stop at different steps); the lengths are
compared exactly (``return_output_lengths``).

CI runs ``CI_EXAMPLES`` derandomized examples (a fixed, reproducible set).  ``python -m pytest -m fuzz``
runs ``FX2TTNN_FUZZ_EXAMPLES`` (default 200) fresh random examples; hypothesis prints the falsifying example
of a failure and keeps it in ``.hypothesis/`` to replay it first next time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fx2ttnn import lower_model
from tests.utils import assert_matches_stage

CI_EXAMPLES = 6
FUZZ_EXAMPLES = int(os.environ.get("FX2TTNN_FUZZ_EXAMPLES", "200"))
STOP_UNREACHABLE = 10.0  # above r <= 3 stop probabilities summed
STOP_MARGIN = 1e-3
MAX_STEPS = 32  # KV cache of the lowering; every drawn maxlen (at most 24 steps) fits


@dataclass
class Case:
    model_kw: dict
    vocoder_kw: dict
    lengths: list[int]
    steps: int          # maxlen in decode steps
    min_steps: int      # minlen in decode steps (threshold mode only)
    stop: str           # "maxlen" (threshold out of reach) or "threshold" (from HF's stop trajectory)
    seed: int
    gap: float = 0.5    # which gap of the stop trajectory sets the threshold (fraction of the usable gaps)
    stop_check_interval: int = 1  # lowering options that must not change the output
    trace: bool = False


@st.composite
def cases(draw) -> Case:
    dec_heads = draw(st.integers(1, 4))
    # head dims: mostly not multiples of 32 (the ttnn decode ops' granule); 32 and 64 keep the fused path covered.
    head_dim = draw(st.one_of(st.integers(1, 40), st.sampled_from([32, 64])))
    head_dim += dec_heads * head_dim % 2  # HF's SpeechT5ScaledPositionalEncoding cannot be built for an odd hidden size
    hidden = dec_heads * head_dim
    enc_heads = draw(st.sampled_from([h for h in (1, 2, 3, 4) if hidden % h == 0]))
    r = draw(st.integers(1, 3))
    mel = draw(st.integers(4, 48))
    model_kw = dict(
        hidden_size=hidden, encoder_attention_heads=enc_heads, decoder_attention_heads=dec_heads,
        encoder_layers=draw(st.integers(1, 2)), decoder_layers=draw(st.integers(1, 2)),
        encoder_ffn_dim=draw(st.integers(4, 96)), decoder_ffn_dim=draw(st.integers(4, 96)),
        reduction_factor=r, num_mel_bins=mel,
        speech_decoder_prenet_layers=draw(st.integers(1, 3)), speech_decoder_prenet_units=draw(st.integers(4, 96)),
        speech_decoder_postnet_layers=draw(st.integers(1, 5)), speech_decoder_postnet_units=draw(st.integers(4, 64)),
        speech_decoder_postnet_kernel=draw(st.sampled_from([1, 3, 5])),  # odd: HF's "same" padding needs it
        speaker_embedding_dim=draw(st.integers(2, 96)), hidden_act=draw(st.sampled_from(["gelu", "relu"])),
        layer_norm_eps=draw(st.sampled_from([1e-5, 1e-6])),
        max_text_positions=draw(st.sampled_from([40, 64, 100, 128])),
        encoder_max_relative_position=draw(st.integers(1, 160)), max_speech_positions=draw(st.sampled_from([32, 600])),
        vocab_size=draw(st.integers(5, 120)), initializer_range=draw(st.sampled_from([0.02, 0.05, 0.1])),
    )
    n_up = draw(st.integers(1, 3))
    rates = draw(st.lists(st.integers(1, 4), min_size=n_up, max_size=n_up))
    kernels = [draw(st.integers(u, 2 * u + 2)) for u in rates]  # HF pads (k - u) // 2: k >= u
    n_res = draw(st.integers(1, 3))
    vocoder_kw = dict(
        model_in_dim=mel,
        upsample_initial_channel=draw(st.integers(2 ** n_up, 48)),  # halved per upsampler, at least 1 channel
        upsample_rates=rates, upsample_kernel_sizes=kernels,
        resblock_kernel_sizes=draw(st.lists(st.sampled_from([1, 3, 5, 7]), min_size=n_res, max_size=n_res)),
        resblock_dilation_sizes=[draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)) for _ in range(n_res)],
        leaky_relu_slope=draw(st.sampled_from([0.1, 0.2])), normalize_before=draw(st.booleans()),
    )
    batch = draw(st.integers(1, 3))
    lengths = draw(st.lists(st.integers(1, min(40, model_kw["max_text_positions"])), min_size=batch, max_size=batch))
    steps = draw(st.integers(1, 24))
    stop = draw(st.sampled_from(["maxlen", "threshold"]))
    min_steps = draw(st.integers(0, steps)) if stop == "threshold" else 0
    return Case(model_kw, vocoder_kw, lengths, steps, min_steps, stop, seed=draw(st.integers(0, 2 ** 16)),
                gap=draw(st.floats(0, 1)), stop_check_interval=draw(st.integers(1, 4)), trace=draw(st.booleans()))


def _build(case: Case):
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    from tests.conftest import tiny_config, tiny_vocoder_config

    torch.manual_seed(case.seed)
    model = SpeechT5ForTextToSpeech(tiny_config(**case.model_kw)).eval()
    vocoder = SpeechT5HifiGan(tiny_vocoder_config(**case.vocoder_kw)).eval()
    g = torch.Generator().manual_seed(case.seed)
    with torch.no_grad():  # what HF's init leaves at 0 / 1: make the folds, the affine terms and the scales count
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=g) * 0.2)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if isinstance(getattr(m, "alpha", None), torch.nn.Parameter):  # scaled positional encodings
                m.alpha.copy_(torch.rand((), generator=g) + 0.5)
        vocoder.mean.copy_(torch.randn(vocoder.mean.shape, generator=g) * 0.5)
        vocoder.scale.copy_(torch.rand(vocoder.scale.shape, generator=g) + 0.5)
    lengths = case.lengths
    ids = torch.full((len(lengths), max(lengths)), model.config.pad_token_id, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(4, model.config.vocab_size, (n,), generator=g)
    mask = (ids != model.config.pad_token_id).long()
    spk = torch.randn(len(lengths), model.config.speaker_embedding_dim, generator=g)
    return model, vocoder, ids, mask, spk


def _ratio(steps: int, seq: int, r: int) -> float:
    """A length ratio with int(seq * ratio / r) == steps, half a step from either rounding edge."""
    return (steps + 0.5) * r / seq


def _stop_sums(model, ids, mask, spk, maxlenratio: float) -> torch.Tensor:
    """HF's summed stop probabilities of every step, [steps, batch], from a run that never stops early."""
    sums = []
    hook = model.speech_decoder_postnet.prob_out.register_forward_hook(
        lambda m, i, o: sums.append(torch.sigmoid(o).sum(-1).flatten()))
    try:
        with torch.no_grad():
            model.generate_speech(ids, spk, attention_mask=mask, threshold=STOP_UNREACHABLE, maxlenratio=maxlenratio)
    finally:
        hook.remove()
    return torch.stack(sums)


def _threshold(sums: torch.Tensor, where: float) -> float:
    """The middle of a gap of at least STOP_MARGIN between consecutive stop sums (``where`` picks which)."""
    values = sorted(set(sums.flatten().tolist()))
    gaps = [(a + b) / 2 for a, b in zip(values, values[1:]) if b - a >= STOP_MARGIN]
    if not gaps:  # every sum within STOP_MARGIN of another: a threshold above them all (maxlen decides)
        return values[-1] + STOP_MARGIN
    return gaps[min(int(where * len(gaps)), len(gaps) - 1)]


def check_case(case: Case) -> None:
    """Lower the drawn models, generate on both sides, compare lengths and PCC (raises AssertionError)."""
    model, vocoder, ids, mask, spk = _build(case)
    r, seq = model.config.reduction_factor, ids.shape[1]
    kw = dict(attention_mask=mask, maxlenratio=_ratio(case.steps, seq, r), return_output_lengths=True)
    if case.stop == "threshold":
        kw["threshold"] = _threshold(_stop_sums(model, ids, mask, spk, kw["maxlenratio"]), case.gap)
        kw["minlenratio"] = _ratio(case.min_steps, seq, r) if case.min_steps else 0.0
    else:
        kw["threshold"] = STOP_UNREACHABLE
    with torch.no_grad():
        ref_spec, ref_len = model.generate_speech(ids, spk, **kw)
        ref_wave, ref_wlen = model.generate_speech(ids, spk, vocoder=vocoder, **kw)
    tts = lower_model(model, vocoder=vocoder, backend="reference", dtype="float32", max_steps=MAX_STEPS,
                      prenet_dropout=False, programs=(),  # variants are lowered as the inputs need them
                      stop_check_interval=case.stop_check_interval, trace=case.trace)
    spec, lens = tts.generate_speech(ids, spk, vocoder=False, **kw)
    wave, wlens = tts.generate_speech(ids, spk, **kw)
    assert list(lens) == list(ref_len), f"spectrogram lengths {list(lens)} != HF {list(ref_len)}"
    assert list(wlens) == list(ref_wlen), f"waveform lengths {list(wlens)} != HF {list(ref_wlen)}"
    assert_matches_stage(ref_spec, spec, "spectrogram", "float32", "spectrogram")
    assert_matches_stage(ref_wave, wave, "waveform", "float32", "waveform")
    fallbacks = [f"{p.name}{list(p.key)}: {f}" for p in tts.report().programs for f in p.host_fallbacks]
    assert not fallbacks, "host fallbacks: " + "; ".join(fallbacks)


# HF's prenet dropout is switched off by a monkeypatch that every example shares (it is not per example);
# hypothesis warns about function-scoped fixtures for exactly that reason.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(max_examples=CI_EXAMPLES, derandomize=True, **_COMMON)
@given(case=cases())
def test_lowered_matches_hf_on_random_configurations(case, no_prenet_dropout):
    check_case(case)


@pytest.mark.fuzz
@settings(max_examples=FUZZ_EXAMPLES, **_COMMON)
@given(case=cases())
def test_fuzz_lowered_matches_hf(case, no_prenet_dropout):
    check_case(case)
