"""sink_layout_conversions: keep conv activations in flattened NHWC between convs; no permute ping-pong.

Input:   ATen graph after the conv passes: ttnn convs between ``to_flat``/``from_flat`` markers (conv_layout.py),
         ATen elementwise ops (activations, masks, residual adds, the resblock average) between them.
Output:  markers moved through elementwise ops until they meet and cancel: ``from_flat`` sinks into its
         elementwise users (``u(from_flat(y)) = from_flat(u(y))``), ``to_flat`` rises through single-use
         elementwise producers (``to_flat(u(x)) = u(to_flat(x))``), ``to_flat(from_flat(y)) = y``.  Operands of
         a binary op that only broadcast — HiFi-GAN's valid-length masks ``[B, 1, L]``, per-channel constants
         ``[1, C, 1]``, scalars — are converted once each (a view: ``[B, 1, L]`` is ``[1, 1, B*L, 1]`` row for row).
         Peepholes: ``to_flat(transpose(x, 1, 2))`` of an NLC ``x`` and ``transpose(from_flat(y), 1, 2)`` are views
         (the postnet's and the vocoder's transposes vanish); a single channel needs no permute.  Whatever marker
         is left becomes ATen ``permute`` + ``view`` (lowered by lower_data_movement).
Leaves alone: non-elementwise consumers (they get NCL through a materialized ``from_flat``), elementwise ops
         whose other operand neither is flattened nor broadcasts.
"""
from __future__ import annotations

import numbers

import torch
import torch.fx

from ..lowering.ir import copy_meta
from .conv_layout import MARKERS, from_flat, is_marker, make_marker, materialize, to_flat
from .graph_utils import aten, set_val, shape
from .pass_manager import FxPass, PassResult

UNARY = {aten.relu.default, aten.tanh.default, aten.sigmoid.default, aten.gelu.default, aten.leaky_relu.default,
         aten.neg.default}
BINARY = {aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor}


def _elementwise(node) -> bool:
    return isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target in UNARY | BINARY


