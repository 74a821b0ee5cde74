"""The lowered-program IR: torch.fx graphs whose call_function targets are TTNN op handles.

Grammar (one node per line in ``printer.py``'s table)::

    program  := fx.Graph of placeholder* node* output
    node     := call_function TTNNOp(args, kwargs)      # ttnn.<name>(...) with ttnn's own argument names
              | call_function HostOp(args, kwargs)      # explicit host fallback: one ATen op on host tensors
              | get_attr <constant>                     # a host torch tensor prepared at lowering time
    arg      := Node | Ref | Construct | python literal
    Ref      := a ttnn attribute by dotted name (``ttnn.bfloat16``, ``ttnn.TILE_LAYOUT``), the bound device or its
                arch (``device.arch()``)
    Construct:= a ttnn value built from args once, when the program is bound
                (``ttnn.UnaryWithParam(ttnn.UnaryOpType.LEAKY_RELU, 0.1)``,
                ``ttnn.init_device_compute_kernel_config(device.arch(), math_fidelity=...)``)

Node metadata every pass keeps (see passes/README.md):
    meta["tensor_spec"]   TensorSpec of the node's value (set by ``infer_specs``; placeholders carry theirs)
    meta["source_module"] the HF module path the node came from (e.g. ``decoder.layers.3.self_attn``)
    meta["val"]           the FakeTensor torch.export recorded (ATen nodes, until lowered)

Nothing here imports ttnn: ``Ref``/``Construct`` are resolved against a ttnn module (real or the
reference) when the executor binds a program.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch
import torch.fx

from ..errors import LoweringError

TILE = 32


class OpKind(enum.Enum):
    COMPUTE = "compute"
    DATA_MOVEMENT = "data_movement"
    TRANSFER = "transfer"      # host <-> device (from_torch, to_torch, to_device, from_device)
    HOST = "host"              # host fallback: an ATen op executed by torch on the host
    MEMORY = "memory"          # buffer management (ttnn.deallocate): no computation, not counted as an op


@dataclass(frozen=True, eq=False)
class TTNNOp:
    """Handle for one ttnn API function, e.g. ``TTNNOp("transformer.scaled_dot_product_attention")``.

    ``inplace`` names the positional argument a side-effecting op writes (its node's value is that
    argument after the write, so readers are ordered after it by data dependence).
    """

    name: str
    kind: OpKind = OpKind.COMPUTE
    inplace: int | None = None

    @property
    def qualified_name(self) -> str:
        return f"ttnn.{self.name}"

    @property
    def __name__(self) -> str:  # used by torch.fx code generation
        return "ttnn_" + self.name.replace(".", "_")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise LoweringError(f"{self.qualified_name} is a lowered op handle; run programs with fx2ttnn.runtime.Executor")

    def __repr__(self) -> str:
        return self.qualified_name


@dataclass(frozen=True, eq=False)
class HostOp:
    """An explicit host fallback: ``target`` (an ATen op) runs in torch on host tensors."""

    target: Callable[..., Any]
    kind: OpKind = OpKind.HOST
    inplace: int | None = None

    @property
    def name(self) -> str:
        return f"host.{aten_name(self.target)}"

    @property
    def qualified_name(self) -> str:
        return self.name

    @property
    def __name__(self) -> str:
        return "host_" + aten_name(self.target).replace(".", "_")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.target(*args, **kwargs)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Ref:
    """A ttnn attribute by dotted path (``"bfloat16"`` → ``ttnn.bfloat16``); ``Ref("device")`` is the device and
    ``Ref("device.arch()")`` its architecture (what ``init_device_compute_kernel_config`` takes first)."""

    path: str

    def __repr__(self) -> str:
        return self.path if self.path.startswith("device") else f"ttnn.{self.path}"


DEVICE = Ref("device")
DEVICE_ARCH = Ref("device.arch()")


@dataclass(frozen=True)
class Construct:
    """A ttnn value constructed at bind time: ``ttnn.<path>(*args, **kwargs)``."""

    path: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"ttnn.{self.path}({', '.join(parts)})"


def construct(path: str, *args: Any, **kwargs: Any) -> Construct:
    return Construct(path, tuple(args), tuple(sorted(kwargs.items())))


# ---------------------------------------------------------------------------------------------
# tensor specs

DTYPE_SHORT = {
    "bfloat16": "bf16", "bfloat8_b": "bf8_b", "bfloat4_b": "bf4_b", "float32": "f32", "uint32": "u32",
    "int32": "i32", "uint16": "u16", "uint8": "u8",
}
DTYPE_BYTES = {
    "bfloat16": 2.0, "bfloat8_b": 1.0625, "bfloat4_b": 0.5625, "float32": 4.0, "uint32": 4.0, "int32": 4.0,
    "uint16": 2.0, "uint8": 1.0,
}


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype, layout and memory of a value.

    ``layout is None`` marks a host torch tensor (fallback land); otherwise it is a ttnn tensor, on
    device when ``on_device`` (then ``memory`` names its memory config, e.g. ``"DRAM"`` or ``"L1_HEIGHT_SHARDED"``).
    """

    shape: tuple[int, ...]
    dtype: str
    layout: str | None = None
    memory: str | None = None
    on_device: bool = False

    @property
    def is_ttnn(self) -> bool:
        return self.layout is not None

    @property
    def padded_shape(self) -> tuple[int, ...]:
        if self.layout != "TILE" or not self.shape:
            return self.shape
        s = list(self.shape)
        s[-1] = -(-s[-1] // TILE) * TILE
        if len(s) >= 2:
            s[-2] = -(-s[-2] // TILE) * TILE
        return tuple(s)

    @property
    def nbytes(self) -> int:
        per = DTYPE_BYTES.get(self.dtype)
        if per is None:
            per = torch.empty((), dtype=getattr(torch, self.dtype.removeprefix("torch."))).element_size()
        return int(math.prod(self.padded_shape) * per)

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        if not self.is_ttnn:
            return f"host {self.dtype.removeprefix('torch.')}[{dims}]"
        where = self.memory if self.on_device else "HOST"
        return f"{DTYPE_SHORT.get(self.dtype, self.dtype)}[{dims}] {self.layout} {where}"


def spec_of(node: torch.fx.Node) -> TensorSpec | None:
    return node.meta.get("tensor_spec")


# ---------------------------------------------------------------------------------------------
# graph helpers


def aten_name(target: Any) -> str:
    """``aten.linear.default`` → ``"aten.linear.default"``; plain callables → their name."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    return getattr(target, "__name__", repr(target))


def is_ttnn(node: torch.fx.Node) -> bool:
    return node.op == "call_function" and isinstance(node.target, TTNNOp)


def is_host(node: torch.fx.Node) -> bool:
    return node.op == "call_function" and isinstance(node.target, HostOp)


def is_aten(node: torch.fx.Node) -> bool:
    return node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)


def is_bind_time(node: torch.fx.Node, constants: set[torch.fx.Node]) -> bool:
    """Whether the executor computes ``node`` once, when it binds the program: a get_attr, or a call that
    reads only ``constants`` (the bind-time nodes before it, in graph order) and writes nothing in place."""
    if node.op == "get_attr":
        return True
    if node.op != "call_function" or getattr(node.target, "inplace", None) is not None:
        return False
    inputs = node.all_input_nodes
    return bool(inputs) and all(n in constants for n in inputs)


def split_bind_time(graph: torch.fx.Graph) -> tuple[list[torch.fx.Node], list[torch.fx.Node]]:
    """A program's calls as the executor makes them: the bind-time nodes (``is_bind_time``, in graph order; run
    once when the program is bound) and the per-call ``call_function`` nodes (in graph order; run on every call).
    The executor, ``fx2ttnn export`` and the real-ttnn conformance replay all take their call lists from here."""
    constants: list[torch.fx.Node] = []
    const_set: set[torch.fx.Node] = set()
    calls: list[torch.fx.Node] = []
    for node in graph.nodes:
        if is_bind_time(node, const_set):
            constants.append(node)
            const_set.add(node)
        elif node.op == "call_function":
            calls.append(node)
    return constants, calls


def source_module(node: torch.fx.Node) -> str:
    """The HF module a node came from, from torch.export's ``nn_module_stack`` (or what a pass recorded)."""
    if "source_module" in node.meta:
        return node.meta["source_module"]
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return strip_wrapper_prefix(path)


# Capture wrappers (lowering/speecht5.py) hold HF submodules under these attribute names; reports show
# HF's own module paths (SpeechT5ForTextToSpeech's, and SpeechT5HifiGan's under "vocoder.").
WRAPPER_PREFIXES: Mapping[str, str] = {
    "encoder.": "speecht5.encoder.",
    "cross_attn.": "speecht5.decoder.wrapped_decoder.layers.{}.encoder_attn.",
    "prenet.": "speecht5.decoder.prenet.",
    "decoder.": "speecht5.decoder.wrapped_decoder.",
    "postnet.": "speech_decoder_postnet.",
    "vocoder.": "vocoder.",
}


def strip_wrapper_prefix(path: str) -> str:
    path = path.replace("L['self'].", "").replace("L__self__.", "")
    for prefix, hf in WRAPPER_PREFIXES.items():
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if "{}" in hf:  # "cross_attn.<i>.k_proj" → layer i's encoder_attn
                index, _, rest = rest.partition(".")
                return hf.format(index) + rest
            return hf + rest
    return path


def copy_meta(dst: torch.fx.Node, src: torch.fx.Node) -> torch.fx.Node:
    """Carry provenance (source module, stack trace) from a replaced node to its replacement."""
    dst.meta.setdefault("source_module", source_module(src))
    if "stack_trace" in src.meta:
        dst.meta.setdefault("stack_trace", src.meta["stack_trace"])
    return dst


def ttnn_call(graph: torch.fx.Graph, op: TTNNOp, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None,
              *, like: torch.fx.Node | None = None) -> torch.fx.Node:
    node = graph.call_function(op, tuple(args), dict(kwargs or {}))
    if like is not None:
        copy_meta(node, like)
    return node


@dataclass
class ProgramSignature:
    """Names of a program's inputs/outputs and which inputs it writes in place (KV caches, position)."""

    inputs: list[str]
    outputs: list[str]
    mutated_inputs: list[str] = field(default_factory=list)
    constant_inputs: list[str] = field(default_factory=list)
