"""insert_host_fallbacks: every ATen op no pass lowered becomes an explicit, reported host-fallback node.

Input:   graph after all lowering passes (TTNN nodes + leftover ATen nodes).
Output:  each leftover ATen node's target wrapped in ``HostOp``, with ``meta["fallback_reason"]`` (why the
         lowering declined, or "no ttnn lowering for <op>").  ``assign_layouts`` then moves its operands to
         the host (``ttnn.to_torch``) and its result back (``ttnn.from_torch``): the round trip is in the
         graph and counted, never hidden.
         An in-place fallback on an intermediate writes a host copy, so readers of the written value ordered
         after it are rewired to read the fallback's result.
Leaves alone: TTNN nodes.  Raises LoweringError for an in-place ATen op on a program input (a host copy
         could not update the device tensor the program mutates).
"""
from __future__ import annotations

import torch
import torch.fx

from ..errors import LoweringError
from ..lowering.ir import HostOp, aten_name, is_aten, source_module
from .pass_manager import FxPass, PassResult


class InsertHostFallbacks(FxPass):
    name = "insert_host_fallbacks"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"host_fallbacks": 0}
        order = {n: i for i, n in enumerate(gm.graph.nodes)}
        for node in gm.graph.nodes:
            if not is_aten(node):
                continue
            schema = node.target._schema
            written = node.args[0] if schema.is_mutable and node.args else None
            if isinstance(written, torch.fx.Node) and written.op == "placeholder":
                raise LoweringError(
                    f"{aten_name(node.target)} writes program input '{node.args[0].name}' in place "
                    f"(from {source_module(node) or '?'}) and has no ttnn lowering; a host fallback cannot "
                    f"update a device tensor. {node.meta.get('lowering_note', '')}".strip())
            if isinstance(written, torch.fx.Node):
                # the fallback writes a host copy: readers after the write must read that copy (its result)
                for user in [u for u in written.users if order[u] > order[node]]:
                    user.replace_input_with(written, node)
            node.meta["fallback_reason"] = node.meta.get("lowering_note") or f"no ttnn lowering for {aten_name(node.target)}"
            node.meta["source_op"] = aten_name(node.target)
            node.target = HostOp(node.target)
            stats["host_fallbacks"] += 1
        return self.result(gm, stats)
