"""``fx2ttnn compare``: per-module accuracy of the lowered programs against HF eager, on the same inputs.

    fx2ttnn compare [--program encoder|decoder_step|postnet|vocoder|all] [--dtype float32|bfloat16] [--steps N]
                    [--threshold PCC] [--atol X] [--text-len N] [--seed N] [--model PATH_OR_ID]
                    [--vocoder PATH_OR_ID] [--json FILE] [--precision P] [--numerics exact|device] [--stages]

``--stages`` reports one PCC per stage instead (``tools/stages.py``); ``--precision`` / ``--numerics`` choose the
lowering's policy and the reference's math (``--numerics device`` emulates the device's, as accuracy claims do).

Both sides generate from the same seeded token ids and speaker embedding (``bench``'s inputs), prenet dropout
off on both (HF's ``_consistent_dropout`` patched to identity during the HF run; ``prenet_dropout=False``), a
stop threshold above reach, so both run exactly ``--steps`` decode steps, then the postnet and the vocoder.

HF side: forward hooks on HF's modules record each module's output (per call, so per decode step for the
decoder's modules).  Lowered side: ``LoweredSpeechT5.generate_speech`` drives the programs exactly as it always
does (text bucket, KV caches, frame bucket, valid-length masks), but the selected programs run through a
``TapProgram``: the same lowered graph, constants bound as the executor binds them, then interpreted node by
node with the backend's functions (the kernels the generated code calls), recording the values of the tapped
nodes.  Its outputs are bit-identical to the bound program's.

Mapping a lowered value to an HF module (``find_tap``): the module's value is the last non-constant node, in graph
order (a step program's prologue first), whose ``source_module`` is that module or inside it.  That node must
leave the module (be read outside it or be a program output), and no node outside the module may read two of
its values (then the module's last operation was fused into that node, e.g. the text prenet's positional add
into the encoder's first layer norm, and its output is never materialized: the row says so and is not compared;
program inputs that are only uploaded / reshaped, like a valid-length mask shared by the next convs, are not
counted as the module's values whatever module they are tagged with).
An activation a conv/linear fused (``Conv2dConfig.activation``, ``linear(activation=)``) that HF applies *after*
the module (HiFi-GAN's leaky ReLU after ``conv_pre``, its ``tanh`` after ``conv_post``, the sigmoid after
``prob_out``) is applied to the HF value, and the row says ``+act``.  Layouts: HF values are brought to
``[B, L, C]`` (``[B, C, L]`` conv outputs transposed, ``[B, C]`` rows and waveforms given a length-1 axis), lowered
values reshaped to ``[B, L', C]`` (flattened NHWC ``[1, 1, B*L', C]``, trailing-1 reshapes); the bucket padding is
cut (``L'`` → HF's ``L``; in the decode step the lowered step's rows are HF's last rows).

Rows (execution order): encoder — text prenet, the embedding layer norm, each encoder layer, each decoder layer's
cross-attention K/V projections; per decode step — speech prenet, each decoder layer, ``feat_out``, ``prob_out``;
postnet — each conv layer, the postnet output; vocoder — ``conv_pre``, each upsampler and residual block,
``conv_post``, the waveform.  Exit code 1 when any compared value has a PCC below the threshold (default 0.9999
for float32, 0.99 for bfloat16, the project's thresholds), so it can gate CI; the first such row is named.
Values of fewer than ``SMALL_NUMEL`` elements (a step's r stop probabilities) are judged by max abs error
(``--atol``: 1e-5 float32, 2e-2 bfloat16) instead, a correlation over two numbers being meaningless.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
import torch.fx
from torch import nn

from ..accuracy import OP_ATOL, min_pcc, pcc
from ..errors import UnsupportedModelError
from .. import options
from ..precision import DEFAULT_PRECISION, PRECISIONS
from .common import CliError, load_pretrained, notice, positive_int, seed_int
from .outputs import check_writable, write_text

PROGRAMS = ("encoder", "decoder_step", "postnet", "vocoder")
DTYPES = ("float32", "bfloat16")
NUMERICS = ("exact", "device")
# the project's PCC thresholds (fx2ttnn/accuracy.py): float32 programs match HF to rounding
DEFAULT_THRESHOLDS = {d: min_pcc(d) for d in DTYPES}
# values this small (the r stop probabilities of a step) are judged by max abs error instead: a correlation over
# a handful of numbers means nothing (two bfloat16-equal probabilities have no variance at all); the tolerance is
# the one tests/e2e uses for the stop probabilities
SMALL_NUMEL = 32
DEFAULT_ATOL = dict(OP_ATOL)


# ---------------------------------------------------------------------------------------------
# what is compared


@dataclass(frozen=True)
class Site:
    """A value compared: an HF module's output (``module``), or a program output named ``output``.

    ``layout`` is how HF lays the value out: ``nlc`` ``[B, L, C]`` (``[L, C]`` unbatched), ``nc`` ``[B, C]`` (one
    decode position), ``ncl`` ``[B, C, L]`` (conv outputs), ``wave`` ``[L]`` / ``[B, L]``.
    """

    program: str
    module: str
    layout: str = "nlc"
    output: str | None = None


ENCODER_LAYER_PARTS = ("attention", "feed_forward")
DECODER_LAYER_PARTS = ("self_attn", "encoder_attn", "feed_forward")


def sites(model: nn.Module, vocoder: nn.Module | None, programs: Iterable[str] = PROGRAMS, *,
          detail: bool = False) -> list[Site]:
    """The compared values of each program, in execution order; ``detail`` adds each layer's attention blocks and
    feed-forward block before the layer itself."""
    cfg = model.config
    programs = set(programs)
    out: list[Site] = []

    def layer(program: str, path: str, parts: Sequence[str]) -> list[Site]:
        return [Site(program, f"{path}.{p}") for p in (parts if detail else ())] + [Site(program, path)]

    enc, dec = "speecht5.encoder.wrapped_encoder", "speecht5.decoder.wrapped_decoder"
    if "encoder" in programs:
        out += [Site("encoder", "speecht5.encoder.prenet"), Site("encoder", f"{enc}.layer_norm")]
        for i in range(cfg.encoder_layers):
            out += layer("encoder", f"{enc}.layers.{i}", ENCODER_LAYER_PARTS)
        for i in range(cfg.decoder_layers):  # cross-attention K/V: computed once per utterance, by the encoder
            out += [Site("encoder", f"{dec}.layers.{i}.encoder_attn.{p}") for p in ("k_proj", "v_proj")]
    if "decoder_step" in programs:
        out.append(Site("decoder_step", "speecht5.decoder.prenet"))
        for i in range(cfg.decoder_layers):
            out += layer("decoder_step", f"{dec}.layers.{i}", DECODER_LAYER_PARTS)
        out += [Site("decoder_step", "speech_decoder_postnet.feat_out", "nc"),
                Site("decoder_step", "speech_decoder_postnet.prob_out", "nc")]
    if "postnet" in programs:
        out += [Site("postnet", f"speech_decoder_postnet.layers.{i}", "ncl")
                for i in range(cfg.speech_decoder_postnet_layers)]
        out.append(Site("postnet", "speech_decoder_postnet.postnet()", "nlc", output="spectrogram"))
    if "vocoder" in programs and vocoder is not None:
        k = len(vocoder.config.resblock_kernel_sizes)
        out.append(Site("vocoder", "vocoder.conv_pre", "ncl"))
        for i in range(len(vocoder.upsampler)):
            out.append(Site("vocoder", f"vocoder.upsampler.{i}", "ncl"))
            out += [Site("vocoder", f"vocoder.resblocks.{j}", "ncl") for j in range(i * k, (i + 1) * k)]
        out += [Site("vocoder", "vocoder.conv_post", "ncl"), Site("vocoder", "vocoder", "wave")]
    return out


def hf_module(model: nn.Module, vocoder: nn.Module | None, path: str) -> nn.Module:
    if path == "vocoder":
        return vocoder
    if path.startswith("vocoder."):
        return vocoder.get_submodule(path.removeprefix("vocoder."))
    return model.get_submodule(path)


# ---------------------------------------------------------------------------------------------
# lowered node ↔ HF module


@dataclass
class Tap:
    """Where a site's lowered value is: ``node`` of the ``graph`` ("main" or "prologue") or why there is none."""

    node: torch.fx.Node | None = None
    graph: str = "main"
    activation: tuple[str, float | None] | None = None  # fused activation HF applies after the module
    reason: str = ""


