"""``fx2ttnn synth``: text → WAV through the lowered SpeechT5 + HiFi-GAN programs.

Order of work: cheap checks first (text, output path, options, model checkpoint, speaker file, token count,
vocoder checkpoint; random weights are only built after all of them pass), then lowering (the expensive part),
generation with a progress bar on stderr, an atomic WAV write, and one summary line on stdout whose numbers
all come from ``tts.last_generation`` and ``tts.report()``.  Notices (random weights, built-in tokenizer,
backend) go to stderr as ``note: ...`` lines; user errors surface as ``CliError`` (see ``cli.main``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from typing import Any

import numpy as np

from .. import options
from .audio import to_pcm16, write_wav
from .common import (
    CliError, check_lowering_flags, load_pretrained, load_speaker, load_tokenizer, notice, one_line, random_speaker,
    seed_int, step_count, unknown_characters, warn,
)
from .outputs import check_writable

BACKENDS = ("auto", "reference", "ttnn")
DTYPES = ("bfloat16", "float32")
# Without --model the weights are random: their stop probabilities cross the threshold at the first step, so
# the demo decodes at least this much audio per input token (about the rate of read speech) to be heard.
DEMO_SECONDS_PER_TOKEN = 0.08
NORMALIZE_DBFS = -1.0  # --normalize: the peak after scaling, as `sox --norm=-1`
_finite_nonneg = options.argparse_type(options.real, low=0.0)
_finite_positive = options.argparse_type(options.real, low=0.0, low_open=True)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth", help="synthesize speech from text into a WAV file",
        description="Synthesize TEXT with SpeechT5 + HiFi-GAN lowered to TTNN programs and write a 16-bit PCM "
                    "mono WAV. Without --model, the default SpeechT5 config with seeded random weights is used: "
                    "the audio is not speech, but it shows the whole pipeline (a length that fits the text, "
                    "peak-normalized so it is audible).",
    )
    p.add_argument("text", metavar="TEXT", help="text to speak ('-' reads it from stdin)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav",
                   help="WAV file to write (missing parent directories are created)")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint: a save_pretrained directory or a Hugging Face Hub id "
                        "(e.g. microsoft/speecht5_tts; downloaded into the HF cache if not there) (default: "
                        "random weights, default config)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint, like --model (e.g. microsoft/speecht5_hifigan) (default: "
                        "random weights, default config)")
    p.add_argument("--speaker", metavar="FILE.npy", default=None,
                   help="speaker embedding (x-vector), float array [dim] or [1, dim] saved with numpy.save "
                        "(default: seeded random unit vector)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="auto (default): real ttnn when a device opens, else the reference implementation")
    p.add_argument("--device", default=None, metavar="TORCH_DEVICE",
                   help="torch device the reference backend computes on: cpu (default), cuda, cuda:N")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16", help="weights and activations dtype (default: %(default)s)")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N",
                   help="seed for random weights, the random speaker and the prenet dropout masks (default: %(default)s)")
    p.add_argument("--max-steps", type=step_count, default=None, metavar="N",
                   help="decode steps the KV cache holds (multiple of 32); generation stops there "
                        "(default: lower_model's, 1024)")
    p.add_argument("--threshold", type=_finite_nonneg, default=0.5, metavar="X",
                   help="stop at the first step whose summed stop probabilities reach X (default: %(default)s)")
    p.add_argument("--minlenratio", type=_finite_nonneg, default=None, metavar="X",
                   help="minimum decode steps = X * tokens / reduction_factor, as HF (default: 0)")
    p.add_argument("--min-seconds", type=_finite_nonneg, default=None, metavar="S",
                   help="do not stop before S seconds of audio (sets HF's minlenratio from the model's frame rate; "
                        f"default: 0, or {DEMO_SECONDS_PER_TOKEN} s per token without --model)")
    p.add_argument("--maxlenratio", type=_finite_positive, default=20.0, metavar="X",
                   help="maximum decode steps = X * tokens / reduction_factor (default: %(default)s)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help=f"scale the waveform so its peak is {NORMALIZE_DBFS:g} dBFS before writing, as sox --norm "
                        "(default: on without --model, whose random weights are far below 16-bit resolution; off "
                        "otherwise)")
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
                   "waveform will not be speech (give --vocoder, e.g. microsoft/speecht5_hifigan)")
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
    unknown = unknown_characters(tokenizer, text)
    if unknown:
        shown = " ".join(repr(c) for c in unknown[:12]) + (" ..." if len(unknown) > 12 else "")
        if all(c.isspace() or c in unknown for c in text):
            raise CliError(f"TEXT has no character the tokenizer knows ({shown}); nothing would be spoken")
        warn(f"{len(unknown)} distinct character(s) of TEXT are outside the tokenizer's vocabulary and are read as "
             f"<unk>: {shown}")
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    n = ids.shape[-1]
    if n > config.max_text_positions:
        raise CliError(f"TEXT is {n} tokens long; the model takes at most {config.max_text_positions} "
                       "(config.max_text_positions)")
    return ids


def frames_per_second(voc_config: Any) -> float:
    """Spectrogram frames per second of audio: HiFi-GAN makes prod(upsample_rates) samples per frame."""
    return voc_config.sampling_rate / math.prod(voc_config.upsample_rates)


def minlenratio_for(seconds: float, tokens: int, config: Any, voc_config: Any) -> float:
    """HF's ``minlenratio`` whose ``minlen = int(tokens * minlenratio / r)`` is the first decode step that holds
    ``seconds`` of audio (r frames per step)."""
    steps = math.ceil(seconds * frames_per_second(voc_config) / config.reduction_factor)
    return (steps + 0.5) * config.reduction_factor / tokens


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def summary_line(output: str, tts: Any, level: str = "") -> str:
    """The one stdout line: audio length and level, steps, time and RTF (first call: the on-demand lowering it
    included is named), ops per decode step, host fallbacks, backend."""
    stats = tts.last_generation
    report = tts.report()
    used = {("encoder", (stats.batch, stats.text_bucket)), ("decoder_step", (stats.batch, stats.text_bucket)),
            ("postnet", (stats.batch, stats.frame_bucket)), ("vocoder", (stats.batch, stats.frame_bucket))}
    programs = [p for p in report.programs if (p.name, tuple(p.key)) in used]
    step = next(p for p in programs if p.name == "decoder_step")
    fallbacks = sum(p.fallback_count for p in programs)
    where = "+".join(p.name for p in programs if p.fallback_count)
    audio = stats.audio_seconds or 0.0
    rtf = f"RTF {stats.seconds / audio:.2f}, first call" if audio > 0 else "RTF n/a"
    if stats.lowering_seconds > 0 and audio > 0:  # program variants this length needed, lowered on first use
        warm = max(stats.seconds - stats.lowering_seconds, 0.0)
        rtf += f", incl. {stats.lowering_seconds:.1f} s lowering new program variants: RTF {warm / audio:.2f} without"
    return (f"wrote {output}: {audio:.2f} s audio{f' ({level})' if level else ''}, {stats.steps} decode "
            f"step{'' if stats.steps == 1 else 's'}, {stats.seconds:.1f} s ({rtf}); "
            f"TTNN ops per decode step {step.ops_per_call}, host fallbacks {fallbacks}"
            f"{f' ({where})' if where else ''}, backend {report.backend}")


def run(args: argparse.Namespace) -> int:
    text = _read_text(args.text)
    check_writable(args.output, "-o/--output")
    if args.minlenratio is not None and args.min_seconds is not None:
        raise CliError("give --minlenratio or --min-seconds, not both")
    check_lowering_flags(args)

    model, config, tokenizer = _load_model(args)
    check_lowering_flags(args, config)
    dim = config.speaker_embedding_dim
    if args.speaker is not None:
        speaker = load_speaker(args.speaker, dim)
    else:
        speaker = random_speaker(dim, args.seed)
        notice(f"no --speaker: a random unit speaker embedding (seed {args.seed}, dim {dim})")
    input_ids = _encode(tokenizer, text, config)
    vocoder, voc_config = _load_vocoder(args, config)
    random_weights = args.model is None
    minlenratio = args.minlenratio or 0.0
    min_seconds = args.min_seconds
    if min_seconds is None and args.minlenratio is None and random_weights:
        min_seconds = round(DEMO_SECONDS_PER_TOKEN * input_ids.shape[-1], 2)
        notice(f"random weights stop at the first step: decoding at least {min_seconds:g} s of audio "
               f"({DEMO_SECONDS_PER_TOKEN} s per token; --min-seconds sets it)")
    if min_seconds:
        minlenratio = minlenratio_for(min_seconds, input_ids.shape[-1], config, voc_config)
    normalize = random_weights if args.normalize is None else args.normalize

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
        wave = tts.generate_speech(input_ids, speaker, threshold=args.threshold, minlenratio=minlenratio,
                                   maxlenratio=args.maxlenratio, seed=args.seed, progress=True)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            warn(one_line(str(w.message)).replace("lower_model(max_steps=...)", "--max-steps")
                 .replace("max_steps=", "--max-steps "))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)

    samples = wave.detach().float().cpu().numpy()
    bad = int((~np.isfinite(samples)).sum())
    if bad:
        warn(f"{bad} of {samples.size} audio samples are NaN or infinite; written as silence")
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    level = peak_dbfs(samples)
    if normalize and level > -math.inf:
        samples = samples * (10 ** (NORMALIZE_DBFS / 20) / 10 ** (level / 20))
        level_text = f"peak {NORMALIZE_DBFS:.1f} dBFS, normalized from {level:.1f} dBFS"
    elif not np.any(to_pcm16(samples)):
        level_text = (f"silent: peak {level:.1f} dBFS, below 16-bit resolution; --normalize scales it up"
                      if level > -math.inf else "silent: all samples are 0")
    else:
        level_text = f"peak {level:.1f} dBFS"
    try:
        write_wav(args.output, samples, vocoder.config.sampling_rate)
    except OSError as e:
        raise CliError(f"cannot write {args.output!r}: {e.strerror or one_line(e)}") from None
    print(summary_line(args.output, tts, level_text), flush=True)
    return 0
