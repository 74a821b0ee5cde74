"""Postnet and HiFi-GAN vocoder programs on a 200-frame spectrogram: all on device, PCC vs HF eager.

Acceptance of the conv path: the lowered ``postnet`` and ``vocoder`` programs hold no host fallback and no batch
norm (folded into the convs), every HF conv became a ``ttnn.conv2d`` / ``ttnn.conv_transpose2d``, and their outputs
match HF's ``speech_decoder_postnet`` / ``SpeechT5HifiGan`` within ``PCC["postnet"]`` / ``PCC["waveform"]``, for the
default configs and for a HiFi-GAN of other rates, kernels and dilations.  The programs run as
``runtime/generate.py`` runs them: the spectrogram padded to its frame bucket, with frame / valid masks.

The postnet's batch norms get non-trivial running statistics and affine parameters (HF initialises them to the
identity, which a wrong fold would not show); the non-default vocoder gets a non-trivial ``normalize_before``.
"""
from __future__ import annotations

import copy
import operator

import pytest
import torch

from fx2ttnn import lower_model
from fx2ttnn.lowering import speecht5 as s5
from fx2ttnn.lowering.ir import HostOp, TTNNOp, spec_of
from fx2ttnn.runtime.generate import upload
from tests.pcc_thresholds import PCC
from tests.utils import assert_pcc

FRAMES = 200  # padded to frame bucket 224
DTYPES = ("float32", "bfloat16")
# other upsampling rates and kernels (kernel - rate odd: each upsampler adds one sample), fewer and shorter resblocks
NON_DEFAULT_VOCODER = dict(upsample_initial_channel=128, upsample_rates=[5, 4, 3], upsample_kernel_sizes=[10, 8, 7],
                           resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 2], [2, 6]])


def _lower(model, vocoder, dtype):
    """Only the postnet and vocoder programs, at the bucket of FRAMES (the default 64-frame ones are not needed)."""
    tts = lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype, max_steps=32, prenet_dropout=False,
                      programs=())
    for name in ("postnet", "vocoder"):
        tts.variant(name, (1, s5.frame_bucket(FRAMES)))
    return tts


def run_postnet(tts, spectrogram: torch.Tensor) -> torch.Tensor:
    """The lowered postnet on ``[B, frames, mel]`` (host), as generate.py runs it: bucket padding, frame mask."""
    ttnn, device = tts.backend.ttnn, tts.backend.device
    bsz, frames, _ = spectrogram.shape
    fb = s5.frame_bucket(frames)
    post = tts.variant("postnet", (bsz, fb))
    spec = upload(ttnn, device, post.lowered.input_specs["spectrogram"],
                  torch.nn.functional.pad(spectrogram, (0, 0, 0, fb - frames)))
    frame_mask = (torch.arange(fb) < frames).float().repeat(bsz, 1)
    return ttnn.to_torch(post.bound(spec, frame_mask)[0]).float()[:, :frames]


def run_vocoder(tts, spectrogram: torch.Tensor) -> torch.Tensor:
    """The lowered vocoder on ``[B, frames, mel]`` (host): bucket padding, a valid mask per resolution."""
    ttnn, device = tts.backend.ttnn, tts.backend.device
    bsz, frames, _ = spectrogram.shape
    fb = s5.frame_bucket(frames)
    geo = s5.VocoderGeometry.of(tts.vocoder)
    padded, valid = geo.lengths(fb), geo.lengths(frames)
    masks = [(torch.arange(p) < v).float().view(1, 1, p) for p, v in zip(padded, valid)]
    voc = tts.variant("vocoder", (bsz, fb))
    spec = upload(ttnn, device, voc.lowered.input_specs["spectrogram"],
                  torch.nn.functional.pad(spectrogram, (0, 0, 0, fb - frames)))
    return ttnn.to_torch(voc.bound(spec, *masks)[0]).float()[:, :valid[-1]]


@pytest.fixture(scope="module")
def default_models(full_models):
    """conftest's full-size models; the TTS model copied (encoder/decoder shared) with non-identity batch norms."""
    model, vocoder = full_models
    model = copy.deepcopy(model, memo={id(model.speecht5): model.speecht5})
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer in model.speech_decoder_postnet.layers:
            bn = layer.batch_norm
            bn.running_mean.copy_(0.3 * torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))
            bn.weight.copy_(1 + 0.2 * torch.randn(bn.num_features, generator=g))
            bn.bias.copy_(0.1 * torch.randn(bn.num_features, generator=g))
    return model.eval(), vocoder


