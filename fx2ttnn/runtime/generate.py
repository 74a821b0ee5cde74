"""The generation loop: HF ``_generate_speech`` on lowered programs.

Per utterance: the encoder program runs once (states, cross-attention K/V, masks, normalized speaker); the
decode step runs once per step, on device tensors it updates itself (KV caches, ``position``, the next mel
frame); the only data read back per step is the stop probabilities.  When every utterance has stopped, the
step outputs are concatenated on device, padded to a frame bucket, and the postnet and vocoder programs run.

Semantics follow HF exactly: ``maxlen = int(S * maxlenratio / r)``, ``minlen = int(S * minlenratio / r)``
with ``S`` the given input length; an utterance stops at the first step ``>= minlen`` whose
``sum(stop probabilities) >= threshold``, or at ``maxlen``; each utterance's spectrogram is the postnet
over its own frames; batched outputs are zero-padded; ``return_output_lengths`` gives HF's lengths.

With ``lower_model(trace=True)`` (the default on a real device) the decode step is a ttnn trace, captured
on first use and replayed each step (``runtime/trace.py``); otherwise the bound program runs each step.

The stop probabilities are read once every ``stop_check_interval`` steps (``lower_model``'s default, or per
call): the host syncs once per k steps, then applies HF's rule to each of those steps in order; frames decoded
after the step where the last utterance stopped are discarded, so the output is the same for every k.

``max_steps`` (lowering option) bounds the KV cache: if ``maxlen`` exceeds it and an utterance has not
stopped after ``max_steps`` steps, generation stops there as if ``maxlen`` had been reached, and a
``RuntimeWarning`` says so (HF would have continued).  Prenet dropout masks are drawn on the host once per
utterance (HF's law: keep with probability p, scale 1/(1-p), one mask per step shared by the batch) from
``seed`` (or torch's global RNG, as HF) and uploaded with the other per-utterance inputs.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import options
from ..errors import GenerationError
from ..lowering import speecht5 as s5
from ..lowering.ir import TensorSpec

if TYPE_CHECKING:
    from ..model import LoweredSpeechT5


@dataclass
class GenerationStats:
    steps: int
    batch: int
    text_bucket: int
    frame_bucket: int
    seconds: float
    encoder_seconds: float
    decode_seconds: float
    postnet_seconds: float
    vocoder_seconds: float
    transfers_per_step: float
    setup_uploads: int
    audio_seconds: float | None = None
    step_seconds: list[float] = field(default_factory=list)  # wall time of each decode step (stop reads included)
    steps_discarded: int = 0  # decoded after the last stop, before the read that found it (stop_check_interval)
    lowering_seconds: float = 0.0  # of ``seconds``: capturing and lowering program variants this call needed first

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.decode_seconds / max(self.steps + self.steps_discarded, 1)


def upload(ttnn: Any, device: Any, spec: TensorSpec, value: torch.Tensor) -> Any:
    """Host tensor → device tensor matching a program input spec."""
    return ttnn.from_torch(value, dtype=getattr(ttnn, spec.dtype), layout=getattr(ttnn, f"{spec.layout}_LAYOUT"),
                           device=device)


def _tensor_type(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).removeprefix('torch.')} tensor of shape {list(x.shape)}"
    shape = getattr(x, "shape", None)
    what = f"{type(x).__module__}.{type(x).__name__}".removeprefix("builtins.")
    return f"a {what}" + (f" of shape {list(shape)}" if shape is not None else "") + \
        (" (convert it with torch.from_numpy)" if type(x).__module__ == "numpy" else "")


def _validate(tts: "LoweredSpeechT5", input_ids: Any, speaker: Any, attention_mask: Any) -> None:
    cfg = tts.config
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point() \
            or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise GenerationError(f"input_ids must be an integer (torch.long) tensor [batch, length] of token ids, got "
                              f"{_tensor_type(input_ids)}")
    bsz, seq = input_ids.shape
    if bsz == 0 or seq == 0:
        raise GenerationError(f"input_ids is empty (shape {list(input_ids.shape)})")
    if int(input_ids.min()) < 0 or int(input_ids.max()) >= cfg.vocab_size:
        raise GenerationError(f"input_ids must be token ids in [0, {cfg.vocab_size}), got values in "
                              f"[{int(input_ids.min())}, {int(input_ids.max())}]")
    dim = cfg.speaker_embedding_dim
    if speaker is None:
        raise GenerationError(f"speaker_embeddings must be given: a float tensor [{bsz}, {dim}] (e.g. an x-vector)")
    if not isinstance(speaker, torch.Tensor) or tuple(speaker.shape) != (bsz, dim) \
            or not speaker.is_floating_point():
        raise GenerationError(f"speaker_embeddings must be a float tensor [{bsz}, {dim}], got {_tensor_type(speaker)}")
    if not bool(torch.isfinite(speaker).all()):
        raise GenerationError(f"speaker_embeddings contains {int((~torch.isfinite(speaker)).sum())} NaN or "
                              "infinite value(s); it must be finite")
    if attention_mask is not None:
        if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != (bsz, seq):
            raise GenerationError(f"attention_mask must be a [{bsz}, {seq}] tensor like input_ids, got "
                                  f"{_tensor_type(attention_mask)}")
        if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise GenerationError("attention_mask must hold only 0 (padding) and 1 (token)")
    if seq > tts.text_buckets[-1]:
        raise GenerationError(f"input length {seq} exceeds the model's {tts.text_buckets[-1]} text positions")


def dropout_tables(tts: "LoweredSpeechT5", seed: int | None) -> list[torch.Tensor]:
    """Per prenet layer, one pre-scaled dropout mask row per step: HF ``_consistent_dropout``'s law."""
    cfg = tts.config
    p = cfg.speech_decoder_prenet_dropout
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    scale = 1.0 / (1.0 - p)
    shape = (tts.max_steps, cfg.speech_decoder_prenet_units)
    return [torch.bernoulli(torch.full(shape, p), generator=gen) * scale
            for _ in range(cfg.speech_decoder_prenet_layers)]


