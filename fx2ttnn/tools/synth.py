"""``fx2ttnn synth``: text → WAV through the lowered SpeechT5 + HiFi-GAN programs.

Order of work: cheap checks first (text, output path, options, model checkpoint, speaker file, token count,
vocoder checkpoint; random weights are only built after all of them pass), then lowering (the expensive part),
generation with a progress bar on stderr, an atomic WAV write, and one summary line on stdout whose numbers
all come from ``tts.last_generation`` and ``tts.report()``.  Notices (random weights, built-in tokenizer,
backend) go to stderr as ``note: ...`` lines; user errors surface as ``CliError`` (see ``cli.main``).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

import numpy as np

from .audio import check_writable, write_wav
from .common import CliError, load_pretrained, load_speaker, load_tokenizer, notice, one_line, random_speaker, warn

BACKENDS = ("auto", "reference", "ttnn")
DTYPES = ("bfloat16", "float32")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth", help="synthesize speech from text into a WAV file",
        description="Synthesize TEXT with SpeechT5 + HiFi-GAN lowered to TTNN programs and write a 16-bit PCM "
                    "mono WAV. Without --model, the default SpeechT5 config with seeded random weights is used "
                    "(the audio will not be speech).",
)
    p.add_argument("text", metavar="TEXT", help="text to speak ('-' reads it from stdin)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="WAV file to write")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint: a save_pretrained directory or a hub id already in "
                        "the local Hugging Face cache (default: random weights, default config)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint, like --model (default: random weights, default config)")
    p.add_argument("--speaker", metavar="FILE.npy", default=None,
                   help="speaker embedding (x-vector), float array [dim] or [1, dim] (default: seeded random "
                        "unit vector)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (default): real ttnn when a device opens, else the reference implementation")
    p.add_argument("--device", default=None, metavar="TORCH_DEVICE",
                   help="torch device the reference backend computes on: cpu (default), cuda")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16", help="weights and activations dtype (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed for random weights, the random speaker and the prenet dropout masks (default: %(default)s)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="decode steps the KV cache holds (multiple of 32); generation stops there "
                        "(default: lower_model's, 1024)")
    p.add_argument("--threshold", type=float, default=0.5,
                   metavar="X",
                   help="stop at the first step whose summed stop probabilities reach X (default: %(default)s)")
    p.add_argument("--minlenratio", type=float, default=0.0, metavar="X",
                   help="minimum decode steps = X * tokens / reduction_factor (default: %(default)s)")
    p.add_argument("--maxlenratio", type=float, default=20.0, metavar="X",
                   help="maximum decode steps = X * tokens / reduction_factor (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def _read_text(text: str) -> str:
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise CliError("TEXT is empty (or whitespace only); give the text to speak")
    return text


def _load_model(args: argparse.Namespace):
    """(model, config, tokenizer) per --model; model is None when it is to get random weights (built later,
    after the cheap checks, by ``_random``)."""
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech

    from .tokenizer import CharTokenizer

    if args.model is None:
        config = SpeechT5Config()
        notice(f"no --model: default SpeechT5Config with random weights (seed {args.seed}) and the built-in "
               "character tokenizer; the audio will not be speech")
        return None, config, CharTokenizer(config.vocab_size)
    model = load_pretrained(SpeechT5ForTextToSpeech, args.model, "model")
    tokenizer, why = load_tokenizer(args.model)
    if tokenizer is None:
        tokenizer = CharTokenizer(model.config.vocab_size)
        notice(f"{why}; using the built-in character tokenizer (fx2ttnn.tools.tokenizer)")
    return model, model.config, tokenizer


def _load_vocoder(args: argparse.Namespace, config: Any):
    """(vocoder, vocoder config) per --vocoder; vocoder is None when it is to get random weights."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    if args.vocoder is None:
        vocoder, voc_config = None, SpeechT5HifiGanConfig()
        if args.model is not None:
            notice(f"no --vocoder: default SpeechT5HifiGanConfig with random weights (seed {args.seed}); the "
                   "audio will be noise")
    else:
        vocoder = load_pretrained(SpeechT5HifiGan, args.vocoder, "vocoder")
        voc_config = vocoder.config
    if voc_config.model_in_dim != config.num_mel_bins:
        raise CliError(f"the vocoder takes {voc_config.model_in_dim} mel bins but the model makes "
                       f"{config.num_mel_bins}")
    return vocoder, voc_config