def _constants(gm: torch.fx.GraphModule) -> set[torch.fx.Node]:
    """Nodes the executor binds once (``lowering.ir.is_bind_time``): get_attr and what reads only constants."""
    const: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op == "get_attr":
            const.add(node)
        elif node.op == "call_function" and getattr(node.target, "inplace", None) is None:
            inputs = node.all_input_nodes
            if inputs and all(n in const for n in inputs):
                const.add(node)
    return const


def _side_inputs(gm: torch.fx.GraphModule) -> set[torch.fx.Node]:
    """Program inputs only moved (uploaded, reshaped): e.g. a valid-length mask reshaped once for one conv and
    shared by the next ones.  Whatever module they are tagged with, they are not that module's computation."""
    from ..lowering.ir import OpKind

    side: set[torch.fx.Node] = set()
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            side.add(n)
        elif n.op == "call_function" and getattr(n.target, "kind", None) in (OpKind.DATA_MOVEMENT, OpKind.TRANSFER) \
                and n.all_input_nodes and all(a in side for a in n.all_input_nodes):
            side.add(n)
    return side


def _frees(node: torch.fx.Node) -> bool:
    """A ``ttnn.deallocate`` (plan_memory): it holds no value and reads its input only to free it."""
    from ..lowering.ir import OpKind
    return getattr(node.target, "kind", None) is OpKind.MEMORY


