"""The speech encoder program (lowering/speech_encoder.py) vs HF eager, per utterance at its exact length.

Golden: ``SpeechT5ForSpeechToSpeech(config).speecht5.encoder`` run on each utterance alone, unpadded (HF's
semantics of a single utterance), and each decoder layer's cross-attention ``k_proj`` / ``v_proj`` on its states.
The program runs padded to a sample bucket (lengths here are never bucket sizes) and batched; only each
utterance's valid frames are compared.  Configs: the full-size default (2 s of audio), HF's VC test-suite conv
geometry (three 8-tap stride-4 convs without bias, a 16-tap positional conv in 2 groups) and
``feat_extract_norm="layer"`` (with conv bias).  HF's own *padded* batch run is not what we match: its group norm
takes statistics over the padding and its positional conv reads it (``test_hf_padded_batch_differs``).
"""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.pipeline import lower_program
from fx2ttnn.lowering.speech_encoder import SpeechEncoderProgram, speech_encoder_inputs
from fx2ttnn.lowering.speecht5 import MASK_MIN
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.executor import BoundProgram
from tests.conftest import tiny_config
from tests.pcc_thresholds import PCC
from tests.utils import assert_pcc

VC_TEST = dict(conv_dim=(32, 32, 32), conv_stride=(4, 4, 4), conv_kernel=(8, 8, 8), conv_bias=False,
               num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
LAYER = dict(feat_extract_norm="layer", conv_bias=True, conv_dim=(64, 64, 64, 64), conv_stride=(5, 2, 2, 2),
             conv_kernel=(10, 3, 3, 2), num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4)
# samples per utterance: batch-1 cases and the batch-2 cases (no length is a bucket size)
LENGTHS = {"default": [32000], "vc-test": [16000], "layer": [8000]}
BATCH2 = {"vc-test": [16000, 9001], "layer": [8000, 4999]}

_models: dict = {}
_programs: dict = {}
_goldens: dict = {}


def _model(name: str, head: str = "vc"):
    key = (name, head)
    if key not in _models:
        from transformers import SpeechT5Config, SpeechT5ForSpeechToSpeech, SpeechT5ForSpeechToText
        cfg = SpeechT5Config() if name == "default" else tiny_config(**(VC_TEST if name == "vc-test" else LAYER))
        torch.manual_seed(0)
        _models[key] = (SpeechT5ForSpeechToSpeech if head == "vc" else SpeechT5ForSpeechToText)(cfg).eval()
    return _models[key]


def _program(model, batch: int, sample_bucket: int, dtype: str):
    """(lowered, bound) speech encoder program of ``model`` for one (batch, bucket), lowered once per test module."""
    key = (id(model), batch, sample_bucket, dtype)
    if key not in _programs:
        layers = model.speecht5.decoder.wrapped_decoder.layers
        program = SpeechEncoderProgram(model.speecht5.encoder, [l.encoder_attn for l in layers],
                                       model.config.decoder_attention_heads)
        ins, outs = program.specs(batch, sample_bucket, dtype)
        lowered = lower_program(program.capture(batch, sample_bucket), dtype=dtype, input_specs=ins,
                                output_specs=outs)
        bound = BoundProgram(lowered.graph_module, open_backend("reference"), name="speech_encoder",
                             output_names=lowered.signature.outputs)
        _programs[key] = (program, lowered, bound)
    return _programs[key]


def _run(model, x: torch.Tensor, lengths: list[int], dtype: str, noisy_padding: bool = False):
    """The program's outputs as float32 torch tensors, and the program.  ``noisy_padding`` fills the samples past
    each utterance's length with noise (the host helper pads with zeros): the program's masks alone must keep it
    out of the utterance's frames."""
    geo = SpeechEncoderProgram(model.speecht5.encoder, [], 1).geometry
    inputs = speech_encoder_inputs(geo, x, lengths)
    if noisy_padding:
        for b, n in enumerate(lengths):
            pad = inputs["input_values"][b, n:]
            pad.copy_(torch.randn(pad.shape, generator=torch.Generator().manual_seed(b)))
    program, lowered, bound = _program(model, x.shape[0], inputs["input_values"].shape[1], dtype)
    ttnn = bound.backend.ttnn
    outs = [ttnn.to_torch(o).float() for o in bound(*[inputs[n] for n in program.io()[0]])]
    return outs, program, lowered


def _hf(model, samples: torch.Tensor) -> list[torch.Tensor]:
    """HF on one utterance at its exact length: states, then (K, V) of each decoder layer's cross-attention
    (computed once per model and utterance: both dtypes compare with it)."""
    key = (id(model), samples.shape[0], float(samples.double().sum()))
    if key in _goldens:
        return _goldens[key]
    heads = model.config.decoder_attention_heads
    with torch.no_grad():
        hidden = model.speecht5.encoder(samples[None]).last_hidden_state
        out = [hidden]
        for layer in model.speecht5.decoder.wrapped_decoder.layers:
            attn = layer.encoder_attn
            for proj in (attn.k_proj, attn.v_proj):
                out.append(proj(hidden).view(1, -1, heads, attn.head_dim).transpose(1, 2))
    _goldens[key] = out
    return out


def _compare(model, outs: list[torch.Tensor], x: torch.Tensor, lengths: list[int], dtype: str, what: str) -> None:
    geo = SpeechEncoderProgram(model.speecht5.encoder, [], 1).geometry
    for b, n in enumerate(lengths):
        golden = _hf(model, x[b, :n])
        frames = golden[0].shape[1]
        assert_pcc(golden[0], outs[0][b:b + 1, :frames], PCC["speech_encoder"][dtype], f"{what} utt {b} states")
        for i, g in enumerate(golden[1:]):
            name = f"{'kv'[i % 2]}_{i // 2}"
            assert_pcc(g, outs[2 + i][b:b + 1, :, :frames], PCC["speech_encoder"][dtype], f"{what} utt {b} {name}")
        mask = outs[1][b, 0, 0]
        assert frames == geo.frames(n) and (mask[:frames] == 0).all() and (mask[frames:] == MASK_MIN).all()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["default", "vc-test", "layer"])
