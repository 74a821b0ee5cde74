"""fuse_binary_output_activation: an exact GELU that reads only an add / subtract / multiply / divide becomes that
op's output activation.

Input:   ATen elementwise ops (before ``lower_elementwise``; after ``conv1d_to_conv2d`` and ``lower_linear``, which
         fuse the activation after a conv or a linear, and ``sink_layout_conversions``, which may leave a reshape
         between the op and the activation).
Output:  ``gelu(op(a, b))`` and ``gelu(view(op(a, b), 4-D shape))`` with ``op`` read by nothing else, ``a`` a tensor →
         ``ttnn.<op>(a, b, activations=[UnaryWithParam(GELU, 0.0)])`` (and the reshape after it: GELU is
         elementwise, so it commutes with a view).  OP_CONTRACT §4: a binary op applies the activations listed in
         ``activations`` to its result; the binary ops take FLOAT32, and GELU's parameter 0 is the accurate (erf)
         GELU (passes/README.md "Contract additions").  The speech encoder's pattern: its group norm ends with
         ``centered * scale + beta`` and HF applies GELU next.  As a standalone op ``ttnn.gelu`` takes bfloat16 /
         bfloat8_b only, so a float32 program would round that activation to bfloat16 and back (two typecasts);
         fused, it is computed on the op's own result, and a bfloat16 program saves a pass over the tensor.
Leaves alone: ``approximate="tanh"`` GELU, a binary op with other readers or a scalar first operand, an add / sub
         with ``alpha != 1``, other activations (relu / leaky_relu *before* an add or multiply are
         ``fuse_binary_activations``'; after a conv or linear they are fused there).
"""
from __future__ import annotations

import numbers

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, construct, copy_meta, ttnn_call
from .graph_utils import Match, Pattern, apply_patterns, aten, set_val, shape
from .pass_manager import FxPass, PassResult

BINARY = {"add": (aten.add.Tensor, ops.add), "sub": (aten.sub.Tensor, ops.subtract),
          "mul": (aten.mul.Tensor, ops.multiply), "div": (aten.div.Tensor, ops.divide)}
GELU = construct("UnaryWithParam", Ref("UnaryOpType.GELU"), 0.0)


def _pattern(binary: str, through_view: bool) -> Pattern:
    aten_op, ttnn_op = BINARY[binary]

    if through_view:  # the rank-4 view sink_layout_conversions leaves: to the flattened NHWC of the next conv
        def fn(a, b):
            return aten.gelu.default(aten.view.default(aten_op(a, b), [1, 1, 1, 1]))
    else:
        def fn(a, b):
            return aten.gelu.default(aten_op(a, b))

    def check(gm: torch.fx.GraphModule, m: Match) -> str | None:
        gelu, op = m.output, m.nodes[binary]
        if gelu.kwargs.get("approximate", gelu.args[1] if len(gelu.args) > 1 else "none") != "none":
            return "tanh-approximate GELU"
        if binary in ("add", "sub") and (op.kwargs.get("alpha", 1) != 1 or len(op.args) > 2):
            return "alpha != 1"
        a, b = m.inputs["a"], m.inputs["b"]
        if not isinstance(a, torch.fx.Node) or not (isinstance(b, torch.fx.Node) or isinstance(b, numbers.Number)):
            return "the first operand is not a tensor"
        if not op.meta["val"].dtype.is_floating_point:
            return "not a floating-point op"
        return None

    def rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
        g, op = gm.graph, m.nodes[binary]
        y = ttnn_call(g, ttnn_op, (m.inputs["a"], m.inputs["b"]), {"activations": [GELU]}, like=op)
        set_val(y, shape(op), op.meta["val"].dtype)
        if not through_view:
            return y
        view = m.nodes["view"]
        out = copy_meta(g.call_function(aten.view.default, (y, list(shape(view)))), view)
        return set_val(out, shape(view), view.meta["val"].dtype)

    return Pattern(f"{binary}_gelu{'_view' if through_view else ''}", fn, check, rewrite, ignore_literals=True)


PATTERNS = [_pattern(b, v) for b in BINARY for v in (True, False)]


class FuseBinaryOutputActivation(FxPass):
    name = "fuse_binary_output_activation"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        if any(n.op == "call_function" and n.target is aten.gelu.default for n in gm.graph.nodes):
            apply_patterns(gm, PATTERNS, stats)  # (no matcher runs on graphs without a GELU)
        return self.result(gm, stats)
