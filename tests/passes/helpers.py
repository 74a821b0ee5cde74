"""Shared helpers of the per-pass tests: capture a tiny module, run one pass, count ops, run on the reference."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.fx
import torch.utils._pytree as pytree

from fx2ttnn.lowering.capture import capture
from fx2ttnn.lowering.ir import HostOp, TensorSpec
from fx2ttnn.lowering.pipeline import verify
from fx2ttnn.passes.assign_layouts import AssignLayouts
from fx2ttnn.passes.insert_host_fallbacks import InsertHostFallbacks
from fx2ttnn.passes.pass_manager import FxPass, PassResult
from fx2ttnn.runtime import reference as ref_ttnn
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.executor import BoundProgram

aten = torch.ops.aten


class ConvRelu(torch.nn.Module):
    """Conv1d + relu: a conv that no pass of a partial pipeline lowers (a host fallback)."""
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 8, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


@dataclass(frozen=True)
class Host:
    """Key of ``count_ops`` for a host fallback of ``target`` (an ATen OpOverload)."""

    target: Any


def capture_module(module: torch.nn.Module, *inputs: Any, names: Sequence[str] | None = None) -> torch.fx.GraphModule:
    """torch.export ``module(*inputs)`` through fx2ttnn's capture; inputs are named ``x0, x1, ...`` unless given."""
    with torch.no_grad():
        outs = module(*clone_inputs(inputs))
    n_out = len(pytree.tree_leaves(outs))
    names = list(names) if names is not None else [f"x{i}" for i in range(len(inputs))]
    cp = capture(module, clone_inputs(inputs), name="test", input_names=names,
                 output_names=[f"y{i}" for i in range(n_out)])
    return cp.graph_module


def run_pass(gm: torch.fx.GraphModule, pass_: FxPass) -> PassResult:
    """Run one pass the way the pass manager does; check it returns a PassResult and a well-formed graph."""
    result = pass_(gm)
    assert isinstance(result, PassResult), f"{pass_.name} returned {type(result).__name__}"
    result.graph_module.graph.lint()
    return result


def run_passes(gm: torch.fx.GraphModule, *passes: FxPass) -> torch.fx.GraphModule:
    """Run setup passes in order (e.g. ``Canonicalize`` before the pass under test); return the graph."""
    for p in passes:
        gm = run_pass(gm, p).graph_module
    return gm


def count_ops(gm: torch.fx.GraphModule) -> Counter:
    """call_function nodes by target: TTNNOp handles and ATen OpOverloads as themselves, fallbacks as ``Host(op)``."""
    c: Counter = Counter()
    for n in gm.graph.nodes:
        if n.op == "call_function":
            c[Host(n.target.target) if isinstance(n.target, HostOp) else n.target] += 1
    return c


def nodes_of(gm: torch.fx.GraphModule, target: Any) -> list[torch.fx.Node]:
    """The call_function nodes of ``target`` (an op object), in graph order."""
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target is target]


def clone_inputs(inputs: Iterable[Any]) -> tuple:
    """Copies of the tensors (programs and modules may write their inputs in place)."""
    return tuple(x.clone() if isinstance(x, torch.Tensor) else x for x in inputs)


def eager(module: torch.nn.Module, *inputs: Any) -> tuple[list[torch.Tensor], tuple]:
    """The golden: ``module`` run on copies of ``inputs``; returns (flat outputs, the inputs after the call)."""
    ins = clone_inputs(inputs)
    with torch.no_grad():
        outs = module(*ins)
    return [o.clone() for o in pytree.tree_leaves(outs)], ins


def _device_spec(t: torch.Tensor) -> TensorSpec:
    """A device input: float32 TILE for float tensors, int32 ROW_MAJOR (positions, indices) otherwise."""
    if t.dtype.is_floating_point:
        return TensorSpec(tuple(t.shape), "float32", "TILE", "DRAM", True)
    return TensorSpec(tuple(t.shape), "int32", "ROW_MAJOR", "DRAM", True)


