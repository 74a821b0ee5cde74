"""Shared fixtures: seeded tiny and full-size SpeechT5 models, HF prenet dropout switched off on demand."""
from __future__ import annotations

import pytest
import torch


def tiny_config(**overrides):
    from transformers import SpeechT5Config
    # Dimensions respect the ttnn contract: head_dim and embedding widths are multiples of 32.
    kw = dict(hidden_size=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
              decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128, speech_decoder_prenet_units=64,
              speech_decoder_postnet_units=64, speaker_embedding_dim=64, max_text_positions=128)
    kw.update(overrides)
    return SpeechT5Config(**kw)


def tiny_vocoder_config(**overrides):
    from transformers import SpeechT5HifiGanConfig
    kw = dict(upsample_initial_channel=64, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
              resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 3], [1, 3]])
    kw.update(overrides)
    return SpeechT5HifiGanConfig(**kw)


@pytest.fixture
def no_prenet_dropout(monkeypatch):
    """Turn HF's inference-time prenet dropout off (the lowered model gets prenet_dropout=False)."""
    from transformers.models.speecht5 import modeling_speecht5 as hf
    monkeypatch.setattr(hf.SpeechT5SpeechDecoderPrenet, "_consistent_dropout", lambda self, x, p: x)


@pytest.fixture(scope="session")
def tiny_models():
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan
    torch.manual_seed(0)
    return SpeechT5ForTextToSpeech(tiny_config()).eval(), SpeechT5HifiGan(tiny_vocoder_config()).eval()


@pytest.fixture(scope="session")
def full_models():
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig
    torch.manual_seed(0)
    return SpeechT5ForTextToSpeech(SpeechT5Config()).eval(), SpeechT5HifiGan(SpeechT5HifiGanConfig()).eval()
