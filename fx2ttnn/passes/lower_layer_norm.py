"""lower_layer_norm: ``aten.layer_norm`` over the last dim → ``ttnn.layer_norm`` with its epsilon, residual fused.

Input:   ATen graph; gamma/beta as ``get_attr`` constants.
Output:  ``layer_norm(add(a, b))`` where the add has no other use and neither operand broadcasts (the transformer
         residual ``LN(x + sublayer(x))``) → ``ttnn.layer_norm(b, residual_input_tensor=a, epsilon=eps,
         weight=g[1, W], bias=b[1, W])`` (the op adds the residual before normalizing, OP_CONTRACT §5);
         any other last-dim ``layer_norm`` → ``ttnn.layer_norm(x, epsilon=eps, weight=..., bias=...)``.
         ``epsilon`` is always passed: ttnn's default is 1e-12 while HF SpeechT5 uses ``layer_norm_eps`` = 1e-5.
         gamma/beta are reshaped to ``[1, W]``, the TILE form the contract accepts.
Leaves alone: normalization over more than the last dim, non-constant gamma/beta (they fall back).

Patterns (declarative): ``layer_norm(add(a, b), shape, g, beta, eps, cudnn)`` and
``layer_norm(x, shape, g, beta, eps, cudnn)``, the residual form first.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import Match, Pattern, add_constant, apply_patterns, aten, const_tensor, shape
from .pass_manager import FxPass, PassResult


def residual_ln(a, b, normalized_shape, weight, bias, eps, cudnn):
    return aten.layer_norm.default(aten.add.Tensor(a, b), normalized_shape, weight, bias, eps, cudnn)


def plain_ln(x, normalized_shape, weight, bias, eps, cudnn):
    return aten.layer_norm.default(x, normalized_shape, weight, bias, eps, cudnn)


def _check(gm: torch.fx.GraphModule, m: Match) -> str | None:
    ln = m.nodes["layer_norm"]
    x = ln.args[0]
    if list(m.inputs["normalized_shape"]) != [shape(x)[-1]]:
        return f"normalizes over {list(m.inputs['normalized_shape'])}, ttnn.layer_norm only over the last dim"
    for key in ("weight", "bias"):
        if m.inputs[key] is not None and const_tensor(gm, m.inputs[key]) is None:
            return "gamma/beta are not constants"
    if "add" in m.nodes:
        a, b = m.inputs["a"], m.inputs["b"]
        # the op adds residual_input_tensor without broadcasting: both operands must have the sum's shape
        if not all(isinstance(t, torch.fx.Node) and shape(t) == shape(x) for t in (a, b)):
            return "residual add broadcasts"
    return None


def _rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    ln = m.nodes["layer_norm"]
    eps = m.inputs["eps"]
    kwargs = {"epsilon": 1e-5 if eps is None else float(eps)}  # torch's default when the call omits it
    for key in ("weight", "bias"):
        t = m.inputs[key]
        if t is not None:
            kwargs[key] = add_constant(gm, f"{t.target}_row", const_tensor(gm, t).reshape(1, -1), before=ln)
    if "add" in m.nodes:  # HF adds residual + sublayer; the op adds residual_input_tensor before normalizing
        x = m.inputs["b"]
        kwargs["residual_input_tensor"] = m.inputs["a"]
    else:
        x = m.inputs["x"]
    return ttnn_call(gm.graph, ops.layer_norm, (x,), kwargs, like=ln)


PATTERNS = [Pattern("layer_norm_residual", residual_ln, _check, _rewrite, optional=("weight", "bias", "cudnn")),
            Pattern("layer_norm", plain_ln, _check, _rewrite, optional=("weight", "bias", "cudnn"))]


class LowerLayerNorm(FxPass):
    name = "lower_layer_norm"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        apply_patterns(gm, PATTERNS, stats)
        return self.result(gm, stats)
