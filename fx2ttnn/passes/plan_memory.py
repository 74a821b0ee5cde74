"""plan_memory: free every device tensor after its last use (``ttnn.deallocate``) and compute peak device memory.

Input:   a lowered TTNN program (after assign_layouts / hoist_invariants): every value has its TensorSpec.
Output:  ``ttnn.deallocate(x)`` right after the last reader of each per-call device intermediate, so the device
         holds only live values; ``graph_module.meta["memory"]`` = {``constants``: bytes bound once (weights,
         tables, prepared conv weights), ``inputs``: program input bytes, ``peak``: the most device bytes live at
         once while the program runs (constants + inputs + live intermediates), ``peak_after``: the node at the
         peak}.  ``tts.report()`` and ``fx2ttnn dump`` show these.
         Liveness is computed on a networkx DiGraph of the program: values joined by alias edges (ops that may
         return a view of their input on device — reshape, squeeze/unsqueeze, layout/dtype/memory conversions that
         can be no-ops — and in-place ops, whose value is their target) form one buffer (a connected component),
         which is freed after the last use of any of its members.
Leaves alone: program inputs and outputs (and anything aliasing them), constants, host values, in-place targets.
"""
from __future__ import annotations

import operator

import networkx as nx
import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import OpKind, TTNNOp, is_bind_time, ttnn_call
from .pass_manager import FxPass, PassResult

# ops whose result may share its input's device buffer (a view, or the input itself when nothing changes)
MAY_ALIAS = {id(op) for op in (ops.reshape, ops.to_layout, ops.typecast, ops.to_memory_config,
                               ops.interleaved_to_sharded, ops.sharded_to_interleaved)}


def _on_device(node: torch.fx.Node) -> bool:
    spec = node.meta.get("tensor_spec")
    return spec is not None and spec.is_ttnn and spec.on_device


def _bytes(node: torch.fx.Node) -> int:
    spec = node.meta.get("tensor_spec")
    return spec.nbytes if spec is not None and spec.is_ttnn and spec.on_device else 0




class PlanMemory(FxPass):
    name = "plan_memory"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        g = gm.graph
        nodes = list(g.nodes)
        order = {n: i for i, n in enumerate(nodes)}
        const: set[torch.fx.Node] = set()
        for n in nodes:
            if is_bind_time(n, const):
                const.add(n)

        dag = nx.DiGraph()
        alias = nx.Graph()
        for n in nodes:
            dag.add_node(n)
            alias.add_node(n)
            for a in n.all_input_nodes:
                dag.add_edge(a, n)
            target = n.target
            if isinstance(target, TTNNOp) and (id(target) in MAY_ALIAS or target.inplace is not None):
                alias.add_edge(n, n.args[target.inplace or 0])
            elif target is operator.getitem:
                pass  # tuple elements (q, k, v) are separate buffers

        out_node = nodes[-1]
        pinned = {n for n in nodes if n.op == "placeholder" or n in const} | set(out_node.all_input_nodes)
        frees: dict[torch.fx.Node, list[torch.fx.Node]] = {}
        buffers = []
        for component in nx.connected_components(alias):
            members = [n for n in component if n.op == "call_function" and _on_device(n)]
            if not members or any(n in pinned for n in component):
                continue
            readers = [u for n in component for u in dag.successors(n) if u not in component or u is n]
            last = max(readers + members, key=order.__getitem__)
            owner = min(members, key=order.__getitem__)  # the op that allocated the buffer
            buffers.append((owner, last))
            frees.setdefault(last, []).append(owner)

        inserted = 0
        for last, owners in frees.items():
            anchor = last if last.op != "output" else None
            if anchor is None:
                continue
            for owner in owners:
                with g.inserting_after(anchor):
                    d = ttnn_call(g, ops.deallocate, (owner,), like=owner)
                anchor = d
                inserted += 1

        gm.meta["memory"] = self._peak(nodes, const, buffers, order)
        return self.result(gm, {"deallocate": inserted})

    @staticmethod
    def _peak(nodes: list[torch.fx.Node], const: set, buffers: list, order: dict) -> dict:
        constants = sum(_bytes(n) for n in const if n.op == "call_function")
        inputs = sum(_bytes(n) for n in nodes if n.op == "placeholder")
        live = constants + inputs
        peak, peak_at = live, "inputs"
        frees_at: dict[int, int] = {}
        owners = {owner for owner, _ in buffers}
        for owner, last in buffers:
            frees_at[order[last]] = frees_at.get(order[last], 0) + _bytes(owner)
        for n in nodes:
            if n in const or n.op != "call_function":
                continue
            if getattr(n.target, "kind", None) is OpKind.TRANSFER and not _on_device(n):
                continue
            if n in owners or (_on_device(n) and getattr(n.target, "inplace", None) is None
                               and not (isinstance(n.target, TTNNOp) and id(n.target) in MAY_ALIAS)):
                live += _bytes(n)
            if live > peak:
                peak, peak_at = live, n.name
            live -= frees_at.get(order[n], 0)
        return {"constants": constants, "inputs": inputs, "peak": peak, "peak_after": peak_at}
