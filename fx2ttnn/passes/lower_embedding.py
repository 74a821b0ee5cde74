"""lower_embedding: table lookups → ``ttnn.embedding(indices, table)``.

Input:   ATen graph.
Output:  ``aten.embedding(weight, idx)`` and ``aten.index_select(table, 0, idx)`` (row gathers: the decode
         step's positional-encoding, causal-mask and dropout-mask rows at ``position``) become
         ``ttnn.embedding(idx, table, layout=ttnn.TILE_LAYOUT)``; the output is requested in TILE layout so
         the consumers (adds, linears) need no conversion.
Leaves alone: ``index_select`` along other dims, tables whose row width is not a multiple of 32 (the
         contract's tile-width rule), ``padding_idx`` semantics beyond forward lookup (none at inference).
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, ttnn_call
from .graph_utils import aten, aten_nodes, replace, shape
from .pass_manager import FxPass, PassResult


class LowerEmbedding(FxPass):
    name = "lower_embedding"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"embedding": 0, "index_select": 0, "declined": 0}
        for node in aten_nodes(gm, aten.embedding.default, aten.index_select.default):
            if node.target is aten.embedding.default:
                table, idx, key = node.args[0], node.args[1], "embedding"
            else:
                table, dim, idx = node.args
                key = "index_select"
                if dim != 0 or len(shape(table)) != 2:
                    node.meta["lowering_note"] = "index_select declined: only row gathers of a 2-D table lower"
                    stats["declined"] += 1
                    continue
            if shape(table)[-1] % 32:
                node.meta["lowering_note"] = f"{key} declined: row width {shape(table)[-1]} is not a multiple of 32"
                stats["declined"] += 1
                continue
            with gm.graph.inserting_before(node):
                new = ttnn_call(gm.graph, ops.embedding, (idx, table), {"layout": Ref("TILE_LAYOUT")}, like=node)
            replace(node, new)
            stats[key] += 1
        return self.result(gm, stats)
