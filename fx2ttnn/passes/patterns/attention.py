"""HF ``SpeechT5Attention`` as torch.export records it, three ways, and its TTNN replacements.

Each pattern is the ATen subgraph of ``SpeechT5Attention.forward`` (transformers 5.x) after canonicalize /
fold_constants / decompose, from the projections to the ``[B, S, E]`` reshape before ``out_proj``:
``q_proj(x) * scaling`` → view/transpose/reshape to ``[B*H, S, dh]`` → ``bmm(q, kᵀ)`` (+ relative-position bias)
(+ additive mask, via a view to ``[B, H, S, S]``) → softmax → ``bmm(p, v)`` → transpose/reshape back.
View shapes, transpose dims and the scale are wildcards in the matcher (``ignore_literals``); each ``check``
validates the ones that carry meaning and says why it declines.

* ``encoder_self``: SpeechT5EncoderLayer.attention — with the relative-position bias
  (``SpeechT5RelativePositionalEncoding``: ``matmul(qᵀ, pe_kᵀ)``, a lowering-time constant table) and the padding
  mask.  → fused QKV ``linear`` → ``split_query_key_value_and_split_heads`` → bias as ``q @ (scale·P)`` per query
  position (``permute``/``reshape``/``matmul``) + mask = ``attn_mask`` → ``scaled_dot_product_attention(
  is_causal=False)`` → ``concatenate_heads``.
* ``decoder_self``: SpeechT5DecoderLayer.self_attn in the decode step — K/V written into the preallocated cache
  at ``position`` (``index_copy_``), attention over the cache under the causal row of the mask table.
  → fused QKV ``linear`` with the weights interleaved per head (``[q_h k_h v_h]``), one reshape to
  ``[B, 1, H, 3·dh]`` height-sharded one user per core, ``nlp_create_qkv_heads(num_heads=1, num_kv_heads=1)``
  (a sharded input splits per head group ``[q k v]``), which puts the heads where the decode ops want them
  (``[1, B, H, dh]`` for B = 1), still sharded;
  ``paged_update_cache`` ×2 with the position as a device tensor; ``scaled_dot_product_attention_decode``
  (causal, ``cur_pos_tensor``); ``slice`` of the 32-padded heads; reshape to ``[B, 1, E]``.
  Why SDPA-decode and not SDPA over the cache with a position mask: the decode op takes q ``[1, b, nh, dh]``
  with one query row per user and attends ``k[:, :, :pos+1]`` from a device position, so the step neither
  builds a mask nor reads the unused tail of the cache; plain SDPA would need the query padded to a chunk of
  32 rows and a full-length mask row every step.
* ``decoder_cross``: SpeechT5DecoderLayer.encoder_attn in the decode step — K/V are the encoder program's.
  → ``linear`` (q) → reshape to ``[1, B, H, dh]`` → ``scaled_dot_product_attention_decode(is_causal=False,
  attn_mask=[1, B, H, S])`` (the padding mask, broadcast over heads once per utterance) → slice → reshape.
The q scaling becomes SDPA's ``scale``; weights are concatenated once, here.
"""
from __future__ import annotations

import operator

import torch
import torch.fx

from ...lowering import op_table as ops
from ...lowering.ir import copy_meta, ttnn_call
from ..graph_utils import Match, Pattern, add_constant, aten, const_tensor, normalize_dim, set_val, shape

TILE = 32

# ---------------------------------------------------------------------------------------------
# patterns (literals are placeholders: the matcher ignores them, the checks validate them)

_S4 = [1, 1, 1, 1]
_S3 = [1, 1, 1]


def _heads(t):
    return aten.transpose.int(aten.view.default(t, _S4), 1, 2)


def _merge(o):
    return aten.reshape.default(aten.transpose.int(aten.view.default(o, _S4), 1, 2), _S3)


def _attend(q, k, v, bias_fn, mask):
    scores = aten.bmm.default(q, aten.transpose.int(k, 1, 2))
    if bias_fn is not None:
        scores = aten.add.Tensor(scores, bias_fn(q))
    if mask is not None:
        scores = aten.view.default(aten.add.Tensor(aten.view.default(scores, _S4), mask), _S3)
    return _merge(aten.bmm.default(aten.softmax.int(scores, -1), v))


