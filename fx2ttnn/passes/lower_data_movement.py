"""lower_data_movement: views, transposes, permutes, concat, slice/select, expand → ttnn data movement.

Input:   ATen graph (after ``decompose``: squeeze/unsqueeze/flatten are views).
Output:  ``view``/``reshape``/``_unsafe_view`` → ``ttnn.reshape(x, shape)`` with the concrete shape;
         ``transpose`` → ``ttnn.transpose``; ``permute`` → ``ttnn.permute``; ``cat`` → ``ttnn.concat``;
         ``slice`` → ``ttnn.slice`` with explicit starts/ends/steps for every dim (end exclusive, clamped);
         ``select`` → ``ttnn.slice`` + ``ttnn.reshape``; ``expand`` → ``ttnn.repeat``.
Leaves alone: ops not listed.  (Views of constants are lowered like any other view; after ``fold_constants``
         there are none left to lower.)
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .graph_utils import aten, aten_nodes, normalize_dim, replace, set_val, shape, val
from .pass_manager import FxPass, PassResult

_VIEWS = {aten.view.default, aten.reshape.default, aten._unsafe_view.default}


class LowerDataMovement(FxPass):
    name = "lower_data_movement"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"reshape": 0, "transpose": 0, "permute": 0, "concat": 0, "slice": 0, "repeat": 0}
        g = gm.graph
        for node in aten_nodes(gm):
            t = node.target
            with g.inserting_before(node):
                if t in _VIEWS:
                    new, key = ttnn_call(g, ops.reshape, (node.args[0], list(shape(node))), like=node), "reshape"
                elif t is aten.transpose.int:
                    new, key = ttnn_call(g, ops.transpose, tuple(node.args[:3]), like=node), "transpose"
                elif t is aten.t.default:
                    new, key = ttnn_call(g, ops.transpose, (node.args[0], 0, 1), like=node), "transpose"
                elif t is aten.permute.default:
                    new, key = ttnn_call(g, ops.permute, (node.args[0], list(node.args[1])), like=node), "permute"
                elif t is aten.cat.default:
                    dim = node.args[1] if len(node.args) > 1 else 0
                    new, key = ttnn_call(g, ops.concat, (list(node.args[0]), dim), like=node), "concat"
                elif t is aten.slice.Tensor:
                    new, key = self._slice(g, node), "slice"
                elif t is aten.select.int:
                    new, key = self._select(g, node), "slice"
                elif t is aten.expand.default:
                    new, key = self._expand(g, node), "repeat"
                else:
                    continue
            replace(node, new)
            stats[key] += 1
        return self.result(gm, stats)

    @staticmethod
    def _bounds(in_shape: tuple[int, ...], dim: int, start, end, step) -> tuple[list, list, list]:
        starts, ends, steps = [0] * len(in_shape), list(in_shape), [1] * len(in_shape)
        size = in_shape[dim]
        start = 0 if start is None else (start + size if start < 0 else start)
        end = size if end is None else (end + size if end < 0 else end)
        starts[dim], ends[dim], steps[dim] = max(0, min(start, size)), max(0, min(end, size)), step
        return starts, ends, steps

    def _slice(self, g: torch.fx.Graph, node: torch.fx.Node) -> torch.fx.Node:
        x = node.args[0]
        in_shape = shape(x)
        dim = normalize_dim(node.args[1] if len(node.args) > 1 else 0, len(in_shape))
        start = node.args[2] if len(node.args) > 2 else None
        end = node.args[3] if len(node.args) > 3 else None
        step = node.args[4] if len(node.args) > 4 else 1
        starts, ends, steps = self._bounds(in_shape, dim, start, end, step)
        kwargs = {"slice_step": steps} if step != 1 else {}
        return ttnn_call(g, ops.slice_, (x, starts, ends), kwargs, like=node)

    def _select(self, g: torch.fx.Graph, node: torch.fx.Node) -> torch.fx.Node:
        x, dim, index = node.args
        in_shape = shape(x)
        dim = normalize_dim(dim, len(in_shape))
        index = index + in_shape[dim] if index < 0 else index
        starts, ends, _ = self._bounds(in_shape, dim, index, index + 1, 1)
        sl = ttnn_call(g, ops.slice_, (x, starts, ends), like=node)
        kept = list(in_shape)
        kept[dim] = 1
        set_val(sl, tuple(kept), val(x).dtype)
        return ttnn_call(g, ops.reshape, (sl, list(shape(node))), like=node)

    def _expand(self, g: torch.fx.Graph, node: torch.fx.Node) -> torch.fx.Node:
        x = node.args[0]
        out = shape(node)
        src = (1,) * (len(out) - len(shape(x))) + shape(x)
        if len(src) != len(shape(x)):
            x = ttnn_call(g, ops.reshape, (x, list(src)), like=node)
            set_val(x, src, val(node).dtype)
        repeats = [o // s if s != o else 1 for o, s in zip(out, src)]
        return ttnn_call(g, ops.repeat, (x, repeats), like=node)
