"""``lower_model``: SpeechT5 (+ HiFi-GAN) → four lowered TTNN programs and a runtime to drive them.

Programs are static-shape.  Their shapes are keyed by batch size and bucket: the text length is padded
to a bucket of ``text_buckets`` (with the attention mask), the spectrogram to a frame bucket (with valid
masks).  ``lower_model`` captures and lowers the default variant of each program (batch 1, the smallest
buckets) — these are ``tts.programs``; other variants are captured and lowered the first time a call needs
them, then cached (``tts.report()`` lists every variant and what lowering it cost).  Variants share their
device constants: binding a variant reuses the weights an earlier one uploaded (``runtime/constants.py``).
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal

import torch
from torch import nn

from . import options
from .errors import BackendUnavailableError, UnsupportedModelError
from .precision import DEFAULT_PRECISION, PRECISIONS
from .lowering import speecht5 as s5
from .lowering.capture import capture
from .lowering.ir import TensorSpec
from .lowering.pipeline import LoweredProgram, lower_program, pass_names
from .runtime.backend import Backend, open_backend
from .runtime.constants import ConstantPool
from .runtime.executor import BoundProgram

if TYPE_CHECKING:
    from .report import Report
    from .runtime.trace import TracedStep

PROGRAMS = ("encoder", "decoder_step", "postnet", "vocoder")
DTYPES = ("bfloat16", "float32")
BACKENDS = ("auto", "reference", "ttnn")
FLOAT32_REFERENCE_ONLY = ("dtype='float32' is an exact, reference-only mode: its programs run SDPA, SDPA-decode and the "
                          "KV cache in float32, and the device's attention kernels take bfloat16, bfloat8_b or "
                          "bfloat4_b only")
DEFAULT_MAX_STEPS = 1024
# Stop probabilities are read every k decode steps (one host sync per k steps); see runtime/generate.py.
# Measured on the reference backend (full-size decoder step, float32, 2 cores): a read of one step's stop
# probabilities costs 15 us (0.07 % of a 22 ms step) and batching k reads costs more per step (the concat,
# ~25 us per step read) plus (k - 1) / 2 discarded steps on average, so k = 1 is fastest there.  On a device
# a read also drains the command queue; re-measure with `fx2ttnn bench --stop-check-interval K` there.
DEFAULT_STOP_CHECK_INTERVAL = 1


@dataclass
class ProgramVariant:
    name: str
    key: tuple[int, ...]
    lowered: LoweredProgram
    bound: BoundProgram
    prologue: BoundProgram | None = None  # per-utterance part hoisted out of a step program


@dataclass
class DumpOptions:
    dump_dir: Path | None = None
    print_after: Iterable[str] | Literal["all"] = ()


def _dev(shape: tuple[int, ...], dtype: str, layout: str = "TILE") -> TensorSpec:
    return TensorSpec(tuple(shape), dtype, layout, "DRAM", True)


def _host(shape: tuple[int, ...], torch_dtype: torch.dtype) -> TensorSpec:
    return TensorSpec(tuple(shape), str(torch_dtype))


def _return_freed_memory() -> None:
    """Hand the heap pages that lowering freed (torch.export artifacts, released host weights) back to the OS.

    glibc keeps freed pages of its arenas mapped, so without this the process's resident set would keep
    counting every transient of capture and lowering.  A no-op where glibc's ``malloc_trim`` is missing.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


