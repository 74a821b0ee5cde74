"""The pass pipeline that lowers a captured ATen program to a TTNN program, and its result."""
from __future__ import annotations

import operator
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import torch.fx

from ..errors import LoweringError
from ..precision import DEFAULT_PRECISION
from .capture import CapturedProgram
from .ir import HostOp, OpKind, ProgramSignature, TensorSpec, TTNNOp, aten_name, is_aten, source_module
from .printer import format_program


@dataclass
class FallbackRecord:
    op: str
    module: str
    reason: str
    node: str


@dataclass
class LoweredProgram:
    """A lowered TTNN program: the graph, its I/O specs, and what the pipeline did to get there."""

    name: str
    graph_module: torch.fx.GraphModule
    signature: ProgramSignature
    input_specs: dict[str, TensorSpec]
    output_specs: list[TensorSpec]
    pass_records: list = field(default_factory=list)
    capture_seconds: float = 0.0
    lowering_seconds: float = 0.0
    prologue: "LoweredProgram | None" = None  # loop-invariant part, run once per utterance (hoist_invariants)

    def nodes(self) -> Iterable[torch.fx.Node]:
        return (n for n in self.graph_module.graph.nodes if n.op == "call_function")

    def op_histogram(self) -> dict[str, int]:
        """TTNN ops by name (``ttnn.linear`` …), transfers included, host fallbacks as ``host.<aten op>``."""
        c: Counter = Counter()
        for n in self.nodes():
            if isinstance(n.target, (TTNNOp, HostOp)):
                c[n.target.qualified_name] += 1
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    def count(self, kind: OpKind) -> int:
        return sum(1 for n in self.nodes() if getattr(n.target, "kind", None) is kind)

    def fallbacks(self) -> list[FallbackRecord]:
        return [FallbackRecord(n.target.name.removeprefix("host."), source_module(n), n.meta.get("fallback_reason", ""),
                               n.name) for n in self.nodes() if isinstance(n.target, HostOp)]

    def pretty(self) -> str:
        return format_program(self)


def verify(gm: torch.fx.GraphModule, name: str) -> None:
    """Postconditions of a lowered program: no ATen call left, every value typed, host ops fed host tensors."""
    for n in gm.graph.nodes:
        if is_aten(n):
            raise LoweringError(f"{name}: node {n.name} ({aten_name(n.target)}) was neither lowered nor marked as fallback")
        if n.op not in ("placeholder", "call_function") or "tensor_spec" in n.meta or not n.users:
            continue
        if n.op == "call_function" and (n.target is operator.getitem
                                        or all(u.target is operator.getitem for u in n.users)):
            continue  # a tuple-valued op and the getitems that read it; the getitems carry the specs
        raise LoweringError(f"{name}: node {n.name} has no tensor spec")