def test_matches_hf_exact_length_run(name, dtype):
    model = _model(name)
    (n,) = LENGTHS[name]
    x = torch.randn(1, n, generator=torch.Generator().manual_seed(1)) * 0.1
    outs, program, lowered = _run(model, x, [n], dtype)
    assert outs[0].shape[1] > program.geometry.frames(n)  # padded to a bucket
    assert lowered.fallbacks() == []
    _compare(model, outs, x, [n], dtype, f"{name} {dtype}")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["vc-test", "layer"])
def test_batch_of_two_matches_each_utterance_alone(name, dtype):
    model = _model(name)
    lengths = BATCH2[name]
    x = torch.randn(2, max(lengths), generator=torch.Generator().manual_seed(2)) * 0.3
    outs, _, _ = _run(model, x, lengths, dtype, noisy_padding=True)
    _compare(model, outs, x, lengths, dtype, f"{name} {dtype} batch 2")


def test_default_program_structure():
    """What the default speech encoder becomes: the 7 feature convs and the positional conv as conv2d with GELU
    fused (the positional conv's crop folded into its padding), the group norm over valid frames as 2 sums with
    the GELU after it fused into its last add, the 12 encoder layers on SDPA, nothing on the host."""
    _, _, lowered = _run(_model("default"), torch.zeros(1, 32000), [32000], "bfloat16")
    hist = lowered.op_histogram()
    stats = {r.name: r.stats for r in lowered.pass_records}
    assert stats["conv1d_to_conv2d"] == {"conv": 8, "activation_fused": 7, "crop_folded": 1}
    assert stats["fuse_attention"] == {"encoder_self": 12}
    assert hist[ops.conv2d.qualified_name] == 8 and hist[ops.sum_.qualified_name] == 2
    assert stats["fuse_binary_output_activation"] == {"add_gelu_view": 1}
    assert hist["ttnn.transformer.scaled_dot_product_attention"] == 12
    for absent in ("ttnn.gelu", "ttnn.slice", "ttnn.typecast", "ttnn.to_torch", "ttnn.to_layout"):
        assert absent not in hist, absent
    assert not any(op.startswith("host.") for op in hist)


def test_hf_padded_batch_differs():
    """Why the program matches each utterance's exact-length run and not HF's own padded batch: HF runs the group
    norm over the padded samples and its positional conv reads the padded frames, so with ``attention_mask`` its
    shorter utterance differs from that utterance alone; the program's does not (test above)."""
    for name in ("vc-test", "layer"):
        model = _model(name)
        lengths = BATCH2[name]
        x = torch.randn(2, max(lengths), generator=torch.Generator().manual_seed(2)) * 0.3
        x[1, lengths[1]:] = 0
        mask = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).long()
        with torch.no_grad():
            batched = model.speecht5.encoder(x, attention_mask=mask).last_hidden_state
        alone = _hf(model, x[1, :lengths[1]])[0]
        assert (batched[1:, :alone.shape[1]] - alone).abs().max() > 0.1, name


def test_text_decoder_cross_attention():
    """The same program serves speech recognition: SpeechT5ForSpeechToText's text decoder layers' K/V."""
    model = _model("vc-test", head="asr")
    n = 12000
    x = torch.randn(1, n, generator=torch.Generator().manual_seed(3)) * 0.1
    outs, _, _ = _run(model, x, [n], "float32")
    _compare(model, outs, x, [n], "float32", "asr")
