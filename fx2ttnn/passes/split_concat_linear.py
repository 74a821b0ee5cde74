"""split_concat_linear: a linear over ``cat([x, s])`` whose ``s`` is loop-invariant → two linears summed.

Input:   ATen graph of a step program; ``invariant_inputs`` names the inputs that are the same on every call
         (per-utterance data such as the speaker embedding).
Output:  ``linear(cat([x, s], -1), W, b)`` with ``s`` loop-invariant and ``x`` not →
         ``add(linear(x, W[:, :dx], b), linear(s, W[:, dx:]))`` (``cat([a, b]) @ Wᵀ = a @ W₁ᵀ + b @ W₂ᵀ``), weights
         split once here.  HF's prenet projects ``cat([x, speaker])`` every step; after this pass the speaker
         half is a per-utterance value that ``hoist_invariants`` computes once, and ``lower_linear`` makes the
         sum the bias of the remaining linear.
Leaves alone: concats along other dims, with more than two parts, with other users, or whose parts are all
         (in)variant; non-constant weights.  Each such linear over a concat counts as ``declined`` and gets a
         ``lowering_note`` saying why.  A program without invariant inputs (not a step program) has nothing to
         split: the pass looks at none of its concats.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import copy_meta
from .graph_utils import (add_constant, arg, aten, aten_nodes, const_tensor, loop_invariant, normalize_dim, replace,
                          set_val, shape)
from .pass_manager import FxPass, PassResult


def _why_not(gm: torch.fx.GraphModule, linear: torch.fx.Node, cat: torch.fx.Node,
             inv: set[torch.fx.Node]) -> str | None:
    """Why ``linear(cat(...))`` is not split (None: it is)."""
    if len(cat.users) != 1:
        return "the concat has other users"
    parts = arg(cat, 0, "tensors")
    if len(parts) != 2:
        return f"the concat has {len(parts)} parts (two are split)"
    rank = len(shape(cat))
    if normalize_dim(arg(cat, 1, "dim", 0), rank) != rank - 1:
        return "the concat is not along the last dim"
    flags = [p in inv for p in parts]
    if flags == [False, False]:
        return "no part is loop-invariant"
    if flags == [True, True]:
        return "every part is loop-invariant (the whole linear is per-utterance work)"
    if const_tensor(gm, arg(linear, 1, "weight")) is None:
        return "the weight is not a constant"
    return None


class SplitConcatLinear(FxPass):
    name = "split_concat_linear"

    def __init__(self, invariant_inputs: set[str] | list[str] = ()):
        self.invariant_inputs = set(invariant_inputs)

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"split": 0, "declined": 0}
        if not self.invariant_inputs:
            return self.result(gm, stats)
        inv = loop_invariant(gm, self.invariant_inputs)
        g = gm.graph
        for node in aten_nodes(gm, aten.linear.default):
            cat = arg(node, 0, "input")
            if not (isinstance(cat, torch.fx.Node) and cat.target is aten.cat.default):
                continue
            why = _why_not(gm, node, cat, inv)
            if why is not None:
                node.meta.setdefault("lowering_note", f"{self.name} declined: {why}")
                stats["declined"] += 1
                continue
            parts = arg(cat, 0, "tensors")
            flags = [p in inv for p in parts]
            weight, bias = arg(node, 1, "weight"), arg(node, 2, "bias")
            w = const_tensor(gm, weight)
            split = shape(parts[0])[-1]
            with g.inserting_before(node):
                outs = []
                for i, (part, wpart) in enumerate(zip(parts, (w[:, :split], w[:, split:]))):
                    wn = add_constant(gm, f"{weight.target}_part{i}", wpart.contiguous(), before=node)
                    b = bias if not flags[i] else None  # the bias goes with the per-step half
                    lin = g.call_function(aten.linear.default, (part, wn) + ((b,) if b is not None else ()))
                    outs.append(set_val(copy_meta(lin, node), shape(node), torch.float32))
                variant, invariant = (outs[0], outs[1]) if flags[1] else (outs[1], outs[0])
                new = g.call_function(aten.add.Tensor, (variant, invariant))
            replace(node, new)
            g.erase_node(cat)
            stats["split"] += 1
        return self.result(gm, stats)
