"""``fx2ttnn export --out DIR``: each lowered program as a standalone Python script that calls ``ttnn.*``.

For every program (``encoder``, ``decoder_step`` with its per-utterance ``prologue``, ``postnet``, ``vocoder``)
DIR gets::

    <program>.py                        the script: ttnn 0.81.1 calls, one per statement (see below)
    <program>.safetensors               its weights, as the lowering prepared them (transposed, folded, fused)
    <program>_inputs.safetensors        example inputs (host tensors, by input name)
    <program>_expected.safetensors      what fx2ttnn's in-process runtime computed on them (outputs and the
                                        inputs the program writes in place), for ``--check``
    README.txt                          how to run them

A script mirrors how ``runtime/executor.py`` binds a program: ``load_parameters(path, device)`` runs the
program's constant subgraph once (weight uploads, ``prepare_conv_weights`` ...) and returns the device
parameters; ``run(device, params, <inputs>)`` is the rest of the graph as straight-line code, one ttnn call
per statement, variables named after the HF module each node came from, ``# <HF module>`` comments, ttnn
enums and constructors spelled out (``ttnn.TILE_LAYOUT``, ``ttnn.UnaryWithParam(...)``), in-place ops
(KV-cache updates, ``ttnn.plus_one(position)``) as statements, host fallbacks (if any) as plain torch calls.  ``main``
opens device 0, loads the parameters, uploads the example inputs, runs, prints the output shapes and, with
``--check``, compares with the expected outputs (PCC).  The script imports ``ttnn``; ``FX2TTNN_TTNN=reference``
(or ``--reference``) swaps in fx2ttnn's reference implementation of the ttnn API — the only place a script
imports fx2ttnn.
"""
from __future__ import annotations

import argparse
import builtins
import keyword
import math
import operator
import re
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.fx

from ..precision import DEFAULT_PRECISION, PRECISIONS
from .common import CliError, check_lowering_flags, load_models, one_line, seed_int, step_count
from .outputs import check_out_dir, write_atomic

PROGRAMS = ("encoder", "decoder_step", "postnet", "vocoder")
DTYPES = ("bfloat16", "float32")
LINE_WIDTH = 120
FREE_BYTES = 1 << 20   # the generated code drops (``del``) dead intermediates at least this large


class ExportError(CliError):
    """A lowered program holds something the exporter cannot write as Python source."""