class SinkLayoutConversions(FxPass):
    name = "sink_layout_conversions"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        self.g, self.memo = gm.graph, {}
        stats = {"sunk": 0, "hoisted": 0, "cancelled": 0, "peephole": 0, "materialized": 0}
        changed = True
        while changed:
            changed = False
            for node in list(self.g.nodes):
                if getattr(node, "_erased", False):
                    continue
                for rule, key in ((self._cancel, "cancelled"), (self._peephole, "peephole"), (self._sink, "sunk"),
                                  (self._hoist, "hoisted")):
                    if rule(node):
                        stats[key] += 1
                        changed = True
                        break
        for node in list(self.g.nodes):
            if node.op == "call_function" and node.target in MARKERS:
                node.replace_all_uses_with(materialize(self.g, node))
                self.g.erase_node(node)
                stats["materialized"] += 1
        self.g.eliminate_dead_code()
        del self.g, self.memo
        return self.result(gm, stats)

    # -- rules -------------------------------------------------------------------------------
    def _cancel(self, node: torch.fx.Node) -> bool:
        for outer, inner in ((to_flat, from_flat), (from_flat, to_flat)):
            if is_marker(node, outer) and is_marker(node.args[0], inner) and node.args[1:] == node.args[0].args[1:]:
                node.replace_all_uses_with(node.args[0].args[0])
                self.g.erase_node(node)
                return True
        return False

    def _peephole(self, node: torch.fx.Node) -> bool:
        g = self.g
        if is_marker(node, to_flat):
            x, b, l = node.args
            src = None
            if _is_transpose12(x) and shape(x.args[0]) == (b, l, shape(x)[1]):
                src = x.args[0]                    # NLC data: to_flat(transpose(x)) is a view of x
            elif shape(x)[1] == 1:
                src = x                            # one channel: NCL and flattened NHWC rows coincide
            if src is not None:
                with g.inserting_before(node):
                    v = g.call_function(aten.view.default, (src, list(shape(node))))
                v.meta["val"] = node.meta["val"]
                node.replace_all_uses_with(copy_meta(v, node))
                g.erase_node(node)
                return True
        if is_marker(node, from_flat):
            y, b, l = node.args
            c = shape(y)[-1]
            done = False
            for user in list(node.users):
                if _is_transpose12(user):          # transpose(from_flat(y)) back to NLC is a view of y
                    with g.inserting_before(user):
                        v = set_val(g.call_function(aten.view.default, (y, [b, l, c])), (b, l, c), torch.float32)
                    user.replace_all_uses_with(copy_meta(v, user))
                    g.erase_node(user)
                    done = True
            if c == 1 and node.users:
                with g.inserting_before(node):
                    v = set_val(g.call_function(aten.view.default, (y, [b, 1, l])), (b, 1, l), torch.float32)
                node.replace_all_uses_with(copy_meta(v, node))
                done = True
            if not node.users:
                g.erase_node(node)
                return True
            return done
        return False

    def _sink(self, node: torch.fx.Node) -> bool:
        """from_flat(y) feeding an elementwise op: do the op on y, re-mark its result."""
        if not is_marker(node, from_flat):
            return False
        y, b, l = node.args
        c = shape(y)[-1]
        for user in list(node.users):
            if not _elementwise(user):
                continue
            args = []
            for a in user.args:
                if a is node:
                    args.append(y)
                elif is_marker(a, from_flat) and a.args[1:] == node.args[1:]:
                    args.append(a.args[0])
                elif isinstance(a, numbers.Number) or a is None:
                    args.append(a)
                else:
                    flat = self._flat_operand(a, b, l, c, before=user)
                    if flat is None:
                        break
                    args.append(flat)
            else:
                g = self.g
                with g.inserting_before(user):
                    op = set_val(g.call_function(user.target, tuple(args), dict(user.kwargs)), (1, 1, b * l, c),
                                 torch.float32)
                    copy_meta(op, user)
                    out = make_marker(g, from_flat, op, b, l, user, c)
                user.replace_all_uses_with(out)
                g.erase_node(user)
                if not node.users:
                    g.erase_node(node)
                return True
        return False

    def _hoist(self, node: torch.fx.Node) -> bool:
        """to_flat(u(x, ...)) with u elementwise and used only here: to_flat the operands, do u flattened."""
        if not is_marker(node, to_flat):
            return False
        x, b, l = node.args
        if not _elementwise(x) or len(x.users) != 1:
            return False
        full = shape(x)
        c = full[1]
        g = self.g
        args = []
        with g.inserting_before(node):
            for a in x.args:
                if isinstance(a, torch.fx.Node) and shape(a) == full:
                    args.append(make_marker(g, to_flat, a, b, l, node, c))
                elif isinstance(a, numbers.Number) or a is None:
                    args.append(a)
                else:
                    flat = self._flat_operand(a, b, l, c, before=node)
                    if flat is None:
                        for n in reversed(args):
                            if is_marker(n, to_flat) and not n.users:
                                g.erase_node(n)
                        return False
                    args.append(flat)
            op = set_val(g.call_function(x.target, tuple(args), dict(x.kwargs)), (1, 1, b * l, c), torch.float32)
        copy_meta(op, x)
        node.replace_all_uses_with(op)
        g.erase_node(node)
        g.erase_node(x)
        return True

    def _flat_operand(self, z, b: int, l: int, c: int, *, before: torch.fx.Node) -> torch.fx.Node | None:
        """A tensor that broadcasts against NCL [b, c, l] as the matching flattened-NHWC operand, or None."""
        if not isinstance(z, torch.fx.Node):
            return None
        key = (z, b, l, c)
        if key in self.memo and not getattr(self.memo[key], "_erased", False):
            return self.memo[key]
        zs = (1,) * (3 - len(shape(z))) + shape(z) if len(shape(z)) <= 3 else None
        g = self.g
        out = None
        # right after z (a placeholder: after the last one), so the memoized operand precedes every use
        anchor = z if z.op != "placeholder" else [n for n in g.nodes if n.op == "placeholder"][-1]
        with g.inserting_after(anchor):
            if zs in ((b, 1, l), (1, 1, l)):       # a per-position mask: its [1, 1, B*L, 1] form is a view
                src = z
                if zs[0] != b:
                    src = set_val(g.call_function(aten.expand.default, (z, [b, 1, l])), (b, 1, l), torch.float32)
                with g.inserting_after(src):
                    out = g.call_function(aten.view.default, (src, [1, 1, b * l, 1]))
                set_val(out, (1, 1, b * l, 1), torch.float32)
            elif zs in ((1, c, 1), (1, 1, 1)):     # per channel (or one value): [1, 1, 1, C]
                out = set_val(g.call_function(aten.view.default, (z, [1, 1, 1, zs[1]])), (1, 1, 1, zs[1]),
                              torch.float32)
        if out is not None:
            copy_meta(out, before)
            self.memo[key] = out
        return out


def _is_transpose12(node) -> bool:
    if not (isinstance(node, torch.fx.Node) and node.op == "call_function" and node.target is aten.transpose.int):
        return False
    rank = len(shape(node))
    return rank == 3 and {d % rank for d in node.args[1:3]} == {1, 2}
