"""lower_linear: ``aten.linear`` (+ a row added to it) (+ a following activation) → one ``ttnn.linear``.

Input:   ATen graph, weights as ``get_attr`` constants.
Output:  ``ttnn.linear(x, W_t, bias=..., activation=act)`` where ``W_t`` is the ``[in, out]`` weight transposed
         once here (OP_CONTRACT §3: the op computes ``a @ b``), the bias a ``[1, out]`` row, and ``act`` the
         relu/gelu/sigmoid/tanh that consumed the result (when it was its only use).
         A row added to the linear's output (a tensor with one value per output feature, e.g. the decode step's
         positional-encoding row or the per-utterance speaker projection) becomes the bias: the op adds it.
         If that row is gathered from a constant table, the linear's own bias is folded into the table here,
         so the step does a single gather; otherwise bias and row are added in front (a per-utterance op
         that hoist_invariants moves out of the decode step).
Leaves alone: linears whose weight is not a constant (computed weights) and activations with other
         parameters (e.g. tanh-approximate gelu stays a separate op); they are lowered elsewhere or fall back.

Patterns (declarative, matched with torch.fx's SubgraphMatcher; the bias ``b`` is optional), most specific
first: ``act(linear(x, w, b) + row)``, ``linear(x, w, b) + row``, ``act(linear(x, w, b))``, ``linear(x, w, b)``
for act in relu (prenet), gelu (FFN), sigmoid (stop probability), tanh.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import copy_meta, ttnn_call
from .graph_utils import Match, Pattern, add_constant, aten, apply_patterns, const_tensor, set_val, shape
from .pass_manager import FxPass, PassResult

_ACTS = {"relu": aten.relu.default, "gelu": aten.gelu.default, "sigmoid": aten.sigmoid.default,
         "tanh": aten.tanh.default}


def _check(gm: torch.fx.GraphModule, m: Match) -> str | None:
    w = const_tensor(gm, m.inputs["w"])
    if w is None:
        return "weight is not a constant"
    b = m.inputs.get("b")
    if b is not None and const_tensor(gm, b) is None:
        return "bias is not a constant"
    if "row" in m.inputs:
        r = m.inputs["row"]
        n = w.shape[0]
        if not isinstance(r, torch.fx.Node) or shape(r)[-1] != n or torch.Size(shape(r)).numel() != n \
                or shape(m.nodes["add"]) != shape(m.nodes["linear"]):
            return "added tensor is not a row of the output features"
    return None


def _bias_from_row(gm: torch.fx.GraphModule, m: Match, lin: torch.fx.Node) -> torch.fx.Node:
    """The row added to the linear's output, with the linear's own bias folded in, as a [1, N] tensor."""
    g, r = gm.graph, m.inputs["row"]
    b = const_tensor(gm, m.inputs["b"]) if m.inputs.get("b") is not None else None
    n = shape(r)[-1]
    if r.op == "call_function" and r.target is aten.index_select.default and const_tensor(gm, r.args[0]) is not None \
            and len(r.users) == 1 and len(shape(r)) == 2:
        table = const_tensor(gm, r.args[0])
        t = add_constant(gm, f"{r.args[0].target}_plus_bias", table + b if b is not None else table, before=lin)
        row = set_val(g.call_function(aten.index_select.default, (t, 0, r.args[2])), (1, n), torch.float32)
        return copy_meta(row, r)
    row = r
    if shape(r) != (1, n):
        row = set_val(g.call_function(aten.view.default, (r, [1, n])), (1, n), torch.float32)
    if b is not None:
        bn = add_constant(gm, f"{m.inputs['b'].target}_row", b.reshape(1, -1), before=lin)
        row = set_val(g.call_function(aten.add.Tensor, (row, bn)), (1, n), torch.float32)
    return row


def _rewrite(activation: str | None):
    def rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
        lin = m.nodes["linear"]
        w = const_tensor(gm, m.inputs["w"])
        w_t = add_constant(gm, f"{m.inputs['w'].target}_t", w.t().contiguous(), before=lin)
        kwargs = {}
        if "row" in m.inputs:
            kwargs["bias"] = _bias_from_row(gm, m, lin)
        elif m.inputs.get("b") is not None:
            b = const_tensor(gm, m.inputs["b"])
            kwargs["bias"] = add_constant(gm, f"{m.inputs['b'].target}_row", b.reshape(1, -1), before=lin)
        if activation is not None:
            kwargs["activation"] = activation
        return ttnn_call(gm.graph, ops.linear, (m.inputs["x"], w_t), kwargs, like=lin)
    return rewrite


def _pattern(activation: str | None, row: bool) -> Pattern:
    act = _ACTS.get(activation)
    if row and act:
        def fn(x, w, b, row):
            return act(aten.add.Tensor(aten.linear.default(x, w, b), row))
    elif row:
        def fn(x, w, b, row):
            return aten.add.Tensor(aten.linear.default(x, w, b), row)
    elif act:
        def fn(x, w, b):
            return act(aten.linear.default(x, w, b))
    else:
        def fn(x, w, b):
            return aten.linear.default(x, w, b)
    name = f"linear{'_row' if row else ''}{'_' + activation if activation else ''}"
    return Pattern(name, fn, _check, _rewrite(activation), optional=("b",))


PATTERNS = [_pattern(a, row) for row in (True, False) for a in (*_ACTS, None)]


class LowerLinear(FxPass):
    name = "lower_linear"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        apply_patterns(gm, PATTERNS, stats)
        return self.result(gm, stats)