# ---------------------------------------------------------------------------------------------------------
# command line

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="write each lowered program as a standalone Python script calling ttnn.* (+ weights)",
        description="Write a standalone Python script per lowered program that calls the ttnn 0.81.1 API directly, "
                    "with its weights (safetensors), example inputs and the outputs fx2ttnn computed on them. "
                    "The scripts import ttnn; FX2TTNN_TTNN=reference (or --reference) runs them on fx2ttnn's "
                    "reference implementation instead. Without --model, the default SpeechT5 configuration "
                    "with seeded random weights is exported.")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (created if missing)")
    p.add_argument("--program", action="append", metavar="NAME", default=None,
                   help=f"program(s) to export: {', '.join(PROGRAMS)} or all (default); repeat the option or "
                        "give a comma-separated list")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint: a save_pretrained directory or a Hugging Face Hub id "
                        "(downloaded into the HF cache if not there) (default: random weights, default config)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint, like --model (default: random weights, default config)")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16",
                   help="weights and activations dtype (default: %(default)s)")
    p.add_argument("--max-steps", type=step_count, default=None, metavar="N",
                   help="decode steps the decoder_step KV cache holds (multiple of 32; default: lower_model's, 1024)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="precision policy: the compute kernel configs and large-linear weight dtype "
                        "(fx2ttnn/precision.py; default: %(default)s)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N",
                   help="seed for random weights and the example inputs (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def parse_programs(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or ["all"]:
        for name in (v.strip() for v in value.split(",")):
            if name == "all":
                names.extend(PROGRAMS)
            elif name in PROGRAMS:
                names.append(name)
            else:
                raise CliError(f"unknown program {name!r}; programs are {', '.join(PROGRAMS)} or all")
    return [n for n in PROGRAMS if n in names]


def prepare_out_dir(out: str) -> Path:
    """Create ``out`` (and parents) and check that files can be written there; one-line errors otherwise."""
    path = check_out_dir(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fx2ttnn-export-", suffix=".tmp"):
            pass
    except OSError as e:
        raise CliError(f"cannot write to --out {out!r}: {e.strerror or one_line(e)}") from None
    return path


def lower_programs(model: Any, vocoder: Any, *, dtype: str, max_steps: int | None, names: Iterable[str],
                   precision: str = DEFAULT_PRECISION):
    """``lower_model`` on the reference backend, lowering only the default variants of ``names`` and keeping the
    host weights (they are what the weights file holds)."""
    from ..model import lower_model
    return lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype, max_steps=max_steps,
                       programs=list(names), keep_host_weights=True, precision=precision)


def run(args: argparse.Namespace) -> int:
    names = parse_programs(args.program)
    check_out_dir(args.out)
    model, vocoder, source = load_models(args.model, args.vocoder, seed=args.seed, with_vocoder="vocoder" in names)
    from ..lowering.speecht5 import check_supported
    check_supported(model, vocoder)
    check_lowering_flags(args, model.config)
    out = prepare_out_dir(args.out)
    written = []
    for name in names:
        print(f"lowering {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        tts = lower_programs(model, vocoder, dtype=args.dtype, max_steps=args.max_steps, names=[name],
                             precision=args.precision)
        variant = tts.variant(name, tts.default_key(name))
        exported = export_variant(tts, variant, out, source=source, seed=args.seed)
        written.append(exported)
        print(f"exported {name} to {exported.script}: {exported.calls} ttnn calls per run"
              f"{f' (+ {exported.prologue_calls} in its prologue)' if exported.prologue_calls else ''}, "
              f"{exported.host_calls} host fallbacks, weights {exported.weights.name} "
              f"({exported.weight_bytes / 2**20:.1f} MiB), {time.perf_counter() - t0:.1f} s", flush=True)
    readme = out / "README.txt"
    _write_text(readme, readme_text(written, source, args.dtype))
    print(f"wrote {readme}", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------
# example inputs and the in-process run that gives the expected outputs

@dataclass
class Exported:
    name: str
    script: Path
    weights: Path
    inputs: Path
    expected: Path
    weight_bytes: int
    calls: int
    prologue_calls: int
    host_calls: int


def example_inputs(tts: Any, variant: Any, seed: int) -> dict[str, torch.Tensor]:
    """Host tensors for the program's inputs (for a step program: its prologue's inputs in place of the
    values the prologue computes), plausible for each input's role, drawn from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    cfg = tts.config
    specs = dict(variant.lowered.input_specs)
    if variant.lowered.prologue is not None:
        for n in variant.lowered.prologue.signature.outputs:
            specs.pop(n, None)
        specs.update(variant.lowered.prologue.input_specs)
    out = {}
    for name, spec in specs.items():
        shape = spec.shape
        if name == "input_ids":
            n_valid = max(1, shape[-1] * 3 // 4)
            ids = torch.randint(4, cfg.vocab_size, shape, generator=gen)
            ids[..., n_valid:] = cfg.pad_token_id
            value = ids
        elif name in ("attention_mask", "frame_mask"):
            value = torch.ones(shape)
            value[..., max(1, shape[-1] * 3 // 4):] = 0.0
        elif name == "position":
            value = torch.full(shape, min(3, tts.max_steps - 1), dtype=torch.int32)
        elif name.startswith("dropout_mask_"):
            p = cfg.speech_decoder_prenet_dropout
            value = torch.bernoulli(torch.full(shape, 1.0 - p), generator=gen) / (1.0 - p)
        elif name == "cross_attention_mask":
            value = torch.zeros(shape)
            value[..., max(1, shape[-1] * 3 // 4):] = torch.finfo(torch.float32).min
        elif name.startswith("valid_mask_"):
            value = torch.ones(shape)
        elif name in ("speaker", "speaker_embeddings"):
            v = torch.randn(shape, generator=gen)
            value = v / v.norm(dim=-1, keepdim=True)
        else:
            value = torch.randn(shape, generator=gen) * 0.5
        if not spec.is_ttnn:
            value = value.to(getattr(torch, spec.dtype.removeprefix("torch.")))
        elif spec.dtype == "bfloat16" and value.is_floating_point():
            value = value.to(torch.bfloat16)  # what the upload stores: rounded once, here
        out[name] = value.contiguous()
    return out


def run_in_process(tts: Any, variant: Any, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The program (after its prologue) on ``tensors`` through fx2ttnn's BoundProgram; outputs and the inputs
    written in place, as host tensors."""
    from ..runtime.generate import upload

    ttnn, device = tts.backend.ttnn, tts.backend.device
    lowered = variant.lowered
    env: dict[str, Any] = {}
    specs = dict(lowered.input_specs)
    if lowered.prologue is not None:
        specs.update(lowered.prologue.input_specs)
    for name, value in tensors.items():
        spec = specs[name]
        env[name] = upload(ttnn, device, spec, value) if spec.is_ttnn else value
    if variant.prologue is not None:
        pro = variant.prologue
        env.update(zip(pro.output_names, pro(*[env[n] for n in pro.input_names])))
    outs = variant.bound(*[env[n] for n in variant.bound.input_names])
    results = dict(zip(lowered.signature.outputs, outs))
    results.update((n, env[n]) for n in lowered.signature.mutated_inputs)
    return {n: (v if isinstance(v, torch.Tensor) else ttnn.to_torch(v)).contiguous() for n, v in results.items()}


def export_variant(tts: Any, variant: Any, out: Path, *, source: str, seed: int) -> Exported:
    name = variant.name
    lowered = variant.lowered
    script = ScriptWriter(lowered, program=name, key=variant.key, dtype=tts.dtype, max_steps=tts.max_steps,
                          source=source, precision=tts.precision)
    code = script.render()
    compile(code, f"{name}.py", "exec")  # the exporter's own sanity check
    tensors = example_inputs(tts, variant, seed)
    expected = run_in_process(tts, variant, tensors)
    paths = Exported(name, out / f"{name}.py", out / f"{name}.safetensors", out / f"{name}_inputs.safetensors",
                     out / f"{name}_expected.safetensors", script.weight_bytes, script.calls, script.prologue_calls,
                     script.host_calls)
    meta = {"program": name, "exported_by": "fx2ttnn export"}
    _write_safetensors(paths.weights, script.weights, meta)
    _write_safetensors(paths.inputs, tensors, meta)
    _write_safetensors(paths.expected, expected, meta)
    _write_text(paths.script, code)
    return paths


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write_atomic(path, write)
    except OSError as e:
        raise CliError(f"cannot write {str(path)!r}: {e.strerror or one_line(e)}") from None


def _write_text(path: Path, text: str) -> None:
    _atomic(path, lambda p: p.write_text(text))


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    from safetensors.torch import save_file
    data = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    _atomic(path, lambda p: save_file(data, str(p), metadata=meta))


# ---------------------------------------------------------------------------------------------------------
# naming

_PREFIXES = ("speecht5.decoder.wrapped_decoder.", "speecht5.encoder.wrapped_encoder.", "speecht5.decoder.",
             "speecht5.encoder.", "speech_decoder_postnet.", "vocoder.", "speecht5.")
_ROOTS = ("vocoder", "speecht5", "speech_decoder_postnet")
_OP_SUFFIX = {
    "transformer.scaled_dot_product_attention": "sdpa", "transformer.scaled_dot_product_attention_decode": "sdpa",
    "transformer.concatenate_heads": "concat_heads", "experimental.nlp_concat_heads": "concat_heads",
    "transformer.split_query_key_value_and_split_heads": "heads", "experimental.nlp_create_qkv_heads": "heads",
    "experimental.paged_update_cache": "cache", "sharded_to_interleaved": "interleaved",
    "conv_transpose2d": "conv", "conv1d": "conv",
}
_TUPLE_ITEMS = {
    "transformer.split_query_key_value_and_split_heads": ("q", "k", "v"),
    "experimental.nlp_create_qkv_heads": ("q", "k", "v"),
}
_AUTO_NAME = re.compile(r"^(mul|add|sub|div|select|reshape|view|expand|cat|linear|conv1d|conv_transpose1d)(_\d+)?(_|$)")
_PRIMARY_OPS = {"linear", "conv2d", "conv_transpose2d", "conv1d", "layer_norm", "embedding"}
_WEIGHT_SLOT = {"linear": 1, "matmul": 1, "embedding": 1}
_KWARG_ROLE = {"weight_tensor": "weight", "bias_tensor": "bias", "input_tensor_b": "b"}
_SCRIPT_GLOBALS = {"ttnn", "torch", "math", "operator", "os", "sys", "time", "argparse", "Path", "load_file",
                   "device", "params", "p", "w", "run", "prologue", "load_parameters", "upload_inputs",
                   "run_program", "to_host", "pcc", "main", "use_ttnn"}
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | _SCRIPT_GLOBALS


def short_module(path: str) -> str:
    """``speecht5.decoder.wrapped_decoder.layers.3.self_attn`` → ``layers.3.self_attn`` (comments keep HF's)."""
    if path in _ROOTS:
        return ""
    for prefix in _PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def ident(text: str) -> str:
    """A Python identifier made from ``text``: ASCII letters, digits and ``_`` only (any other character, unicode
    letters included, becomes ``_``), never starting with a digit.  ``Names`` also keeps it off keywords."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", text.replace(".", "_")).strip("_") or "value"
    return name if not name[0].isdigit() else f"m_{name}"


# -- text from users and checkpoints in generated code ------------------------------------------------------
# A script holds such text (a checkpoint path, HF module paths, input names) only as a string literal, an
# escaped docstring or comment, or an identifier that was checked: never as code.

def _checked_ident(text: Any, what: str) -> str:
    """``text`` if it is an ASCII Python identifier that is not a keyword (an input name, a kwarg, a ttnn
    attribute); an ``ExportError`` otherwise."""
    if type(text) is not str or not text.isascii() or not text.isidentifier() or keyword.iskeyword(text):
        raise ExportError(f"{what} {text!r} is not a plain Python identifier; it cannot be written into a script")
    return text


def _checked_path(path: Any, what: str) -> str:
    """A dotted path of checked identifiers (``experimental.paged_update_cache``)."""
    if type(path) is not str:
        raise ExportError(f"{what} {path!r} is not a dotted name")
    for part in path.split("."):
        _checked_ident(part, what)
    return path


def _escaped(text: str, quote: bool) -> str:
    """``text`` with backslashes, (if ``quote``) double quotes and every non-printable character (line breaks,
    control characters, lone surrogates, unicode separators) written as escape sequences."""
    out = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' and quote:
            out.append('\\"')
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _doc(text: str) -> str:
    """Text for a (non-raw) triple-quoted docstring: its value is ``text`` exactly, and nothing in it can end
    the string."""
    return _escaped(text, quote=True)


def _comment(text: str) -> str:
    """Text for a ``#`` comment: one line whatever ``text`` holds."""
    return _escaped(text, quote=False)


class Names:
    """Unique Python identifiers in one scope: ``take("x")`` → ``x``, then ``x_1``, ``x_2`` ..."""

    def __init__(self, reserved: Iterable[str] = ()):
        self.used = set(_RESERVED) | set(reserved)

    def take(self, base: str) -> str:
        base = self._base(base)
        name, i = base, 0
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def _base(self, base: str) -> str:
        return ident(base)


class Keys(Names):
    """Unique dotted keys (weights file, params dict): taken as given, nothing reserved."""

    def __init__(self):
        self.used: set[str] = set()

    def _base(self, base: str) -> str:
        return base


# ---------------------------------------------------------------------------------------------------------
# code generation

def _source_module(node: torch.fx.Node) -> str:
    from ..lowering.ir import source_module
    return source_module(node)




def _op_name(node: torch.fx.Node) -> str:
    from ..lowering.ir import HostOp, TTNNOp
    t = node.target
    if isinstance(t, TTNNOp):
        return t.name
    if isinstance(t, HostOp):
        return t.name
    return getattr(t, "__name__", str(t))


@dataclass
class _Graph:
    """One program's graph, split like the executor binds it: constant nodes and per-call nodes."""

    gm: torch.fx.GraphModule
    placeholders: list[torch.fx.Node]
    constants: list[torch.fx.Node]
    nodes: list[torch.fx.Node]
    output: torch.fx.Node

    @classmethod
    def of(cls, gm: torch.fx.GraphModule) -> "_Graph":
        from ..lowering.ir import split_bind_time
        constants, nodes = split_bind_time(gm.graph)
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        output = next(n for n in gm.graph.nodes if n.op == "output")
        listed = set(constants) | set(nodes) | set(placeholders) | {output}
        for n in gm.graph.nodes:
            if n not in listed:
                raise ExportError(f"cannot export node {n.name} ({n.op})")
        return cls(gm, placeholders, constants, nodes, output)


class ScriptWriter:
    """Writes a lowered program (and its prologue) as a standalone script; see the module docstring."""

    def __init__(self, lowered: Any, *, program: str, key: tuple[int, ...], dtype: str, max_steps: int, source: str,
                 precision: str = DEFAULT_PRECISION):
        self.lowered = lowered
        self.precision = precision
        self.program = _checked_ident(program, "program name")
        self.key = tuple(int(k) for k in key)
        self.dtype = dtype
        self.max_steps = max_steps
        self.source = source
        self.weights: dict[str, torch.Tensor] = {}
        self.weight_bytes = 0
        self.calls = self.prologue_calls = self.host_calls = 0
        self._wkeys, self._pkeys = Keys(), Keys()
        self.step = _Graph.of(lowered.graph_module)
        self.pro = _Graph.of(lowered.prologue.graph_module) if lowered.prologue is not None else None
        # compute kernel configs: made once in load_parameters, read from the parameters by every call
        self._configs: dict[Any, str] = {}
        for g in [self.step] + ([self.pro] if self.pro else []):
            for n in g.gm.graph.nodes:
                for v in n.kwargs.values():
                    if _is_compute_config(v) and v not in self._configs:
                        self._configs[v] = _config_key(v)
        # parameter keys: the step program's first (its names stay clean), then the prologue's
        self._param_key: dict[torch.fx.Node, str] = {}
        self._weight_key: dict[torch.fx.Node, str] = {}
        self._bases: dict[torch.fx.Node, str] = {}
        for g in [self.step] + ([self.pro] if self.pro else []):
            self._name_bases(g)
            self._name_constants(g)

    # -- names ---------------------------------------------------------------------------------------------
    def _linear_role(self, node: torch.fx.Node) -> str:
        """``qkv`` / ``q`` for the fused attention projections (from the weight's lowering name), else ``linear``."""
        w = node.args[1] if len(node.args) > 1 else node.kwargs.get("input_tensor_b")
        seen = 0
        while isinstance(w, torch.fx.Node) and w.op != "get_attr" and seen < 8:
            w = w.all_input_nodes[0] if w.all_input_nodes else None
            seen += 1
        target = str(getattr(w, "target", ""))
        if "_q_qkv_" in target:
            return "q"
        if "_qkv_" in target:
            return "qkv"
        if "_kv_" in target:
            return "kv"
        return "linear"

    def _suffix(self, node: torch.fx.Node) -> str:
        op = _op_name(node)
        if op == "linear":
            return self._linear_role(node)
        if op.startswith("host."):
            return op.split(".")[-2] if op.count(".") >= 2 else "host"
        return _OP_SUFFIX.get(op, op.split(".")[-1])

    def _name_bases(self, g: _Graph) -> None:
        """Dotted base name of every per-call node: its HF module (short), + the op when the module has several."""
        counted = [n for n in g.nodes if n.target is not operator.getitem
                   and getattr(n.target, "inplace", None) is None]
        per_module: dict[str, int] = {}
        for n in counted:
            m = short_module(_source_module(n))
            per_module[m] = per_module.get(m, 0) + 1
        primary: dict[str, list[torch.fx.Node]] = {}
        for n in counted:  # the op a module is named for (its Linear, Conv, LayerNorm ...) takes the bare name
            if _op_name(n) in _PRIMARY_OPS and self._suffix(n) in ("linear", "conv", "conv2d", "layer_norm",
                                                                     "embedding"):
                primary.setdefault(short_module(_source_module(n)), []).append(n)
        for n in g.nodes:
            m = short_module(_source_module(n))
            if _op_name(n) == "from_torch" and n.args and isinstance(n.args[0], torch.fx.Node) \
                    and n.args[0].op == "placeholder":
                self._bases[n] = f"{n.args[0].name}_device"  # a host input uploaded by the program
            elif not m:
                self._bases[n] = self._suffix(n)
            elif n in counted and (per_module.get(m, 0) == 1 or primary.get(m) == [n]):
                self._bases[n] = m
            else:
                self._bases[n] = f"{m}.{self._suffix(n)}"

    def _role(self, user: torch.fx.Node, const: torch.fx.Node) -> str:
        op = _op_name(user)
        for i, a in enumerate(user.args):
            if a is const or (isinstance(a, (list, tuple)) and const in a):
                if _WEIGHT_SLOT.get(op) == i:
                    return "weight"
                return self._param_name(op, i)
        for k, v in user.kwargs.items():
            if v is const or (isinstance(v, (list, tuple)) and const in v):
                return _KWARG_ROLE.get(k, k)
        return "value"

    @staticmethod
    def _param_name(op: str, index: int) -> str:
        import inspect

        from ..lowering.abstract import resolve_path
        from ..runtime import reference
        try:
            params = list(inspect.signature(resolve_path(reference, op)).parameters)
            name = params[index]
        except Exception:  # noqa: BLE001 - no such op in the reference, or *args
            return f"arg{index}"
        return _KWARG_ROLE.get(name, name.removeprefix("input_"))

    def _name_constants(self, g: _Graph) -> None:
        """Keys for the constants: a constant read by per-call code is ``params[<user base>.<role>]`` (e.g.
        ``layers.0.self_attn.qkv.weight``); one read only by other constants takes the key of what it feeds."""
        consts = set(g.constants)
        base_of: dict[torch.fx.Node, str] = {}
        for c in reversed(g.constants):
            runtime_users = [u for u in c.users if u not in consts]
            if runtime_users:
                u = runtime_users[0]
                root = _root_attr(c)
                role = self._role(u, c)
                part = re.search(r"_part(\d+)", str(getattr(root, "target", "")))
                if part:  # a weight split in parts by a pass (split_concat_linear)
                    role += f"_part{part[1]}"
                hint = str(root.target).removeprefix("c_") if root is not None else ""
                if hint.endswith("rel_bias_table"):
                    role = "rel_bias_table"
                base = self._bases.get(u, "output")
                if not short_module(_source_module(u)):  # the user is outside any HF module
                    if hint and not _AUTO_NAME.match(hint):  # a constant the lowering named (vocoder_mean)
                        base = None
                    else:  # named after where its value flows
                        m = short_module(_module_downstream(u))
                        base = f"{m}.{base}" if m else None
                own = short_module(_source_module(c))
                if own and own != short_module(_source_module(u)):  # e.g. a positional-encoding table
                    base, role = own, "value"
                elif _op_name(u) == "add" and base is not None and len(u.args) > 1 and u.args[1] is c:
                    module = short_module(_source_module(u))
                    base, role = (module or base), "bias"  # a bias added after the op (conv_transpose2d)
                base_of[c] = f"{base}.{role}" if base is not None else (hint or c.name)
                self._param_key[c] = self._pkeys.take(base_of[c])
            else:
                users = [u for u in c.users if u in base_of]
                base_of[c] = base_of[users[0]] if users else ident(str(c.target if c.op == "get_attr" else c.name))
        for c in g.constants:
            if c.op == "get_attr":
                self._weight_key[c] = self._wkeys.take(base_of[c])
        self._const_base = getattr(self, "_const_base", {})
        self._const_base.update(base_of)

    # -- expressions ---------------------------------------------------------------------------------------
    def _expr(self, a: Any, names: dict[torch.fx.Node, str]) -> str:
        from ..lowering.ir import Construct, Ref
        if isinstance(a, torch.fx.Node):
            return names[a]
        if isinstance(a, Ref):
            if a.path == "device":
                return "device"
            if a.path == "device.arch()":
                return "device.arch()"
            return f"ttnn.{_checked_path(a.path, 'ttnn attribute')}"
        if isinstance(a, Construct):
            if a in self._configs:
                return f"p[{_q(self._configs[a])}]"
            return self._construct(a, names)
        if isinstance(a, list):
            return "[" + ", ".join(self._expr(x, names) for x in a) + "]"
        if isinstance(a, tuple):
            inner = ", ".join(self._expr(x, names) for x in a)
            return f"({inner},)" if len(a) == 1 else f"({inner})"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{self._expr(k, names)}: {self._expr(v, names)}" for k, v in a.items()) + "}"
        if type(a) is str:  # exact types: a subclass could redefine __repr__
            return _q(a)
        if type(a) in (bool, int) or a is None:
            return repr(a)
        if type(a) is float:
            if math.isnan(a):
                return 'float("nan")'
            if math.isinf(a):
                return 'float("inf")' if a > 0 else '-float("inf")'
            return repr(a)
        if isinstance(a, torch.dtype):
            return str(a)
        if isinstance(a, (torch.memory_format, torch.layout)):
            return str(a)
        if isinstance(a, torch.device):
            return f"torch.device({_q(str(a))})"
        raise ExportError(f"cannot write argument {a!r} ({type(a).__name__}) as Python source")

    def _construct(self, a: Any, names: dict[torch.fx.Node, str]) -> str:
        parts = [self._expr(x, names) for x in a.args] + [f"{_checked_ident(k, 'keyword argument')}="
                                                          f"{self._expr(v, names)}" for k, v in a.kwargs]
        return f"ttnn.{_checked_path(a.path, 'ttnn constructor')}({', '.join(parts)})"

    def _callee(self, node: torch.fx.Node) -> str:
        from ..lowering.ir import HostOp, TTNNOp
        t = node.target
        if isinstance(t, TTNNOp):
            return _checked_path(t.qualified_name, "ttnn op")
        fn = t.target if isinstance(t, HostOp) else t
        if isinstance(fn, torch._ops.OpOverload):
            return f"torch.ops.{fn}"
        if isinstance(fn, torch._ops.OpOverloadPacket):
            return f"torch.ops.{fn._qualified_op_name.replace('::', '.')}"
        module = getattr(fn, "__module__", None)
        if module in ("_operator", "operator"):
            return f"operator.{fn.__name__}"
        if module == "math":
            return f"math.{fn.__name__}"
        if module and module.startswith("torch") and hasattr(torch, fn.__name__):
            return f"torch.{fn.__name__}"
        raise ExportError(f"cannot write the call target {fn!r} of node {node.name} as Python source")

    def _call(self, node: torch.fx.Node, names: dict[torch.fx.Node, str], lhs: str | None, indent: str) -> list[str]:
        args = [self._expr(a, names) for a in node.args] + [f"{_checked_ident(k, 'keyword argument')}="
                                                            f"{self._expr(v, names)}" for k, v in node.kwargs.items()]
        return _wrap_call(f"{indent}{lhs} = " if lhs else indent, self._callee(node), args)

    # -- functions -----------------------------------------------------------------------------------------
    def _weight_tensor(self, c: torch.fx.Node, gm: torch.fx.GraphModule) -> torch.Tensor:
        from ..lowering.abstract import resolve_path
        from ..lowering.ir import Ref
        value = resolve_path(gm, c.target)
        if not isinstance(value, torch.Tensor):
            raise ExportError(f"constant {c.target} is a {type(value).__name__}, not a tensor")
        if value.device.type == "meta":
            raise ExportError(f"constant {c.target}: the host weights were released after upload; export needs a "
                              "lowering made with lower_model(..., keep_host_weights=True)")
        value = value.detach()

        def bf16_upload(u: torch.fx.Node) -> bool:
            dtype = u.kwargs.get("dtype", u.args[1] if len(u.args) > 1 else None)
            return _op_name(u) == "from_torch" and u.args and u.args[0] is c and dtype == Ref("bfloat16")

        # uploaded only as bfloat16: stored as bfloat16 (from_torch rounds to nearest even, as torch does)
        if value.dtype == torch.float32 and c.users and all(bf16_upload(u) for u in c.users):
            value = value.to(torch.bfloat16)
        return value

    def _load_parameters(self, graphs: list[_Graph]) -> list[str]:
        lines = ["def load_parameters(path=WEIGHTS, device=None):",
                 '    """Load the weights file and run the program\'s constant part once: weight uploads and',
                 "    preparation (the host tensors were already transposed/folded/fused by the lowering).",
                 '    Returns the device parameters that ``run`` reads, by name."""',
                 "    w = load_file(str(path))",
                 "    p = {}"]
        if self._configs:
            lines.append(f"    # compute kernel configs (precision policy {self.precision!r}), made once")
        for config, key in self._configs.items():
            construct = _split_call(self._construct(config, {}))
            lines.extend(_wrap_call(f"    p[{_q(key)}] = ", construct[0], construct[1]))
        locals_ = Names({"path", "w", "p", "device"})
        for g in graphs:
            names: dict[torch.fx.Node, str] = {}
            last_module = None
            for c in g.constants:
                if c.op == "get_attr":
                    key = self._weight_key[c]
                    tensor = self._weight_tensor(c, g.gm)
                    self.weights[key] = tensor
                    self.weight_bytes += tensor.numel() * tensor.element_size()
                    names[c] = f"w[{_q(key)}]"
                    if c in self._param_key:  # a host tensor the per-call code reads
                        lines.append(f"    p[{_q(self._param_key[c])}] = {names[c]}")
                        names[c] = f"p[{_q(self._param_key[c])}]"
                    continue
                module = _module_downstream(c)
                if module != last_module:
                    if module:
                        lines.append(f"    # {_comment(module)}")
                    last_module = module
                if c in self._param_key:
                    target = f"p[{_q(self._param_key[c])}]"
                else:
                    target = locals_.take(self._const_base[c])
                if c.target is operator.getitem:
                    lines.append(f"    {target} = {self._expr(c.args[0], names)}[{self._expr(c.args[1], names)}]")
                else:
                    lines.extend(self._call(c, names, target, "    "))
                names[c] = target
        lines.append("    return p")
        return lines

    def _function(self, g: _Graph, fname: str, input_names: list[str], output_names: list[str], doc: list[str]
                  ) -> tuple[list[str], int]:
        """``def fname(device, params, <inputs>)``: the per-call nodes, one ttnn call per statement."""
        from ..lowering.ir import HostOp, OpKind
        input_names = [_checked_ident(n, "program input") for n in input_names]
        output_names = [_checked_ident(n, "program output") for n in output_names]
        scope = Names(input_names)
        names: dict[torch.fx.Node, str] = {}
        for ph, name in zip(g.placeholders, input_names):
            names[ph] = name
        for c in g.constants:
            if c in self._param_key:
                names[c] = f"p[{_q(self._param_key[c])}]"
        outputs = list(g.output.args[0])
        out_name: dict[torch.fx.Node, str] = {}
        for node, name in zip(outputs, output_names):
            if node in g.nodes and node not in out_name and getattr(node.target, "inplace", None) is None \
                    and name not in scope.used:
                out_name[node] = scope.take(name)
        # tuple-valued ops whose users all unpack them
        unpack: dict[torch.fx.Node, list[str]] = {}
        for n in g.nodes:
            items = _TUPLE_ITEMS.get(_op_name(n)) if n.target is not operator.getitem else None
            if items and n.users and all(u.target is operator.getitem and isinstance(u.args[1], int)
                                         and 0 <= u.args[1] < len(items) for u in n.users) \
                    and len({u.args[1] for u in n.users}) == len(n.users):
                unpack[n] = list(items)
        # owners (aliases of in-place writes resolve to what they write) and last uses, for ``del``
        owner: dict[torch.fx.Node, torch.fx.Node] = {}
        for n in g.nodes:
            inplace = getattr(n.target, "inplace", None)
            owner[n] = owner.get(n.args[inplace], n.args[inplace]) if inplace is not None else n
        last_use: dict[torch.fx.Node, torch.fx.Node] = {}
        for n in g.nodes:
            for i in n.all_input_nodes:
                last_use[owner.get(i, i)] = n
        kept = {owner.get(o, o) for o in outputs if isinstance(o, torch.fx.Node)}
        local = set(g.nodes)

        signature = _wrap_call("def ", fname, ["device", "params", *input_names])
        signature[-1] += ":"
        lines = [*signature, *doc, "    p = params"]
        calls = 0
        last_module: str | None = None
        for n in g.nodes:
            if n.target is operator.getitem and n.args[0] in unpack:
                continue
            module = _source_module(n)
            if module != last_module:
                lines.append("")
                if module:
                    lines.append(f"    # {_comment(module)}")
                last_module = module
            inplace = getattr(n.target, "inplace", None)
            if isinstance(n.target, HostOp):
                reason = n.meta.get("fallback_reason", "")
                lines.append(_comment(f"    # host fallback ({n.target.name.removeprefix('host.')})"
                                      f"{': ' + one_line(reason) if reason else ''}"))
                self.host_calls += 1
            if n.target is operator.getitem:
                var = out_name.get(n) or scope.take(self._bases[n])
                lines.append(f"    {var} = {self._expr(n.args[0], names)}[{self._expr(n.args[1], names)}]")
                names[n] = var
            elif n in unpack:
                items = unpack[n]
                base = short_module(_source_module(n))
                targets = ["_"] * len(items)
                for u in n.users:
                    var = out_name.get(u) or scope.take(f"{base}.{items[u.args[1]]}" if base else items[u.args[1]])
                    names[u] = targets[u.args[1]] = var
                lines.extend(self._call(n, names, ", ".join(targets), "    "))
                calls += 1
            elif inplace is not None:
                written = n.args[inplace]
                call = self._call(n, names, None, "    ")
                call[-1] += "  # in place"
                lines.extend(call)
                names[n] = names[written]
                calls += 1
            else:
                var = out_name.get(n) or scope.take(self._bases[n])
                lines.extend(self._call(n, names, var, "    "))
                names[n] = var
                calls += getattr(n.target, "kind", None) is not OpKind.HOST
            dead = []
            for i in dict.fromkeys(n.all_input_nodes):
                o = owner.get(i, i)
                if last_use.get(o) is n and o in local and o not in kept and o not in unpack \
                        and _nbytes(o) >= FREE_BYTES and names.get(o, "_") != "_":
                    dead.append(names[o])
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        rets = [self._expr(o, names) for o in outputs]
        lines.append("")
        lines.append(f"    return ({''.join(r + ', ' for r in rets)})" if len(rets) == 1
                     else f"    return {', '.join(rets)}")
        return lines, calls

    # -- the script ----------------------------------------------------------------------------------------
    def render(self) -> str:
        from ..runtime.ttnn_probe import L1_SMALL_SIZE, TRACE_REGION_SIZE
        lowered, name = self.lowered, self.program
        sig = lowered.signature
        pro = lowered.prologue
        graphs = [self.step] + ([self.pro] if self.pro else [])
        load = self._load_parameters(graphs)
        text = f"{name} {list(self.key)}: returns ({', '.join(sig.outputs)})."
        if sig.mutated_inputs:
            text += f" Writes in place: {', '.join(sig.mutated_inputs)}."
        run_doc = textwrap.wrap(_doc(text), LINE_WIDTH, initial_indent='    """', subsequent_indent="    ")
        run_doc[-1] += '"""'
        run_lines, self.calls = self._function(self.step, "run", sig.inputs, sig.outputs, run_doc)
        pro_lines: list[str] = []
        if pro is not None:
            pdoc = [f'    """Once per utterance, before the steps: computes ({_doc(", ".join(pro.signature.outputs))}),',
                    '    extra inputs of ``run`` that depend only on the per-utterance inputs."""']
            pro_lines, self.prologue_calls = self._function(self.pro, "prologue", pro.signature.inputs,
                                                            pro.signature.outputs, pdoc)
        step_inputs = [n for n in sig.inputs if pro is None or n not in pro.signature.outputs]
        file_inputs = step_inputs + ([n for n in pro.input_specs if n not in step_inputs] if pro else [])
        specs = dict(lowered.input_specs)
        if pro is not None:
            specs.update(pro.input_specs)
        io_doc = ["Inputs (the example inputs file holds them as host tensors, by name):"]
        io_doc += [f"    {n}: {specs[n]}" for n in file_inputs]
        if pro is not None:
            io_doc += [f"    {n}: {lowered.input_specs[n]}  (computed by prologue)" for n in pro.signature.outputs]
        io_doc.append("Outputs:")
        io_doc += [f"    {n}: {s}" for n, s in zip(sig.outputs, lowered.output_specs)]
        if sig.mutated_inputs:
            io_doc.append(f"Written in place: {', '.join(sig.mutated_inputs)}")

        only = " (an exact, reference-only mode: the device's attention kernels take no float32)" \
            if self.dtype == "float32" else ""
        origin = textwrap.fill(f"Exported by `fx2ttnn export` from {self.source}; dtype {self.dtype}{only}, "
                               f"precision policy {self.precision!r} (every compute kernel config is explicit, made "
                               f"once in load_parameters), KV cache / max_steps {self.max_steps}.", LINE_WIDTH - 4,
                               break_long_words=False, break_on_hyphens=False)
        head = HEADER.format(
            name=name, key=list(self.key), origin=_doc(origin),
            calls=self.calls, prologue=(f" (+ {self.prologue_calls} in prologue())" if pro is not None else ""),
            io=_doc("\n".join(io_doc)))
        consts = [
            'HERE = Path(__file__).resolve().parent',
            f'SOURCE = {_q(self.source)}  # the model the script was exported from',
            f'WEIGHTS = HERE / {_q(name + ".safetensors")}',
            f'EXAMPLE_INPUTS = HERE / {_q(name + "_inputs.safetensors")}',
            f'EXPECTED = HERE / {_q(name + "_expected.safetensors")}',
            f"L1_SMALL_SIZE = {L1_SMALL_SIZE}  # conv ops need an L1 small region (as fx2ttnn's runtime opens the device)",
            f"TRACE_REGION_SIZE = {TRACE_REGION_SIZE}",
            f"REFERENCE_ONLY = {self.dtype == 'float32'}  # float32 programs run on fx2ttnn's reference only",
            "",
            "# inputs of run(), by name; prologue() computes PROLOGUE_OUTPUTS from PROLOGUE_INPUTS once per utterance",
            *_tuple_src("INPUTS", sig.inputs),
            *_tuple_src("PROLOGUE_INPUTS", pro.signature.inputs if pro else []),
            *_tuple_src("PROLOGUE_OUTPUTS", pro.signature.outputs if pro else []),
            *_tuple_src("OUTPUTS", sig.outputs),
            *_tuple_src("WRITTEN_IN_PLACE", sig.mutated_inputs),
        ]
        upload = ["def upload_inputs(device, tensors):",
                  '    """Host tensors by name → the program\'s inputs: host inputs as given, device inputs uploaded',
                  '    per their spec."""',
                  "    return {"]
        for n in file_inputs:
            spec = specs[n]
            if spec.is_ttnn:
                kw = [f"dtype=ttnn.{_checked_ident(spec.dtype, 'dtype')}",
                      f"layout=ttnn.{_checked_ident(spec.layout + '_LAYOUT', 'layout')}"]
                if spec.on_device:
                    kw.append("device=device")
                    if spec.memory not in (None, "DRAM"):
                        if spec.memory != "L1":
                            raise ExportError(f"input {n} has a sharded spec ({spec}); not exportable")
                        kw.append("memory_config=ttnn.L1_MEMORY_CONFIG")
                upload.extend(_wrap_call(f'        {_q(n)}: ', "ttnn.from_torch", [f'tensors[{_q(n)}]', *kw], ","))
            else:
                torch_dtype = _checked_path(spec.dtype, "host dtype")
                if not torch_dtype.startswith("torch."):
                    raise ExportError(f"host input {n} has dtype {spec.dtype!r}, not a torch dtype")
                upload.append(f'        {_q(n)}: tensors[{_q(n)}].to({torch_dtype}),  # host tensor')
        upload.append("    }")
        if pro is None:
            prologue_stub = ["def prologue(device, params):",
                             '    """This program has no per-utterance prologue."""',
                             "    return ()"]
            pro_lines = prologue_stub
        parts = [head, IMPORTS, "\n".join(consts), USE_TTNN, "\n".join(load), "\n".join(pro_lines),
                 "\n".join(run_lines), "\n".join(upload), RUNNER.format(name=name)]
        return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _is_compute_config(v: Any) -> bool:
    from ..lowering.ir import Construct
    return isinstance(v, Construct) and v.path == "init_device_compute_kernel_config"


def _config_key(config: Any) -> str:
    """``compute_config.HiFi3.fp32_dest.l1_acc``: the parameter key of one compute kernel config."""
    kw = dict(config.kwargs)
    parts = [str(kw.get("math_fidelity", "")).rsplit(".", 1)[-1]]
    parts += [name for flag, name in (("fp32_dest_acc_en", "fp32_dest"), ("packer_l1_acc", "l1_acc"),
                                      ("math_approx_mode", "approx")) if kw.get(flag)]
    return "compute_config." + ".".join(parts)


def _root_attr(node: torch.fx.Node) -> torch.fx.Node | None:
    """The get_attr a constant chain starts from (first inputs followed up)."""
    for _ in range(16):
        if node.op == "get_attr":
            return node
        if not node.all_input_nodes:
            return None
        node = node.all_input_nodes[0]
    return None


def _module_downstream(node: torch.fx.Node) -> str:
    """The HF module of ``node``, else of the nearest node its value flows into."""
    seen, frontier = set(), [node]
    while frontier:
        n = frontier.pop(0)
        if n in seen:
            continue
        seen.add(n)
        m = _source_module(n)
        if m:
            return m
        frontier.extend(u for u in n.users if u.op != "output")
    return ""


def _nbytes(node: torch.fx.Node) -> int:
    spec = node.meta.get("tensor_spec")
    try:
        return spec.nbytes if spec is not None else 0
    except Exception:  # noqa: BLE001
        return 0


def _tuple_src(name: str, items: Iterable[str]) -> list[str]:
    items = [_q(i) for i in items]
    if len(items) <= 1:
        return [f"{name} = ({items[0]},)" if items else f"{name} = ()"]
    return _wrap_call(f"{name} = ", "", items)


def _wrap_call(head: str, fn: str, args: list[str], tail: str = "") -> list[str]:
    """``head + fn(args) + tail``, filled onto continuation lines aligned with the open parenthesis (or
    hanging when that is far right) when it does not fit in ``LINE_WIDTH``; a nested call that is too long
    by itself (a memory or conv config) is wrapped the same way."""
    line = f"{head}{fn}({', '.join(args)}){tail}"
    if len(line) <= LINE_WIDTH or not args:
        return [line]
    opening = f"{head}{fn}("
    indent = " " * (len(head) - len(head.lstrip()))
    widest = max(len(a) for a in args) + 2
    if len(opening) <= LINE_WIDTH // 2 and (len(opening) + widest <= LINE_WIDTH
                                             or len(indent) + 8 + widest > LINE_WIDTH):
        lines, cont, cur = [], " " * len(opening), opening
    else:
        lines, cont = [opening], indent + " " * 8
        cur = cont
    fresh = True
    for i, a in enumerate(args):
        end = "," if i < len(args) - 1 else ")" + tail
        piece = a + end
        if not fresh and len(cur) + 1 + len(piece) <= LINE_WIDTH:
            cur += " " + piece
            continue
        if not fresh:
            lines.append(cur)
            cur = cont
        nested = _split_call(a)
        if len(cur) + len(piece) > LINE_WIDTH and nested is not None:
            sub = _wrap_call(cur, nested[0], nested[1], end)
            lines.extend(sub[:-1])
            cur = sub[-1]
        else:
            cur += piece
        fresh = False
    lines.append(cur)
    return lines


