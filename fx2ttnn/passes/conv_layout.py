"""Layout markers between torch's NCL and ttnn's flattened NHWC, used by the conv passes.

ttnn convolutions take and return activations as flattened NHWC ``[1, 1, N*H*W, C]`` (OP_CONTRACT §8); a 1-D
conv's ``[B, C, L]`` is ``[1, 1, B*L, C]`` with H = 1, W = L.  The conv passes wrap each ttnn conv between
``to_flat(x, B, L)`` and ``from_flat(y, B, L)`` marker nodes; ``sink_layout_conversions`` then moves the markers
through the elementwise ops around the convs, cancels ``to_flat(from_flat(y))`` pairs (so consecutive convs hand
each other flattened data) and turns whatever is left into ``permute`` + ``view``.  Markers never reach a
lowered program.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import copy_meta
from .graph_utils import aten, set_val, shape


def to_flat(x: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """``[B, C, L]`` → ``[1, 1, B*L, C]``."""
    return x.permute(0, 2, 1).reshape(1, 1, batch * length, x.shape[1])


def from_flat(y: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """``[1, 1, B*L, C]`` → ``[B, C, L]``."""
    return y.reshape(batch, length, y.shape[-1]).permute(0, 2, 1)


MARKERS = (to_flat, from_flat)


def is_marker(node, marker) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target is marker


def make_marker(g: torch.fx.Graph, marker, x: torch.fx.Node, batch: int, length: int, like: torch.fx.Node,
                channels: int) -> torch.fx.Node:
    n = copy_meta(g.call_function(marker, (x, batch, length)), like)
    out = (1, 1, batch * length, channels) if marker is to_flat else (batch, channels, length)
    return set_val(n, out, torch.float32)


def materialize(g: torch.fx.Graph, node: torch.fx.Node) -> torch.fx.Node:
    """The permute + view a remaining marker stands for (ATen ops, lowered by lower_data_movement)."""
    x, batch, length = node.args
    with g.inserting_before(node):
        if node.target is to_flat:
            c = shape(x)[1]
            p = set_val(g.call_function(aten.permute.default, (x, [0, 2, 1])), (batch, length, c), torch.float32)
            out = g.call_function(aten.view.default, (p, [1, 1, batch * length, c]))
        else:
            c = shape(x)[-1]
            v = set_val(g.call_function(aten.view.default, (x, [batch, length, c])), (batch, length, c), torch.float32)
            out = g.call_function(aten.permute.default, (v, [0, 2, 1]))
    copy_meta(out, node)
    out.meta["val"] = node.meta["val"]
    return out
