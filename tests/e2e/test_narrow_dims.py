"""Widths that are not multiples of 32 (hidden size, head dim, prenet units) stay on the device, traced included.

A hidden size of 48 makes the positional-encoding table 48 wide and the heads 24 wide; 40 prenet units make
the dropout masks 40 wide.  The tables are padded to whole tiles for ``ttnn.embedding`` (``lower_embedding``),
the KV-cache writes are sharded at the padded head width (``lower_kv_cache``), so the decode step reads
nothing back to the host and can be captured as a ttnn trace, prenet dropout on, as on a device.
"""
from __future__ import annotations

import torch

from fx2ttnn import lower_model
from tests.conftest import tiny_config


def test_narrow_model_traces_with_dropout_and_no_host_work():
    from transformers import SpeechT5ForTextToSpeech

    torch.manual_seed(3)
    model = SpeechT5ForTextToSpeech(tiny_config(hidden_size=48, encoder_attention_heads=2,
                                                decoder_attention_heads=2, speech_decoder_prenet_units=40,
                                                speaker_embedding_dim=40)).eval()
    kw = dict(backend="reference", dtype="float32", max_steps=32, prenet_dropout=True)
    bound, traced = lower_model(model, **kw), lower_model(model, trace=True, **kw)
    rep = traced.report()
    assert rep.program("encoder").fallback_count == 0  # the token embedding (48 wide) too
    assert rep.program("decoder_step").fallback_count == 0 and rep.program("decoder_step").transfers_per_call == 0
    stats = dict(rep.program("decoder_step").passes)["lower_embedding"]
    assert stats["padded_width"] == 1 + model.config.speech_decoder_prenet_layers  # pe row + one mask per layer
    g = torch.Generator().manual_seed(0)
    ids, spk = torch.randint(4, 40, (1, 9), generator=g), torch.randn(1, 40, generator=g)
    gen = dict(threshold=10.0, maxlenratio=2.0, seed=5)
    assert torch.equal(traced.generate_speech(ids, spk, **gen), bound.generate_speech(ids, spk, **gen))