def _inside(module: str, node: torch.fx.Node) -> bool:
    from ..lowering.ir import source_module
    s = source_module(node)
    return bool(s) and (s == module or s.startswith(module + "."))


def _op_name(node: torch.fx.Node) -> str:
    return getattr(node.target, "qualified_name", getattr(node.target, "__name__", str(node.target)))


_PASS_THROUGH = {"reshape", "sharded_to_interleaved", "interleaved_to_sharded", "to_layout", "to_memory_config",
                 "typecast", "clone"}


def fused_activation(node: torch.fx.Node) -> tuple[str, float | None] | None:
    """The activation a ``ttnn.linear`` / ``ttnn.conv2d`` producing ``node`` applies (through trailing reshapes)."""
    from ..lowering.abstract import resolve_arg
    from ..lowering.ir import TTNNOp, source_module
    from ..runtime import reference

    n = node
    while isinstance(n.target, TTNNOp) and n.target.name in _PASS_THROUGH and source_module(n) == source_module(node):
        first = n.args[0] if n.args else n.kwargs.get("input_tensor")
        if not isinstance(first, torch.fx.Node):
            break
        n = first
    if not isinstance(n.target, TTNNOp):
        return None
    if n.target.name == "linear":
        act = n.kwargs.get("activation")
        return (str(act), None) if act else None
    if n.target.name in ("conv2d", "conv_transpose2d", "conv1d"):
        cfg = resolve_arg(n.kwargs.get("conv_config"), reference, None, lambda _: None)
        act = getattr(cfg, "activation", None)
        if act is not None:
            return act.op_type.value, act.param
    return None


def find_tap(site: Site, graphs: Sequence[tuple[str, torch.fx.GraphModule]], outputs: Sequence[str] = ()) -> Tap:
    """The lowered node holding ``site``'s value (see the module docstring), searched in ``graphs`` (label, graph)
    in run order ("prologue" before "main"); ``outputs`` names the main graph's outputs."""
    from ..lowering.ir import source_module

    if site.output is not None:
        gm = dict(graphs)["main"]
        if site.output not in outputs:
            return Tap(reason=f"the program has no output {site.output!r}")
        out = next(n for n in gm.graph.nodes if n.op == "output")
        return Tap(out.args[0][list(outputs).index(site.output)], "main")
    found: tuple[str, torch.fx.GraphModule, torch.fx.Node, set] | None = None
    for label, gm in graphs:
        const = _constants(gm)
        members = {n for n in gm.graph.nodes if n.op == "call_function" and _inside(site.module, n)
                   and not _frees(n)}
        live = [n for n in gm.graph.nodes if n in members and n not in const]
        if live:
            found = (label, gm, live[-1], members)
    if found is None:
        return Tap(reason="no lowered node computes from this module's inputs")
    label, gm, node, members = found
    leaves = any(u not in members and not _frees(u) for u in node.users)
    if not leaves:
        return Tap(reason=f"its last lowered node {node.name} ({_op_name(node)}) is not read outside the module")
    side = _side_inputs(gm)
    for user in gm.graph.nodes:
        if user in members or user.op != "call_function":
            continue
        read = {a for a in user.all_input_nodes if a in members and a not in side}
        if len(read) >= 2:
            where = f" of {source_module(user)}" if source_module(user) else ""
            return Tap(reason=f"output not materialized (fused into {_op_name(user)} {user.name}{where})")
    # a conv / linear of the module itself (not of a submodule) with a fused activation: HF applies it afterwards
    act = fused_activation(node) if source_module(node) == site.module else None
    return Tap(node, label, act)


# ---------------------------------------------------------------------------------------------
# running a lowered program node by node


