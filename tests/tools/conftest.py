"""Fixtures of the CLI tests: tiny SpeechT5 + HiFi-GAN checkpoints saved once per test module."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_config, tiny_vocoder_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A directory with ``model/`` and ``vocoder/`` (``save_pretrained`` of seeded tiny configs)."""
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    SpeechT5ForTextToSpeech(tiny_config()).save_pretrained(root / "model")
    SpeechT5HifiGan(tiny_vocoder_config()).save_pretrained(root / "vocoder")
    return root
