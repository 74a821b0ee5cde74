"""``fx2ttnn bench``: HF eager vs the lowered model, same inputs, same process, same run.

    fx2ttnn bench [--text-len N] [--steps N] [--dtype float32|bfloat16] [--repeat R] [--json FILE]
                  [--model PATH_OR_ID] [--vocoder PATH_OR_ID] [--backend ...] [--device ...]
                  [--precision P] [--numerics exact|device] [--emulation-cost]

Both sides generate from the same random token ids and speaker embedding, prenet dropout off on both (HF's
``_consistent_dropout`` patched to identity for the HF run; ``prenet_dropout=False`` for fx2ttnn), stop threshold
above reach, so both run exactly ``--steps`` decode steps, then the postnet and the vocoder.  After one warm-up
generation per side, ``--repeat`` timed generations per side, the two sides alternating (HF, fx2ttnn, HF, ...)
so that a slow spell of a shared machine hits both, give: encoder ms, decode ms per step (median, p90 over all
steps of all repeats), postnet ms, vocoder ms, end-to-end seconds, real-time factor, TTNN ops and host↔device
transfers per decode step, and ``lower_model`` time.  Peak RSS is sampled during one untimed generation per side:
HF's warm-up, before anything is lowered, and one fx2ttnn generation after its warm-up (lowering done), before the
alternating runs, in which the heap that HF's runs leave behind would count against fx2ttnn.

The floor: the bare matrix-vector products (one per ``ttnn.linear`` of the lowered decode step, fresh tensors of the
same shapes, float32 as the reference stores them) — the memory traffic a decode step cannot avoid on this machine —
timed with the faster of ``torch.addmm`` and the reference's split-K product.  It is sampled right after each timed
fx2ttnn generation, so the floor and the steps it is compared with see the same spell of a machine whose speed
drifts (the same floor took 6.65 to 8.31 ms in runs minutes apart on the CI machine); the table gives the median
sample and lowered ÷ floor, the JSON every sample (``floor_samples_ms``).

``--emulation-cost`` adds one untimed warm-up and one timed generation of the same lowering with the reference
emulating the device's math (``numerics="device"``, ``runtime/reference/numerics.py``); its rows give each stage's
time and the ratio to the timed (exact-numerics) runs: what accuracy claims made with device numerics cost.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch

from ..precision import DEFAULT_PRECISION, PRECISIONS
from .common import CliError, check_lowering_flags, load_pretrained, notice, positive_int, seed_int
from .outputs import check_writable, write_text


@dataclass
class Side:
    encoder_ms: float = 0.0
    step_ms_median: float = 0.0
    step_ms_p90: float = 0.0
    postnet_ms: float = 0.0
    vocoder_ms: float = 0.0
    end_to_end_s: float = 0.0
    real_time_factor: float = 0.0
    peak_rss_mb: float = 0.0
    lower_model_s: float | None = None
    ops_per_step: int | None = None
    transfers_per_step: float | None = None


@dataclass
class BenchResult:
    config: dict[str, Any]
    hf: Side
    lowered: Side
    floor_ms: float
    floor_samples_ms: list[float] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    emulated: Side | None = None  # --emulation-cost: one generation with numerics="device" (the reference)

    def to_json(self) -> str:
        return json.dumps({"schema_version": 2, **asdict(self)}, indent=2)  # 2: precision, numerics, emulated


FLOOR_REPEAT = 10  # timings per kernel in one floor sample (one sample per repeat, about 0.2 s)

# -- measurement helpers ------------------------------------------------------------------------------------

def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextlib.contextmanager
def peak_rss() -> Iterator[list[float]]:
    """Sample this process's resident set every 5 ms while the block runs; yields a one-element list (MB)."""
    peak = [_rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss_mb())

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield peak
    finally:
        done.set()
        t.join()
        peak[0] = max(peak[0], _rss_mb())


def _p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[-1] if len(xs) >= 2 else xs[0]


