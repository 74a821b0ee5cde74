"""SpeechGeometry (HF's conv-length formula, sample buckets, limits) and the host inputs of the speech encoder
program (frame masks, GroupNorm masks and scales), against HF's own length computation."""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.errors import GenerationError, UnsupportedModelError
from fx2ttnn.lowering.speech_encoder import (
    SpeechEncoderProgram, SpeechGeometry, check_speech_encoder, speech_encoder_inputs, speech_encoder_io,
)
from tests.conftest import tiny_config

VC_TEST = dict(conv_dim=(32, 32, 32), conv_stride=(4, 4, 4), conv_kernel=(8, 8, 8), conv_bias=False,
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


@pytest.fixture(scope="module")
def prenet():
    from transformers import SpeechT5Config
    from transformers.models.speecht5.modeling_speecht5 import SpeechT5SpeechEncoderPrenet
    return SpeechT5SpeechEncoderPrenet(SpeechT5Config())


def test_lengths_follow_hf(prenet):
    geo = SpeechGeometry.of(prenet.config)
    samples = torch.tensor([400, 401, 719, 720, 16000, 32000, 38040, 160000])
    frames = prenet._get_feat_extract_output_lengths(samples)
    assert [geo.frames(int(n)) for n in samples] == frames.tolist()
    assert geo.min_samples == 400 and geo.frames(399) == 0  # one frame: 25 ms at 16 kHz (kernel 10 + hops)
    assert geo.conv_lengths(16000) == (3199, 1599, 799, 399, 199, 99, 49)


@pytest.mark.parametrize("overrides", [{}, VC_TEST], ids=["default", "vc-test-config"])
def test_sample_buckets(overrides):
    geo = SpeechGeometry.of(tiny_config(**overrides))
    for frames in (1, 63, 64, 65, 99, 200, 499, 1000, 3999, 4000):
        bucket = geo.samples_for(frames)
        assert geo.frames(bucket) == frames and geo.frames(bucket + 1) == frames + 1  # the largest such count
    seen = {}
    for samples in range(geo.min_samples, geo.samples_for(700), 97):
        bucket = geo.sample_bucket(samples)
        t, tb = geo.frames(samples), geo.frames(bucket)
        assert bucket >= samples and tb % 32 == 0 and tb >= 64
        # frame_bucket: at most 25 % padding above 128 frames; below, multiples of 32 (SDPA chunks): 64, 96, 128
        assert tb <= 1.25 * t if t > 128 else tb - t < 32 or tb == 64
        assert seen.setdefault(t, bucket) == bucket  # a new length of the same frame count: the same program
    assert sorted({geo.frames(b) for b in seen.values()}) == [64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512,
                                                               640, 768]  # 13 programs for up to 700 frames


def test_limits_are_typed_errors():
    cfg = tiny_config(max_speech_positions=600)
    geo = SpeechGeometry.of(cfg)
    assert geo.frames(geo.max_samples) == 600 and geo.sample_bucket(geo.max_samples) == geo.max_samples
    assert geo.frame_bucket(590) == 600  # the last bucket is the limit itself
    with pytest.raises(GenerationError, match=r"has 399 samples; the speech encoder needs at least 400 \(25 ms"):
        geo.sample_bucket(399)
    with pytest.raises(GenerationError, match=r"at most 192399 \(12.0249 s at 16000 Hz: max_speech_positions = 600 encoder"):
        geo.sample_bucket(geo.max_samples + 1)


def test_host_inputs_mask_each_utterance():
    cfg = tiny_config()
    geo = SpeechGeometry.of(cfg)
    x = torch.randn(2, 9000)
    ins = speech_encoder_inputs(geo, x, [9000, 4321])
    bucket = geo.sample_bucket(9000)
    assert list(ins) == speech_encoder_io(2, geo.group_norm_layers)[0]
    assert ins["input_values"].shape == (2, bucket)
    assert torch.equal(ins["input_values"][1, :4321], x[1, :4321]) and not ins["input_values"][1, 4321:].any()
    full = geo.conv_lengths(bucket)
    assert ins["frame_mask"].shape == (2, full[-1])
    assert ins["frame_mask"].sum(1).tolist() == [geo.frames(9000), geo.frames(4321)]
    assert ins["norm_mask_0"].shape == (2, full[0], 1)
    n0 = [geo.conv_lengths(9000)[0], geo.conv_lengths(4321)[0]]
    assert ins["norm_mask_0"].sum((1, 2)).tolist() == n0
    assert torch.allclose(ins["norm_scale_0"].flatten(), 1.0 / torch.tensor(n0, dtype=torch.float32))
    layer = SpeechGeometry.of(tiny_config(feat_extract_norm="layer"))
    assert set(speech_encoder_inputs(layer, x, [9000, 4321])) == {"input_values", "frame_mask"}


@pytest.mark.parametrize("call, message", [
    (lambda g: speech_encoder_inputs(g, torch.randn(8000), [8000]), r"input_values must be a float tensor \[batch"),
    (lambda g: speech_encoder_inputs(g, torch.ones(1, 8000, dtype=torch.long), [8000]), "must be a float tensor"),
    (lambda g: speech_encoder_inputs(g, torch.randn(2, 8000), [8000]), "1 lengths for a batch of 2"),
    (lambda g: speech_encoder_inputs(g, torch.randn(1, 8000), [8001]), "utterance 0: length 8001 exceeds the 8000"),
    (lambda g: speech_encoder_inputs(g, torch.randn(2, 8000), [8000, 10]), "utterance 1 has 10 samples"),
    (lambda g: speech_encoder_inputs(g, torch.full((1, 8000), float("nan")), [8000]), "utterance 0 has NaN or inf"),
], ids=["1d", "integer", "lengths", "too-long-for-input", "too-short", "nan"])
def test_bad_host_inputs(call, message):
    with pytest.raises(GenerationError, match=message):
        call(SpeechGeometry.of(tiny_config()))


def test_unsupported_speech_encoders():
    from transformers import SpeechT5ForSpeechToSpeech
    torch.manual_seed(0)
    model = SpeechT5ForSpeechToSpeech(tiny_config()).eval()
    encoder = model.speecht5.encoder
    with pytest.raises(UnsupportedModelError, match="needs a module with .prenet, .wrapped_encoder"):
        check_speech_encoder(encoder.wrapped_encoder)
    model.train()
    with pytest.raises(UnsupportedModelError, match="training mode"):
        SpeechEncoderProgram(encoder, [], 2)
    model.eval()
    encoder.prenet.feature_encoder.conv_layers[0].layer_norm = torch.nn.GroupNorm(8, 512)
    with pytest.raises(UnsupportedModelError, match=r"layer 0: GroupNorm\(8, 512, affine=True\) is not supported"):
        check_speech_encoder(encoder)
    encoder.config.feat_extract_norm = "batch"
    with pytest.raises(UnsupportedModelError, match="feat_extract_norm 'batch' is not supported"):
        check_speech_encoder(encoder)
