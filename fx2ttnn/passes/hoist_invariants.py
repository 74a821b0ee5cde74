"""hoist_invariants: move everything a step program computes from per-utterance inputs into a prologue.

Input:   a lowered TTNN step program (after assign_layouts: every value has its TensorSpec);
         ``invariant_inputs`` names the inputs that are the same on every call of the step (speaker, encoder
         K/V and masks, dropout tables).
Output:  loop-invariant nodes (``graph_utils.loop_invariant``: depending only on those inputs and constants)
         are moved into a prologue GraphModule, stored as ``graph_module.meta["prologue"]`` with its
         signature; each value the step still needs becomes a new step input ``hoisted_<name>`` with the same
         spec, and invariant inputs the step no longer reads are dropped from its signature.  The generator
         runs the prologue once per utterance: e.g. the speaker projection, the cross-attention mask broadcast
         to SDPA-decode's ``[1, B, H, S]``, bias rows built from them.
Leaves alone: constant-only nodes (bound once when the program is bound), in-place ops, and everything that
         depends on a per-step input (frame, position, caches).
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import ProgramSignature
from .graph_utils import impure, loop_invariant
from .pass_manager import FxPass, PassResult


class HoistInvariants(FxPass):
    name = "hoist_invariants"

    def __init__(self, invariant_inputs: set[str] | list[str] = ()):
        self.invariant_inputs = set(invariant_inputs)

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        g = gm.graph
        inv = loop_invariant(gm, self.invariant_inputs)
        hoisted = [n for n in g.nodes if n in inv and n.op == "call_function"]
        if not hoisted:
            return PassResult(gm, False, {})
        hoisted_set = set(hoisted)
        boundary = [n for n in hoisted if any(u not in hoisted_set for u in n.users)]

        # the prologue: copies of the hoisted nodes, their inputs as placeholders, the boundary as outputs
        pg = torch.fx.Graph()
        env: dict[torch.fx.Node, torch.fx.Node] = {}
        pro_inputs = []
        for n in g.nodes:
            if n.op == "placeholder" and n in inv and any(u in hoisted_set for u in n.users):
                env[n] = pg.placeholder(n.name)
                env[n].meta = dict(n.meta)
                pro_inputs.append(n.name)
        consts = _constant_ancestors(hoisted, inv)
        for n in g.nodes:
            if n in hoisted_set or n in consts:
                env[n] = pg.node_copy(n, lambda a: env[a])
        pg.output(tuple(env[b] for b in boundary))
        prologue = torch.fx.GraphModule(gm, pg, class_name="prologue")

        # the step: boundary values become inputs, hoisted nodes and unread invariant inputs go
        last_ph = [n for n in g.nodes if n.op == "placeholder"][-1]
        names = []
        taken = {n.name for n in g.nodes}
        for b in reversed(boundary):
            with g.inserting_after(last_ph):
                ph = g.placeholder(_hoisted_name(b, taken))
            ph.meta["tensor_spec"] = b.meta["tensor_spec"]
            if "val" in b.meta:
                ph.meta["val"] = b.meta["val"]
            for u in list(b.users):
                if u not in hoisted_set:
                    u.replace_input_with(b, ph)
            names.insert(0, ph.name)
        for n in reversed(hoisted):
            g.erase_node(n)
        dropped = 0
        for n in list(g.nodes):
            if n.op == "placeholder" and n.name in self.invariant_inputs and not n.users:
                g.erase_node(n)
                dropped += 1
        g.eliminate_dead_code(is_impure_node=impure)
        gm.meta["prologue"] = (prologue, ProgramSignature(pro_inputs, names))
        return self.result(gm, {"hoisted": len(hoisted), "step_inputs_added": len(boundary),
                                "step_inputs_dropped": dropped})


def _hoisted_name(node: torch.fx.Node, taken: set[str]) -> str:
    """A readable input name: what the value is for (the module of its first per-step consumer), else the op."""
    from ..lowering.ir import source_module
    consumers = [u for u in node.users]
    where = source_module(consumers[0]) if consumers else ""
    parts = [p for p in where.split(".") if p] or [node.name]
    keep = parts[-3:] if len(parts) >= 3 and parts[-2].isdigit() else parts[-2:]  # layers.0.encoder_attn
    base = "hoisted_" + "_".join(keep)
    base = "".join(ch if ch.isalnum() else "_" for ch in base)
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _constant_ancestors(hoisted: list[torch.fx.Node], inv: set[torch.fx.Node]) -> set[torch.fx.Node]:
    """The constant nodes (weights, their uploads) the hoisted nodes read: the prologue needs its own copies."""
    out: set[torch.fx.Node] = set()
    stack = [a for n in hoisted for a in n.all_input_nodes if a not in inv]
    while stack:
        n = stack.pop()
        if n not in out and n.op in ("get_attr", "call_function"):
            out.add(n)
            stack.extend(n.all_input_nodes)
    return out