@contextlib.contextmanager
def _hf_timers(model: Any, vocoder: Any) -> Iterator[dict[str, Any]]:
    """Time HF's stages with module hooks: encoder, each decode step (prenet start to prenet start), postnet,
    vocoder; HF's prenet dropout off for the duration."""
    from transformers.models.speecht5 import modeling_speecht5 as hf

    rec: dict[str, Any] = {"steps": [], "encoder": [], "postnet": [], "vocoder": []}
    state: dict[str, float] = {}

    def start(key):
        return lambda *a, **k: state.__setitem__(key, time.perf_counter())

    def stop(key):
        return lambda *a, **k: rec[key].append(time.perf_counter() - state[key])

    def step_start(*a, **k):
        now = time.perf_counter()
        if "step" in state:
            rec["steps"].append(now - state["step"])
        state["step"] = now

    postnet = model.speech_decoder_postnet
    original_postnet = postnet.postnet

    def timed_postnet(x):
        if "step" in state:  # the last decode step ends where the postnet starts
            rec["steps"].append(time.perf_counter() - state.pop("step"))
        t = time.perf_counter()
        out = original_postnet(x)
        rec["postnet"].append(time.perf_counter() - t)
        return out

    handles = [model.speecht5.encoder.register_forward_pre_hook(start("encoder")),
               model.speecht5.encoder.register_forward_hook(stop("encoder")),
               model.speecht5.decoder.prenet.register_forward_pre_hook(step_start),
               vocoder.register_forward_pre_hook(start("vocoder")), vocoder.register_forward_hook(stop("vocoder"))]
    postnet.postnet = timed_postnet
    saved = hf.SpeechT5SpeechDecoderPrenet._consistent_dropout
    hf.SpeechT5SpeechDecoderPrenet._consistent_dropout = lambda self, x, p: x
    try:
        yield rec
    finally:
        hf.SpeechT5SpeechDecoderPrenet._consistent_dropout = saved
        del postnet.postnet
        for h in handles:
            h.remove()


def floor_timer(step_program: Any) -> Callable[[int], float]:
    """A floor sampler for a lowered decode step: ``sample(repeat)`` is the median time (ms, over ``repeat``
    timings) of the bare products over the weights of every ``ttnn.linear`` in the step, with the faster of two
    kernels: ``torch.addmm`` for every product, or the reference's own choice (its
    split-K matrix-vector product where it takes it, ``reference.matmul.use_split_k``).  The floor is what the
    fastest bare kernel known here needs, not what the lowered step happens to use.  The tensors are made once;
    each sample times both kernels."""
    from ..lowering import op_table as ops
    rm = importlib.import_module("fx2ttnn.runtime.reference.matmul")  # the module; the package exports matmul()
    shapes = [n.args[1].meta["tensor_spec"].shape for n in step_program.nodes() if n.target is ops.linear]
    ws = [torch.randn(*s) for s in shapes]
    bs = [torch.randn(1, s[-1]) for s in shapes]
    xs = [torch.randn(1, s[0]) for s in shapes]
    split = [rm.split_k_weight(w) if rm.use_split_k(1, w) else None for w in ws]

    def addmm() -> float:
        t = time.perf_counter()
        for w, b, x in zip(ws, bs, xs):
            torch.addmm(b, x, w)
        return time.perf_counter() - t

    def reference_choice() -> float:
        t = time.perf_counter()
        for w, b, x, wk in zip(ws, bs, xs, split):
            if wk is None:
                torch.addmm(b, x, w)
            else:
                rm.matvec(x, wk).add_(b)
        return time.perf_counter() - t

    def sample(repeat: int) -> float:
        best = float("inf")
        for once in (addmm, reference_choice):
            for _ in range(3):
                once()
            best = min(best, 1000 * statistics.median(once() for _ in range(repeat)))
        return best
    return sample


# -- the benchmark ---------------------------------------------------------------------------------------

def default_models(seed: int = 0) -> tuple[Any, Any]:
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig
    torch.manual_seed(seed)
    return SpeechT5ForTextToSpeech(SpeechT5Config()).eval(), SpeechT5HifiGan(SpeechT5HifiGanConfig()).eval()


