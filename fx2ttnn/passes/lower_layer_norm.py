"""lower_layer_norm: ``aten.layer_norm`` over the last dim → ``ttnn.layer_norm`` with its epsilon.

Input:   ATen graph; gamma/beta as ``get_attr`` constants.
Output:  ``ttnn.layer_norm(x, epsilon=eps, weight=g[1, W], bias=b[1, W])``.  ``epsilon`` is always passed:
         ttnn's default is 1e-12 while HF SpeechT5 uses ``layer_norm_eps`` = 1e-5 (OP_CONTRACT §5).
         gamma/beta are reshaped to ``[1, W]``, the TILE form the contract accepts.
Leaves alone: normalization over more than the last dim, non-constant gamma/beta.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import add_constant, aten, aten_nodes, const_tensor, replace, shape
from .pass_manager import FxPass, PassResult


class LowerLayerNorm(FxPass):
    name = "lower_layer_norm"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"layer_norm": 0, "layer_norm_declined": 0}
        for node in aten_nodes(gm, aten.layer_norm.default):
            x, normalized_shape = node.args[0], list(node.args[1])
            weight = node.args[2] if len(node.args) > 2 else None
            bias = node.args[3] if len(node.args) > 3 else None
            eps = float(node.args[4]) if len(node.args) > 4 else 1e-5
            reason = None
            if normalized_shape != [shape(x)[-1]]:
                reason = f"normalizes over {normalized_shape}, ttnn.layer_norm only over the last dim"
            elif any(t is not None and const_tensor(gm, t) is None for t in (weight, bias)):
                reason = "gamma/beta are not constants"
            if reason:
                node.meta["lowering_note"] = f"layer_norm declined: {reason}"
                stats["layer_norm_declined"] += 1
                continue
            kwargs = {"epsilon": eps}
            for key, t in (("weight", weight), ("bias", bias)):
                if t is not None:
                    kwargs[key] = add_constant(gm, f"{t.target}_row", const_tensor(gm, t).reshape(1, -1), before=node)
            with gm.graph.inserting_before(node):
                new = ttnn_call(gm.graph, ops.layer_norm, (x,), kwargs, like=node)
            replace(node, new)
            stats["layer_norm"] += 1
        return self.result(gm, stats)
