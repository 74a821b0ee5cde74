"""fold_constants: evaluate at lowering time every ATen node whose inputs are all constants.

Input:   ATen graph; weights/buffers are ``get_attr`` constants.
Output:  no ATen node whose tensor inputs are all constants: e.g. the encoder's relative-position index
         arithmetic and ``pe_k`` lookup become one ``[S, S, dh]`` table, ``alpha * pe[:S]`` becomes one
         table, ``arange`` and friends disappear.  Unused constants are dropped from the module.
Leaves alone: in-place ops, ops with a non-tensor result, results larger than ``max_bytes`` (they stay
         computed at run time, which is cheaper than storing them).
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import is_aten
from .graph_utils import add_constant, const_tensor, impure, replace
from .pass_manager import FxPass, PassResult


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
        g.eliminate_dead_code(is_impure_node=impure)
        stats["constants_dropped"] = prune_constants(gm)
        return self.result(gm, stats)


def prune_constants(gm: torch.fx.GraphModule) -> int:
    """Delete buffers no ``get_attr`` refers to any more (so folded-away weights do not linger)."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    dropped = 0
    for name in list(gm._buffers):
        if name not in used:
            del gm._buffers[name]
            dropped += 1
    return dropped
