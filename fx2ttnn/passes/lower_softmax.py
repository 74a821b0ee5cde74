"""lower_softmax: ``aten.softmax`` / ``aten._softmax`` → ``ttnn.softmax(x, dim)``.

Input:   ATen graph.
Output:  ``ttnn.softmax(x, dim)`` (numerically stable, the default).
Leaves alone: softmax that upcasts (``half_to_float=True``); it falls back.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import aten, aten_nodes, replace
from .pass_manager import FxPass, PassResult


class LowerSoftmax(FxPass):
    name = "lower_softmax"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"softmax": 0}
        for node in aten_nodes(gm, aten.softmax.int, aten._softmax.default):
            x, dim = node.args[0], node.args[1]
            if len(node.args) > 2 and node.args[2] is True and node.target is aten._softmax.default:
                node.meta["lowering_note"] = "softmax declined: half_to_float"
                continue
            with gm.graph.inserting_before(node):
                new = ttnn_call(gm.graph, ops.softmax, (x, dim), like=node)
            replace(node, new)
            stats["softmax"] += 1
        return self.result(gm, stats)