def _split_call(expr: str) -> tuple[str, list[str]] | None:
    """``"k=ttnn.f(a, g(b, c), d=1)"`` → ``("k=ttnn.f", ["a", "g(b, c)", "d=1"])``; None if not a call."""
    start = expr.find("(")
    if start <= 0 or not expr.endswith(")") or not re.fullmatch(r"[\w.=]+", expr[:start]):
        return None
    parts, depth, quote, cur = [], 0, None, ""
    escaped = False
    for ch in expr[start + 1:-1]:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if depth != 0:
        return None
    if cur.strip():
        parts.append(cur.strip())
    return expr[:start], parts


def _q(text: str) -> str:
    """A string literal, double-quoted where that needs no escapes (``repr`` otherwise)."""
    text = str.__str__(text)  # an exact str: a subclass could redefine __repr__
    r = str.__repr__(text)
    return f'"{text}"' if r == f"'{text}'" and '"' not in text else r


# ---------------------------------------------------------------------------------------------------------
# script templates

HEADER = '''#!/usr/bin/env python3
"""{name} {key} of SpeechT5 text-to-speech, as straight-line TTNN code.

{origin}
run() makes {calls} ttnn calls{prologue}.  Runs on the real ttnn 0.81.1 (Tenstorrent device 0), or on
fx2ttnn's reference implementation of the ttnn API (torch on the CPU):

    python {name}.py                              # ttnn, example inputs, prints the output shapes
    python {name}.py --check                      # ... and compares with {name}_expected.safetensors (PCC)
    FX2TTNN_TTNN=reference python {name}.py --check   # or: python {name}.py --reference --check

As a module: use_ttnn(), device = ttnn.open_device(device_id=0, ...), params = load_parameters(WEIGHTS, device),
inputs = upload_inputs(device, tensors), then prologue(...) once per utterance and run(device, params, ...).

{io}
"""'''

