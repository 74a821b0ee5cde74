"""``fx2ttnn compare --stages``: PCC against HF eager per stage, for one lowering (dtype, precision, numerics).

Stages (the same inputs as ``compare``: seeded token ids and speaker embedding, prenet dropout off on both sides,
a stop threshold out of reach so both sides decode exactly ``steps`` steps):

``encoder``       the encoder program's hidden states vs HF's encoder;
``decoder_step``  one decode step (zero frame at position 0, after the lowered encoder) vs HF's first step's mel
                  frames (``feat_out``);
``teacher_forced`` the decode step run ``steps`` times on HF's own previous frame (its KV cache filled by its own
                  steps), its mel frames vs HF's: the per-step error without the feedback of free-running decoding;
``spectrogram``   the lowered ``generate_speech`` over ``steps`` steps (after the postnet) vs HF's;
``postnet``       the postnet program alone, on HF's pre-postnet spectrogram, vs HF's postnet output;
``vocoder``       the vocoder program alone, on HF's spectrogram, vs HF's vocoder;
``waveform``      the vocoder program on the lowered spectrogram (what ``generate_speech`` returns) vs HF's waveform.

The isolated stages (postnet, vocoder) say which program loses accuracy; the end-to-end ones (spectrogram,
waveform) what a user gets.  ``weight_bytes_per_step`` is the bytes of device constants one decode step reads
(``fx2ttnn dump``'s ``per_call_read_bytes`` of ``decoder_step``): a device decode step is bound by them.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..accuracy import pcc
from ..lowering import speecht5 as s5
from ..precision import DEFAULT_PRECISION
from ..runtime.generate import upload

STAGES = ("encoder", "decoder_step", "teacher_forced", "spectrogram", "postnet", "vocoder", "waveform")


@dataclass
class StageReport:
    dtype: str
    precision: str
    numerics: str
    steps: int
    text_len: int
    pcc: dict[str, float] = field(default_factory=dict)
    max_abs_err: dict[str, float] = field(default_factory=dict)
    weight_bytes_per_step: int = 0
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.dtype} {self.precision} ({self.numerics} numerics)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        head = f"{'stage':<13} {'PCC':>12} {'max abs err':>12}"
        rows = [f"{s:<13} {self.pcc[s]:>12.6f} {self.max_abs_err[s]:>12.4g}" for s in STAGES if s in self.pcc]
        return "\n".join([f"fx2ttnn compare --stages: {self.label}; {self.steps} decode steps, {self.text_len} tokens; "
                          f"decode step reads {self.weight_bytes_per_step / 2**20:.1f} MiB of weights", head, *rows])


def run_postnet(tts: Any, spectrogram: torch.Tensor) -> torch.Tensor:
    """The lowered postnet on ``[B, frames, mel]`` (host), as ``generate_speech`` runs it: bucket padding, frame
    mask."""
    ttnn, device = tts.backend.ttnn, tts.backend.device
    bsz, frames, _ = spectrogram.shape
    fb = s5.frame_bucket(frames)
    post = tts.variant("postnet", (bsz, fb))
    spec = upload(ttnn, device, post.lowered.input_specs["spectrogram"],
                  torch.nn.functional.pad(spectrogram, (0, 0, 0, fb - frames)))
    frame_mask = (torch.arange(fb) < frames).float().repeat(bsz, 1)
    return ttnn.to_torch(post.bound(spec, frame_mask)[0]).float()[:, :frames]


def run_vocoder(tts: Any, spectrogram: torch.Tensor) -> torch.Tensor:
    """The lowered vocoder on ``[B, frames, mel]`` (host): bucket padding, a valid mask per resolution."""
    ttnn, device = tts.backend.ttnn, tts.backend.device
    bsz, frames, _ = spectrogram.shape
    fb = s5.frame_bucket(frames)
    geo = s5.VocoderGeometry.of(tts.vocoder)
    padded, valid = geo.lengths(fb), geo.lengths(frames)
    masks = [(torch.arange(p) < v).float().view(1, 1, p) for p, v in zip(padded, valid)]
    voc = tts.variant("vocoder", (bsz, fb))
    spec = upload(ttnn, device, voc.lowered.input_specs["spectrogram"],
                  torch.nn.functional.pad(spectrogram, (0, 0, 0, fb - frames)))
    return ttnn.to_torch(voc.bound(spec, *masks)[0]).float()[:, :valid[-1]]


def run_first_step(tts: Any, ids: torch.Tensor, speaker: torch.Tensor, frames: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(encoder hidden states [1, len, hidden], the decode steps' mel frames [steps, r * mel]): the encoder
    program, then the step (zero frame at position 0, empty caches) after its prologue, and then once per row of
    ``frames`` ([steps - 1, mel]: the frame each later step reads, teacher forcing)."""
    cfg = tts.config
    ttnn, device = tts.backend.ttnn, tts.backend.device
    text_len = ids.shape[1]
    bucket = s5.bucket_for(text_len, tts.text_buckets, "text length")
    ids_p = torch.nn.functional.pad(ids, (0, bucket - text_len), value=cfg.pad_token_id)
    enc = tts.variant("encoder", (1, bucket))
    out = enc.bound(ids_p, (ids_p != cfg.pad_token_id).float(), speaker)
    env = dict(zip(enc.lowered.signature.outputs, out))
    hidden = ttnn.to_torch(out[0]).float()[:, :text_len]
    step = tts.variant("decoder_step", (1, bucket))
    specs = step.lowered.input_specs
    for name in specs:
        if name.startswith(("self_", "position", "frame")):
            env[name] = upload(ttnn, device, specs[name],
                               torch.zeros(specs[name].shape, dtype=torch.int32 if name == "position" else None))
    env.update(zip(step.prologue.output_names, step.prologue(*[env[n] for n in step.prologue.input_names])))
    args = [env[n] for n in step.bound.input_names]
    slot = step.bound.input_names.index("frame")
    out = []
    for frame in [None, *(frames if frames is not None else [])]:
        if frame is not None:
            args[slot] = upload(ttnn, device, specs["frame"], frame.reshape(1, 1, -1))
        out.append(ttnn.to_torch(step.bound(*args)[0]).float().reshape(1, -1))
    return hidden, torch.cat(out)


