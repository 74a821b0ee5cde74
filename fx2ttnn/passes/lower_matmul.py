"""lower_matmul: ``aten.bmm`` / ``aten.matmul`` / ``aten.mm`` → ``ttnn.matmul``.

Input:   ATen graph.
Output:  ``ttnn.matmul(a, b)`` for operand ranks ≥ 2 whose batch dims follow the contract's broadcast rule
         (OP_CONTRACT §3: equal batch dims, or b's batch dims all 1).  A ``transpose(b, -1, -2)`` feeding only
         the matmul is absorbed as ``transpose_b=True`` (attention scores ``q @ kᵀ``).
Leaves alone: rank-1 operands and batch layouts the contract rejects (a batch-1 ``a`` against a batched ``b``
         of a different rank); those fall back.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import aten, aten_nodes, impure, normalize_dim, replace, shape
from .pass_manager import FxPass, PassResult


def _batch_ok(sa: tuple, sb: tuple) -> bool:
    ba, bb = sa[:-2], sb[:-2]
    if all(d == 1 for d in bb):
        return True
    if all(d == 1 for d in ba) and not (len(sa) == len(sb) and len(sa) >= 3):
        return False
    return len(ba) == len(bb) and tuple(ba) == tuple(bb) or all(d == 1 for d in ba)


def _is_last_two_transpose(node) -> bool:
    if not (isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target is aten.transpose.int):
        return False
    rank = len(shape(node))
    dims = {normalize_dim(node.args[1], rank), normalize_dim(node.args[2], rank)}
    return dims == {rank - 1, rank - 2} and len(node.users) == 1


class LowerMatmul(FxPass):
    name = "lower_matmul"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"matmul": 0, "transpose_b_absorbed": 0, "declined": 0}
        for node in aten_nodes(gm, aten.bmm.default, aten.matmul.default, aten.mm.default):
            a, b = node.args[0], node.args[1]
            sa, sb = shape(a), shape(b)
            if len(sa) < 2 or len(sb) < 2 or not _batch_ok(sa, sb):
                node.meta["lowering_note"] = f"matmul declined: operand shapes {list(sa)} x {list(sb)}"
                stats["declined"] += 1
                continue
            kwargs = {}
            if _is_last_two_transpose(b):
                b = b.args[0]
                kwargs["transpose_b"] = True
                stats["transpose_b_absorbed"] += 1
            with gm.graph.inserting_before(node):
                new = ttnn_call(gm.graph, ops.matmul, (a, b), kwargs, like=node)
            replace(node, new)
            stats["matmul"] += 1
        gm.graph.eliminate_dead_code(is_impure_node=impure)  # fx would drop unread ttnn in-place writes
        return self.result(gm, stats)