def finish(gm: torch.fx.GraphModule, inputs: Sequence[Any], dtype: str = "float32",
           device_inputs: Iterable[str] | Mapping[str, TensorSpec] = ()) -> torch.fx.GraphModule:
    """InsertHostFallbacks + AssignLayouts: make ``gm`` an executable lowered program (specs from ``inputs``).

    Host inputs are ``TensorSpec(shape, str(torch_dtype))``; inputs named in ``device_inputs`` are device
    tensors (float: float32 TILE DRAM; integer: int32 ROW_MAJOR DRAM) unless it maps them to a spec.
    """
    specs = input_specs(gm, inputs, device_inputs)
    gm = run_passes(gm, InsertHostFallbacks(), AssignLayouts(dtype, specs))
    verify(gm, "test")
    return gm


def input_specs(gm: torch.fx.GraphModule, inputs: Sequence[Any],
                device_inputs: Iterable[str] | Mapping[str, TensorSpec] = ()) -> dict[str, TensorSpec]:
    """A TensorSpec per program input of ``gm``, from the example ``inputs`` (see ``finish``)."""
    given = dict(device_inputs) if isinstance(device_inputs, Mapping) else {}
    on_device = set(device_inputs)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    specs = {}
    for node, x in zip(placeholders, inputs):
        if node.name in given:
            specs[node.name] = given[node.name]
        elif node.name in on_device:
            specs[node.name] = _device_spec(x)
        else:
            specs[node.name] = TensorSpec(tuple(x.shape), str(x.dtype))
    return specs


def run_lowered(gm: torch.fx.GraphModule, inputs: Sequence[Any], dtype: str = "float32", *,
                device_inputs: Iterable[str] | Mapping[str, TensorSpec] = (), return_inputs: bool = False) -> Any:
    """Finish ``gm`` in place (see ``finish``), run it on the reference ttnn, return its outputs as torch tensors.

    With ``return_inputs`` also returns the inputs after the run (device inputs read back: in-place writes).
    """
    return run_program(finish(gm, inputs, dtype, device_inputs), inputs, return_inputs=return_inputs)


def run_program(gm: torch.fx.GraphModule, inputs: Sequence[Any], *, return_inputs: bool = False) -> Any:
    """Bind a finished program to the reference backend and run it: device inputs are uploaded per their spec."""
    backend = open_backend("reference")
    program = BoundProgram(gm, backend, name="test")
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    args = []
    for node, x in zip(placeholders, clone_inputs(inputs)):
        spec = node.meta["tensor_spec"]
        if spec.on_device:
            layout = ref_ttnn.TILE_LAYOUT if spec.layout == "TILE" else ref_ttnn.ROW_MAJOR_LAYOUT
            x = ref_ttnn.from_torch(x, getattr(ref_ttnn, spec.dtype), layout=layout, device=backend.device,
                                    memory_config=ref_ttnn.DRAM_MEMORY_CONFIG)
        args.append(x)
    outs = [to_host(o) for o in program(*args)]
    if return_inputs:
        return outs, [to_host(a) for a in args]
    return outs


def to_host(x: Any) -> Any:
    """A reference ttnn tensor as a torch tensor (host torch values as they are)."""
    return ref_ttnn.to_torch(x) if isinstance(x, ref_ttnn.Tensor) else x


def assert_matches_eager(module: torch.nn.Module, gm: torch.fx.GraphModule, inputs: Sequence[Any], *,
                         device_inputs: Iterable[str] = (), atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """``gm`` finished in place (float32) and run on the reference matches ``module`` run eagerly."""
    assert_program_matches(module, finish(gm, inputs, "float32", device_inputs), inputs, atol=atol, rtol=rtol)


def assert_program_matches(module: torch.nn.Module, program: torch.fx.GraphModule, inputs: Sequence[Any], *,
                           atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """A finished ``program`` run on the reference matches ``module`` run eagerly, output by output."""
    golden, _ = eager(module, *inputs)
    actual = run_program(program, inputs)
    assert len(actual) == len(golden)
    for g, a in zip(golden, actual):
        torch.testing.assert_close(a.to(g.dtype), g, atol=atol, rtol=rtol)
