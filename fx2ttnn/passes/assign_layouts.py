"""assign_layouts: give every value a layout, dtype and placement, moving data only at boundaries.

Input:   graph of TTNN nodes, ``HostOp`` fallbacks and ``get_attr`` constants; program inputs described by
         ``inputs`` (a TensorSpec per placeholder; ``layout="AUTO"`` lets the consumers choose).
Output:  a program the reference ttnn accepts (checked by abstract evaluation, node by node), with
         * ``ttnn.from_torch(c, dtype, layout, device)`` for each constant or host input a TTNN op reads
           (constants are uploaded once, when the executor binds the program);
         * ``ttnn.to_layout`` where an operand's layout differs from what its op requires (op_table.RULES);
         * ``ttnn.typecast`` around ops whose contract excludes the program's float dtype (counted as
           ``dtype_demoted``; their results are cast back for their consumers and outputs, so float32
           programs keep float32 everywhere else);
         * ``ttnn.to_torch(x, dtype=torch.float32)`` before / ``ttnn.from_torch`` after each host fallback
           (counted transfers; fallbacks compute in float32 like the host weights they read);
         * outputs converted to the declared output specs.
         Every node gets ``meta["tensor_spec"]``.  Conversions are shared by all consumers of a value.
Leaves alone: operands already in the required form; operands an op writes in place (converting them
         would write a copy — that is a LoweringError).
"""
from __future__ import annotations

from dataclasses import replace as dc_replace
from typing import Any, Sequence

import torch
import torch.fx

from ..errors import LoweringError
from ..lowering import op_table as ops
from ..lowering.abstract import AbstractEvaluator
from ..lowering.ir import DEVICE, HostOp, Ref, TensorSpec, TTNNOp, copy_meta, source_module
from .pass_manager import FxPass, PassResult

_FLOAT_TORCH = {"torch.float32", "torch.float16", "torch.bfloat16", "torch.float64"}
_TTNN_FLOATS = {"float32", "bfloat16", "bfloat8_b", "bfloat4_b"}


def _layout_ref(layout: str) -> Ref:
    return Ref(f"{layout}_LAYOUT")


