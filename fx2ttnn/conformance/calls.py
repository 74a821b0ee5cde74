"""Every ttnn call of a lowered program, as data for the real-ttnn side.

The call list is the executor's (``lowering.ir.split_bind_time`` tells each call's kind: ``when`` is "bind" for the
calls made once when a program is bound, "call" for those made on every call; the decode step's prologue first;
calls listed in graph order), so what is replayed is what ``BoundProgram`` and ``fx2ttnn export`` run.  Each call is
serialized while the program is evaluated on meta tensors through the reference (``lowering.abstract``), so every
tensor argument carries its full spec at that point of the program: shape, dtype, layout, the memory config with its
shard spec, and whether it is on the device.  Arguments are data, never pickled objects:

    tensor     {"t": "tensor", "shape", "dtype", "layout", "memory": {memory_layout, buffer_type, shard_spec}|None,
                "on_device"}
    host torch {"t": "host", "shape", "dtype", "data": [offset, nbytes] | None}  (bytes in the request's .bin file;
                None: zeros of that shape - only constants up to ``HOST_DATA_LIMIT`` bytes travel)
    ttnn name  {"t": "ref", "path": "bfloat16" | "TILE_LAYOUT" | "UnaryOpType.RELU" | ...};  {"t": "device"};
               {"t": "device_arch"} (``device.arch()``: the architecture of the mock cluster's device, Wormhole)
    config     {"t": "construct", "path", "args", "kwargs"}  (``ttnn.<path>(...)``: Conv2dConfig, UnaryWithParam,
                create_sharded_memory_config, init_device_compute_kernel_config, WormholeComputeKernelConfig, ...)
    literals   JSON numbers, strings, booleans, null; {"t": "float", "repr"} for inf/nan; lists/tuples/dicts
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx

from ..errors import LoweringError
from ..lowering.abstract import AbstractEvaluator, resolve_path
from ..lowering.ir import DEVICE, DEVICE_ARCH, Construct, HostOp, Ref, TTNNOp, source_module, split_bind_time
from ..runtime import reference as ref_ttnn

HOST_DATA_LIMIT = 1 << 20  # host constants up to 1 MiB travel with their values; larger ones as zeros of their shape


@dataclass
class Blob:
    """Raw little-endian buffers for the side environment, appended to one file."""

    chunks: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, data: bytes) -> list[int]:
        ref = [self.size, len(data)]
        self.chunks.append(data)
        self.size += len(data)
        return ref

    def write(self, path) -> None:
        with open(path, "wb") as f:
            for c in self.chunks:
                f.write(c)


def encode_config(value: Any) -> Any:
    """A reference value (enum, dataclass: memory configs, shard specs, core grids) as plain data."""
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode_config(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [encode_config(v) for v in value]
    return value


def _torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class CallSerializer(AbstractEvaluator):
    """Evaluates a lowered graph on meta tensors and records each ttnn call with its arguments as data."""

    def __init__(self, gm: torch.fx.GraphModule, blob: Blob, *, program: str, part: str):
        super().__init__(gm)
        self.blob = blob
        self.program = program
        self.part = part
        bind, calls = split_bind_time(gm.graph)
        self.when = {n: "bind" for n in bind} | {n: "call" for n in calls}
        self.calls: list[dict] = []
        self.host_calls: list[str] = []

    def _call(self, node: torch.fx.Node) -> Any:
        if isinstance(node.target, TTNNOp):
            self.calls.append(self.record(node))
        elif isinstance(node.target, HostOp):
            self.host_calls.append(node.target.name)
        return super()._call(node)

    def record(self, node: torch.fx.Node) -> dict:
        self._device_args = False
        args = self.encode(node.args)["items"]
        kwargs = {k: self.encode(v) for k, v in node.kwargs.items()}
        return {"program": self.program, "part": self.part, "node": node.name, "op": node.target.name,
                "when": self.when.get(node, "call"), "module": source_module(node), "args": args, "kwargs": kwargs,
                "needs_device": self._device_args, "takes_device": _mentions_device(node.args, node.kwargs)}

    def encode(self, a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            return self.encode_value(self.value(a), a)
        if isinstance(a, Ref):
            if a is DEVICE or a.path == "device":
                return {"t": "device"}
            if a == DEVICE_ARCH:
                return {"t": "device_arch"}
            return {"t": "ref", "path": a.path}
        if isinstance(a, Construct):
            return {"t": "construct", "path": a.path, "args": [self.encode(x) for x in a.args],
                    "kwargs": {k: self.encode(v) for k, v in a.kwargs}}
        if isinstance(a, (list, tuple)):
            return {"t": "list" if isinstance(a, list) else "tuple", "items": [self.encode(x) for x in a]}
        if isinstance(a, dict):
            return {"t": "dict", "items": {k: self.encode(v) for k, v in a.items()}}
        if isinstance(a, float) and not math.isfinite(a):
            return {"t": "float", "repr": repr(a)}
        if a is None or isinstance(a, (bool, int, float, str)):
            return a
        raise LoweringError(f"conformance: cannot serialize argument {a!r} ({type(a).__name__}) of a ttnn call in "
                            f"{self.program}")

    def encode_value(self, value: Any, node: torch.fx.Node) -> Any:
        if isinstance(value, ref_ttnn.Tensor):
            if value._value is None:
                raise LoweringError(f"conformance: {node.name} is read after it was deallocated")
            on_device = value.device() is not None
            self._device_args |= on_device
            mc = value.memory_config()
            return {"t": "tensor", "shape": list(value.shape), "dtype": value.dtype.value, "layout": value.layout.name,
                    "memory": encode_config(mc) if mc is not None else None, "on_device": on_device}
        if isinstance(value, torch.Tensor):
            data = None
            if node.op == "get_attr":
                real = resolve_path(self.gm, node.target)
                if real.device.type != "meta" and real.numel() * real.element_size() <= HOST_DATA_LIMIT:
                    data = self.blob.add(real.detach().cpu().contiguous().numpy().tobytes())
            return {"t": "host", "shape": list(value.shape), "dtype": _torch_dtype_name(value.dtype), "data": data}
        if isinstance(value, (list, tuple)):
            return {"t": "list" if isinstance(value, list) else "tuple",
                    "items": [self.encode_value(v, node) for v in value]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise LoweringError(f"conformance: cannot serialize the value of {node.name} ({type(value).__name__})")


def _mentions_device(args: Any, kwargs: Any) -> bool:
    stack = [args, kwargs]
    while stack:
        a = stack.pop()
        if isinstance(a, Ref) and (a is DEVICE or a.path == "device"):
            return True
        if isinstance(a, Construct):
            stack.extend([a.args, [v for _, v in a.kwargs]])
        elif isinstance(a, (list, tuple)):
            stack.extend(a)
        elif isinstance(a, dict):
            stack.extend(a.values())
    return False


def program_calls(lowered: Any, program: str, blob: Blob) -> tuple[list[dict], list[str]]:
    """Every ttnn call of ``lowered`` (its prologue's first), in the order the executor binds and runs them; and its
    host fallbacks (by name; they run in torch, not ttnn)."""
    parts = []
    if lowered.prologue is not None:
        parts.append(("prologue", lowered.prologue.graph_module))
    parts.append(("program", lowered.graph_module))
    calls: list[dict] = []
    host: list[str] = []
    for part, gm in parts:
        ser = CallSerializer(gm, blob, program=program, part=part)
        ser.run()
        calls.extend(ser.calls)
        host.extend(ser.host_calls)
    return calls, host


def call_key(call: dict) -> str:
    """Calls with equal op and arguments bind alike: the side environment replays each distinct call once."""
    text = json.dumps({"op": call["op"], "args": call["args"], "kwargs": call["kwargs"],
                       "needs_device": call["needs_device"], "takes_device": call["takes_device"]}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()