IMPORTS = '''import argparse
import math  # noqa: F401  (host fallbacks)
import operator  # noqa: F401  (host fallbacks)
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file'''

USE_TTNN = '''ttnn = None  # the ttnn module in use, bound by use_ttnn(): the real package or fx2ttnn's reference


def use_ttnn(which=None):
    """Bind ``ttnn``: "ttnn" (the real package, default), "reference" (fx2ttnn's reference implementation of
    the ttnn API) or "auto" (ttnn if it imports, else the reference); default: $FX2TTNN_TTNN, else "ttnn"."""
    global ttnn
    which = (which or os.environ.get("FX2TTNN_TTNN") or "ttnn").strip().lower()
    if which not in ("ttnn", "reference", "auto"):
        raise ImportError(f"FX2TTNN_TTNN must be ttnn, reference or auto, got {which!r}")
    why = []
    if which in ("ttnn", "auto"):
        try:
            import ttnn as module
        except Exception as e:  # ImportError, or a broken install raising anything
            why.append(f"the ttnn package is not importable ({type(e).__name__}: {e})")
        else:
            ttnn = module
            return module
    if which in ("reference", "auto"):
        try:
            from fx2ttnn.runtime import reference as module  # the only fx2ttnn import: the reference ttnn API
        except Exception as e:
            why.append(f"fx2ttnn's reference implementation is not importable ({type(e).__name__}: {e}); "
                       "install fx2ttnn (pip install fx2ttnn)")
        else:
            ttnn = module
            return module
    if which == "ttnn":
        why.append("set FX2TTNN_TTNN=reference (or pass --reference) to run on fx2ttnn's reference implementation")
    raise ImportError("; ".join(why))


if __name__ != "__main__":
    use_ttnn()'''