def encoder_self(x, wq, bq, wk, bk, wv, bv, pos_t, mask):
    k = _heads(aten.linear.default(x, wk, bk))
    v = _heads(aten.linear.default(x, wv, bv))
    q = aten.reshape.default(_heads(aten.mul.Tensor(aten.linear.default(x, wq, bq), 1.0)), _S3)
    rel = lambda q_: aten.transpose.int(aten.matmul.default(aten.transpose.int(q_, 0, 1), pos_t), 0, 1)  # noqa: E731
    return _attend(q, aten.reshape.default(k, _S3), aten.reshape.default(v, _S3), rel, mask)


def encoder_self_no_bias(x, wq, bq, wk, bk, wv, bv, mask):
    k = _heads(aten.linear.default(x, wk, bk))
    v = _heads(aten.linear.default(x, wv, bv))
    q = aten.reshape.default(_heads(aten.mul.Tensor(aten.linear.default(x, wq, bq), 1.0)), _S3)
    return _attend(q, aten.reshape.default(k, _S3), aten.reshape.default(v, _S3), None, mask)


def decoder_self(x, wq, bq, wk, bk, wv, bv, k_cache, v_cache, pos, mask):
    q = aten.mul.Tensor(aten.linear.default(x, wq, bq), 1.0)
    k = _heads(aten.linear.default(x, wk, bk))
    v = _heads(aten.linear.default(x, wv, bv))
    kc = aten.index_copy_.default(k_cache, 2, pos, k)
    vc = aten.index_copy_.default(v_cache, 2, pos, v)
    q = aten.reshape.default(_heads(q), _S3)
    return _attend(q, aten.reshape.default(kc, _S3), aten.reshape.default(vc, _S3), None, mask)


def decoder_cross(x, wq, bq, k_in, v_in, mask):
    q = aten.reshape.default(_heads(aten.mul.Tensor(aten.linear.default(x, wq, bq), 1.0)), _S3)
    return _attend(q, aten.reshape.default(k_in, _S3), aten.reshape.default(v_in, _S3), None, mask)


# ---------------------------------------------------------------------------------------------
# checks


def _geometry(m: Match, head_view: str) -> tuple[int, int, int, int]:
    b, s, h, dh = shape(m.nodes[head_view])
    return b, s, h, dh


def _common_checks(gm: torch.fx.GraphModule, m: Match, weights: tuple[str, ...], head_view: str) -> str | None:
    for w in weights:
        if const_tensor(gm, m.inputs[w]) is None:
            return f"{w} is not a constant"
    for t in (n for k, n in m.nodes.items() if k.startswith("transpose")):
        rank = len(shape(t.args[0]))
        dims = {normalize_dim(t.args[1], rank), normalize_dim(t.args[2], rank)}
        if dims not in ({1, 2}, {0, 1}):
            return f"unexpected transpose dims {sorted(dims)}"
    sm = m.nodes["softmax"]
    if normalize_dim(sm.args[1], len(shape(sm))) != len(shape(sm)) - 1:
        return "softmax is not over the key dim"
    if not isinstance(m.nodes["mul"].args[1], (int, float)):
        return "q is not scaled by a constant"
    _, _, h, dh = _geometry(m, head_view)
    e = const_tensor(gm, m.inputs["wq"]).shape[0]
    if h * dh != e:
        return f"heads {h} x head_dim {dh} != embed dim {e}"
    if dh % TILE:
        return f"head_dim {dh} is not a multiple of 32 (ttnn SDPA)"
    return None


def check_encoder(gm: torch.fx.GraphModule, m: Match) -> str | None:
    why = _common_checks(gm, m, ("wq", "bq", "wk", "bk", "wv", "bv"), "view")
    if why:
        return why
    b, s, h, dh = _geometry(m, "view")
    if s % TILE:
        return f"sequence length {s} is not a multiple of 32 (SDPA chunks); pad it to a bucket"
    if "pos_t" in m.inputs:
        p = const_tensor(gm, m.inputs["pos_t"])
        if p is None or tuple(p.shape) != (s, dh, s):
            return "relative-position table is not a constant [S, dh, S]"
    mask = m.inputs["mask"]
    if not _broadcasts(shape(mask), (b, 1, s, s)):
        return f"mask {list(shape(mask))} does not broadcast to [{b}, 1, {s}, {s}]"
    return None


