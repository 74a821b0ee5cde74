"""Text form of programs: one node per line, stable and diff-friendly.

    %linear_3: bf16[1,32,3072] TILE DRAM = ttnn.linear(%ln_1, %w_t, bias=%b_row, activation='gelu')  # <hf module>

Before lowering, ATen nodes print with the logical value torch.export recorded (``f32[1,32,768]``).

Also here, for ``fx2ttnn dump``: ``format_table`` (one op per line, in columns), ``graph_dict`` (plain data for
JSON) and ``to_dot`` (Graphviz, nodes coloured by kind).
"""
from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Collection, Mapping

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


# ---------------------------------------------------------------------------------------------
# the lowered program as a table, as JSON-ready dicts, as Graphviz DOT
#
# ``bind_time`` (the nodes the executor evaluates once, when it binds a program: weight uploads and what
# depends only on them) and ``groups`` (a cluster label per node) come from ``tools/graph_analysis.py``;
# this module only renders.

NODE_KINDS = ("input", "constant", "output", "compute", "data_movement", "transfer", "host", "memory", "aten",
              "getitem", "other")
# DOT fill colours by node kind: compute blue, data movement orange, transfers purple, host fallbacks red.
KIND_COLORS = {"compute": "#9ecae1", "data_movement": "#fdae6b", "transfer": "#bcbddc", "host": "#fb6a4a",
               "memory": "#ffffff", "aten": "#f0f0f0", "input": "#c7e9c0", "output": "#c7e9c0", "constant": "#d9d9d9",
               "getitem": "#ffffff", "other": "#ffffff"}


def node_kind(node: torch.fx.Node) -> str:
    """One of ``NODE_KINDS``: the op kind of a TTNN/host op, else what the node is."""
    if node.op == "placeholder":
        return "input"
    if node.op == "get_attr":
        return "constant"
    if node.op == "output":
        return "output"
    if isinstance(node.target, (TTNNOp, HostOp)):
        return node.target.kind.value
    if isinstance(node.target, torch._ops.OpOverload):
        return "aten"
    if node.target is operator.getitem:
        return "getitem"
    return "other"


def spec_dict(node: torch.fx.Node) -> dict[str, Any] | None:
    """The node's TensorSpec (or, before lowering, the FakeTensor torch.export recorded) as plain data."""
    spec = node.meta.get("tensor_spec")
    if spec is not None:
        return {"shape": [int(d) for d in spec.shape], "dtype": spec.dtype.removeprefix("torch."),
                "layout": spec.layout, "memory": spec.memory if spec.on_device else None,
                "on_device": bool(spec.on_device), "nbytes": spec.nbytes}
    v = node.meta.get("val")
    if isinstance(v, torch.Tensor):
        return {"shape": [int(d) for d in v.shape], "dtype": str(v.dtype).removeprefix("torch."), "layout": None,
                "memory": None, "on_device": False, "nbytes": int(v.numel()) * v.element_size()}
    return None


def _has_node(a: Any) -> bool:
    if isinstance(a, torch.fx.Node):
        return True
    if isinstance(a, (list, tuple)):
        return any(_has_node(x) for x in a)
    if isinstance(a, dict):
        return any(_has_node(x) for x in a.values())
    return False


def split_operands(node: torch.fx.Node) -> tuple[list[str], list[str]]:
    """(inputs, attrs) of a node as text: operands that hold graph values, and everything else."""
    if node.target is operator.getitem:
        return [fmt_arg(node.args[0])], [f"index={fmt_arg(node.args[1])}"]
    inputs, attrs = [], []
    for a in node.args:
        (inputs if _has_node(a) else attrs).append(fmt_arg(a))
    for k, v in node.kwargs.items():
        (inputs if _has_node(v) else attrs).append(f"{k}={fmt_arg(v)}")
    return inputs, attrs


def node_dict(node: torch.fx.Node, phase: str | None = None) -> dict[str, Any]:
    """A node as plain data (``tools/dump.py`` documents the schema)."""
    if node.op == "output":
        args, kwargs, target = [fmt_arg(tuple(node.args[0]))], {}, None
    else:
        args = [fmt_arg(a) for a in node.args]
        kwargs = {k: fmt_arg(v) for k, v in node.kwargs.items()}
        target = None if node.op == "placeholder" else (str(node.target) if node.op == "get_attr"
                                                         else target_name(node))
    return {"name": node.name, "op": node.op, "target": target, "kind": node_kind(node), "spec": spec_dict(node),
            "inputs": [n.name for n in node.all_input_nodes], "args": args, "kwargs": kwargs,
            "module": source_module(node) if node.op == "call_function" else "",
            "fallback_reason": node.meta.get("fallback_reason"), "phase": phase}


