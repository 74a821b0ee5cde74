"""Abstract evaluation: run a (partially) lowered program on meta tensors through the reference ttnn.

This is the type checker of the lowered IR (autodidax's ``typecheck_jaxpr``): every TTNN node runs its
reference implementation *with* its contract checks on shape-only data, so a program that evaluates here
satisfies the ttnn 0.81.1 contract, and each node gets ``meta["tensor_spec"]``.  Host-fallback nodes run
their ATen op on meta tensors.  A contract violation is reported with the node, its op and HF module.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import torch
import torch.fx

from ..errors import LoweringError, TTNNContractError
from ..runtime import reference as ref_ttnn
from .ir import Construct, HostOp, Ref, TensorSpec, TTNNOp, source_module


def resolve_path(module: Any, path: str) -> Any:
    obj = module
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_arg(arg: Any, ttnn: Any, device: Any, env: Callable[[torch.fx.Node], Any]) -> Any:
    """Map IR arguments to runtime values: Nodes via ``env``, ``Ref``/``Construct`` against ``ttnn``."""
    if isinstance(arg, torch.fx.Node):
        return env(arg)
    if isinstance(arg, Ref):
        if arg.path == "device":
            return device
        if arg.path == "device.arch()":
            return device.arch()
        return resolve_path(ttnn, arg.path)
    if isinstance(arg, Construct):
        args = [resolve_arg(a, ttnn, device, env) for a in arg.args]
        kwargs = {k: resolve_arg(v, ttnn, device, env) for k, v in arg.kwargs}
        return resolve_path(ttnn, arg.path)(*args, **kwargs)
    if isinstance(arg, (list, tuple)):
        return type(arg)(resolve_arg(a, ttnn, device, env) for a in arg)
    if isinstance(arg, dict):
        return {k: resolve_arg(v, ttnn, device, env) for k, v in arg.items()}
    return arg


def spec_from_value(value: Any) -> TensorSpec | None:
    if isinstance(value, ref_ttnn.Tensor):
        mc = value.memory_config()
        memory = None
        if mc is not None:
            memory = mc.buffer_type.value if not mc.is_sharded else f"{mc.buffer_type.value}_{mc.memory_layout.value}"
        # prepared conv weights are stored in the device's own layout (reference: ``device_shape``)
        shape = tuple(getattr(value, "device_shape", None) or value.shape)
        return TensorSpec(shape, value.dtype.value, value.layout.name, memory, value.device() is not None)
    if isinstance(value, torch.Tensor):
        return TensorSpec(tuple(value.shape), str(value.dtype), None, None, False)
    return None


_DTYPE = {d.value: d for d in ref_ttnn.DataType}
_LAYOUT = {"TILE": ref_ttnn.TILE_LAYOUT, "ROW_MAJOR": ref_ttnn.ROW_MAJOR_LAYOUT}


def memory_config_of(name: str | None) -> Any:
    """Reference MemoryConfig for a spec's memory name ("DRAM", "L1", "L1_HEIGHT_SHARDED", ...)."""
    if name in (None, "DRAM"):
        return ref_ttnn.DRAM_MEMORY_CONFIG
    if name == "L1":
        return ref_ttnn.L1_MEMORY_CONFIG
    layout = name.removeprefix("L1_")
    return ref_ttnn.MemoryConfig(ref_ttnn.TensorMemoryLayout[layout], ref_ttnn.BufferType.L1)


def meta_value(spec: TensorSpec, device: Any) -> Any:
    """A meta-data stand-in for a value of ``spec`` (reference tensor, or a torch tensor on host)."""
    if not spec.is_ttnn:
        dtype = getattr(torch, spec.dtype.removeprefix("torch."))
        return torch.empty(spec.shape, dtype=dtype, device="meta")
    dtype = _DTYPE[spec.dtype]
    data = torch.empty(spec.shape, dtype=dtype.torch_storage, device="meta")
    return ref_ttnn.Tensor(data, dtype, _LAYOUT[spec.layout], memory_config_of(spec.memory),
                           device if spec.on_device else None)


class AbstractEvaluator:
    """Evaluates nodes in order on meta data; ``eval(node)`` records and returns the node's spec."""

    def __init__(self, gm: torch.fx.GraphModule):
        self.gm = gm
        self.device = ref_ttnn.open_device(0, torch_device="meta")
        self.env: dict[torch.fx.Node, Any] = {}

    def value(self, node: torch.fx.Node) -> Any:
        if node not in self.env:
            self.eval(node)
        return self.env[node]

    def eval(self, node: torch.fx.Node) -> TensorSpec | None:
        if node.op == "placeholder":
            spec = node.meta.get("tensor_spec")
            if spec is None:
                raise LoweringError(f"program input '{node.name}' has no tensor spec")
            value = meta_value(spec, self.device)
        elif node.op == "get_attr":
            t = resolve_path(self.gm, node.target)
            value = torch.empty_like(t, device="meta") if isinstance(t, torch.Tensor) else t
        elif node.op == "call_function":
            value = self._call(node)
        elif node.op == "output":
            return None
        else:
            raise LoweringError(f"unsupported node kind {node.op} ({node.name})")
        self.env[node] = value
        spec = spec_from_value(value)
        if spec is not None:
            node.meta["tensor_spec"] = spec
        return spec

    def _call(self, node: torch.fx.Node) -> Any:
        target = node.target
        env = self.value
        if isinstance(target, TTNNOp):
            fn = resolve_path(ref_ttnn, target.name)
            args = resolve_arg(node.args, ref_ttnn, self.device, env)
            kwargs = resolve_arg(node.kwargs, ref_ttnn, self.device, env)
            try:
                out = fn(*args, **kwargs)
            except TTNNContractError as e:
                raise TTNNContractError(f"{e} [node {node.name} from {source_module(node) or '?'}]") from e
            return args[target.inplace] if target.inplace is not None else out
        if isinstance(target, HostOp) or isinstance(target, torch._ops.OpOverload) or target is operator.getitem:
            fn = target.target if isinstance(target, HostOp) else target
            args = resolve_arg(node.args, ref_ttnn, self.device, env)
            kwargs = resolve_arg(node.kwargs, ref_ttnn, self.device, env)
            if "device" in kwargs and isinstance(target, (HostOp, torch._ops.OpOverload)):
                kwargs["device"] = "meta"  # a factory op (arange, zeros) evaluated shape-only
            return fn(*args, **kwargs)
        raise LoweringError(f"node {node.name}: unsupported target {target!r}")

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self.eval(node)


def infer_specs(gm: torch.fx.GraphModule) -> None:
    """Annotate every node of a lowered program with its TensorSpec, checking the ttnn contract."""
    AbstractEvaluator(gm).run()