def _broadcasts(src: tuple[int, ...], dst: tuple[int, ...]) -> bool:
    if len(src) != len(dst):
        return False
    return all(a in (1, d) for a, d in zip(src, dst))


def _causal_row_of(mask: torch.fx.Node, gm: torch.fx.GraphModule) -> tuple[torch.fx.Node | None, str | None]:
    """If ``mask`` is ``view(index_select(T, 0, p))`` of a causal additive table T, return ``p``."""
    node = mask
    while node.op == "call_function" and node.target in (aten.view.default, aten.expand.default):
        node = node.args[0]
    if not (node.op == "call_function" and node.target is aten.index_select.default and node.args[1] == 0):
        return None, "self-attention mask is not a row of a constant table"
    table = const_tensor(gm, node.args[0])
    if table is None or table.dim() != 2 or table.shape[0] != table.shape[1]:
        return None, "self-attention mask table is not a constant square table"
    keep = torch.ones_like(table, dtype=torch.bool).tril()
    if not (bool((table[keep] == 0).all()) and bool((table[~keep] <= -1e30).all())):
        return None, "self-attention mask table is not causal (0 up to the position, -inf after)"
    return node.args[2], None


def _same_position(a: torch.fx.Node, b: torch.fx.Node) -> bool:
    from ..lower_kv_cache import position_source
    return position_source(a) is position_source(b)


def check_decoder_self(gm: torch.fx.GraphModule, m: Match) -> str | None:
    why = _common_checks(gm, m, ("wq", "bq", "wk", "bk", "wv", "bv"), "view")
    if why:
        return why
    for key in ("k_cache", "v_cache"):
        if m.inputs[key].op != "placeholder":
            return f"{key} is not a program input"
    for ic in (m.nodes["index_copy_"], m.nodes["index_copy__1"]):
        if ic.args[1] != 2:
            return "cache is not written along the sequence dim"
    b, s, h, dh = _geometry(m, "view")
    if s != 1:
        return f"decode attention expects one new position, got {s}"
    cache_len = shape(m.inputs["k_cache"])[2]
    if cache_len % TILE:
        return f"cache length {cache_len} is not a multiple of 32"
    pos, why = _causal_row_of(m.inputs["mask"], gm)
    if why:
        return why
    if not _same_position(pos, m.inputs["pos"]):
        return "mask row and cache write use different positions"
    return None


def check_decoder_cross(gm: torch.fx.GraphModule, m: Match) -> str | None:
    why = _common_checks(gm, m, ("wq", "bq"), "view")
    if why:
        return why
    for key in ("k_in", "v_in"):
        if m.inputs[key].op != "placeholder":
            return f"{key} is not a program input (cross-attention K/V come from the encoder program)"
    b, _, h, dh = _geometry(m, "view")
    s = shape(m.inputs["k_in"])[2]
    if shape(m.nodes["view"])[1] != 1:
        return "cross-attention in the decode step expects one query position"
    if s % TILE:
        return f"encoder length {s} is not a multiple of 32"
    if not _broadcasts(shape(m.inputs["mask"]), (b, 1, 1, s)):
        return f"mask {list(shape(m.inputs['mask']))} does not broadcast to [{b}, 1, 1, {s}]"
    return None


# ---------------------------------------------------------------------------------------------
# rewrites


def _node(g: torch.fx.Graph, op, args, kwargs, like, shape_, dtype=torch.float32) -> torch.fx.Node:
    n = ttnn_call(g, op, args, kwargs, like=like)
    return set_val(n, tuple(shape_), dtype)


def _getitems(g: torch.fx.Graph, tup: torch.fx.Node, n: int, shape_, like) -> list[torch.fx.Node]:
    out = []
    for i in range(n):
        item = copy_meta(g.call_function(operator.getitem, (tup, i)), like)
        out.append(set_val(item, tuple(shape_), torch.float32))
    return out


