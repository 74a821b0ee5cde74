"""fuse_attention: HF SpeechT5Attention (encoder self / decode-step self / decode-step cross) → TTNN attention.

Each test wraps one real ``transformers`` SpeechT5Attention (hidden 64, 2 heads of 32) the way the SpeechT5
programs call it, runs the ATen prelude + fuse_attention, checks the match counts and that no bmm/softmax is
left, then lowers the rest and compares with the unrewritten module run eagerly.
"""
from __future__ import annotations

import types

import pytest
import torch
from torch import nn
from transformers.models.speecht5.modeling_speecht5 import SpeechT5Attention, SpeechT5RelativePositionalEncoding

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.speecht5 import _cache_classes
from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.decompose import Decompose
from fx2ttnn.passes.fold_constants import FoldConstants
from fx2ttnn.passes.fuse_attention import FuseAttention
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_embedding import LowerEmbedding
from fx2ttnn.passes.lower_kv_cache import LowerKVCache
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.passes.lower_matmul import LowerMatmul
from fx2ttnn.passes.lower_softmax import LowerSoftmax

from .helpers import aten, assert_program_matches, capture_module, count_ops, finish, run_pass, run_passes

E, H, S, L = 64, 2, 32, 64  # embed dim, heads (head_dim 32), text length, cache length
MIN = torch.finfo(torch.float32).min
PRELUDE = (Canonicalize(), FoldConstants(), Decompose())
REST = (LowerLinear(), LowerEmbedding(), LowerKVCache(), LowerMatmul(), LowerSoftmax(), LowerElementwise(),
        LowerDataMovement())


def _attention() -> SpeechT5Attention:
    torch.manual_seed(0)
    attn = SpeechT5Attention(E, H, is_decoder=True, layer_idx=0).eval()
    for p in attn.parameters():
        nn.init.normal_(p, std=0.2)
    return attn


class EncoderSelf(nn.Module):
    """SpeechT5EncoderLayer.attention: relative-position bias (optional) and an additive padding mask."""

    def __init__(self, bias: bool = True):
        super().__init__()
        self.attention = _attention()
        self.embed_positions = SpeechT5RelativePositionalEncoding(E // H, 160) if bias else None

    def forward(self, x, mask):
        pos = self.embed_positions(x) if self.embed_positions is not None else None
        return self.attention(x, attention_mask=mask.expand(x.shape[0], 1, S, S), position_bias=pos)[0]


class DecoderSelf(nn.Module):
    """SpeechT5DecoderLayer.self_attn in the decode step: cache written at ``position``, causal mask row."""

    def __init__(self, causal: bool = True):
        super().__init__()
        self.self_attn = _attention()
        steps = torch.arange(L)
        table = torch.where(steps[None, :] > steps[:, None], MIN, 0.0) if causal else torch.zeros(L, L)
        self.register_buffer("table", table)

    def forward(self, x, position, k_cache, v_cache):
        cache_cls, layer_cls, enc_dec = _cache_classes()
        pos = position[:1]
        mask = self.table.index_select(0, pos).view(1, 1, 1, L).expand(x.shape[0], 1, 1, L)
        cache = enc_dec(cache_cls(layers=[layer_cls(k_cache, v_cache, pos)]), cache_cls(layers=[]))
        return self.self_attn(x, past_key_values=cache, attention_mask=mask)[0]


class DecoderCross(nn.Module):
    """SpeechT5DecoderLayer.encoder_attn in the decode step: K/V precomputed by the encoder program."""

    def __init__(self):
        super().__init__()
        self.encoder_attn = _attention()

    def forward(self, x, k, v, mask):
        cache_cls, layer_cls, enc_dec = _cache_classes()
        cache = enc_dec(cache_cls(layers=[]), cache_cls(layers=[layer_cls(k, v)]))
        return self.encoder_attn(x, key_value_states=k, past_key_values=cache, attention_mask=mask)[0]


def _padding_mask(b: int, valid: list[int]) -> torch.Tensor:
    keep = (torch.arange(S)[None, :] < torch.tensor(valid)[:, None]).float()
    return ((1.0 - keep) * MIN).view(b, 1, 1, S)


def _fused(module, inputs, names=None):
    gm = run_passes(capture_module(module, *inputs, names=names), *PRELUDE)
    res = run_pass(gm, FuseAttention())
    return gm, res


def _assert_no_loose_attention(gm):
    counts = count_ops(gm)
    assert counts[aten.bmm.default] == counts[aten.softmax.int] == counts[aten.matmul.default] == 0


@pytest.mark.parametrize("bias", [True, False], ids=["rel-pos-bias", "no-bias"])
@pytest.mark.parametrize("batch", [1, 2])
def test_encoder_self_attention(bias, batch):
    m = EncoderSelf(bias)
    inputs = [torch.randn(batch, S, E), _padding_mask(batch, [S, 20][:batch])]
    gm, res = _fused(m, inputs)

    assert res.stats == {"encoder_self": 1}
    assert gm.meta["attention"]["matched"] == {"encoder_self": 1} and gm.meta["attention"]["unmatched"] == []
    _assert_no_loose_attention(gm)
    counts = count_ops(gm)
    assert counts[ops.scaled_dot_product_attention] == counts[ops.split_query_key_value_and_split_heads] == 1
    assert counts[aten.linear.default] == 2  # the fused QKV projection and out_proj
    assert counts[ops.matmul] == (1 if bias else 0)  # q @ P for the bias, folded into attn_mask
    sdpa = next(n for n in gm.graph.nodes if n.target is ops.scaled_dot_product_attention)
    assert sdpa.kwargs["is_causal"] is False and sdpa.kwargs["attn_mask"] is not None
    program = finish(run_passes(gm, *REST), inputs)
    assert_program_matches(m, program, inputs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 2])