@pytest.fixture(scope="module")
def non_default_vocoder():
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(2)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**NON_DEFAULT_VOCODER)).eval()
    with torch.no_grad():
        vocoder.mean.normal_(0.0, 0.5)
        vocoder.scale.uniform_(0.5, 2.0)
    return vocoder


@pytest.fixture(scope="module")
def lowered(default_models, non_default_vocoder):
    """(config, dtype) → lowering; the non-default vocoder pairs with conftest's full-size TTS model."""
    model, vocoder = default_models
    out = {}
    for dtype in DTYPES:
        out["default", dtype] = _lower(model, vocoder, dtype)
        out["non_default", dtype] = _lower(model, non_default_vocoder, dtype)
    return out


@pytest.fixture(scope="module")
def spectrogram():
    return torch.randn(1, FRAMES, 80, generator=torch.Generator().manual_seed(13))


@pytest.fixture(scope="module")
def hf_waveforms(default_models, non_default_vocoder, spectrogram):
    with torch.no_grad():
        return {"default": default_models[1](spectrogram), "non_default": non_default_vocoder(spectrogram)}


def _hf_convs(module: torch.nn.Module) -> tuple[int, int]:
    mods = list(module.modules())
    return sum(type(m) is torch.nn.Conv1d for m in mods), sum(type(m) is torch.nn.ConvTranspose1d for m in mods)


@pytest.mark.parametrize("config", ["default", "non_default"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_postnet_and_vocoder_run_every_conv_on_device(default_models, lowered, config, dtype):
    """No host fallback, no batch norm (aten or ttnn) left, one device conv per HF conv, on device tensors."""
    tts = lowered[config, dtype]
    hf = {"postnet": default_models[0].speech_decoder_postnet, "vocoder": tts.vocoder}
    rep = tts.report()
    assert sorted(v.name for v in tts.variants) == ["postnet", "vocoder"]
    for v in tts.variants:
        where = f"{v.name}{list(v.key)} {config} {dtype}"
        nodes = list(v.lowered.nodes())
        assert all(isinstance(n.target, TTNNOp) or n.target is operator.getitem for n in nodes), \
            (where, sorted({str(n.target) for n in nodes if not isinstance(n.target, TTNNOp)}))
        assert not any(isinstance(n.target, HostOp) for n in nodes)
        assert not any("batch_norm" in str(n.target) for n in nodes), where
        program = rep.program(v.name, v.key)
        assert program.fallback_count == 0 and not any(op.startswith("host.") for op in program.ops), where
        convs = [n for n in nodes if getattr(n.target, "name", None) in ("conv2d", "conv_transpose2d")]
        n_conv, n_conv_t = _hf_convs(hf[v.name])
        assert sum(n.target.name == "conv2d" for n in convs) == n_conv, where
        assert sum(n.target.name == "conv_transpose2d" for n in convs) == n_conv_t, where
        assert all(spec_of(n).on_device for n in convs), where
    folded = {r.name: r.stats for r in tts.variant("postnet", (1, s5.frame_bucket(FRAMES))).lowered.pass_records}
    assert folded["fold_batchnorm"].get("folded") == len(hf["postnet"].layers)


@pytest.mark.parametrize("dtype", DTYPES)
def test_postnet_matches_hf(default_models, lowered, dtype):
    """HF ``speech_decoder_postnet(hidden)`` → (before, after, logits); ours maps ``before`` to ``after``."""
    postnet = default_models[0].speech_decoder_postnet
    r = default_models[0].config.reduction_factor
    hidden = torch.randn(1, FRAMES // r, default_models[0].config.hidden_size,
                         generator=torch.Generator().manual_seed(17))
    with torch.no_grad():
        before, after, _ = postnet(hidden)
    assert before.shape[1] == FRAMES
    out = run_postnet(lowered["default", dtype], before)
    assert_pcc(after, out, PCC["postnet"][dtype], f"postnet {FRAMES} frames {dtype}")


@pytest.mark.parametrize("config", ["default", "non_default"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_waveform_matches_hf(lowered, spectrogram, hf_waveforms, config, dtype):
    wave = run_vocoder(lowered[config, dtype], spectrogram)
    assert_pcc(hf_waveforms[config], wave, PCC["waveform"][dtype], f"waveform {config} vocoder {FRAMES} frames {dtype}")
