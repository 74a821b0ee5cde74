"""Capture a module into an ATen-level torch.fx GraphModule with torch.export.

We keep torch.export's default (training) IR: it preserves ``aten.linear``, ``aten.layer_norm``,
``aten.conv1d`` … as single nodes, which is what the lowering patterns match, and it costs ~2 s for
the full SpeechT5 encoder where ``run_decompositions`` would add ~3.5 s more.  Parameters and buffers,
lifted to placeholders by export, are turned back into ``get_attr`` constants (sharing storage with the
model, no copies); user inputs stay placeholders, in order.  In-place ops on user inputs (the KV-cache
writes of the decode step) stay in-place nodes: the program mutates those inputs by design.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.fx
from torch.export.graph_signature import InputKind

from ..errors import CaptureError
from .ir import ProgramSignature


@dataclass
class CapturedProgram:
    name: str
    graph_module: torch.fx.GraphModule
    signature: ProgramSignature
    seconds: float


def _attr_name(target: str) -> str:
    return "c_" + target.replace(".", "_")


def capture(module: torch.nn.Module, args: Sequence[Any], *, name: str, input_names: Sequence[str],
            output_names: Sequence[str]) -> CapturedProgram:
    """torch.export ``module(*args)`` and return a GraphModule whose weights are ``get_attr`` constants.

    ``args`` may contain lists of tensors (flattened in order); ``input_names``/``output_names`` name
    the flattened user inputs and outputs.
    """
    t0 = time.perf_counter()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = torch.export.export(module, tuple(args), strict=False)
    except Exception as e:  # torch.export raises many types; wrap with what was being captured
        raise CaptureError(f"torch.export failed for the {name} program of {type(module).__name__}: {e}") from e

    gm = ep.graph_module
    root = torch.nn.Module()
    state = {**dict(ep.named_parameters()), **dict(ep.named_buffers()), **ep.constants}
    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    user_inputs: list[torch.fx.Node] = []
    for node, spec in zip(placeholders, ep.graph_signature.input_specs):
        if spec.kind == InputKind.USER_INPUT:
            user_inputs.append(node)
            continue
        tensor = state[spec.target]
        attr = _attr_name(spec.target)
        if isinstance(tensor, torch.nn.Parameter):
            tensor = tensor.detach()
        root.register_buffer(attr, tensor, persistent=False)
        with graph.inserting_before(node), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the attribute lives on the new root, not export's module
            ga = graph.get_attr(attr)
        ga.meta = dict(node.meta)
        node.replace_all_uses_with(ga)
        graph.erase_node(node)

    if len(user_inputs) != len(input_names):
        raise CaptureError(f"{name}: expected {len(input_names)} inputs ({', '.join(input_names)}), "
                           f"export produced {len(user_inputs)}")
    for node, n in zip(user_inputs, input_names):
        node.name = node.target = n
    out_node = next(n for n in reversed(graph.nodes) if n.op == "output")
    outs = out_node.args[0]
    if len(outs) != len(output_names):
        raise CaptureError(f"{name}: expected {len(output_names)} outputs, export produced {len(outs)}")
    for node in graph.nodes:  # ops of the capture wrapper itself (masks, the prenet's per-step glue), not HF's
        if node.op == "call_function" and not node.meta.get("nn_module_stack"):
            node.meta.setdefault("source_module", f"({name} wrapper)")
    mutated = [n.name for n in user_inputs if any(_writes(u, n) for u in n.users)]
    new_gm = torch.fx.GraphModule(root, graph, class_name=f"{name}_captured")
    new_gm.graph.eliminate_dead_code(is_impure_node=_is_inplace)
    new_gm.recompile()
    sig = ProgramSignature(list(input_names), list(output_names), mutated)
    return CapturedProgram(name, new_gm, sig, time.perf_counter() - t0)


def _is_inplace(node: torch.fx.Node) -> bool:
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return target._schema.is_mutable or node.is_impure()
    return getattr(target, "inplace", None) is not None or node.is_impure()


def _writes(user: torch.fx.Node, arg: torch.fx.Node) -> bool:
    """Does ``user`` write ``arg`` in place (first schema argument marked as mutable)?"""
    target = user.target
    if not isinstance(target, torch._ops.OpOverload) or not user.args or user.args[0] is not arg:
        return False
    a0 = target._schema.arguments[0]
    return a0.alias_info is not None and a0.alias_info.is_write
