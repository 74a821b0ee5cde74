"""Text form of programs: one node per line, stable and diff-friendly.

    %linear_3: bf16[1,32,3072] TILE DRAM = ttnn.linear(%ln_1, %w_t, bias=%b_row, activation='gelu')  # <hf module>

Before lowering, ATen nodes print with the logical value torch.export recorded (``f32[1,32,768]``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.fx

from .ir import Construct, HostOp, Ref, TTNNOp, aten_name, source_module

if TYPE_CHECKING:
    from .pipeline import LoweredProgram

_TORCH_SHORT = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16", torch.int64: "i64",
                torch.int32: "i32", torch.bool: "bool"}


def value_type(node: torch.fx.Node) -> str:
    spec = node.meta.get("tensor_spec")
    if spec is not None:
        return str(spec)
    v = node.meta.get("val")
    if isinstance(v, torch.Tensor):
        return f"{_TORCH_SHORT.get(v.dtype, str(v.dtype))}[{','.join(str(int(d)) for d in v.shape)}]"
    return "?"


def fmt_arg(a: Any) -> str:
    if isinstance(a, torch.fx.Node):
        return f"%{a.name}"
    if isinstance(a, (list, tuple)):
        inner = ", ".join(fmt_arg(x) for x in a)
        return f"[{inner}]" if isinstance(a, list) else f"({inner}{',' if len(a) == 1 else ''})"
    if isinstance(a, (Ref, Construct)):
        return repr(a)
    if isinstance(a, float):
        return f"{a:.6g}"
    return repr(a)


def target_name(node: torch.fx.Node) -> str:
    t = node.target
    if isinstance(t, (TTNNOp, HostOp)):
        return t.qualified_name
    return aten_name(t)


def format_node(node: torch.fx.Node) -> str:
    if node.op == "placeholder":
        return f"%{node.name}: {value_type(node)} = input"
    if node.op == "get_attr":
        return f"%{node.name}: {value_type(node)} = constant {node.target}"
    if node.op == "output":
        return "return " + fmt_arg(tuple(node.args[0]))
    args = [fmt_arg(a) for a in node.args] + [f"{k}={fmt_arg(v)}" for k, v in node.kwargs.items()]
    line = f"%{node.name}: {value_type(node)} = {target_name(node)}({', '.join(args)})"
    mod = source_module(node)
    note = node.meta.get("fallback_reason")
    tail = "  # " + mod if mod else ""
    if note:
        tail += ("  " if tail else "  # ") + f"[host fallback: {note}]"
    return line + tail


def render_graph(gm: torch.fx.GraphModule) -> str:
    return "\n".join(format_node(n) for n in gm.graph.nodes) + "\n"


def format_program(program: "LoweredProgram") -> str:
    head = [f"program {program.name}: {sum(1 for _ in program.nodes())} nodes"]
    return "\n".join(head) + "\n" + render_graph(program.graph_module)