def test_decoder_self_attention_writes_the_cache_and_attends_up_to_position(batch):
    m = DecoderSelf()
    k_cache, v_cache = torch.randn(batch, H, L, E // H), torch.randn(batch, H, L, E // H)
    inputs = [torch.randn(batch, 1, E), torch.full((batch,), 7), k_cache, v_cache]
    names = ["x", "position", "k_cache", "v_cache"]
    gm, res = _fused(m, inputs, names)

    assert res.stats == {"decoder_self": 1}
    _assert_no_loose_attention(gm)
    counts = count_ops(gm)
    assert counts[ops.paged_update_cache] == 2 and counts[ops.scaled_dot_product_attention_decode] == 1
    assert counts[ops.nlp_create_qkv_heads] == 1 and counts[aten.index_copy_.default] == 0
    assert counts[aten.index_select.default] == 0  # the causal mask row is gone: SDPA-decode uses cur_pos_tensor
    decode = next(n for n in gm.graph.nodes if n.target is ops.scaled_dot_product_attention_decode)
    assert decode.kwargs["cur_pos_tensor"].name == "position"
    program = finish(run_passes(gm, *REST), inputs,
                     device_inputs=["position", "k_cache", "v_cache"])
    assert_program_matches(m, program, inputs, atol=1e-4, rtol=1e-4)


def test_decoder_cross_attention():
    m = DecoderCross()
    inputs = [torch.randn(1, 1, E), torch.randn(1, H, S, E // H), torch.randn(1, H, S, E // H), _padding_mask(1, [19])]
    gm, res = _fused(m, inputs, ["x", "k", "v", "mask"])

    assert res.stats == {"decoder_cross": 1}
    _assert_no_loose_attention(gm)
    counts = count_ops(gm)
    assert counts[ops.scaled_dot_product_attention_decode] == 1 and counts[aten.linear.default] == 2
    decode = next(n for n in gm.graph.nodes if n.target is ops.scaled_dot_product_attention_decode)
    assert decode.kwargs["is_causal"] is False
    program = finish(run_passes(gm, *REST), inputs, device_inputs=["k", "v"])
    assert_program_matches(m, program, inputs, atol=1e-4, rtol=1e-4)


def _softmax_over_queries(self, hidden_states, attention_mask=None, **kwargs):
    """A lookalike of SpeechT5Attention.forward whose softmax normalizes over the query dim."""
    b = hidden_states.shape[0]
    q = (self.q_proj(hidden_states) * self.scaling).view(b, S, H, -1).transpose(1, 2).reshape(b * H, S, -1)
    k = self.k_proj(hidden_states).view(b, -1, H, E // H).transpose(1, 2).reshape(b * H, -1, E // H)
    v = self.v_proj(hidden_states).view(b, -1, H, E // H).transpose(1, 2).reshape(b * H, -1, E // H)
    w = torch.bmm(q, k.transpose(1, 2))
    w = (w.view(b, H, S, S) + attention_mask).view(b * H, S, S)
    o = torch.bmm(torch.softmax(w, dim=1), v)
    return self.out_proj(o.view(b, H, S, -1).transpose(1, 2).reshape(b, S, E)), None


class SoftmaxOverQueries(EncoderSelf):
    def __init__(self):
        super().__init__(bias=False)
        self.attention.forward = types.MethodType(_softmax_over_queries, self.attention)  # still a SpeechT5Attention


def test_lookalike_with_softmax_over_queries_is_not_rewritten():
    m = SoftmaxOverQueries()
    inputs = [torch.randn(1, S, E), _padding_mask(1, [S])]
    gm, res = _fused(m, inputs)

    assert res.stats["unmatched"] == 1
    info = gm.meta["attention"]
    assert info["matched"] == {"encoder_self": 0}
    (site,) = info["unmatched"]
    assert site["module"].endswith("attention") and "softmax is not over the key dim" in site["reason"]
    assert count_ops(gm)[aten.softmax.int] == 1  # left for the generic lowering, and reported
    program = finish(run_passes(gm, *REST), inputs)
    assert_program_matches(m, program, inputs, atol=1e-4, rtol=1e-4)


def test_decoder_self_attention_with_a_non_causal_table_is_declined():
    m = DecoderSelf(causal=False)
    inputs = [torch.randn(1, 1, E), torch.full((1,), 3), torch.randn(1, H, L, E // H), torch.randn(1, H, L, E // H)]
    gm, res = _fused(m, inputs, ["x", "position", "k_cache", "v_cache"])

    (site,) = gm.meta["attention"]["unmatched"]
    assert "not causal" in site["reason"]
    assert res.stats["unmatched"] == 1 and count_ops(gm)[aten.softmax.int] == 1