def _random(cls: type, config: Any, seed: int) -> Any:
    import torch
    torch.manual_seed(seed)
    return cls(config).eval()


def _encode(tokenizer: Any, text: str, config: Any):
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    n = ids.shape[-1]
    if n > config.max_text_positions:
        raise CliError(f"TEXT is {n} tokens long; the model takes at most {config.max_text_positions} "
                       "(config.max_text_positions)")
    return ids


def summary_line(output: str, tts: Any) -> str:
    """The one stdout line: audio length, steps, time, RTF, ops per decode step, host fallbacks, backend."""
    stats = tts.last_generation
    report = tts.report()
    used = {("encoder", (stats.batch, stats.text_bucket)), ("decoder_step", (stats.batch, stats.text_bucket)),
            ("postnet", (stats.batch, stats.frame_bucket)), ("vocoder", (stats.batch, stats.frame_bucket))}
    programs = [p for p in report.programs if (p.name, tuple(p.key)) in used]
    step = next(p for p in programs if p.name == "decoder_step")
    fallbacks = sum(p.fallback_count for p in programs)
    where = "+".join(p.name for p in programs if p.fallback_count)
    audio = stats.audio_seconds or 0.0
    rtf = f"{stats.seconds / audio:.2f}" if audio > 0 else "n/a"
    return (f"wrote {output}: {audio:.2f} s audio, {stats.steps} decode step{'' if stats.steps == 1 else 's'}, {stats.seconds:.1f} s (RTF {rtf}); "
            f"TTNN ops per decode step {step.ops_per_call}, host fallbacks {fallbacks}"
            f"{f' ({where})' if where else ''}, backend {report.backend}")


def run(args: argparse.Namespace) -> int:
    text = _read_text(args.text)
    check_writable(args.output)
    if args.backend == "ttnn" and args.device not in (None, "tt"):
        raise CliError("--device selects the reference backend's torch device; it cannot be used with "
                       "--backend ttnn")
    if args.maxlenratio <= 0:
        raise CliError(f"--maxlenratio must be > 0, got {args.maxlenratio}")
    if args.minlenratio < 0:
        raise CliError(f"--minlenratio must be >= 0, got {args.minlenratio}")

    model, config, tokenizer = _load_model(args)
    dim = config.speaker_embedding_dim
    if args.speaker is not None:
        speaker = load_speaker(args.speaker, dim)
    else:
        speaker = random_speaker(dim, args.seed)
        notice(f"no --speaker: a random unit speaker embedding (seed {args.seed}, dim {dim})")
    input_ids = _encode(tokenizer, text, config)
    vocoder, voc_config = _load_vocoder(args, config)

    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    from ..model import lower_model

    if model is None:
        model = _random(SpeechT5ForTextToSpeech, config, args.seed)
    if vocoder is None:
        vocoder = _random(SpeechT5HifiGan, voc_config, args.seed)

    print("lowering SpeechT5 + HiFi-GAN to TTNN programs ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tts = lower_model(model, vocoder=vocoder, backend=args.backend, dtype=args.dtype, max_steps=args.max_steps,
                      device=args.device)
    desc = tts.backend.description + (f" ({tts.backend.fallback_reason})" if tts.backend.fallback_reason else "")
    notice(f"lowered in {time.perf_counter() - t0:.1f} s; backend: {desc}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        wave = tts.generate_speech(input_ids, speaker, threshold=args.threshold, minlenratio=args.minlenratio,
                                   maxlenratio=args.maxlenratio, seed=args.seed, progress=True)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            warn(one_line(str(w.message)).replace("lower_model(max_steps=...)", "--max-steps"))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)

    samples = wave.detach().float().cpu().numpy()
    bad = int((~np.isfinite(samples)).sum())
    if bad:
        warn(f"{bad} of {samples.size} audio samples are NaN or infinite; written as silence")
    try:
        write_wav(args.output, samples, vocoder.config.sampling_rate)
    except OSError as e:
        raise CliError(f"cannot write {args.output!r}: {e.strerror or one_line(e)}") from None
    print(summary_line(args.output, tts), flush=True)
    return 0