def run_bench(model: Any = None, vocoder: Any = None, *, text_len: int = 24, steps: int = 120,
              dtype: str = "float32", repeat: int = 3, backend: str = "reference", device: str | None = None,
              seed: int = 0, stop_check_interval: int | None = None, precision: str = DEFAULT_PRECISION,
              numerics: str | None = None, emulation_cost: bool = False) -> BenchResult:
    from ..model import lower_model

    if steps < 1 or text_len < 1 or repeat < 1:
        raise CliError("steps, text_len and repeat must be positive")
    if model is None or vocoder is None:
        m, v = default_models(seed)
        model, vocoder = model or m, vocoder or v
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, cfg.vocab_size, (1, text_len), generator=g)
    speaker = torch.randn(1, cfg.speaker_embedding_dim, generator=g)
    r = cfg.reduction_factor
    kw = dict(threshold=float(r) + 1.0, maxlenratio=steps * r / text_len + 1e-6)  # above reach: exactly `steps`
    sampling_rate = vocoder.config.sampling_rate

    # HF eager: warm-up, and its peak RSS before anything is lowered
    hf, lowered = Side(), Side()
    with _hf_timers(model, vocoder), torch.no_grad(), peak_rss() as peak:
        model.generate_speech(ids, speaker, vocoder=vocoder, **kw)
    hf.peak_rss_mb = peak[0]

    # lowered: lower_model, warm-up
    t = time.perf_counter()
    max_steps = max(32, -(-(steps + 1) // 32) * 32)
    tts = lower_model(model, vocoder=vocoder, backend=backend, dtype=dtype, device=device, prenet_dropout=False,
                      max_steps=max_steps, stop_check_interval=stop_check_interval, precision=precision,
                      numerics=numerics)
    tts.generate_speech(ids, speaker, **kw)  # warm-up; also lowers the frame-bucket variants
    lowered.lower_model_s = time.perf_counter() - t - tts.last_generation.seconds
    with peak_rss() as peak:  # a generation, lowering done, before any HF run leaves its heap behind
        tts.generate_speech(ids, speaker, **kw)
    lowered.peak_rss_mb = peak[0]

    # timed generations, the two sides alternating: a slow spell of the machine hits both sides alike; a floor
    # sample after each fx2ttnn generation, in the same spell as its steps
    key = (1, tts.last_generation.text_bucket)  # the decode-step variant these inputs run
    floor_sample = floor_timer(tts.variant("decoder_step", key).lowered)
    stats, hf_totals, totals, floors = [], [], [], []
    with _hf_timers(model, vocoder) as rec, torch.no_grad():
        for _ in range(repeat):
            t = time.perf_counter()
            hf_wave = model.generate_speech(ids, speaker, vocoder=vocoder, **kw)
            hf_totals.append(time.perf_counter() - t)
            t = time.perf_counter()
            wave = tts.generate_speech(ids, speaker, **kw)
            totals.append(time.perf_counter() - t)
            stats.append(tts.last_generation)
            floors.append(floor_sample(FLOOR_REPEAT))
    _fill(hf, rec["encoder"], rec["steps"], rec["postnet"], rec["vocoder"], hf_totals,
          hf_wave.numel() / sampling_rate)
    _fill(lowered, [s.encoder_seconds for s in stats], [x for s in stats for x in s.step_seconds],
          [s.postnet_seconds for s in stats], [s.vocoder_seconds for s in stats], totals, wave.numel() / sampling_rate)
    step_report = tts.report().program("decoder_step", key)
    lowered.ops_per_step = step_report.ops_per_call
    lowered.transfers_per_step = stats[-1].transfers_per_step

    floor = statistics.median(floors)
    res = BenchResult(
        config={"text_len": text_len, "steps": steps, "dtype": dtype, "repeat": repeat,
                "backend": tts.backend.description, "torch_threads": torch.get_num_threads(),
                "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                "torch": torch.__version__, "stop_check_interval": tts.stop_check_interval, "trace": tts.trace,
                "precision": precision, "numerics": tts.backend.numerics},
        hf=hf, lowered=lowered, floor_ms=floor, floor_samples_ms=floors)
    if emulation_cost:  # the same programs with the reference emulating the device's math: one timed generation
        emu = lower_model(model, vocoder=vocoder, backend="reference", dtype=dtype, device=device,
                          prenet_dropout=False, max_steps=max_steps, stop_check_interval=stop_check_interval,
                          precision=precision, numerics="device")
        emu.generate_speech(ids, speaker, **kw)  # lowers the frame-bucket variants, as the warm-up above
        t = time.perf_counter()
        wave = emu.generate_speech(ids, speaker, **kw)
        s = emu.last_generation
        res.emulated = Side()
        _fill(res.emulated, [s.encoder_seconds], s.step_seconds, [s.postnet_seconds], [s.vocoder_seconds],
              [time.perf_counter() - t], wave.numel() / sampling_rate)
    for k in ("encoder_ms", "step_ms_median", "step_ms_p90", "postnet_ms", "vocoder_ms", "end_to_end_s",
              "real_time_factor", "peak_rss_mb"):
        a, b = getattr(lowered, k), getattr(hf, k)
        res.ratios[k] = a / b if b else float("nan")
    res.ratios["step_vs_floor"] = lowered.step_ms_median / floor
    return res


def _fill(side: Side, enc: list[float], steps: list[float], post: list[float], voc: list[float], totals: list[float],
          audio_s: float) -> None:
    side.encoder_ms = 1000 * statistics.median(enc)
    side.step_ms_median = 1000 * statistics.median(steps)
    side.step_ms_p90 = 1000 * _p90(steps)
    side.postnet_ms = 1000 * statistics.median(post)
    side.vocoder_ms = 1000 * statistics.median(voc)
    side.end_to_end_s = statistics.median(totals)
    side.real_time_factor = side.end_to_end_s / audio_s if audio_s else float("nan")


def format_table(res: BenchResult) -> str:
    rows = [
        ("lower_model (s)", None, res.lowered.lower_model_s, None),
        ("encoder (ms)", res.hf.encoder_ms, res.lowered.encoder_ms, res.ratios["encoder_ms"]),
        ("decode step median (ms)", res.hf.step_ms_median, res.lowered.step_ms_median, res.ratios["step_ms_median"]),
        ("decode step p90 (ms)", res.hf.step_ms_p90, res.lowered.step_ms_p90, res.ratios["step_ms_p90"]),
        ("postnet (ms)", res.hf.postnet_ms, res.lowered.postnet_ms, res.ratios["postnet_ms"]),
        ("vocoder (ms)", res.hf.vocoder_ms, res.lowered.vocoder_ms, res.ratios["vocoder_ms"]),
        ("end to end (s)", res.hf.end_to_end_s, res.lowered.end_to_end_s, res.ratios["end_to_end_s"]),
        ("real-time factor", res.hf.real_time_factor, res.lowered.real_time_factor, res.ratios["real_time_factor"]),
        ("peak RSS (MB)", res.hf.peak_rss_mb, res.lowered.peak_rss_mb, res.ratios["peak_rss_mb"]),
        ("TTNN ops per decode step", None, res.lowered.ops_per_step, None),
        ("host<->device transfers per step", None, res.lowered.transfers_per_step, None),
        ("decode step floor (ms)", None, res.floor_ms, None),
        ("decode step / floor", None, res.ratios["step_vs_floor"], None),
    ]

    if res.emulated is not None:  # what numerics="device" costs, against the lowered column (same precision)
        e, lo = res.emulated, res.lowered
        rows += [(f"device numerics: {name}", None, getattr(e, k), getattr(e, k) / getattr(lo, k))
                 for name, k in (("encoder (ms)", "encoder_ms"), ("decode step (ms)", "step_ms_median"),
                                 ("postnet (ms)", "postnet_ms"), ("vocoder (ms)", "vocoder_ms"),
                                 ("end to end (s)", "end_to_end_s"))]

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3g}" if isinstance(v, float) and abs(v) < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))

    c = res.config
    head = (f"fx2ttnn bench: {c['steps']} decode steps, {c['text_len']} tokens, {c['dtype']}, precision "
            f"{c['precision']}, {c['repeat']} repeat(s); {c['backend']}; torch {c['torch']} with "
            f"{c['torch_threads']} threads")
    if res.emulated is not None:
        head += "\n(device numerics rows: one generation on the reference with numerics='device'; ratio = that / fx2ttnn)"
    lines = [head, f"{'':34s} {'HF eager':>10s} {'fx2ttnn':>10s} {'fx2ttnn/HF':>11s}"]
    for name, a, b, ratio in rows:
        lines.append(f"{name:34s} {cell(a):>10s} {cell(b):>10s} {cell(ratio):>11s}")
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------------

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="time HF eager and the lowered model side by side",
        description="Time HF eager generate_speech and the lowered model in one process on the same inputs, the "
                    "same number of decode steps (prenet dropout off, stop threshold out of reach), alternating "
                    "the two sides; print both, their ratios and the decode step's floor (the bare products over "
                    "the weights one step reads). Without --model: the default config with random weights.")
    p.add_argument("--text-len", type=positive_int, default=24, metavar="N", help="input tokens (default: %(default)s)")
    p.add_argument("--steps", type=positive_int, default=120, metavar="N", help="decode steps (default: %(default)s)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="lowered weights and activations (default: %(default)s)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="R",
                   help="timed generations per side (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the results as JSON (missing parent directories are created)")
    p.add_argument("--model", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5ForTextToSpeech checkpoint directory or hub id (default: random weights)")
    p.add_argument("--vocoder", metavar="PATH_OR_ID", default=None,
                   help="SpeechT5HifiGan checkpoint directory or hub id (default: random weights)")
    p.add_argument("--backend", choices=("auto", "reference", "ttnn"), default="reference",
                   help="where the lowered side runs (default: %(default)s)")
    p.add_argument("--device", default=None, metavar="TORCH_DEVICE",
                   help="torch device of the reference backend: cpu (default), cuda, cuda:N")
    p.add_argument("--stop-check-interval", type=positive_int, default=None, metavar="K",
                   help="decode steps between stop reads (default: lower_model's)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help="precision policy of the lowering (default: %(default)s)")
    p.add_argument("--numerics", choices=("exact", "device"), default=None,
                   help="reference numerics of the timed runs (default: exact)")
    p.add_argument("--emulation-cost", action="store_true",
                   help="also time one generation with numerics='device' (rows 'device numerics: ...', ratio to the "
                        "timed runs): what emulating the device's math costs")
    p.add_argument("--seed", type=seed_int, default=0, metavar="N",
                   help="seed for random weights and inputs (default: %(default)s)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    check_lowering_flags(args)
    if args.dtype == "float32" and (args.emulation_cost or args.numerics == "device"):
        raise CliError("--dtype float32 is an exact, reference-only mode: device numerics need --dtype bfloat16")
    if args.json:
        check_writable(args.json, "--json")
    model = load_pretrained(SpeechT5ForTextToSpeech, args.model, "model") if args.model else None
    vocoder = load_pretrained(SpeechT5HifiGan, args.vocoder, "vocoder") if args.vocoder else None
    if model is None:
        notice("no --model: default SpeechT5Config with random weights (timing only)")
    res = run_bench(model, vocoder, text_len=args.text_len, steps=args.steps, dtype=args.dtype, repeat=args.repeat,
                    backend=args.backend, device=args.device, seed=args.seed,
                    stop_check_interval=args.stop_check_interval, precision=args.precision,
                    numerics=args.numerics, emulation_cost=args.emulation_cost)
    print(format_table(res))
    if args.json:
        write_text(args.json, res.to_json() + "\n")
    return 0
