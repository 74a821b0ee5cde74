"""lower_linear: ``aten.linear`` (+ a following activation) → one ``ttnn.linear``.

Input:   ATen graph, weights as ``get_attr`` constants.
Output:  ``ttnn.linear(x, W_t, bias=b_row, activation=act)`` where ``W_t`` is the ``[in, out]`` weight
         transposed once here (OP_CONTRACT §3: the op computes ``a @ b``), ``b_row`` the bias as ``[1, out]``,
         and ``act`` the relu/gelu/sigmoid/tanh that consumed the linear's output (when it was its only use).
Leaves alone: linears whose weight is not a constant (computed weights) and activations with other
         parameters (e.g. tanh-approximate gelu stays a separate op); they are lowered elsewhere or fall back.

Patterns (declarative, matched with torch.fx's SubgraphMatcher), most specific first:
    act(linear(x, w, b))  for act in relu, gelu, sigmoid, tanh        — HF FFN (gelu), prenet (relu), stop (sigmoid)
    linear(x, w, b) / linear(x, w)                                    — every other nn.Linear
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import Match, Pattern, add_constant, aten, apply_patterns, const_tensor
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
    lin = m.nodes["linear"]
    if len(lin.users) != 1 and len(m.nodes) > 1:
        return "linear output has other users than the activation"
    return None


def _rewrite(activation: str | None):
    def rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
        lin = m.nodes["linear"]
        w = const_tensor(gm, m.inputs["w"])
        w_t = add_constant(gm, f"{m.inputs['w'].target}_t", w.t().contiguous(), before=lin)
        kwargs = {}
        if "b" in m.inputs:
            b = const_tensor(gm, m.inputs["b"])
            kwargs["bias"] = add_constant(gm, f"{m.inputs['b'].target}_row", b.reshape(1, -1), before=lin)
        if activation is not None:
            kwargs["activation"] = activation
        return ttnn_call(gm.graph, ops.linear, (m.inputs["x"], w_t), kwargs, like=lin)
    return rewrite


def _pattern(activation: str | None, bias: bool) -> Pattern:
    if bias:
        def linear(x, w, b):
            return aten.linear.default(x, w, b)
    else:
        def linear(x, w):
            return aten.linear.default(x, w)
    if activation is None:
        fn = linear
    else:
        act = _ACTS[activation]
        if bias:
            def fn(x, w, b):
                return act(linear(x, w, b))
        else:
            def fn(x, w):
                return act(linear(x, w))
    name = f"linear{'_' + activation if activation else ''}{'' if bias else '_nobias'}"
    return Pattern(name, fn, _check, _rewrite(activation))


PATTERNS = [_pattern(a, b) for a in (*_ACTS, None) for b in (True, False)]


class LowerLinear(FxPass):
    name = "lower_linear"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        apply_patterns(gm, PATTERNS, stats)
        return self.result(gm, stats)