def _qkv_linear(gm, m, w, b, hint, like, out_shape) -> torch.fx.Node:
    g = gm.graph
    wn = add_constant(gm, f"{hint}_qkv_weight", w, before=like)
    bn = add_constant(gm, f"{hint}_qkv_bias", b, before=like)
    lin = copy_meta(g.call_function(aten.linear.default, (m.inputs["x"], wn, bn)), like)
    return set_val(lin, out_shape, torch.float32)


def _weights(gm, m, *names):
    return [const_tensor(gm, m.inputs[n]) for n in names]


def _scale(m: Match) -> float:
    return float(m.nodes["mul"].args[1])


def rewrite_encoder(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    g = gm.graph
    anchor = m.output
    b, s, h, dh = _geometry(m, "view")
    e = h * dh
    wq, bq, wk, bk, wv, bv = _weights(gm, m, "wq", "bq", "wk", "bk", "wv", "bv")
    scale = _scale(m)
    qkv = _qkv_linear(gm, m, torch.cat([wq, wk, wv]), torch.cat([bq, bk, bv]), anchor.name, anchor, (b, s, 3 * e))
    split = ttnn_call(g, ops.split_query_key_value_and_split_heads, (qkv,),
                      {"num_heads": h, "transpose_key": False}, like=anchor)
    q, k, v = _getitems(g, split, 3, (b, h, s, dh), anchor)
    mask = m.inputs["mask"]
    if "pos_t" in m.inputs:  # bias[b,h,i,j] = (scale * q[b,h,i]) . P[i,:,j]
        p = add_constant(gm, f"{anchor.name}_rel_bias_table", const_tensor(gm, m.inputs["pos_t"]) * scale, before=anchor)
        qs = _node(g, ops.permute, (q, [2, 0, 1, 3]), {}, anchor, (s, b, h, dh))
        qs = _node(g, ops.reshape, (qs, [s, b * h, dh]), {}, anchor, (s, b * h, dh))
        rel = _node(g, ops.matmul, (qs, p), {}, anchor, (s, b * h, s))
        rel = _node(g, ops.reshape, (rel, [s, b, h, s]), {}, anchor, (s, b, h, s))
        rel = _node(g, ops.permute, (rel, [1, 2, 0, 3]), {}, anchor, (b, h, s, s))
        attn_mask = _node(g, ops.add, (rel, mask), {}, anchor, (b, h, s, s))
    else:  # SDPA wants the query dim of the mask in full
        mb = shape(mask)[0]
        attn_mask = _node(g, ops.repeat, (mask, [1, 1, s // shape(mask)[2], 1]), {}, anchor, (mb, shape(mask)[1], s, s))
    out = _node(g, ops.scaled_dot_product_attention, (q, k, v),
                {"attn_mask": attn_mask, "is_causal": False, "scale": scale}, anchor, (b, h, s, dh))
    return _node(g, ops.concatenate_heads, (out,), {}, anchor, (b, s, e))


def _height_sharded(heads: int, head_dim: int, users: int):
    from ..lower_kv_cache import height_sharded
    return height_sharded(-(-heads // TILE) * TILE, head_dim, users)


def _merge_decode_heads(g, out, anchor, b, h, dh) -> torch.fx.Node:
    """SDPA-decode output [1, B, 32·⌈H/32⌉, dh] → the real heads → [B, 1, E] (HF's layout before out_proj)."""
    out = _node(g, ops.slice_, (out, [0, 0, 0, 0], [1, b, h, dh]), {}, anchor, (1, b, h, dh))
    return _node(g, ops.reshape, (out, [b, 1, h * dh]), {}, anchor, (b, 1, h * dh))


def rewrite_decoder_self(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    from ..lower_kv_cache import position_source
    g = gm.graph
    anchor = m.output
    b, _, h, dh = _geometry(m, "view")
    e = h * dh
    wq, bq, wk, bk, wv, bv = _weights(gm, m, "wq", "bq", "wk", "bk", "wv", "bv")
    # interleave per head: rows [q_0 k_0 v_0 q_1 k_1 v_1 ...], so that a [.., H, 3*dh] view splits per head
    w = torch.cat([t[i * dh:(i + 1) * dh] for i in range(h) for t in (wq, wk, wv)])
    bias = torch.cat([t[i * dh:(i + 1) * dh] for i in range(h) for t in (bq, bk, bv)])
    qkv = _qkv_linear(gm, m, w, bias, anchor.name, anchor, (b, 1, 3 * e))
    # one user per core, its H heads (padded to 32 rows) in its shard: what the decode ops want
    qkv = _node(g, ops.reshape, (qkv, [b, 1, h, 3 * dh]), {"memory_config": _height_sharded(h, 3 * dh, b)}, anchor,
                (b, 1, h, 3 * dh))
    shard = _height_sharded(h, dh, b)
    heads = ttnn_call(g, ops.nlp_create_qkv_heads, (qkv,),
                      {"num_heads": 1, "num_kv_heads": 1, "transpose_k_heads": False, "memory_config": shard},
                      like=anchor)
    q, k, v = _getitems(g, heads, 3, (b, 1, h, dh), anchor)
    if b > 1:  # [B, 1, H, dh] → [1, B, H, dh] (the same rows; only B == 1 needs no move)
        q, k, v = (_node(g, ops.reshape, (t, [1, b, h, dh]), {"memory_config": shard}, anchor, (1, b, h, dh))
                   for t in (q, k, v))
    position = position_source(m.inputs["pos"])
    k_cache = _node(g, ops.paged_update_cache, (m.inputs["k_cache"], k), {"update_idxs_tensor": position}, anchor,
                    shape(m.inputs["k_cache"]))
    v_cache = _node(g, ops.paged_update_cache, (m.inputs["v_cache"], v), {"update_idxs_tensor": position}, anchor,
                    shape(m.inputs["v_cache"]))
    out = _node(g, ops.scaled_dot_product_attention_decode, (q, k_cache, v_cache),
                {"cur_pos_tensor": position, "scale": _scale(m)}, anchor, (1, b, -(-h // TILE) * TILE, dh))
    return _merge_decode_heads(g, out, anchor, b, h, dh)


def rewrite_decoder_cross(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    g = gm.graph
    anchor = m.output
    b, _, h, dh = _geometry(m, "view")
    e = h * dh
    s = shape(m.inputs["k_in"])[2]
    wq, bq = _weights(gm, m, "wq", "bq")
    q = _qkv_linear(gm, m, wq, bq, f"{anchor.name}_q", anchor, (b, 1, e))
    q = _node(g, ops.reshape, (q, [1, b, h, dh]), {}, anchor, (1, b, h, dh))
    mask = _decode_mask(g, m.inputs["mask"], b, h, s, anchor)
    out = _node(g, ops.scaled_dot_product_attention_decode, (q, m.inputs["k_in"], m.inputs["v_in"]),
                {"is_causal": False, "attn_mask": mask, "scale": _scale(m)}, anchor, (1, b, -(-h // TILE) * TILE, dh))
    return _merge_decode_heads(g, out, anchor, b, h, dh)


def _decode_mask(g: torch.fx.Graph, mask: torch.fx.Node, b: int, h: int, s: int, anchor) -> torch.fx.Node:
    """The cross-attention padding mask [B, 1, 1, S] as SDPA-decode's [1, B, H, S] (shared by all layers)."""
    for user in mask.users:
        if user.target is ops.reshape and user.args[1] == [1, b, 1, s]:
            for u in user.users:
                if u.target is ops.repeat:
                    return u
    r = _node(g, ops.reshape, (mask, [1, b, 1, s]), {}, anchor, (1, b, 1, s))
    return _node(g, ops.repeat, (r, [1, 1, h, 1]), {}, anchor, (1, b, h, s))


PATTERNS: dict[str, list[Pattern]] = {
    "encoder_self": [Pattern("encoder_self", encoder_self, check_encoder, rewrite_encoder, ignore_literals=True),
                     Pattern("encoder_self", encoder_self_no_bias, check_encoder, rewrite_encoder, ignore_literals=True)],
    "decoder_self": [Pattern("decoder_self", decoder_self, check_decoder_self, rewrite_decoder_self,
                             ignore_literals=True)],
    "decoder_cross": [Pattern("decoder_cross", decoder_cross, check_decoder_cross, rewrite_decoder_cross,
                              ignore_literals=True)],
}