RUNNER = '''def to_host(value):
    return value if isinstance(value, torch.Tensor) else ttnn.to_torch(value)


def run_program(device, params, inputs):
    """prologue() (if any), then run() on ``inputs`` (by name); returns the outputs and the inputs written in
    place, as host tensors, by name."""
    inputs = dict(inputs)
    if PROLOGUE_OUTPUTS:
        inputs.update(zip(PROLOGUE_OUTPUTS, prologue(device, params, *(inputs[n] for n in PROLOGUE_INPUTS))))
    outputs = run(device, params, *(inputs[n] for n in INPUTS))
    results = dict(zip(OUTPUTS, outputs))
    results.update((n, inputs[n]) for n in WRITTEN_IN_PLACE)
    return {{n: to_host(v) for n, v in results.items()}}


def pcc(a, b):
    """Pearson correlation of two tensors: 1.0 when equal; non-finite entries (a -inf mask) must match exactly
    and the rest correlate."""
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    if a.shape != b.shape:
        return 0.0
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    special = dict(nan=0.0, posinf=1.0, neginf=-1.0)
    if not torch.equal(fa, fb) or not torch.equal(a[~fa].nan_to_num(**special), b[~fb].nan_to_num(**special)):
        return 0.0
    a, b = a[fa], b[fb]
    if torch.equal(a, b):
        return 1.0
    a, b = a - a.mean(), b - b.mean()
    den = a.norm() * b.norm()
    return float((a @ b) / den) if den > 0 else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run {name} on ttnn (or fx2ttnn's reference implementation).")
    parser.add_argument("--weights", default=str(WEIGHTS), help="weights file (default: %(default)s)")
    parser.add_argument("--inputs", default=str(EXAMPLE_INPUTS), help="input tensors by name (default: %(default)s)")
    parser.add_argument("--check", nargs="?", const=str(EXPECTED), default=None, metavar="EXPECTED",
                        help="compare with expected outputs (default file: %(const)s)")
    parser.add_argument("--pcc", type=float, default=0.99, help="--check passes at PCC >= this (default: %(default)s)")
    parser.add_argument("--reference", action="store_true", help="use fx2ttnn's reference ttnn (FX2TTNN_TTNN=reference)")
    parser.add_argument("--device-id", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        use_ttnn("reference" if args.reference else None)
    except ImportError as e:
        print(f"error: {{e}}", file=sys.stderr)
        return 2
    if REFERENCE_ONLY and not getattr(ttnn, "IS_REFERENCE", False):
        print("error: this float32 program is an exact, reference-only mode (the device's attention kernels take "
              "bfloat16, bfloat8_b or bfloat4_b); run it with --reference, or export with --dtype bfloat16",
              file=sys.stderr)
        return 2
    device = ttnn.open_device(device_id=args.device_id, l1_small_size=L1_SMALL_SIZE,
                              trace_region_size=TRACE_REGION_SIZE)
    try:
        params = load_parameters(args.weights, device)
        inputs = upload_inputs(device, load_file(args.inputs))
        t0 = time.perf_counter()
        results = run_program(device, params, inputs)
        seconds = time.perf_counter() - t0
    finally:
        ttnn.close_device(device)
    print(f"{name}: ran in {{seconds * 1000:.1f}} ms on {{getattr(ttnn, '__name__', 'ttnn')}}")
    for n, t in results.items():
        note = " (written in place)" if n in WRITTEN_IN_PLACE else ""
        print(f"  {{n}}: {{list(t.shape)}} {{str(t.dtype).removeprefix('torch.')}}{{note}}")
    if args.check is None:
        return 0
    expected = load_file(args.check)
    ok = True
    for n, want in expected.items():
        if n not in results:
            print(f"  check {{n}}: missing from the results")
            ok = False
            continue
        value = pcc(results[n], want)
        passed = value >= args.pcc
        ok &= passed
        print(f"  check {{n}}: PCC {{value:.6f}} {{'ok' if passed else 'FAILED'}}")
    print("check passed" if ok else f"check FAILED (PCC < {{args.pcc}})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())'''