class TapProgram:
    """A ``BoundProgram`` stand-in: the same graph, constants bound like the executor binds them, then interpreted
    node by node with the backend's functions (the ones the generated code calls); the values of ``taps`` are
    copied to host torch tensors after every call (``records``, one dict per call)."""

    def __init__(self, bound: Any, taps: Iterable[torch.fx.Node] = ()):
        from ..lowering.abstract import resolve_arg, resolve_path
        from ..lowering.ir import HostOp, TTNNOp

        self.bound = bound
        self.name = bound.name
        self.backend = bound.backend
        self.input_names = list(bound.input_names)
        self.output_names = list(bound.output_names)
        self.input_specs = bound.input_specs
        self.taps = set(taps)
        self.records: list[dict[torch.fx.Node, torch.Tensor]] = []
        gm = bound.graph_module
        ttnn, device = self.backend.ttnn, self.backend.device
        self._resolve = lambda a, env: resolve_arg(a, ttnn, device, env.__getitem__)
        const = _constants(gm)
        values: dict[torch.fx.Node, Any] = {}
        for node in gm.graph.nodes:  # executor._bind_constants: checked calls, once
            if node not in const:
                continue
            if node.op == "get_attr":
                values[node] = resolve_path(gm, node.target)
                if isinstance(values[node], torch.Tensor) and values[node].device.type == "meta":
                    raise UnsupportedModelError(
                        f"{self.name}: its weights were released after upload; compare needs a lowering made "
                        "with lower_model(..., keep_host_weights=True)")
            else:
                fn = resolve_path(ttnn, node.target.name) if isinstance(node.target, TTNNOp) else \
                    (node.target.target if isinstance(node.target, HostOp) else node.target)
                values[node] = fn(*self._resolve(node.args, values), **self._resolve(node.kwargs, values))
        self._constants = values
        self._placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self._nodes = []
        for n in gm.graph.nodes:
            if n.op != "call_function" or n in const:
                continue
            if isinstance(n.target, TTNNOp):
                fn = self.backend.fn(n.target)
            elif isinstance(n.target, HostOp):
                fn = n.target.target
            else:
                fn = n.target
            self._nodes.append((n, fn, getattr(n.target, "inplace", None)))
        self._output = next(n for n in gm.graph.nodes if n.op == "output")
        # values are dropped after their last reader, as in the generated code (outputs and in-place targets kept)
        last: dict[torch.fx.Node, torch.fx.Node] = {}
        for n, _, _ in self._nodes:
            for a in n.all_input_nodes:
                last[a] = n
        keep = set(self._output.all_input_nodes) | set(self._placeholders) | set(values)
        self._free: dict[torch.fx.Node, list[torch.fx.Node]] = {}
        for a, n in last.items():
            if a not in keep:
                self._free.setdefault(n, []).append(a)
        self._validated = False

    def _host(self, value: Any) -> torch.Tensor:
        if isinstance(value, torch.Tensor):
            return value.detach().float().clone()
        return self.backend.ttnn.to_torch(value).float().clone()

    def __call__(self, *inputs: Any) -> tuple:
        if not self._validated:
            self.bound.check_inputs(inputs)
            self._validated = True
        env: dict[torch.fx.Node, Any] = dict(self._constants)
        env.update(zip(self._placeholders, inputs))
        record: dict[torch.fx.Node, torch.Tensor] = {}
        for node, fn, inplace in self._nodes:
            args = self._resolve(node.args, env)
            if node.target is operator.getitem:
                value = args[0][args[1]]
            else:
                out = fn(*args, **self._resolve(node.kwargs, env))
                value = args[inplace] if inplace is not None else out
            env[node] = value
            if node in self.taps and not isinstance(value, (tuple, list)) and not _frees(node):
                # (tuple-valued ops: their getitems; deallocations hold no value)
                record[node] = self._host(value)
            for dead in self._free.get(node, ()):
                del env[dead]
        self.records.append(record)
        return tuple(env[a] for a in self._output.args[0])


# ---------------------------------------------------------------------------------------------
# the report


@dataclass
class Row:
    program: str
    step: int | None           # decode step (1-based) for decoder_step rows
    module: str                # HF module path (or ``...postnet()`` / program output)
    hf_shape: list[int] | None
    lowered: str               # node name and TensorSpec of the lowered value
    pcc: float | None
    max_abs_err: float | None
    status: str                # "ok", "FAIL" (below the threshold or NaN), "n/a" (not comparable: see note)
    note: str = ""             # fused activation applied to the HF value, or why not comparable
    criterion: str = "pcc"     # "pcc" (PCC >= threshold) or "atol" (max abs err <= atol: values < SMALL_NUMEL)

    @property
    def label(self) -> str:
        step = f" step {self.step}" if self.step is not None else ""
        return f"{self.program}{step} {self.module}"