def graph_dict(gm: torch.fx.GraphModule, bind_time: Collection[torch.fx.Node] | None = None) -> dict[str, Any]:
    """``{"nodes": [...], "outputs": [...]}``; with ``bind_time`` every call gets its phase ("bind"/"call")."""
    def phase(n: torch.fx.Node) -> str | None:
        if bind_time is None or n.op != "call_function":
            return None
        return "bind" if n in bind_time else "call"
    out = next(n for n in gm.graph.nodes if n.op == "output")
    return {"nodes": [node_dict(n, phase(n)) for n in gm.graph.nodes],
            "outputs": [a.name if isinstance(a, torch.fx.Node) else fmt_arg(a) for a in out.args[0]]}


_TABLE_COLUMNS = ("#", "when", "kind", "value", "op", "output", "inputs", "module", "attrs")
_TABLE_CAPS = {"value": 30, "op": 52, "output": 36, "inputs": 48, "module": 56}


def format_table(gm: torch.fx.GraphModule, *, title: str = "",
                 bind_time: Collection[torch.fx.Node] = ()) -> str:
    """One line per op: its output spec (shape, dtype, layout, memory config), inputs, attributes, HF module.

    ``when`` is ``bind`` for ops the executor runs once when it binds the program (weight uploads and what
    depends only on them), ``call`` for ops of every call.
    """
    lines = [title] if title else []
    nodes = list(gm.graph.nodes)
    ins = [n for n in nodes if n.op == "placeholder"]
    width = max((len(n.name) for n in ins), default=0) + 1
    lines.append(f"inputs ({len(ins)}):")
    lines += [f"  %{n.name:<{width}} {value_type(n)}" for n in ins]
    rows = []
    for n in nodes:
        if n.op != "call_function":
            continue
        inputs, attrs = split_operands(n)
        note = n.meta.get("fallback_reason")
        rows.append((str(len(rows) + 1), "bind" if n in bind_time else "call", node_kind(n), f"%{n.name}",
                     target_name(n), value_type(n), ", ".join(inputs), source_module(n) or "-",
                     ", ".join(attrs) + (f"  [host fallback: {note}]" if note else "")))
    widths = [min(max([len(c)] + [len(r[i]) for r in rows]), _TABLE_CAPS.get(c, 1000))
              for i, c in enumerate(_TABLE_COLUMNS)]
    lines.append(f"ops ({len(rows)}):")
    for r in [_TABLE_COLUMNS, *rows]:
        cells = [c.rjust(w) if i == 0 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        cells[-1] = r[-1]
        lines.append("  " + "  ".join(cells).rstrip())
    out = next(n for n in nodes if n.op == "output")
    lines.append("outputs: " + ", ".join(fmt_arg(a) for a in out.args[0]))
    return "\n".join(lines) + "\n"


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(gm: torch.fx.GraphModule, *, title: str = "", bind_time: Collection[torch.fx.Node] = (),
           groups: Mapping[torch.fx.Node, str] | None = None) -> str:
    """Graphviz DOT: one node per graph node, filled by kind (``KIND_COLORS``), one edge per (operand, user)
    pair; bind-time ops dashed; nodes of the same ``groups`` label drawn in one cluster."""
    def stmt(n: torch.fx.Node) -> str:
        kind = node_kind(n)
        if n.op == "call_function":
            label = f"{n.name}\n{target_name(n)}\n{value_type(n)}"
        elif n.op == "output":
            label = "output"
        else:
            label = f"{n.name}\n{value_type(n)}"
        style = "filled,dashed" if n in bind_time else "filled"
        shape = {"input": "ellipse", "output": "ellipse", "constant": "note"}.get(kind, "box")
        return (f"{_dot_quote(n.name)} [label={_dot_quote(label)}, shape={shape}, style={_dot_quote(style)}, "
                f"fillcolor={_dot_quote(KIND_COLORS[kind])}, kind={_dot_quote(kind)}];")

    legend = "compute: blue, data movement: orange, transfer: purple, host fallback: red, dashed: bind time"
    label = (title + "\n" if title else "") + legend
    lines = [f"digraph {_dot_quote(title or 'program')} {{",
             f"  graph [rankdir=TB, fontname=Helvetica, label={_dot_quote(label)}];",
             "  node [fontname=Helvetica, fontsize=10];"]
    clusters: dict[str, list[torch.fx.Node]] = {}
    for n in gm.graph.nodes:
        label = groups.get(n, "") if groups else ""
        if label:
            clusters.setdefault(label, []).append(n)
        else:
            lines.append("  " + stmt(n))
    for i, (label, members) in enumerate(clusters.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_dot_quote(label)}; style=rounded; color=\"#969696\";")
        lines += ["    " + stmt(n) for n in members]
        lines.append("  }")
    for n in gm.graph.nodes:
        for user in n.users:
            lines.append(f"  {_dot_quote(n.name)} -> {_dot_quote(user.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