def readme_text(exported: list[Exported], source: str, dtype: str) -> str:
    lines = [
        "fx2ttnn export: SpeechT5 text-to-speech programs as standalone TTNN scripts",
        "",
        f"Model: {source}; dtype {dtype}.",
        "",
        "Each <program>.py calls the ttnn 0.81.1 API directly: load_parameters(path, device) uploads and",
        "prepares the weights in <program>.safetensors once; run(device, params, <inputs>) is the program,",
        "one ttnn call per statement, named after the Hugging Face modules; decoder_step.py also has",
        "prologue(), run once per utterance, whose outputs are extra inputs of run().",
        "",
        "Run one (example inputs from <program>_inputs.safetensors; prints the output shapes):",
        "",
        "    python decoder_step.py                     # real ttnn, Tenstorrent device 0",
        "    python decoder_step.py --check             # + PCC against <program>_expected.safetensors",
        "",
        "On fx2ttnn's reference implementation of the ttnn API (torch on the CPU, no device needed):",
        "",
        "    FX2TTNN_TTNN=reference python decoder_step.py --check",
        "    python decoder_step.py --reference --check                  (the same)",
        "",
        "FX2TTNN_TTNN=auto uses ttnn when it imports and the reference otherwise. The scripts need torch and",
        "safetensors (and ttnn, or fx2ttnn for the reference). Other inputs: --inputs FILE.safetensors (host",
        "tensors by input name, see each script's docstring); --weights FILE; --pcc X; --device-id N.",
        "The expected outputs were computed by fx2ttnn's in-process runtime on the reference implementation.",
        "",
        "Files:",
    ]
    for e in exported:
        lines.append(f"    {e.script.name:<34} {e.calls} ttnn calls per run"
                     + (f" (+ {e.prologue_calls} in prologue)" if e.prologue_calls else ""))
        lines.append(f"    {e.weights.name:<34} weights, {e.weight_bytes / 2**20:.1f} MiB")
        lines.append(f"    {e.inputs.name:<34} example inputs")
        lines.append(f"    {e.expected.name:<34} expected outputs (and inputs written in place)")
    return "\n".join(lines) + "\n"