class LoweredSpeechT5:
    """SpeechT5 text-to-speech lowered to TTNN programs; ``generate_speech`` mirrors HF's."""

    def __init__(self, model: nn.Module, vocoder: nn.Module | None, *, backend: Backend, dtype: str, max_steps: int,
                 prenet_dropout: bool, dump: DumpOptions | None = None, keep_host_weights: bool = True,
                 constant_pool: ConstantPool | None = None, precision: str = DEFAULT_PRECISION):
        self.model = model
        self.vocoder = vocoder
        self.config = model.config
        self.backend = backend
        self.dtype = dtype
        self.precision = precision
        self.max_steps = max_steps
        self.prenet_dropout = prenet_dropout
        self.dump = dump or DumpOptions()
        self.keep_host_weights = keep_host_weights
        self.host_bytes_released = 0
        self.text_buckets = s5.text_buckets(self.config.max_text_positions)
        self._variants: dict[tuple[str, tuple[int, ...]], ProgramVariant] = {}
        self._extra_vocoders: dict[int, "LoweredSpeechT5"] = {}
        self._state: dict[tuple[int, int], Any] = {}
        self.lower_seconds = 0.0
        self.stop_check_interval = DEFAULT_STOP_CHECK_INTERVAL
        self.trace = not backend.is_reference  # replay the decode step as a ttnn trace (see lower_model)
        self._traces: dict[tuple[int, int], Any] = {}
        # device constants shared by every program variant (and the vocoder-only lowerings made from this one)
        self.constant_pool = constant_pool if constant_pool is not None else ConstantPool()

    # -- programs ----------------------------------------------------------------------------
    @property
    def programs(self) -> dict[str, LoweredProgram]:
        """The default variant of each program (batch 1, smallest buckets), lowered on first access."""
        return {name: self.variant(name, self.default_key(name)).lowered for name in self.program_names}

    @property
    def program_names(self) -> tuple[str, ...]:
        return program_names(self.vocoder)

    @property
    def variants(self) -> list[ProgramVariant]:
        return list(self._variants.values())

    def default_key(self, name: str) -> tuple[int, ...]:
        if name in ("encoder", "decoder_step"):
            return (1, self.text_buckets[0])
        return (1, s5.frame_bucket(1))

    def variant(self, name: str, key: tuple[int, ...]) -> ProgramVariant:
        k = (name, tuple(key))
        if k not in self._variants:
            t0 = time.perf_counter()
            lowered = self._lower(name, key)
            bound = BoundProgram(lowered.graph_module, self.backend, name=f"{name}{list(key)}",
                                 output_names=lowered.signature.outputs, constant_pool=self.constant_pool)
            prologue = None
            if lowered.prologue is not None:
                prologue = BoundProgram(lowered.prologue.graph_module, self.backend, name=f"{name}{list(key)}.prologue",
                                        output_names=lowered.prologue.signature.outputs,
                                        constant_pool=self.constant_pool)
            if not self.keep_host_weights:  # the device copies are what runs; free the host originals
                self.host_bytes_released += bound.release_host_constants()
                if prologue is not None:
                    self.host_bytes_released += prologue.release_host_constants()
            self._variants[k] = ProgramVariant(name, tuple(key), lowered, bound, prologue)
            _return_freed_memory()
            self.lower_seconds += time.perf_counter() - t0
        return self._variants[k]

    def _dump_dir(self, name: str, key: tuple[int, ...]) -> Path | None:
        if self.dump.dump_dir is None:
            return None
        return Path(self.dump.dump_dir) / f"{name}_{'x'.join(map(str, key))}"

    def _lower(self, name: str, key: tuple[int, ...]) -> LoweredProgram:
        cfg, d = self.config, self.dtype
        bsz = key[0]
        heads, hidden = cfg.decoder_attention_heads, cfg.hidden_size
        dh = hidden // heads
        n_layers = cfg.decoder_layers
        if name == "encoder":
            seq = key[1]
            module = s5.EncoderProgram(self.model)
            ins, outs = s5.encoder_io(n_layers)
            args = (torch.full((bsz, seq), cfg.pad_token_id, dtype=torch.long), torch.ones(bsz, seq),
                    torch.randn(bsz, cfg.speaker_embedding_dim))
            in_specs = {"input_ids": _host((bsz, seq), torch.int64), "attention_mask": _host((bsz, seq), torch.float32),
                        "speaker_embeddings": _host((bsz, cfg.speaker_embedding_dim), torch.float32)}
            out_specs = [_dev((bsz, seq, hidden), d), _dev((bsz, 1, 1, seq), d), _dev((bsz, 1, cfg.speaker_embedding_dim), d)]
            out_specs += [_dev((bsz, heads, seq, dh), d)] * (2 * n_layers)
        elif name == "decoder_step":
            seq = key[1]
            module = s5.DecoderStepProgram(self.model, max_steps=self.max_steps, prenet_dropout=self.prenet_dropout)
            ins, outs = s5.decoder_step_io(n_layers, cfg.speech_decoder_prenet_layers, self.prenet_dropout)
            cache = [torch.zeros(bsz, heads, self.max_steps, dh) for _ in range(n_layers)]
            cross = [torch.zeros(bsz, heads, seq, dh) for _ in range(n_layers)]
            masks = [torch.ones(self.max_steps, cfg.speech_decoder_prenet_units)
                     for _ in range(cfg.speech_decoder_prenet_layers)] if self.prenet_dropout else []
            args = (torch.zeros(bsz, 1, cfg.num_mel_bins), torch.zeros(bsz, dtype=torch.long),
                    torch.zeros(bsz, 1, cfg.speaker_embedding_dim), torch.zeros(bsz, 1, 1, seq),
                    cache, [c.clone() for c in cache], cross, [c.clone() for c in cross], masks)
            in_specs = {"frame": _dev((bsz, 1, cfg.num_mel_bins), d), "position": _dev((bsz,), "int32", "ROW_MAJOR"),
                        "speaker": _dev((bsz, 1, cfg.speaker_embedding_dim), d),
                        "cross_attention_mask": _dev((bsz, 1, 1, seq), d)}
            for i in range(n_layers):
                for kind in ("self_k", "self_v"):
                    in_specs[f"{kind}_{i}"] = _dev((bsz, heads, self.max_steps, dh), d)
                for kind in ("cross_k", "cross_v"):
                    in_specs[f"{kind}_{i}"] = _dev((bsz, heads, seq, dh), d)
            for i in range(len(masks)):
                in_specs[f"dropout_mask_{i}"] = _dev((self.max_steps, cfg.speech_decoder_prenet_units), d, "AUTO")
            out_specs = [_dev((bsz, 1, cfg.reduction_factor * cfg.num_mel_bins), d), _dev((bsz, 1, cfg.reduction_factor), d),
                         _dev((bsz, 1, cfg.num_mel_bins), d)]
        elif name == "postnet":
            frames = key[1]
            module = s5.PostnetProgram(self.model)
            ins, outs = ["spectrogram", "frame_mask"], ["spectrogram"]
            args = (torch.zeros(bsz, frames, cfg.num_mel_bins), torch.ones(bsz, frames))
            in_specs = {"spectrogram": _dev((bsz, frames, cfg.num_mel_bins), d),
                        "frame_mask": _host((bsz, frames), torch.float32)}
            out_specs = [_dev((bsz, frames, cfg.num_mel_bins), d)]
        elif name == "vocoder":
            if self.vocoder is None:
                raise UnsupportedModelError("no vocoder was given to lower_model")
            frames = key[1]
            module = s5.VocoderProgram(self.vocoder)
            geo = s5.VocoderGeometry.of(self.vocoder)
            lengths = geo.lengths(frames)
            ins, outs = s5.vocoder_io(len(geo.upsamplers))
            args = (torch.zeros(bsz, frames, self.vocoder.config.model_in_dim), *[torch.ones(1, 1, n) for n in lengths])
            in_specs = {"spectrogram": _dev((bsz, frames, self.vocoder.config.model_in_dim), d)}
            for i, n in enumerate(lengths):
                in_specs[f"valid_mask_{i}"] = _host((1, 1, n), torch.float32)
            out_specs = [_dev((bsz, lengths[-1]), d)]
        else:
            raise UnsupportedModelError(f"unknown program {name!r}; programs are {', '.join(PROGRAMS)}")
        captured = capture(module, args, name=name, input_names=ins, output_names=outs)
        # the decode step's per-utterance inputs: what depends only on them runs once, in its prologue
        invariant = [n for n in ins if n == "speaker" or n.startswith(("cross_", "dropout_mask_"))] \
            if name == "decoder_step" else []
        return lower_program(captured, dtype=d, input_specs=in_specs, output_specs=out_specs,
                             dump_dir=self._dump_dir(name, key), print_after=self.dump.print_after,
                             invariant_inputs=invariant, precision=self.precision)

    # -- running -------------------------------------------------------------------------------
    def generate_speech(self, input_ids: torch.Tensor, speaker_embeddings: torch.Tensor | None = None, *,
                        attention_mask: torch.Tensor | None = None, threshold: float = 0.5,
                        minlenratio: float = 0.0, maxlenratio: float = 20.0, vocoder: Any = None,
                        return_output_lengths: bool = False, seed: int | None = None, progress: bool = False,
                        stop_check_interval: int | None = None):
        """HF ``SpeechT5ForTextToSpeech.generate_speech`` on the lowered programs (see runtime/generate.py)."""
        from .runtime.generate import generate_speech
        return generate_speech(self, input_ids, speaker_embeddings, attention_mask=attention_mask,
                               threshold=threshold, minlenratio=minlenratio, maxlenratio=maxlenratio,
                               vocoder=vocoder, return_output_lengths=return_output_lengths, seed=seed,
                               progress=progress, stop_check_interval=stop_check_interval)

    def traced_step(self, key: tuple[int, int]) -> "TracedStep":
        """The decode step of variant ``key`` (batch, text bucket) as a ttnn trace, made on first use."""
        from .runtime.generate import decode_state
        from .runtime.trace import TracedStep

        if key not in self._traces:
            v = self.variant("decoder_step", key)
            state = decode_state(self, key[0], v.lowered.input_specs)
            self._traces[key] = TracedStep(self.backend.ttnn, self.backend.device, v.bound, state)
        return self._traces[key]

    def release_traces(self) -> None:
        """Free the device traces of the decode step (they are captured again when next needed)."""
        for t in self._traces.values():
            t.release()
        self._traces.clear()

    def lowered_vocoder_for(self, vocoder: nn.Module) -> "LoweredSpeechT5":
        """The lowering that owns ``vocoder``: this one, or a vocoder-only lowering made on first use."""
        if vocoder is self.vocoder:
            return self
        key = id(vocoder)
        if key not in self._extra_vocoders:
            s5.check_supported(self.model, vocoder)
            self._extra_vocoders[key] = LoweredSpeechT5(self.model, vocoder, backend=self.backend, dtype=self.dtype,
                                                        max_steps=self.max_steps, prenet_dropout=self.prenet_dropout,
                                                        keep_host_weights=self.keep_host_weights,
                                                        constant_pool=self.constant_pool, precision=self.precision)
        return self._extra_vocoders[key]

    def report(self) -> "Report":
        from .report import Report
        return Report.of(self)