class AssignLayouts(FxPass):
    name = "assign_layouts"

    def __init__(self, dtype: str, inputs: dict[str, TensorSpec], outputs: Sequence[TensorSpec | None] = ()):
        self.dtype = dtype
        self.inputs = inputs
        self.outputs = list(outputs)

    # -- helpers -----------------------------------------------------------------------------
    def _conv(self, key: tuple, before: torch.fx.Node, op: TTNNOp, args: tuple, kwargs: dict,
              src: torch.fx.Node) -> torch.fx.Node:
        if key not in self.memo:
            with self.gm.graph.inserting_before(before):
                node = self.gm.graph.call_function(op, args, kwargs)
            copy_meta(node, src)
            self.ev.eval(node)
            self.memo[key] = node
            self.stats[op.name] = self.stats.get(op.name, 0) + 1
        return self.memo[key]

    def _operand(self, p: torch.fx.Node, consumer: torch.fx.Node, layout: str | None, index: bool,
                 float_dtypes: tuple[str, ...] | None, index_dtype: str, host: bool = False) -> torch.fx.Node:
        spec: TensorSpec = p.meta["tensor_spec"]
        if host:  # torch-layout conv weights handed to prepare_conv_*: a host ROW_MAJOR ttnn tensor
            if spec.is_ttnn:
                raise LoweringError(f"{consumer.target.qualified_name} takes a host tensor, got {spec}")
            return self._conv((p, "host", self.dtype), consumer, ops.from_torch, (p,),
                              {"dtype": Ref(self.dtype), "layout": _layout_ref("ROW_MAJOR")}, p)
        if not spec.is_ttnn:  # a host torch value: upload it
            if spec.dtype in _FLOAT_TORCH and not index:
                dt = self.dtype if not float_dtypes or self.dtype in float_dtypes else float_dtypes[0]
                lay = layout or "TILE"
            elif spec.dtype == "torch.bool":
                dt, lay = self.dtype, layout or "TILE"
            else:
                dt, lay = index_dtype, layout or "ROW_MAJOR"
            return self._conv((p, "up", dt, lay), consumer, ops.from_torch, (p,),
                              {"dtype": Ref(dt), "layout": _layout_ref(lay), "device": DEVICE}, p)
        x = p
        if layout is not None and spec.layout != layout:
            x = self._conv((x, "layout", layout), consumer, ops.to_layout, (x, _layout_ref(layout)), {}, p)
        if float_dtypes and spec.dtype in ("float32", "bfloat16", "bfloat8_b") and spec.dtype not in float_dtypes:
            x = self._conv((x, "dtype", float_dtypes[0]), consumer, ops.typecast, (x, Ref(float_dtypes[0])), {}, p)
            self.stats["dtype_demoted"] = self.stats.get("dtype_demoted", 0) + 1
        elif p in self.demoted and not index and (not float_dtypes or self.dtype in float_dtypes):
            x = self._restore(x, consumer)
        return x

    def _restore(self, x: torch.fx.Node, consumer: torch.fx.Node) -> torch.fx.Node:
        """The result of a demoted op, cast back to the program dtype for its consumers."""
        return self._conv((x, "dtype", self.dtype), consumer, ops.typecast, (x, Ref(self.dtype)), {}, x)

    def _fix_ttnn(self, node: torch.fx.Node) -> None:
        op: TTNNOp = node.target
        if op in (ops.from_torch, ops.to_torch):
            return
        rule = ops.rule_for(op)
        index_dtype = "uint32" if op is ops.embedding else "int32"

        def fix(key: int | str, a: Any) -> Any:
            if isinstance(a, (list, tuple)):
                return type(a)(fix(key, x) for x in a)
            if not isinstance(a, torch.fx.Node):
                return a
            layout = "TILE" if key in rule.tile else "ROW_MAJOR" if key in rule.row_major else None
            new = self._operand(a, node, layout, key in rule.index, rule.float_dtypes, index_dtype, key in rule.host)
            if new is not a and (key == op.inplace or key == "output_tensor"):
                raise LoweringError(f"{op.qualified_name} writes operand {key!r} in place but it needs a conversion "
                                    f"({a.meta['tensor_spec']}); node {node.name} from {source_module(node) or '?'}")
            return new

        node.args = tuple(fix(i, a) for i, a in enumerate(node.args))
        node.kwargs = {k: fix(k, v) for k, v in node.kwargs.items()}

    def _fix_host(self, node: torch.fx.Node) -> None:
        def down(a: Any) -> Any:
            if isinstance(a, (list, tuple)):
                return type(a)(down(x) for x in a)
            if isinstance(a, torch.fx.Node) and a.meta["tensor_spec"].is_ttnn:
                # host fallbacks compute in float32, like the weights they read
                kw = {"dtype": torch.float32} if a.meta["tensor_spec"].dtype in _TTNN_FLOATS else {}
                return self._conv((a, "down"), node, ops.to_torch, (a,), kw, a)
            return a
        node.args = down(node.args)
        node.kwargs = down(node.kwargs)

    def _auto_layouts(self, gm: torch.fx.GraphModule) -> None:
        """Device inputs with layout AUTO take the layout their consumers require (ROW_MAJOR wins)."""
        for node in gm.graph.nodes:
            if node.op != "placeholder":
                continue
            spec = self.inputs.get(node.name)
            if spec is None:
                raise LoweringError(f"no input spec for program input '{node.name}'")
            if spec.layout == "AUTO":
                rm = any(isinstance(u.target, TTNNOp) and _operand_key(u, node) in ops.rule_for(u.target).row_major
                         for u in node.users)
                spec = dc_replace(spec, layout="ROW_MAJOR" if rm else "TILE")
            node.meta["tensor_spec"] = spec

    # -- pass --------------------------------------------------------------------------------
    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        self.gm, self.memo, self.stats = gm, {}, {}
        self.demoted: set[torch.fx.Node] = set()  # results of ops that computed in a narrower float dtype
        self.ev = AbstractEvaluator(gm)
        self._auto_layouts(gm)
        for node in list(gm.graph.nodes):
            if node.op == "call_function":
                if isinstance(node.target, TTNNOp):
                    self._fix_ttnn(node)
                    float_dtypes = ops.rule_for(node.target).float_dtypes
                    if float_dtypes and self.dtype not in float_dtypes:
                        self.demoted.add(node)
                elif isinstance(node.target, HostOp):
                    self._fix_host(node)
            if node.op == "output":
                self._fix_outputs(node)
            else:
                self.ev.eval(node)
        del self.gm, self.memo, self.ev, self.demoted
        return self.result(gm, self.stats)

    def _fix_outputs(self, out: torch.fx.Node) -> None:
        values = list(out.args[0])
        for i, v in enumerate(values):
            want = self.outputs[i] if i < len(self.outputs) else None
            spec: TensorSpec = v.meta["tensor_spec"]
            if not spec.is_ttnn:
                dt = (want.dtype if want else self.dtype) if spec.dtype in _FLOAT_TORCH or spec.dtype == "torch.bool" \
                    else "int32"
                lay = want.layout if want else "TILE"
                values[i] = self._conv((v, "up", dt, lay), out, ops.from_torch, (v,),
                                       {"dtype": Ref(dt), "layout": _layout_ref(lay), "device": DEVICE}, v)
            elif want is None and v in self.demoted:
                values[i] = self._restore(v, out)
            elif want is not None:
                x = v
                if want.layout and spec.layout != want.layout:
                    x = self._conv((x, "layout", want.layout), out, ops.to_layout, (x, _layout_ref(want.layout)), {}, v)
                if want.dtype and x.meta["tensor_spec"].dtype != want.dtype:
                    x = self._conv((x, "dtype", want.dtype), out, ops.typecast, (x, Ref(want.dtype)), {}, v)
                values[i] = x
        out.args = (tuple(values),)


def _operand_key(user: torch.fx.Node, node: torch.fx.Node) -> int | str | None:
    for i, a in enumerate(user.args):
        if a is node:
            return i
    for k, v in user.kwargs.items():
        if v is node:
            return k
    return None