def default_passes(dtype: str, input_specs: dict[str, TensorSpec], output_specs: Sequence[TensorSpec | None],
                   invariant_inputs: Sequence[str] = (), precision: str = DEFAULT_PRECISION):
    from ..passes.assign_compute_configs import AssignComputeConfigs
    from ..passes.assign_layouts import AssignLayouts
    from ..passes.canonicalize import Canonicalize
    from ..passes.decompose import Decompose
    from ..passes.fold_constants import FoldConstants
    from ..passes.conv1d_to_conv2d import Conv1dToConv2d
    from ..passes.conv_transpose1d_to_conv_transpose2d import ConvTranspose1dToConvTranspose2d
    from ..passes.fold_batchnorm import FoldBatchNorm
    from ..passes.fuse_attention import FuseAttention
    from ..passes.fuse_binary_activations import FuseBinaryActivations
    from ..passes.fuse_binary_output_activation import FuseBinaryOutputActivation
    from ..passes.lower_batch_norm import LowerBatchNorm
    from ..passes.sink_layout_conversions import SinkLayoutConversions
    from ..passes.hoist_invariants import HoistInvariants
    from ..passes.split_concat_linear import SplitConcatLinear
    from ..passes.insert_host_fallbacks import InsertHostFallbacks
    from ..passes.lower_data_movement import LowerDataMovement
    from ..passes.lower_elementwise import LowerElementwise
    from ..passes.lower_embedding import LowerEmbedding
    from ..passes.lower_kv_cache import LowerKVCache
    from ..passes.lower_layer_norm import LowerLayerNorm
    from ..passes.lower_linear import LowerLinear
    from ..passes.lower_matmul import LowerMatmul
    from ..passes.lower_softmax import LowerSoftmax
    from ..passes.plan_memory import PlanMemory

    passes = [
        Canonicalize(), FoldConstants(), Decompose(), FoldBatchNorm(), Conv1dToConv2d(dtype),
        ConvTranspose1dToConvTranspose2d(dtype), SinkLayoutConversions(), LowerBatchNorm(),
        SplitConcatLinear(invariant_inputs), FuseAttention(),
        LowerLinear(), LowerLayerNorm(), LowerEmbedding(), LowerKVCache(), LowerMatmul(), LowerSoftmax(),
        FuseBinaryActivations(), FuseBinaryOutputActivation(), LowerElementwise(), LowerDataMovement(),
        InsertHostFallbacks(), AssignLayouts(dtype, input_specs, output_specs), AssignComputeConfigs(precision),
    ]
    if invariant_inputs:  # a step program: per-utterance work moves into its prologue
        passes.append(HoistInvariants(invariant_inputs))
    passes.append(PlanMemory())
    return passes


def pass_names() -> tuple[str, ...]:
    """The names ``print_after`` / ``dump`` take: ``captured`` (the graph torch.export produced) and every pass
    of the default pipeline, a step program's ``hoist_invariants`` included."""
    return ("captured",) + tuple(p.name for p in default_passes("float32", {}, [], ["step_input"]))


def _io_specs(gm: torch.fx.GraphModule) -> tuple[dict[str, TensorSpec], list[TensorSpec]]:
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    ins = {n.name: n.meta["tensor_spec"] for n in gm.graph.nodes if n.op == "placeholder"}
    return ins, [a.meta["tensor_spec"] for a in out_node.args[0]]


def lower_program(captured: CapturedProgram, *, dtype: str, input_specs: dict[str, TensorSpec],
                  output_specs: Sequence[TensorSpec | None] = (), dump_dir: Path | None = None,
                  print_after: Iterable[str] | Literal["all"] = (), passes: Sequence | None = None,
                  invariant_inputs: Sequence[str] = (), precision: str = DEFAULT_PRECISION) -> LoweredProgram:
    """Run the pass pipeline on a captured program.  With ``invariant_inputs`` (a step program), the work that
    depends only on those inputs is split off into ``LoweredProgram.prologue``."""
    from ..passes.fold_constants import prune_constants
    from ..passes.pass_manager import PassManager
    from .printer import render_graph

    t0 = time.perf_counter()
    pipeline = passes if passes is not None else default_passes(dtype, input_specs, output_specs, invariant_inputs,
                                                                precision)
    pm = PassManager(pipeline, dump_dir=dump_dir, print_after=print_after, render=render_graph, program=captured.name)
    result = pm(captured.graph_module)
    gm = result.graph_module
    verify(gm, captured.name)
    prune_constants(gm)  # weights the passes replaced (transposed, folded, concatenated) are not kept
    ins, outs = _io_specs(gm)
    signature = ProgramSignature(list(ins), captured.signature.outputs, captured.signature.mutated_inputs)
    prologue = None
    if "prologue" in gm.meta:
        pgm, psig = gm.meta.pop("prologue")
        verify(pgm, f"{captured.name}.prologue")
        prune_constants(pgm)
        from ..passes.plan_memory import PlanMemory
        PlanMemory()(pgm)
        pins, pouts = _io_specs(pgm)
        prologue = LoweredProgram(f"{captured.name}.prologue", pgm, psig, pins, pouts)
    return LoweredProgram(captured.name, gm, signature, ins, outs, result.records, captured.seconds,
                          time.perf_counter() - t0, prologue)
