"""fuse_binary_activations: an activation whose only reader is an add / multiply becomes that op's input activation.

Input:   ATen elementwise ops (before ``lower_elementwise``; after ``conv1d_to_conv2d`` and ``lower_linear``, which
         fuse the activation that *follows* a conv or a linear into it, where it costs nothing).
Output:  ``mul(act(x), y)`` / ``mul(y, act(x))`` / ``add(act(x), y)`` / ``add(y, act(x))`` with ``act`` relu or
         leaky_relu (any constant slope) read by nothing else → one
         ``ttnn.multiply`` / ``ttnn.add(x, y, input_tensor_a_activations=[UnaryWithParam(...)])`` (OP_CONTRACT §4:
         ttnn applies ``input_tensor_a_activations`` to input a before the op).  Add and multiply commute exactly
         in floating point, so the activation's operand is always input a.
         HiFi-GAN's pattern: each conv's input is ``leaky_relu(h) * valid_mask`` (the capture's valid-length
         masking, ``lowering/speecht5.py``), 40 times in the default vocoder; on a device the fusion saves one
         pass of the activation over DRAM each.
Leaves alone: an activation with other readers (it is computed once, as before), activations other than relu /
         leaky_relu (gelu, sigmoid and tanh have approximate device modes; their fused form is not checked
         against HF here), a scalar other operand (``lower_elementwise`` handles scalars), sub / div.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, construct, ttnn_call
from .graph_utils import Match, Pattern, apply_patterns, aten
from .pass_manager import FxPass, PassResult

BINARY = {"mul": (aten.mul.Tensor, ops.multiply), "add": (aten.add.Tensor, ops.add)}


# The activations as pattern pieces.  Pattern placeholders also match literal arguments, and the matcher fills
# in leaky_relu's default slope, so ``slope`` is read from the match.
def _relu(x, slope):
    return aten.relu.default(x)


def _leaky_relu(x, slope):
    return aten.leaky_relu.default(x, slope)


ACTIVATIONS = {"relu": _relu, "leaky_relu": _leaky_relu}


def _unary_with_param(name: str, slope: float | None):
    if name == "relu":
        return construct("UnaryWithParam", Ref("UnaryOpType.RELU"))
    return construct("UnaryWithParam", Ref("UnaryOpType.LEAKY_RELU"), float(slope))


def _pattern(binary: str, act_name: str, act_first: bool) -> Pattern:
    aten_op, ttnn_op = BINARY[binary]
    act = ACTIVATIONS[act_name]

    if act_name == "relu":
        def fn(x, other):
            return aten_op(act(x, None), other) if act_first else aten_op(other, act(x, None))
    else:
        def fn(x, slope, other):
            return aten_op(act(x, slope), other) if act_first else aten_op(other, act(x, slope))

    def check(gm: torch.fx.GraphModule, m: Match) -> str | None:
        other = m.inputs["other"]
        if not isinstance(other, torch.fx.Node):
            return "the other operand is a scalar"
        if binary == "add" and (m.output.kwargs.get("alpha", 1) != 1 or len(m.output.args) > 2):
            return "alpha != 1"
        if act_name == "leaky_relu" and not isinstance(m.inputs["slope"], (int, float)):
            return "the slope is not a constant"
        x_val, y_val = m.inputs["x"].meta.get("val"), other.meta.get("val")
        if x_val is None or y_val is None or not (x_val.dtype.is_floating_point and y_val.dtype.is_floating_point):
            return "needs floating-point tensors on both sides"
        return None

    def rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
        act = _unary_with_param(act_name, m.inputs.get("slope"))
        return ttnn_call(gm.graph, ttnn_op, (m.inputs["x"], m.inputs["other"]),
                         {"input_tensor_a_activations": [act]}, like=m.output)

    side = "a" if act_first else "b"
    return Pattern(f"{binary}_{act_name}_{side}", fn, check, rewrite)


PATTERNS = [_pattern(b, a, first) for b in BINARY for a in ACTIVATIONS for first in (True, False)]


class FuseBinaryActivations(FxPass):
    name = "fuse_binary_activations"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        if any(n.op == "call_function" and n.target in (aten.relu.default, aten.leaky_relu.default)
               for n in gm.graph.nodes):  # (no matcher runs on graphs without these activations)
            apply_patterns(gm, PATTERNS, stats)
        return self.result(gm, stats)