def _batched(spectrogram: torch.Tensor) -> torch.Tensor:
    return spectrogram if spectrogram.dim() == 3 else spectrogram.unsqueeze(0)


def stage_accuracy(model: nn.Module, vocoder: nn.Module, *, dtype: str = "bfloat16",
                   precision: str = DEFAULT_PRECISION, numerics: str = "device", steps: int = 125, text_len: int = 24,
                   seed: int = 0) -> StageReport:
    """Lower ``model`` + ``vocoder`` on the reference backend with ``dtype`` / ``precision`` / ``numerics`` and
    measure every stage against HF eager (see the module doc)."""
    from ..model import lower_model
    from .compare import no_hf_prenet_dropout
    from .graph_analysis import program_stats

    t_start = time.perf_counter()
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, cfg.vocab_size, (1, text_len), generator=g)
    speaker = torch.randn(1, cfg.speaker_embedding_dim, generator=g)
    r = cfg.reduction_factor
    kw = dict(threshold=float(r) + 1.0, maxlenratio=(steps + 0.5) * r / text_len)  # exactly `steps` steps

    # HF eager: encoder, the first step's mel frames, the pre-postnet and final spectrograms, the waveform
    got: dict[str, torch.Tensor] = {}
    postnet = model.speech_decoder_postnet
    def record_step(module: nn.Module, args: Any, out: torch.Tensor) -> None:  # None: the output is unchanged
        got.setdefault("step", out.detach().clone())
    hook = postnet.feat_out.register_forward_hook(record_step)
    hf_postnet = postnet.postnet

    def record_postnet(spectrogram: torch.Tensor) -> torch.Tensor:
        got["pre_postnet"] = spectrogram.detach().clone()
        return hf_postnet(spectrogram)
    postnet.postnet = record_postnet
    try:
        with no_hf_prenet_dropout(), torch.no_grad():
            ref_hidden = model.speecht5.encoder(input_values=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            ref_spec = model.generate_speech(ids, speaker, **kw)
            ref_wave = vocoder(ref_spec)
    finally:
        hook.remove()
        del postnet.postnet  # the class's method again
    ref_step = got["step"].reshape(1, -1)

    tts = lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype, precision=precision,
                      numerics=numerics, max_steps=max(32, -(-(steps + 1) // 32) * 32), prenet_dropout=False)
    r_frames = got["pre_postnet"].reshape(steps, r, -1)  # HF's mel frames per step; a step reads the last one
    hidden, forced = run_first_step(tts, ids, speaker, r_frames[:-1, -1])
    first = forced[:1]
    spec = tts.generate_speech(ids, speaker, vocoder=False, **kw)
    if tts.last_generation.steps != steps:
        raise RuntimeError(f"the lowered generator ran {tts.last_generation.steps} steps, HF {steps}")
    values = {
        "encoder": (ref_hidden, hidden),
        "decoder_step": (ref_step, first),
        "teacher_forced": (r_frames.reshape(steps, -1), forced),
        "spectrogram": (ref_spec, spec),
        "postnet": (ref_spec, run_postnet(tts, _batched(got["pre_postnet"]))[0]),
        "vocoder": (ref_wave, run_vocoder(tts, _batched(ref_spec))[0]),
        "waveform": (ref_wave, run_vocoder(tts, _batched(spec))[0]),
    }
    step_program = tts.variant("decoder_step", tts.default_key("decoder_step")).lowered
    report = StageReport(dtype, precision, tts.backend.numerics, steps, text_len,
                         weight_bytes_per_step=program_stats(step_program.graph_module)["per_call_read_bytes"])
    for stage, (ref, low) in values.items():
        ref, low = ref.float().reshape(low.shape), low.float()
        report.pcc[stage] = pcc(ref, low)
        report.max_abs_err[stage] = float((ref - low).abs().max())
    report.seconds = time.perf_counter() - t_start
    return report
