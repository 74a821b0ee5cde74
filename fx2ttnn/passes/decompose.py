"""decompose: rewrite ATen ops that have no ttnn counterpart into ones that do, exactly.

Input:   canonical ATen graph.
Output:  ``linalg_vector_norm(x, 2, dims, keepdim)`` → ``sqrt(sum(x * x, dims, keepdim))``;
         ``clamp_min(x, c)`` → ``where(x < c, c, x)`` (a NaN x stays NaN, x == c keeps x's sign of zero, as
         ``clamp_min`` does); ``rsub(x, c)`` → ``add(neg(x), c)`` (``(x - c) * -1`` would turn c - c into -0.0);
         ``squeeze``/``unsqueeze``/``flatten`` → ``view`` (reshape); ``t``/``permute`` of rank ≤ 2 → ``transpose``.
Leaves alone: norms of other orders, ``clamp_min`` with a NaN bound, ``rsub`` with ``alpha != 1`` and every op
         not listed (they stay for the lowering or a fallback).
"""
from __future__ import annotations

import math

import torch
import torch.fx

from .graph_utils import aten, aten_nodes, normalize_dim, replace, val
from .pass_manager import FxPass, PassResult

_TO_VIEW = {aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.unsqueeze.default,
            aten.flatten.using_ints}


class Decompose(FxPass):
    name = "decompose"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"vector_norm": 0, "clamp_min": 0, "rsub": 0, "view": 0, "transpose": 0, "clamp_min_declined": 0}
        g = gm.graph
        for node in aten_nodes(gm):
            t = node.target
            with g.inserting_before(node):
                if t is aten.linalg_vector_norm.default and (node.args[1] if len(node.args) > 1 else 2) == 2:
                    x = node.args[0]
                    dims = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim")
                    keep = node.args[3] if len(node.args) > 3 else node.kwargs.get("keepdim", False)
                    sq = g.call_function(aten.mul.Tensor, (x, x))
                    sq.meta["val"] = val(x)
                    s = g.call_function(aten.sum.dim_IntList, (sq, list(dims) if dims is not None else None, keep))
                    s.meta["val"] = val(node)
                    new = g.call_function(aten.sqrt.default, (s,))
                    stats["vector_norm"] += 1
                elif t is aten.clamp_min.default:
                    x, c = node.args
                    if math.isnan(c):  # clamp_min(x, nan) is nan everywhere: not worth an op form
                        node.meta.setdefault("lowering_note", f"{self.name} declined: clamp_min with a NaN bound")
                        stats["clamp_min_declined"] += 1
                        continue
                    # x < c is false for a NaN x and for x == c, so x itself comes through (NaN, -0.0 kept)
                    lt = g.call_function(aten.lt.Scalar, (x, c))
                    lt.meta["val"] = torch.empty_like(val(x), dtype=torch.bool)
                    new = g.call_function(aten.where.ScalarSelf, (lt, c, x))
                    stats["clamp_min"] += 1
                elif t is aten.rsub.Scalar and (node.args[2:] or [node.kwargs.get("alpha", 1)])[0] == 1:
                    x, c = node.args[0], node.args[1]
                    neg = g.call_function(aten.neg.default, (x,))  # c - x is c + (-x) in IEEE arithmetic
                    neg.meta["val"] = val(node)
                    new = g.call_function(aten.add.Tensor, (neg, c))
                    stats["rsub"] += 1
                elif t in _TO_VIEW:
                    new = g.call_function(aten.view.default, (node.args[0], list(val(node).shape)))
                    stats["view"] += 1
                elif (t is aten.t.default or t is aten.permute.default) and val(node).dim() <= 2:
                    swaps = val(node).dim() == 2 and (t is aten.t.default or normalize_dim(node.args[1][0], 2) == 1)
                    if swaps:
                        new = g.call_function(aten.transpose.int, (node.args[0], 0, 1))
                    else:  # rank < 2, or the identity permutation
                        new = g.call_function(aten.view.default, (node.args[0], list(val(node).shape)))
                    stats["transpose" if swaps else "view"] += 1
                else:
                    continue
            replace(node, new)
        return self.result(gm, stats)