def decode_state(tts: "LoweredSpeechT5", bsz: int, specs: dict[str, TensorSpec]) -> dict[str, Any]:
    """KV caches for batch ``bsz``: allocated (zeroed) once and reused; stale entries are always masked."""
    if bsz not in tts._state:
        ttnn, device = tts.backend.ttnn, tts.backend.device
        state = {}
        for name, spec in specs.items():
            if name.startswith(("self_k_", "self_v_")):
                state[name] = upload(ttnn, device, spec, torch.zeros(spec.shape))
        tts._state[bsz] = state
    return tts._state[bsz]


def generate_speech(tts: "LoweredSpeechT5", input_ids: torch.Tensor, speaker_embeddings: torch.Tensor | None, *,
                    attention_mask: torch.Tensor | None = None, threshold: float = 0.5, minlenratio: float = 0.0,
                    maxlenratio: float = 20.0, vocoder: Any = None, return_output_lengths: bool = False,
                    seed: int | None = None, progress: bool = False, stop_check_interval: int | None = None):
    err = GenerationError  # every option checked before any work (fx2ttnn/options.py)
    threshold = options.real(threshold, "threshold", low=0.0, error=err)
    minlenratio = options.real(minlenratio, "minlenratio", low=0.0, error=err)
    maxlenratio = options.real(maxlenratio, "maxlenratio", low=0.0, low_open=True, error=err)
    seed = None if seed is None else options.integer(seed, "seed", low=0, high=2**64 - 1, error=err)
    if stop_check_interval is not None:
        stop_check_interval = options.integer(stop_check_interval, "stop_check_interval", low=1, error=err)
    return_output_lengths = options.flag(return_output_lengths, "return_output_lengths", error=err)
    progress = options.flag(progress, "progress", error=err)
    _validate(tts, input_ids, speaker_embeddings, attention_mask)
    ttnn, device = tts.backend.ttnn, tts.backend.device
    cfg = tts.config
    r, mel = cfg.reduction_factor, cfg.num_mel_bins
    bsz, seq = input_ids.shape
    voc_tts = None
    if vocoder is None and tts.vocoder is not None:
        voc_tts = tts
    elif isinstance(vocoder, nn.Module):
        voc_tts = tts.lowered_vocoder_for(vocoder)
    elif vocoder is not None and vocoder is not False:
        got = repr(vocoder) if isinstance(vocoder, (bool, int, float, str)) else type(vocoder).__name__
        raise GenerationError(f"vocoder must be a SpeechT5HifiGan, None (the lowered one) or False, got {got}")

    t_start = time.perf_counter()
    lowered_before = tts.lower_seconds + (voc_tts.lower_seconds if voc_tts not in (None, tts) else 0.0)
    mask = attention_mask if attention_mask is not None else (input_ids != cfg.pad_token_id).int()
    bucket = s5.bucket_for(seq, tts.text_buckets, "input length")
    ids = torch.nn.functional.pad(input_ids.long(), (0, bucket - seq), value=cfg.pad_token_id)
    mask = torch.nn.functional.pad(mask.float(), (0, bucket - seq))
    maxlen = int(seq * maxlenratio / r)
    minlen = int(seq * minlenratio / r)

    # -- encoder (and the decode step's per-utterance prologue): once per utterance ----------------------
    enc = tts.variant("encoder", (bsz, bucket))
    step_variant = tts.variant("decoder_step", (bsz, bucket))
    step, specs = step_variant.bound, step_variant.lowered.input_specs
    t0 = time.perf_counter()
    env: dict[str, Any] = dict(zip(enc.lowered.signature.outputs, enc.bound(ids, mask, speaker_embeddings.float())))
    env.update(decode_state(tts, bsz, specs))
    env["position"] = upload(ttnn, device, specs["position"], torch.zeros(bsz, dtype=torch.int32))
    env["frame"] = upload(ttnn, device, specs["frame"], torch.zeros(bsz, 1, mel))
    if tts.prenet_dropout:  # a step input, or only the prologue's when all its per-step use was hoisted
        in_specs = {**(step_variant.lowered.prologue.input_specs if step_variant.prologue else {}), **specs}
        for i, t in enumerate(dropout_tables(tts, seed)):
            env[f"dropout_mask_{i}"] = upload(ttnn, device, in_specs[f"dropout_mask_{i}"], t)
    setup_uploads = 2 + tts.prenet_dropout * cfg.speech_decoder_prenet_layers + 3  # + encoder ids/mask/speaker
    if step_variant.prologue is not None:
        pro = step_variant.prologue
        env.update(zip(pro.output_names, pro(*[env[n] for n in pro.input_names])))
    traced = tts.traced_step((bsz, bucket)) if tts.trace else None
    if traced is not None:
        traced.start(env)  # inputs into the trace's fixed buffers (the first utterance also captures)
    t_enc = time.perf_counter() - t0
    args = [env[n] for n in step.input_names]
    frame_slot = step.input_names.index("frame")

    # -- decode loop ---------------------------------------------------------------------------------
    # Stop probabilities stay on device; every `interval` steps they are concatenated and read at once, then
    # evaluated step by step in order (HF's rule), and frames decoded past the last stop are discarded.
    interval = stop_check_interval or tts.stop_check_interval
    last = min(maxlen, tts.max_steps)  # the step at which every utterance is forced to stop
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=last, unit="step", desc="decoding", leave=False)
    spectra, stops, reads, idx, step_times, pending = [], {}, 0, 0, [], []
    t0 = t_step = time.perf_counter()
    while len(stops) < bsz:
        idx += 1
        if traced is not None:
            spectrum, prob = traced()
        else:
            spectrum, prob, args[frame_slot] = step(*args)
        spectra.append(spectrum)
        if idx >= minlen or idx >= tts.max_steps:
            pending.append((idx, prob))
        if pending and (len(pending) >= interval or idx >= last or idx >= tts.max_steps):
            readable = [pr for j, pr in pending if j < maxlen and j < tts.max_steps]
            probs = None
            if readable:
                reads += 1
                probs = ttnn.to_torch(ttnn.concat(readable, 1) if len(readable) > 1 else readable[0]).float()
                probs = probs.reshape(bsz, len(readable), -1).sum(dim=-1) >= threshold  # [B, steps read]
            for k, (j, _) in enumerate(pending):
                if j < maxlen and j < tts.max_steps:
                    met = torch.nonzero(probs[:, k]).flatten().tolist()
                else:
                    met = list(range(bsz))
                    if j >= tts.max_steps and j < max(maxlen, minlen) and len(stops) < bsz:
                        warnings.warn(f"generation reached max_steps={tts.max_steps} before maxlen={maxlen}: "
                                      f"{bsz - len(stops)} utterance(s) truncated; lower_model(max_steps=...) "
                                      "allows more", RuntimeWarning, stacklevel=3)
                for i in met:
                    stops.setdefault(i, j)
                if len(stops) >= bsz:
                    break
            pending = []
        now = time.perf_counter()
        step_times.append(now - t_step)
        t_step = now
        if bar is not None:
            bar.update(1)
    decoded = idx
    idx = max(stops.values())  # the last step any utterance kept; later ones were decoded ahead of the read
    spectra = spectra[:idx]
    t_dec = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    # -- postnet over each utterance's frames ----------------------------------------------------------
    lengths = [stops[i] * r for i in range(bsz)]
    frames = idx * r
    fb = s5.frame_bucket(frames)
    spec_all = ttnn.concat(spectra, 1) if len(spectra) > 1 else spectra[0]   # [B, steps, r * mel]
    spec_all = ttnn.reshape(spec_all, [bsz, frames, mel])                       # HF's view to [B, steps * r, mel]
    if fb > frames:
        spec_all = ttnn.pad(spec_all, [(0, 0), (0, fb - frames), (0, 0)], 0.0)
    frame_mask = (torch.arange(fb)[None, :] < torch.tensor(lengths)[:, None]).float()
    t0 = time.perf_counter()
    post = tts.variant("postnet", (bsz, fb)).bound(spec_all, frame_mask)[0]
    t_post = time.perf_counter() - t0
    longest = max(lengths)

    t_voc = 0.0
    if voc_tts is not None:
        geo = s5.VocoderGeometry.of(voc_tts.vocoder)
        padded, valid = geo.lengths(fb), geo.lengths(longest)
        masks = [(torch.arange(pl) < v).float().view(1, 1, pl) for pl, v in zip(padded, valid)]
        t0 = time.perf_counter()
        wave = voc_tts.variant("vocoder", (bsz, fb)).bound(post, *masks)[0]
        wave = ttnn.to_torch(wave).float()[:, :valid[-1]]
        t_voc = time.perf_counter() - t0
        out: Any = wave
        out_lengths = [int(wave.size(1) / longest) * n_ for n_ in lengths]
        audio = wave.size(1) / voc_tts.vocoder.config.sampling_rate
    else:
        out = ttnn.to_torch(post).float()[:, :longest]
        out_lengths = lengths
        audio = None
    lowered = tts.lower_seconds + (voc_tts.lower_seconds if voc_tts not in (None, tts) else 0.0) - lowered_before
    tts.last_generation = GenerationStats(idx, bsz, bucket, fb, time.perf_counter() - t_start, t_enc, t_dec, t_post,
                                          t_voc, reads / decoded, setup_uploads, audio, step_times, decoded - idx,
                                          lowered)
    if return_output_lengths:
        return out, out_lengths
    return out[0] if bsz == 1 else out