@dataclass
class CompareReport:
    rows: list[Row]
    threshold: float
    atol: float
    dtype: str
    steps: int
    text_len: int
    text_bucket: int
    frame_bucket: int
    backend: str
    programs: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "FAIL"]

    @property
    def first_failure(self) -> Row | None:
        return next(iter(self.failures), None)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> str:
        d = asdict(self)
        d["first_failure"] = asdict(self.first_failure) if self.first_failure else None
        for r in d["rows"] + ([d["first_failure"]] if d["first_failure"] else []):
            for k in ("pcc", "max_abs_err"):
                if r[k] is not None and math.isnan(r[k]):
                    r[k] = None  # strict JSON; the row's status says FAIL
        return json.dumps({"schema_version": 1, **d}, indent=2)

    def format_table(self) -> str:
        head = ("program", "step", "module", "HF shape", "lowered", "PCC", "max abs err", "status")
        lines_ = []
        for r in self.rows:
            shape = "[" + ",".join(map(str, r.hf_shape)) + "]" if r.hf_shape is not None else "-"
            value = f"{r.pcc:.8f}" if r.pcc is not None else "-"
            err = f"{r.max_abs_err:.3g}" if r.max_abs_err is not None else "-"
            module = r.module + (f" ({r.note})" if r.note and r.status != "n/a" else "")
            status = f"n/a: {r.note}" if r.status == "n/a" else \
                r.status + (" (by atol)" if r.criterion == "atol" else "")
            lines_.append((r.program, str(r.step) if r.step is not None else "", module, shape, r.lowered or "-",
                           value, err, status))
        widths = [max(len(h), *(len(x[i]) for x in lines_)) if lines_ else len(h) for i, h in enumerate(head)]
        widths[-1] = len(head[-1])
        right = {5, 6}

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [fmt(head), fmt(["-" * w for w in widths])]
        out += [fmt(x) for x in lines_]
        return "\n".join(out)

    def summary(self) -> str:
        compared = [r for r in self.rows if r.status != "n/a"]
        skipped = len(self.rows) - len(compared)
        tail = f"; {skipped} not comparable" if skipped else ""
        bad = self.first_failure
        if bad is None:
            by_pcc = [r for r in compared if r.criterion == "pcc"]
            worst = min(by_pcc, key=lambda r: r.pcc) if by_pcc else None
            low = "" if worst is None else (f"1 - {1 - worst.pcc:.1e}" if 1 - worst.pcc < 1e-6 else f"{worst.pcc:.8f}")
            w = f", lowest {low} ({worst.label})" if worst else ""
            return (f"PASS: {len(compared)} values compared, all PCC >= {self.threshold}{w} (values under "
                    f"{SMALL_NUMEL} elements: max abs err <= {self.atol:g}){tail}")
        why = f"max abs err {bad.max_abs_err:.3g} > atol {self.atol:g} (PCC {bad.pcc:.6f})" if bad.criterion == "atol" \
            else f"PCC {bad.pcc:.6f} < {self.threshold} (max abs err {bad.max_abs_err:.3g})"
        return (f"FAIL: {len(self.failures)} of {len(compared)} values below the threshold{tail}; first: "
                f"{bad.label} (lowered {bad.lowered.split(' ')[0]}): {why}")

    def header(self) -> str:
        return (f"fx2ttnn compare: {self.dtype}, {self.text_len} tokens (text bucket {self.text_bucket}), "
                f"{self.steps} decode step{'s' if self.steps != 1 else ''} (frame bucket {self.frame_bucket}), "
                f"programs {', '.join(self.programs)}; lowered on {self.backend}; threshold PCC {self.threshold}, "
                f"atol {self.atol:g} for values under {SMALL_NUMEL} elements")


# ---------------------------------------------------------------------------------------------
# values



_ACTIVATIONS: dict[str, Callable[[torch.Tensor, float | None], torch.Tensor]] = {
    "relu": lambda x, p: torch.relu(x),
    "gelu": lambda x, p: nn.functional.gelu(x),
    "sigmoid": lambda x, p: torch.sigmoid(x),
    "tanh": lambda x, p: torch.tanh(x),
    "silu": lambda x, p: nn.functional.silu(x),
    "leaky_relu": lambda x, p: nn.functional.leaky_relu(x, 0.01 if p is None else p),
}


class MappingError(Exception):
    pass


def _hf_nlc(value: torch.Tensor, layout: str) -> torch.Tensor:
    t = value.detach().float()
    if layout == "ncl":
        t = t.unsqueeze(0) if t.dim() == 2 else t
        return t.transpose(1, 2)
    if layout == "nc":
        return t.unsqueeze(1) if t.dim() == 2 else t
    if layout == "wave":
        t = t.unsqueeze(0) if t.dim() == 1 else t
        return t.unsqueeze(-1)
    return t.unsqueeze(0) if t.dim() == 2 else t


