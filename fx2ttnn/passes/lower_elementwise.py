"""lower_elementwise: ATen elementwise ops, comparisons, ``where`` and ``sum`` → their ttnn ops.

Input:   ATen graph (after ``decompose``).
Output:  one ttnn op per ATen op, by table: add/sub/mul/div (tensor or scalar ``b``; a scalar ``a`` of an
         add/mul is commuted), relu/gelu/tanh/sigmoid/leaky_relu/sqrt/neg, ge/gt/lt, ``where`` (tensor or
         scalar branches), ``sum`` over dims.  gelu keeps its variant (``Accurate`` is exact erf GELU, HF's
         ``hidden_act="gelu"``).  An in-place ``add_(x, 1)`` on a program input (the decode step's position
         increment) becomes ``ttnn.plus_one(x)``, as tt-metal's decode loops advance their int32 ROW_MAJOR position
         tensor (ttnn 0.81.1 refuses ``ttnn.add(x, 1, output_tensor=x)`` on a ROW_MAJOR ``x``); another in-place
         ``add_`` on a program input becomes ``ttnn.add(a, b, output_tensor=a)`` (the contract check then decides).
Leaves alone: ``alpha != 1`` adds/subs, scalar-first sub/div, in-place ops on intermediates (canonicalize
         made those functional) and anything not in the tables.
"""
from __future__ import annotations

import numbers

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, ttnn_call
from .graph_utils import aten, aten_nodes, replace
from .pass_manager import FxPass, PassResult

BINARY = {
    aten.add.Tensor: ops.add, aten.add.Scalar: ops.add, aten.sub.Tensor: ops.subtract, aten.sub.Scalar: ops.subtract,
    aten.mul.Tensor: ops.multiply, aten.mul.Scalar: ops.multiply, aten.div.Tensor: ops.divide,
    aten.div.Scalar: ops.divide, aten.ge.Scalar: ops.ge, aten.ge.Tensor: ops.ge, aten.gt.Scalar: ops.gt,
    aten.gt.Tensor: ops.gt, aten.lt.Scalar: ops.lt, aten.lt.Tensor: ops.lt,
}
COMMUTATIVE = {ops.add, ops.multiply}
UNARY = {
    aten.relu.default: ops.relu, aten.tanh.default: ops.tanh, aten.sigmoid.default: ops.sigmoid,
    aten.sqrt.default: ops.sqrt, aten.neg.default: ops.neg,
}
WHERE = {aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar}
INPLACE = {aten.add_.Tensor: ops.add_}


class LowerElementwise(FxPass):
    name = "lower_elementwise"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"binary": 0, "unary": 0, "where": 0, "sum": 0, "inplace": 0, "declined": 0}
        for node in aten_nodes(gm):
            new = None
            t = node.target
            with gm.graph.inserting_before(node):
                if t in BINARY:
                    new = self._binary(gm, node, BINARY[t])
                    key = "binary"
                elif t in UNARY:
                    new = ttnn_call(gm.graph, UNARY[t], (node.args[0],), like=node)
                    key = "unary"
                elif t is aten.gelu.default:
                    approx = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
                    kwargs = {"variant": Ref("GeluVariant.Tanh")} if approx == "tanh" else {}
                    new = ttnn_call(gm.graph, ops.gelu, (node.args[0],), kwargs, like=node)
                    key = "unary"
                elif t is aten.leaky_relu.default:
                    slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
                    new = ttnn_call(gm.graph, ops.leaky_relu, (node.args[0], float(slope)), like=node)
                    key = "unary"
                elif t in WHERE:
                    new = ttnn_call(gm.graph, ops.where, tuple(node.args[:3]), like=node)
                    key = "where"
                elif t is aten.sum.dim_IntList:
                    dims = node.args[1]
                    keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
                    dim = dims[0] if dims is not None and len(dims) == 1 else dims
                    new = ttnn_call(gm.graph, ops.sum_, (node.args[0], dim, keep), like=node)
                    key = "sum"
                elif t in INPLACE and node.args[0].op == "placeholder":
                    a, b = node.args[0], node.args[1]
                    if isinstance(b, numbers.Integral) and not isinstance(b, bool) and b == 1:
                        new = ttnn_call(gm.graph, ops.plus_one, (a,), like=node)
                    else:
                        new = ttnn_call(gm.graph, INPLACE[t], (a, b), {"output_tensor": a}, like=node)
                    key = "inplace"
            if new is None:
                continue
            if new is node:
                stats["declined"] += 1
                continue
            replace(node, new)
            stats[key] += 1
        return self.result(gm, stats)

    def _binary(self, gm: torch.fx.GraphModule, node: torch.fx.Node, op) -> torch.fx.Node:
        a, b = node.args[0], node.args[1]
        if node.kwargs.get("alpha", 1) != 1 or (len(node.args) > 2 and node.args[2] != 1):
            node.meta["lowering_note"] = "declined: alpha != 1"
            return node
        if isinstance(a, numbers.Number):
            if op not in COMMUTATIVE:
                node.meta["lowering_note"] = "declined: scalar first operand of a non-commutative op"
                return node
            a, b = b, a
        return ttnn_call(gm.graph, op, (a, b), like=node)
