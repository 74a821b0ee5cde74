"""split_concat_linear: a linear over ``cat([x, s])`` whose ``s`` is loop-invariant → two linears summed.

Input:   ATen graph of a step program; ``invariant_inputs`` names the inputs that are the same on every call
         (per-utterance data such as the speaker embedding).
Output:  ``linear(cat([x, s], -1), W, b)`` with ``s`` loop-invariant and ``x`` not →
         ``add(linear(x, W[:, :dx], b), linear(s, W[:, dx:]))`` (``cat([a, b]) @ Wᵀ = a @ W₁ᵀ + b @ W₂ᵀ``), weights
         split once here.  HF's prenet projects ``cat([x, speaker])`` every step; after this pass the speaker
         half is a per-utterance value that ``hoist_invariants`` computes once, and ``lower_linear`` makes the
         sum the bias of the remaining linear.
Leaves alone: concats along other dims, with more than two parts, or whose parts are all (in)variant;
         non-constant weights.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import copy_meta
from .graph_utils import add_constant, aten, aten_nodes, const_tensor, loop_invariant, replace, set_val, shape
from .pass_manager import FxPass, PassResult


class SplitConcatLinear(FxPass):
    name = "split_concat_linear"

    def __init__(self, invariant_inputs: set[str] | list[str] = ()):
        self.invariant_inputs = set(invariant_inputs)

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"split": 0}
        inv = loop_invariant(gm, self.invariant_inputs)
        g = gm.graph
        for node in aten_nodes(gm, aten.linear.default):
            cat = node.args[0]
            if not (isinstance(cat, torch.fx.Node) and cat.target is aten.cat.default and len(cat.users) == 1):
                continue
            parts, dim = cat.args[0], cat.args[1] if len(cat.args) > 1 else 0
            if len(parts) != 2 or dim not in (-1, len(shape(cat)) - 1):
                continue
            flags = [p in inv for p in parts]
            if flags[0] == flags[1]:
                continue
            w = const_tensor(gm, node.args[1])
            bias = node.args[2] if len(node.args) > 2 else None
            if w is None:
                continue
            split = shape(parts[0])[-1]
            with g.inserting_before(node):
                outs = []
                for i, (part, wpart) in enumerate(zip(parts, (w[:, :split], w[:, split:]))):
                    wn = add_constant(gm, f"{node.args[1].target}_part{i}", wpart.contiguous(), before=node)
                    b = bias if not flags[i] else None  # the bias goes with the per-step half
                    lin = g.call_function(aten.linear.default, (part, wn) + ((b,) if b is not None else ()))
                    outs.append(set_val(copy_meta(lin, node), shape(node), torch.float32))
                variant, invariant = (outs[0], outs[1]) if flags[1] else (outs[1], outs[0])
                new = g.call_function(aten.add.Tensor, (variant, invariant))
            replace(node, new)
            g.erase_node(cat)
            stats["split"] += 1
        return self.result(gm, stats)