def align(hf: torch.Tensor, lowered: torch.Tensor, layout: str, program: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both values as ``[B, L, C]`` over HF's valid positions (see the module docstring)."""
    h = _hf_nlc(hf, layout)
    if h.dim() != 3:
        raise MappingError(f"HF value has shape {list(hf.shape)}")
    b, length, c = h.shape
    low = lowered.float()
    if c != 1 and low.shape[-1] != c or low.numel() % (b * c):
        raise MappingError(f"lowered {list(lowered.shape)} does not map onto HF {list(hf.shape)}")
    low = low.reshape(b, -1, c)
    n = low.shape[1]
    if program == "decoder_step":  # the step computes the newest position(s) only
        if n > length:
            raise MappingError(f"lowered {list(lowered.shape)} has more positions than HF {list(hf.shape)}")
        return h[:, length - n:], low
    if n < length:
        raise MappingError(f"lowered {list(lowered.shape)} has fewer positions than HF {list(hf.shape)}")
    return h, low[:, :length]


# ---------------------------------------------------------------------------------------------
# the two runs


@contextlib.contextmanager
def no_hf_prenet_dropout() -> Iterator[None]:
    """HF's inference-time prenet dropout off (``_consistent_dropout`` → identity) for the duration."""
    from transformers.models.speecht5 import modeling_speecht5 as hf
    cls = hf.SpeechT5SpeechDecoderPrenet
    saved = cls.__dict__["_consistent_dropout"]
    cls._consistent_dropout = lambda self, x, p: x
    try:
        yield
    finally:
        cls._consistent_dropout = saved


def _first(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "to_tuple"):
        output = output.to_tuple()
    return output[0]


def run_hf(model: nn.Module, vocoder: nn.Module | None, ids: torch.Tensor, speaker: torch.Tensor,
           generate_kwargs: dict[str, Any],
           modules: Sequence[str]) -> tuple[dict[str, list[torch.Tensor]], torch.Tensor]:
    """HF eager generation with forward hooks: each module's outputs (one per call) and the postnet output."""
    rec: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
    hooks = []
    for name in modules:
        mod = hf_module(model, vocoder, name)
        hooks.append(mod.register_forward_hook(lambda m, a, o, name=name: rec[name].append(_first(o).detach().clone())))
    try:
        with no_hf_prenet_dropout(), torch.no_grad():
            spectrogram = model.generate_speech(ids, speaker, **generate_kwargs)
            if vocoder is not None:
                vocoder(spectrogram)
    finally:
        for h in hooks:
            h.remove()
    return rec, spectrogram


def variant_graphs(variant: Any) -> list[tuple[str, torch.fx.GraphModule]]:
    """A program variant's graphs in run order: its prologue (if any), then the program."""
    out = [("prologue", variant.prologue.graph_module)] if variant.prologue is not None else []
    return out + [("main", variant.lowered.graph_module)]


@contextlib.contextmanager
def tapped(tts: Any, taps: dict[tuple[str, tuple[int, ...]], dict[str, set[torch.fx.Node]]]) -> Iterator[dict]:
    """Run the program variants named in ``taps`` ({(program, key): {"main"|"prologue": nodes}}) through
    ``TapProgram``s while the block runs; yields {(program, key): {"main"|"prologue": TapProgram}}."""
    swapped, runners = [], {}
    try:
        for (name, key), by_graph in taps.items():
            v = tts.variant(name, key)
            runners[(name, key)] = {}
            swapped.append((v, v.bound, v.prologue))
            v.bound = runners[(name, key)]["main"] = TapProgram(v.bound, by_graph.get("main", ()))
            if v.prologue is not None:
                v.prologue = runners[(name, key)]["prologue"] = TapProgram(v.prologue, by_graph.get("prologue", ()))
        yield runners
    finally:
        for v, bound, prologue in swapped:
            v.bound, v.prologue = bound, prologue


def compare_model(model: nn.Module, vocoder: nn.Module | None = None, *, dtype: str = "float32", steps: int = 4,
                  text_len: int = 24, seed: int = 0, programs: Iterable[str] | None = None,
                  threshold: float | None = None, atol: float | None = None, detail: bool = False,
                  tts: Any = None, precision: str = DEFAULT_PRECISION, numerics: str = "exact") -> CompareReport:
    """Run HF eager and the lowered programs on the same inputs; one row per compared value (see module doc).

    ``tts``: an existing ``LoweredSpeechT5`` of ``model`` (reference backend, ``prenet_dropout=False``) to reuse;
    by default the model is lowered here with ``dtype``, ``precision`` and ``numerics``.  ``programs``: a subset of PROGRAMS (default all; every
    program still runs, only the selected ones are tapped and compared).  ``detail``: also each layer's attention
    and feed-forward blocks.
    """
    from ..lowering import speecht5 as s5

    programs = list(PROGRAMS if programs is None else programs)
    for p in programs:
        if p not in PROGRAMS:
            raise CliError(f"unknown program {p!r}; programs are {', '.join(PROGRAMS)} (or all)")
    if tts is not None:
        vocoder = tts.vocoder
        dtype = tts.dtype
        if tts.model is not model:
            raise CliError("tts is a lowering of another model")
        if tts.prenet_dropout:
            raise CliError("compare needs a lowering with prenet_dropout=False (HF's dropout is patched off)")
        if not tts.backend.is_reference:
            raise CliError("compare runs the lowered programs on the reference backend")
    if vocoder is None:
        if "vocoder" in programs and programs != list(PROGRAMS):
            raise CliError("--program vocoder needs a vocoder")
        programs = [p for p in programs if p != "vocoder"]
    if dtype not in DTYPES:
        raise CliError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    threshold = DEFAULT_THRESHOLDS[dtype] if threshold is None else float(threshold)
    check_threshold(threshold)
    atol = DEFAULT_ATOL[dtype] if atol is None else float(atol)
    check_atol(atol)
    cfg = model.config
    if not isinstance(steps, int) or steps < 1 or steps > cfg.max_speech_positions:
        raise CliError(f"steps must be in [1, {cfg.max_speech_positions}], got {steps}")
    if not isinstance(text_len, int) or text_len < 1 or text_len > cfg.max_text_positions:
        raise CliError(f"text length must be in [1, {cfg.max_text_positions}] (config.max_text_positions), "
                       f"got {text_len}")

    # the inputs (as fx2ttnn bench): seeded token ids (no special tokens) and speaker embedding
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, cfg.vocab_size, (1, text_len), generator=g)
    speaker = torch.randn(1, cfg.speaker_embedding_dim, generator=g)
    r = cfg.reduction_factor
    kw = dict(threshold=float(r) + 1.0, maxlenratio=(steps + 0.5) * r / text_len)  # stop above reach: `steps` steps

    all_sites = sites(model, vocoder, programs, detail=detail)
    module_sites = [s.module for s in all_sites if s.output is None]

    # HF eager
    hf_values, hf_spectrogram = run_hf(model, vocoder, ids, speaker, kw, module_sites)
    hf_outputs = {"speech_decoder_postnet.postnet()": [hf_spectrogram]}

    # lowered
    if tts is None:
        from .. import model as model_module
        max_steps = max(32, -(-(steps + 1) // 32) * 32)
        tts = model_module.lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype,
                                       max_steps=max_steps, prenet_dropout=False, keep_host_weights=True,
                                       precision=precision, numerics=numerics)
    bucket = s5.bucket_for(text_len, tts.text_buckets, "text length")
    fb = s5.frame_bucket(steps * r)
    keys = {"encoder": (1, bucket), "decoder_step": (1, bucket), "postnet": (1, fb), "vocoder": (1, fb)}
    tap_of: dict[Site, Tap] = {}
    taps: dict[tuple[str, tuple[int, ...]], dict[str, set]] = {}
    for site in all_sites:
        variant = tts.variant(site.program, keys[site.program])
        tap = find_tap(site, variant_graphs(variant), variant.lowered.signature.outputs)
        tap_of[site] = tap
        by_graph = taps.setdefault((site.program, keys[site.program]), {})
        if tap.node is not None:
            by_graph.setdefault(tap.graph, set()).add(tap.node)
    with tapped(tts, taps) as runners:
        tts.generate_speech(ids, speaker, vocoder=None if vocoder is not None else False, **kw)
    for (name, key), by_graph in runners.items():
        if not by_graph["main"].records:
            raise CliError(f"the generator did not run {name}{list(key)} through tts.variant(...).bound; "
                           "compare cannot tap it")
    steps_run = tts.last_generation.steps
    if steps_run != steps:  # both sides stop at maxlen; a mismatch is a generator bug, not a precision problem
        raise CliError(f"the lowered generator ran {steps_run} decode steps, HF {steps}")

    rows: list[Row] = []
    for program in programs:
        psites = [s for s in all_sites if s.program == program]
        for step in (range(steps) if program == "decoder_step" else [None]):
            for site in psites:
                rows.append(_row(site, step, tap_of[site], runners[(program, keys[program])], hf_values, hf_outputs,
                                 threshold, atol))
    return CompareReport(rows, threshold, atol, dtype, steps, text_len, bucket, fb, tts.backend.description,
                         programs)


def _row(site: Site, step: int | None, tap: Tap, runners: dict[str, TapProgram],
         hf_values: dict[str, list[torch.Tensor]], hf_outputs: dict[str, list[torch.Tensor]], threshold: float,
         atol: float) -> Row:
    calls = hf_outputs.get(site.module) if site.output is not None else hf_values.get(site.module, [])
    index = step if step is not None else 0
    hf = calls[index] if calls and index < len(calls) else None
    hf_shape = list(hf.shape) if hf is not None else None
    row = Row(site.program, None if step is None else step + 1, site.module, hf_shape, "", None, None, "n/a")
    if tap.node is None:
        row.note = tap.reason
        return row
    spec = tap.node.meta.get("tensor_spec")
    row.lowered = f"{tap.node.name} {spec}" if spec is not None else tap.node.name
    if hf is None:
        row.note = "HF did not run this module" + (f" in step {step + 1}" if step is not None else "")
        return row
    records = runners[tap.graph].records
    record = records[0] if tap.graph == "prologue" else records[index]
    low = record[tap.node]
    if tap.activation is not None:
        name, param = tap.activation
        if name not in _ACTIVATIONS:
            row.note = f"fused activation {name} has no torch equivalent here"
            return row
        hf = _ACTIVATIONS[name](hf.float(), param)
        row.note = f"+{name}" + (f" {param:g}" if param is not None else "")
    try:
        h, lo = align(hf, low, site.layout, site.program)
    except MappingError as e:
        row.note = f"layout cannot be mapped: {e}"
        return row
    row.pcc = pcc(h, lo)
    row.max_abs_err = float((h.double() - lo.double()).abs().max()) if h.numel() else 0.0
    if h.numel() < SMALL_NUMEL:
        row.criterion = "atol"
        row.status = "ok" if row.max_abs_err <= atol else "FAIL"  # NaN fails
    else:
        row.status = "ok" if row.pcc >= threshold else "FAIL"  # NaN fails
    return row


def check_threshold(threshold: float) -> float:
    return options.real(threshold, "--threshold", low=0.0, low_open=True, high=1.0, error=CliError)


def check_atol(atol: float) -> float:
    return options.real(atol, "--atol", low=0.0, error=CliError)


# ---------------------------------------------------------------------------------------------
# command line


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "compare", help="per-module accuracy of the lowered programs vs HF eager (PCC, max abs error)",
        description="Run HF eager and the lowered programs (reference backend) on the same inputs and report, per "
                    "HF module output (each encoder/decoder layer, prenets, postnet, each vocoder stage; decoder "
                    "modules per decode step), the PCC and max abs error of the lowered value. Exit code 1 when "
                    "any value is below the threshold (the first is named), 2 on usage errors.")
    p.add_argument("--program", default="all", metavar="P",
                   help="encoder, decoder_step, postnet, vocoder or all (default: %(default)s); every program runs, "
                        "only the selected ones are compared")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="lowered dtype (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=None, metavar="N",
                   help="decode steps compared (default: 4; 125 with --stages)")
    p.add_argument("--threshold", type=float, default=None, metavar="PCC",
                   help="minimum PCC (default: 0.9999 for float32, 0.99 for bfloat16)")
    p.add_argument("--atol", type=float, default=None, metavar="X",
                   help=f"maximum abs error for values under {SMALL_NUMEL} elements, e.g. a step's stop "
                        "probabilities (default: 1e-5 for float32, 2e-2 for bfloat16)")
    p.add_argument("--text-len", type=positive_int, default=24, metavar="N",
                   help="input tokens (default: %(default)s)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N",
                   help="seed for random weights, token ids and speaker embedding (default: %(default)s)")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint: save_pretrained directory or Hugging Face Hub id "
                        "(default: default config, seeded random weights)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint (default: default config, seeded random weights)")
    p.add_argument("--detail", action="store_true",
                   help="also compare each layer's attention and feed-forward blocks")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="precision policy of the lowering (fx2ttnn/precision.py; default: %(default)s)")
    p.add_argument("--numerics", choices=NUMERICS, default=None,
                   help="reference numerics: exact (float32 math) or device (emulated fidelity and accumulation); "
                        "default: exact, and device with --stages")
    p.add_argument("--stages", action="store_true",
                   help="instead of per-module rows: PCC per stage (encoder, decoder step, spectrogram, postnet, "
                        "vocoder, waveform) and the decode step's weight bytes (fx2ttnn/tools/stages.py); "
                        "--steps defaults to 125 here")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the report as JSON (missing parent directories are created)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from transformers import (SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig)

    programs = list(PROGRAMS) if args.program == "all" else [args.program]
    if args.program != "all" and args.program not in PROGRAMS:
        raise CliError(f"unknown program {args.program!r}; choose one of {', '.join(PROGRAMS)} or all")
    if args.threshold is not None:
        check_threshold(args.threshold)
    if args.atol is not None:
        check_atol(args.atol)
    if args.steps is None:
        args.steps = 125 if args.stages else 4
    numerics = args.numerics or ("device" if args.stages else "exact")
    if args.dtype == "float32" and numerics == "device":
        raise CliError("--dtype float32 is an exact, reference-only mode: use --numerics exact (or --dtype bfloat16)")
    if args.json:
        check_writable(args.json, "--json")
    model = load_pretrained(SpeechT5ForTextToSpeech, args.model, "model") if args.model else None
    vocoder = load_pretrained(SpeechT5HifiGan, args.vocoder, "vocoder") if args.vocoder else None
    config = model.config if model is not None else SpeechT5Config()
    if args.text_len > config.max_text_positions:
        raise CliError(f"--text-len {args.text_len} exceeds the model's {config.max_text_positions} text positions")
    if args.steps > config.max_speech_positions:
        raise CliError(f"--steps {args.steps} exceeds the model's {config.max_speech_positions} speech positions")
    torch.manual_seed(args.seed)  # random weights as fx2ttnn bench's default_models(seed)
    if model is None:
        notice(f"no --model: default SpeechT5Config with random weights (seed {args.seed})")
        model = SpeechT5ForTextToSpeech(config).eval()
    if vocoder is None:
        if args.model is not None:
            notice(f"no --vocoder: default SpeechT5HifiGanConfig with random weights (seed {args.seed})")
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig()).eval()
    if vocoder.config.model_in_dim != model.config.num_mel_bins:
        raise CliError(f"the vocoder takes {vocoder.config.model_in_dim} mel bins but the model makes "
                       f"{model.config.num_mel_bins}")
    if args.stages:
        from .stages import stage_accuracy
        stages = stage_accuracy(model, vocoder, dtype=args.dtype, precision=args.precision, numerics=numerics,
                                steps=args.steps, text_len=args.text_len, seed=args.seed)
        print(stages.format())
        if args.json:
            write_text(args.json, json.dumps({"schema_version": 1, "kind": "stages", **stages.to_dict()}, indent=2)
                       + "\n")
        return 0
    report = compare_model(model, vocoder, dtype=args.dtype, steps=args.steps, text_len=args.text_len,
                           seed=args.seed, programs=programs, threshold=args.threshold, atol=args.atol,
                           detail=args.detail, precision=args.precision, numerics=numerics)
    print(report.header())
    print(report.format_table())
    print(report.summary())
    if args.json:
        write_text(args.json, report.to_json() + "\n")
    return 0 if report.passed else 1
