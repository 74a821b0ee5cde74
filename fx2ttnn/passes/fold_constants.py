"""fold_constants: evaluate at lowering time every ATen node whose inputs are all constants.

Input:   ATen graph; weights/buffers are ``get_attr`` constants.
Output:  no ATen node whose tensor inputs are all constants: e.g. the encoder's relative-position index
         arithmetic and ``pe_k`` lookup become one ``[S, S, dh]`` table, ``alpha * pe[:S]`` becomes one
         table, ``arange`` and friends disappear.  Unused constants are dropped from the module.
         Gather folding: ``op(index_select(T, 0, i), c)`` (add/sub/mul/div by a constant that is the same for
         every row) with a constant table T becomes ``index_select(op(T, c), 0, i)`` — the decode step's
         ``alpha * pe[position]`` is one row gather from a pre-scaled table.
Leaves alone: in-place ops, ops with a non-tensor result, results larger than ``max_bytes`` (they stay
         computed at run time, which is cheaper than storing them), gathers with other users.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import copy_meta, is_aten
from .graph_utils import add_constant, aten, const_tensor, impure, replace, shape
from .pass_manager import FxPass, PassResult

_GATHER_FOLDABLE = {aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.div.Tensor}
_COMMUTATIVE = {aten.add.Tensor, aten.mul.Tensor}


class FoldConstants(FxPass):
    name = "fold_constants"

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"folded": 0, "constants_dropped": 0}
        g = gm.graph
        for node in list(g.nodes):
            if not is_aten(node) or impure(node):
                continue
            inputs = node.all_input_nodes
            if not all(const_tensor(gm, n) is not None for n in inputs):
                continue
            env = {n: const_tensor(gm, n) for n in inputs}
            args = torch.fx.node.map_arg(node.args, env.__getitem__)
            kwargs = torch.fx.node.map_arg(node.kwargs, env.__getitem__)
            with torch.no_grad():
                out = node.target(*args, **kwargs)
            if not isinstance(out, torch.Tensor) or out.numel() * out.element_size() > self.max_bytes:
                continue
            new = add_constant(gm, node.name, out.clone(), before=node)
            replace(node, new, keep_val=False)
            stats["folded"] += 1
        stats["gathers_folded"] = self._fold_gathers(gm)
        g.eliminate_dead_code(is_impure_node=impure)
        stats["constants_dropped"] = prune_constants(gm)
        return self.result(gm, stats)

    def _fold_gathers(self, gm: torch.fx.GraphModule) -> int:
        folded = 0
        for node in list(gm.graph.nodes):
            if not (is_aten(node) and node.target in _GATHER_FOLDABLE and len(node.args) == 2):
                continue
            a, b = node.args
            if node.target in _COMMUTATIVE and not _is_const_gather(gm, a) and _is_const_gather(gm, b):
                a, b = b, a
            if not _is_const_gather(gm, a) or len(a.users) != 1:
                continue
            table = const_tensor(gm, a.args[0])
            c = const_tensor(gm, b) if isinstance(b, torch.fx.Node) else b
            if c is None or not isinstance(c, (torch.Tensor, int, float)):
                continue
            if isinstance(c, torch.Tensor) and not (c.dim() == 0 or (c.shape[-1] in (1, table.shape[-1])
                                                                     and c.numel() == c.shape[-1])):
                continue  # the constant differs between rows: it is not a per-row transform
            row = c.reshape(-1) if isinstance(c, torch.Tensor) and c.dim() else c
            with torch.no_grad():
                new_table = node.target(table, row)
            if tuple(shape(node))[-1] != new_table.shape[-1]:
                continue
            t = add_constant(gm, f"{a.args[0].target}_{node.target._opname}", new_table, before=node)
            with gm.graph.inserting_before(node):
                gather = gm.graph.call_function(aten.index_select.default, (t, 0, a.args[2]))
            gather.meta["val"] = torch.empty(tuple(shape(a))[:-1] + (new_table.shape[-1],), device="meta")
            copy_meta(gather, a)
            view = gather
            if tuple(shape(node)) != tuple(gather.meta["val"].shape):
                with gm.graph.inserting_before(node):
                    view = gm.graph.call_function(aten.view.default, (gather, list(shape(node))))
                view.meta["val"] = node.meta["val"]
                copy_meta(view, node)
            replace(node, view)
            folded += 1
        return folded


def _is_const_gather(gm: torch.fx.GraphModule, node) -> bool:
    return (isinstance(node, torch.fx.Node) and is_aten(node) and node.target is aten.index_select.default
            and node.args[1] == 0 and const_tensor(gm, node.args[0]) is not None)


def prune_constants(gm: torch.fx.GraphModule) -> int:
    """Delete buffers no ``get_attr`` refers to any more (so folded-away weights do not linger)."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    dropped = 0
    for name in list(gm._buffers):
        if name not in used:
            del gm._buffers[name]
            dropped += 1
    return dropped
