"""lower_embedding: table lookups → ``ttnn.embedding(indices, table)``.

Input:   ATen graph.
Output:  ``aten.embedding(weight, idx)`` and ``aten.index_select(table, 0, idx)`` (row gathers: the decode
         step's positional-encoding, causal-mask and dropout-mask rows at ``position``) become
         ``ttnn.embedding(idx, table, layout=ttnn.TILE_LAYOUT)``; the output is requested in TILE layout so
         the consumers (adds, linears) need no conversion.  A table whose row width W is not a multiple of 32
         (the contract's tile-width rule) is padded with zero columns to the next multiple: a constant table
         here, at lowering time; a program input by ``ttnn.pad`` (per utterance when the input is, after
         ``hoist_invariants``); the gathered rows are then cut back to W with ``ttnn.slice``.
Leaves alone: ``index_select`` along other dims, ``padding_idx`` semantics beyond forward lookup (none at
         inference).
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, ttnn_call
from .graph_utils import add_constant, aten, aten_nodes, const_tensor, replace, set_val, shape, val
from .pass_manager import FxPass, PassResult

TILE = 32


def _padded_table(gm: torch.fx.GraphModule, table: torch.fx.Node, like: torch.fx.Node) -> torch.fx.Node:
    """``table`` [R, W] with zero columns up to the next multiple of 32."""
    rows, width = shape(table)
    extra = -width % TILE
    const = const_tensor(gm, table)
    if const is not None:
        return add_constant(gm, f"{table.target}_padded", torch.nn.functional.pad(const, (0, extra)), before=like)
    padded = ttnn_call(gm.graph, ops.pad, (table, [(0, 0), (0, extra)], 0.0), like=like)
    return set_val(padded, (rows, width + extra), val(table).dtype)


class LowerEmbedding(FxPass):
    name = "lower_embedding"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"embedding": 0, "index_select": 0, "padded_width": 0, "declined": 0}
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
            width = shape(table)[-1]
            with gm.graph.inserting_before(node):
                if width % TILE:
                    table = _padded_table(gm, table, node)
                new = ttnn_call(gm.graph, ops.embedding, (idx, table), {"layout": Ref("TILE_LAYOUT")}, like=node)
                if width % TILE:
                    out = shape(node)
                    set_val(new, out[:-1] + (shape(table)[-1],), val(node).dtype)
                    new = ttnn_call(gm.graph, ops.slice_, (new, [0] * len(out), list(out)), like=node)
                    stats["padded_width"] += 1
            replace(node, new)
            stats[key] += 1
        return self.result(gm, stats)
