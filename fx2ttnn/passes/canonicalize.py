"""canonicalize: remove what has no effect at inference and make in-place ATen ops functional.

Input:   ATen graph from torch.export (training IR), ``meta['val']`` on call nodes.
Output:  no ``dropout`` (eval), ``alias``/``detach``/``contiguous``, no-op ``to``/``_to_copy``/views/slices,
         ``_assert_tensor_metadata`` nodes; ``expand``/``expand_as`` feeding only broadcasting elementwise ops
         removed; in-place ``add_``/``mul_``/``sub_``/``div_`` on intermediates that nothing else reads
         rewritten to their functional forms.
Leaves alone: in-place ops on program inputs (KV-cache writes, the position increment), ``clone`` (it may
         protect a value that is written later), dropout in training mode (kept, later a host fallback).
"""
from __future__ import annotations

import torch
import torch.fx

from .graph_utils import aten, impure, val
from .pass_manager import FxPass, PassResult

_IDENTITY = {aten.alias.default, aten.detach.default, aten.contiguous.default, aten.lift_fresh_copy.default}
_ASSERTS = {aten._assert_tensor_metadata.default, aten._assert_scalar.default, aten.sym_constrain_range_for_size.default}
_TO = {aten.to.dtype, aten.to.dtype_layout, aten.to.device, aten._to_copy.default}
_VIEWS = {aten.view.default, aten.reshape.default, aten._unsafe_view.default}
_FUNCTIONAL = {aten.add_.Tensor: aten.add.Tensor, aten.mul_.Tensor: aten.mul.Tensor, aten.sub_.Tensor: aten.sub.Tensor,
               aten.div_.Tensor: aten.div.Tensor}
_BROADCASTING = {aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor, aten.where.self}


def _same(a: torch.fx.Node, b: torch.fx.Node) -> bool:
    va, vb = val(a), val(b)
    return va is not None and vb is not None and tuple(va.shape) == tuple(vb.shape) and va.dtype == vb.dtype


def _is_noop(node: torch.fx.Node) -> bool:
    t = node.target
    if t in _IDENTITY:
        return True
    if t is aten.dropout.default:
        return node.args[1] == 0 or not node.args[2]
    if t in _TO or t in _VIEWS:
        return _same(node, node.args[0])
    if t is aten.slice.Tensor:
        return _same(node, node.args[0])
    return False


def _aliasing(node: torch.fx.Node) -> bool:
    """A view or in-place op: its result shares storage with its first argument."""
    t = node.target
    return node.op == "call_function" and isinstance(t, torch._ops.OpOverload) and bool(t._schema.returns) \
        and t._schema.returns[0].alias_info is not None


def _shared_write(write: torch.fx.Node) -> bool:
    """Does in-place ``write`` update a program input/constant, or a tensor read (via any view) after it?"""
    root = write.args[0]
    while _aliasing(root):
        root = root.args[0]
    if root.op in ("placeholder", "get_attr"):
        return True
    order = {n: i for i, n in enumerate(write.graph.nodes)}
    seen, todo = {root}, [root]
    while todo:
        for u in todo.pop().users:
            if u is write or u in seen:
                continue
            if order[u] > order[write]:
                return True
            if _aliasing(u):  # a view taken before the write still sees it
                seen.add(u)
                todo.append(u)
    return False


class Canonicalize(FxPass):
    name = "canonicalize"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"noop_removed": 0, "asserts_removed": 0, "inplace_functionalized": 0, "expand_removed": 0}
        g = gm.graph
        for node in list(g.nodes):
            if node.op != "call_function":
                continue
            if node.target in _ASSERTS:
                g.erase_node(node)
                stats["asserts_removed"] += 1
            elif _is_noop(node):
                node.replace_all_uses_with(node.args[0])
                g.erase_node(node)
                stats["noop_removed"] += 1
            elif node.target in _FUNCTIONAL:
                if not _shared_write(node):
                    node.target = _FUNCTIONAL[node.target]
                    stats["inplace_functionalized"] += 1
        for node in list(g.nodes):
            if node.op == "call_function" and node.target in (aten.expand.default, aten.expand_as.default):
                if node.users and all(u.op == "call_function" and u.target in _BROADCASTING and
                                      _broadcast_ok(u, node) for u in node.users):
                    node.replace_all_uses_with(node.args[0])
                    g.erase_node(node)
                    stats["expand_removed"] += 1
        g.eliminate_dead_code(is_impure_node=impure)
        return self.result(gm, stats)


def _broadcast_ok(user: torch.fx.Node, expand: torch.fx.Node) -> bool:
    """Removing ``expand`` keeps ``user``'s result shape (the other operands already give the full shape)."""
    out = val(user)
    if out is None:
        return False
    shapes = []
    for a in user.args:
        if a is expand:
            a = expand.args[0]
        if isinstance(a, torch.fx.Node) and val(a) is not None:
            shapes.append(tuple(val(a).shape))
    try:
        return tuple(torch.broadcast_shapes(*shapes)) == tuple(out.shape)
    except RuntimeError:
        return False