def program_names(vocoder: nn.Module | None) -> tuple[str, ...]:
    """The programs a lowering has: all four, or three without a vocoder."""
    return tuple(n for n in PROGRAMS if n != "vocoder" or vocoder is not None)


def lower_model(model: nn.Module, *, vocoder: nn.Module | None = None, backend: str = "auto",
                dtype: str = "bfloat16", max_steps: int | None = None, prenet_dropout: bool = True,
                device: str | None = None, dump_dir: str | Path | None = None,
                print_after: Iterable[str] | Literal["all"] = (),
                programs: Iterable[str] | None = None, trace: bool | None = None,
                stop_check_interval: int | None = None, keep_host_weights: bool = False,
                precision: str = DEFAULT_PRECISION, numerics: str | None = None) -> LoweredSpeechT5:
    """Trace ``model`` (a ``SpeechT5ForTextToSpeech``) and ``vocoder`` (a ``SpeechT5HifiGan``), lower them to
    TTNN programs and bind them to ``backend``.

    Args:
        backend: ``"auto"`` (real ttnn if it imports and a device opens, else the reference), ``"ttnn"``, or
            ``"reference"``.
        dtype: ``"bfloat16"`` (weights and activations, as on device) or ``"float32"`` (an exact, reference-only
            mode: the device's attention kernels take no float32, see README "Numerics").
        max_steps: decode steps the KV cache holds (a multiple of 32, at most ``config.max_speech_positions``);
            generation stops there (see ``generate_speech``).  Default 1024.
        prenet_dropout: reproduce HF's inference-time prenet dropout (default, as HF); ``False`` disables it.
        device: for the reference backend, the torch device its kernels run on ("cpu", "cuda").
        dump_dir / print_after: write / print the graph after each pass (see ``fx2ttnn dump``).
        programs: which programs to lower now (default: all); the others are lowered when first used.
        trace: replay the decode step as a ttnn trace (``begin_trace_capture`` / ``execute_trace``, captured on
            first use per batch size and text bucket; ``runtime/trace.py``).  Default: on for the real ttnn;
            off for the reference, which runs the bound call list (its host-side mirror); ``True`` there
            runs the reference's trace emulation.
        stop_check_interval: decode steps between reads of the stop probabilities (one host sync per k
            steps; the output is the same for every k).  Default ``DEFAULT_STOP_CHECK_INTERVAL``.
        precision: the precision policy (``fx2ttnn/precision.py``): the compute kernel config every op that takes
            one is emitted with, and the dtype of the large linears' weights: ``"accuracy"`` (default),
            ``"performance"`` (bfloat8_b large-linear weights) or ``"ttnn-defaults"`` (each op's own default).
        numerics: reference backend only: ``"exact"`` (default; float32 math on the stored values) or ``"device"``
            (the reference emulates the device's math for the compute configs: fidelity, accumulation, packing).
        keep_host_weights: keep the host copies of the weights in the lowered graphs after they are uploaded
            (default: released, as a device port would; the graphs keep their shapes and dtypes).  Needed to
            bind a program again or export its weights (``fx2ttnn compare`` / ``export`` keep them).
    """
    s5.check_supported(model, vocoder)
    err = UnsupportedModelError
    dtype = options.choice(dtype, "dtype", DTYPES, error=err)
    precision = options.choice(precision, "precision", PRECISIONS, error=err)
    backend = options.choice(backend, "backend", BACKENDS, error=BackendUnavailableError)
    if numerics is not None:
        numerics = options.choice(numerics, "numerics", ("exact", "device"), error=BackendUnavailableError)
    if dtype == "float32" and numerics == "device":
        raise UnsupportedModelError(FLOAT32_REFERENCE_ONLY + " (numerics='device' emulates the device; use "
                                    "dtype='bfloat16')")
    if dtype == "float32" and backend == "ttnn":
        raise UnsupportedModelError(FLOAT32_REFERENCE_ONLY + " (backend='reference' runs it)")
    limit = model.config.max_speech_positions
    max_steps = DEFAULT_MAX_STEPS if max_steps is None else \
        options.integer(max_steps, "max_steps", low=32, high=limit, multiple_of=32, error=err)
    prenet_dropout = options.flag(prenet_dropout, "prenet_dropout", error=err)
    keep_host_weights = options.flag(keep_host_weights, "keep_host_weights", error=err)
    if trace is not None:
        trace = options.flag(trace, "trace", error=err)
    if stop_check_interval is not None:
        stop_check_interval = options.integer(stop_check_interval, "stop_check_interval", low=1, error=err)
    if device is not None and device != "tt":
        if backend == "ttnn":
            raise BackendUnavailableError(f"device={device!r} selects where the reference backend runs; "
                                          "backend='ttnn' always uses Tenstorrent device 0")
        device = options.torch_device(device, "device", error=BackendUnavailableError)
    names = program_names(vocoder)
    wanted = names if programs is None else options.names(programs, "programs", names, error=err)
    if print_after != "all":
        print_after = options.names(print_after, "print_after", pass_names(), error=err)
    model.eval()
    if vocoder is not None:
        vocoder.eval()
    t0 = time.perf_counter()
    opened = open_backend(backend, device=device, numerics=numerics)
    if dtype == "float32" and not opened.is_reference:
        opened.close()
        raise UnsupportedModelError(FLOAT32_REFERENCE_ONLY + " (backend='reference' runs it)")
    tts = LoweredSpeechT5(model, vocoder, backend=opened, dtype=dtype,
                          max_steps=max_steps, prenet_dropout=prenet_dropout,
                          dump=DumpOptions(Path(dump_dir) if dump_dir else None, print_after),
                          keep_host_weights=keep_host_weights, precision=precision)
    if trace is not None:
        tts.trace = trace
    if stop_check_interval is not None:
        tts.stop_check_interval = stop_check_interval
    for name in wanted:  # capture and lower the default variants now
        tts.variant(name, tts.default_key(name))
    tts.lower_seconds = time.perf_counter() - t0
    return tts

