"""``fx2ttnn synth``: tiny checkpoints saved to disk → WAV, summary line, one-line errors; the char tokenizer.

Two lowerings in all (one in-process ``main``, one through the installed console script); every error case
fails before lowering, so it costs a checkpoint load at most.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from fx2ttnn.tools import audio
from fx2ttnn.tools import synth as synth_mod
from fx2ttnn.tools.cli import main
from fx2ttnn.tools.tokenizer import CHAR_IDS, EOS, UNK, CharTokenizer, normalize

from tests.conftest import tiny_config, tiny_vocoder_config

TEXT = "Hello world"
# threshold above the largest possible sum of stop probabilities (reduction_factor x 1): the run always goes
# to maxlen = int(tokens * maxlenratio / r) steps, well under --max-steps.
BOUNDED = ["--max-steps", "64", "--threshold", "1000", "--maxlenratio", "2"]
SUMMARY = re.compile(r"^wrote (?P<path>.+): (?P<audio>\d+\.\d\d) s audio \((?P<level>[^)]+)\), (?P<steps>\d+) "
                     r"decode steps?, (?P<secs>\d+\.\d) s \(RTF (?P<rtf>\d+\.\d\d), first call(?:, incl\. (?P<lowering>\d+\.\d) "
                     r"s lowering new program variants: RTF (?P<warm>\d+\.\d\d) without)?\); TTNN ops per decode step "
                     r"(?P<ops>\d+), host fallbacks (?P<fallbacks>\d+)(?: \((?P<where>[a-z_+]+)\))?, backend (?P<backend>.+)$")


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def expected_steps(text: str, maxlenratio: float = 2.0) -> int:
    cfg = tiny_config()
    n = len(CharTokenizer(cfg.vocab_size).encode(text))
    return int(n * maxlenratio / cfg.reduction_factor)


def expected_samples(steps: int) -> int:
    return steps * tiny_config().reduction_factor * math.prod(tiny_vocoder_config().upsample_rates)


def read_wav(path: Path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(params.nframes), dtype="<i2")
    return params, data


@pytest.fixture(scope="module")
def checkpoint(checkpoint):
    """The shared tiny checkpoint (``conftest.py``) plus a speaker embedding file."""
    root = checkpoint
    np.save(root / "speaker.npy", np.random.default_rng(0).standard_normal((1, tiny_config().speaker_embedding_dim))
            .astype(np.float32))
    return root


@pytest.fixture
def synth_checkpoint_args(checkpoint):
    return ["--model", str(checkpoint / "model"), "--vocoder", str(checkpoint / "vocoder"), "--backend", "reference",
            "--dtype", "float32", "--max-steps", "64"]


@pytest.fixture(scope="module")
def synth(checkpoint, tmp_path_factory):
    """One in-process run: saved model + vocoder + speaker file, reference backend, float32."""
    import fx2ttnn.model
    out_dir = tmp_path_factory.mktemp("out")
    wav = out_dir / "new" / "dir" / "out.wav"  # missing parents are created
    lowered = []
    real_lower = fx2ttnn.model.lower_model

    def recording_lower(*args, **kwargs):  # keep the LoweredSpeechT5 to check the summary against its report
        lowered.append(real_lower(*args, **kwargs))
        return lowered[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fx2ttnn.model, "lower_model", recording_lower)
        rc, out, err = run_main(["synth", TEXT, "-o", str(wav), "--model", str(checkpoint / "model"),
                                 "--vocoder", str(checkpoint / "vocoder"), "--speaker",
                                 str(checkpoint / "speaker.npy"), "--backend", "reference", "--dtype", "float32",
                                 "--seed", "3", *BOUNDED])
    return rc, out, err, wav, lowered


def test_synth_writes_wav(synth):
    rc, out, err, wav, _ = synth
    assert rc == 0, err
    params, data = read_wav(wav)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 16000)
    assert params.nframes == expected_samples(expected_steps(TEXT))
    assert np.isfinite(data.astype(np.float64)).all() and np.abs(data.astype(np.int32)).max() <= 32767
    assert np.any(data != 0)
    assert sorted(p.name for p in wav.parent.iterdir()) == ["out.wav"]  # no temp file left behind


def test_synth_summary_line(synth):
    rc, out, err, wav, lowered = synth
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 1, out
    m = SUMMARY.match(lines[0])
    assert m, lines[0]
    steps = expected_steps(TEXT)
    assert m["path"] == str(wav)
    assert int(m["steps"]) == steps
    assert float(m["audio"]) == pytest.approx(expected_samples(steps) / 16000, abs=0.006)
    # every number comes from the run's GenerationStats and report
    (tts,) = lowered
    stats, report = tts.last_generation, tts.report()
    assert stats.steps == steps and m["secs"] == f"{stats.seconds:.1f}"
    assert m["rtf"] == f"{stats.seconds / stats.audio_seconds:.2f}"
    # the frame bucket this length needs was lowered by lower_model: no on-demand lowering to name
    assert stats.lowering_seconds == 0 and m["lowering"] is None
    assert re.fullmatch(r"peak -\d+\.\d dBFS", m["level"]), m["level"]  # a checkpoint: not normalized
    used = [p for p in report.programs if p.key[1] == (stats.frame_bucket if p.name in ("postnet", "vocoder")
                                                       else stats.text_bucket)]
    assert sorted(p.name for p in used) == ["decoder_step", "decoder_step.prologue", "encoder", "postnet", "vocoder"]
    assert int(m["ops"]) == next(p.ops_per_call for p in used if p.name == "decoder_step") > 0
    assert int(m["fallbacks"]) == sum(p.fallback_count for p in used)
    assert (m["where"] or "") == "+".join(p.name for p in used if p.fallback_count)
    assert m["backend"] == "reference ttnn on cpu" and report.backend.startswith(m["backend"])
    assert "no tokenizer files" in err  # the tiny checkpoint has no spm_char.model: built-in tokenizer notice
    assert "error:" not in err


def test_console_script(checkpoint, tmp_path):
    """The installed ``fx2ttnn`` entry point, defaults otherwise (auto backend, bfloat16, random speaker)."""
    exe = shutil.which("fx2ttnn", path=str(Path(sys.executable).parent)) or shutil.which("fx2ttnn")
    assert exe, "the fx2ttnn console script is not installed (pip install -e .)"
    wav = tmp_path / "cli.wav"
    text = "Testing, one two."
    proc = subprocess.run([exe, "synth", text, "-o", str(wav), "--model", str(checkpoint / "model"),
                           "--vocoder", str(checkpoint / "vocoder"), *BOUNDED],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and SUMMARY.match(lines[0]), proc.stdout
    assert "random unit speaker" in proc.stderr
    params, _ = read_wav(wav)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 16000)
    assert params.nframes == expected_samples(expected_steps(text))


def test_random_weight_demo_is_heard_and_says_so(tmp_path, monkeypatch):
    """The README's first command without --model (configs shrunk to the tiny ones here): it decodes a length that
    fits the text, normalizes the near-silent random vocoder output, and the notes and summary say both."""
    import transformers

    tiny, tiny_vocoder = tiny_config(), tiny_vocoder_config(upsample_rates=[8, 8], upsample_kernel_sizes=[16, 16])
    monkeypatch.setattr(transformers, "SpeechT5Config", lambda: tiny)
    monkeypatch.setattr(transformers, "SpeechT5HifiGanConfig", lambda: tiny_vocoder)
    wav = tmp_path / "hello.wav"
    text = "Hello from Tenstorrent."
    rc, out, err = run_main(["synth", text, "-o", str(wav), "--backend", "reference", "--max-steps", "256"])
    assert rc == 0, err
    tokens = len(CharTokenizer(tiny.vocab_size).encode(text))
    seconds = round(synth_mod.DEMO_SECONDS_PER_TOKEN * tokens, 2)
    assert f"decoding at least {seconds:g} s of audio" in err
    m = SUMMARY.match(out.strip())
    assert m, out
    assert float(m["audio"]) >= seconds - 0.005
    assert re.fullmatch(r"peak -1\.0 dBFS, normalized from -\d+\.\d dBFS", m["level"]), m["level"]
    params, data = read_wav(wav)
    assert params.nframes / params.framerate >= seconds - 0.005
    assert np.abs(data.astype(np.int32)).max() == round(32767 * 10 ** (-1 / 20))


def test_min_seconds_and_unknown_characters(synth_checkpoint_args, tmp_path):
    wav = tmp_path / "a.wav"
    rc, out, err = run_main(["synth", "Hi \U0001F600 = \u65e5!", "-o", str(wav), *synth_checkpoint_args,
                             "--min-seconds", "0.05", "--threshold", "0", "--no-normalize"])
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: 3 distinct character(s) of TEXT are outside the tokenizer's vocabulary and are "
                        "read as <unk>: '\U0001F600' '=' '\u65e5'"], err
    steps = math.ceil(0.05 * 16000 / math.prod(tiny_vocoder_config().upsample_rates) / tiny_config().reduction_factor)
    m = SUMMARY.match(out.strip())
    assert int(m["steps"]) == steps  # threshold 0 would stop at step 1; --min-seconds holds it to 0.05 s
    params, _ = read_wav(wav)
    assert params.nframes == expected_samples(steps)


def test_minlenratio_for_gives_the_first_step_with_that_much_audio():
    cfg, voc = tiny_config(), tiny_vocoder_config()
    hop = math.prod(voc.upsample_rates)
    for tokens in (1, 7, 24, 113):
        for seconds in (0.0, 0.01, 0.5, 1.0, 3.3):
            ratio = synth_mod.minlenratio_for(seconds, tokens, cfg, voc)
            minlen = int(tokens * ratio / cfg.reduction_factor)  # HF's formula
            assert minlen * cfg.reduction_factor * hop >= seconds * voc.sampling_rate
            assert (minlen - 1) * cfg.reduction_factor * hop < seconds * voc.sampling_rate or minlen == 0


# -- errors: one `error:` line on stderr, exit code 2, nothing written ---------------------------------
def _error_cases(ckpt: Path, tmp: Path) -> dict[str, list[str]]:
    model, voc = str(ckpt / "model"), str(ckpt / "vocoder")
    (tmp / "not_a_dir").write_text("x")
    np.save(tmp / "wrong_shape.npy", np.zeros((2, tiny_config().speaker_embedding_dim), np.float32))
    np.save(tmp / "wrong_dim.npy", np.zeros(tiny_config().speaker_embedding_dim + 1, np.float32))
    (tmp / "garbage.npy").write_bytes(b"this is not a numpy file")
    (tmp / "empty_model").mkdir()
    out = str(tmp / "out.wav")
    base = ["--model", model, "--vocoder", voc]
    return {
        "missing model dir": ["synth", TEXT, "-o", out, "--model", str(tmp / "nope")],
        "model dir without config": ["synth", TEXT, "-o", out, "--model", str(tmp / "empty_model")],
        "vocoder given as model": ["synth", TEXT, "-o", out, "--model", voc],
        "missing vocoder dir": ["synth", TEXT, "-o", out, "--model", model, "--vocoder", str(tmp / "nope")],
        "speaker wrong shape": ["synth", TEXT, "-o", out, *base, "--speaker", str(tmp / "wrong_shape.npy")],
        "speaker wrong dim": ["synth", TEXT, "-o", out, *base, "--speaker", str(tmp / "wrong_dim.npy")],
        "speaker unreadable": ["synth", TEXT, "-o", out, *base, "--speaker", str(tmp / "garbage.npy")],
        "speaker missing": ["synth", TEXT, "-o", out, *base, "--speaker", str(tmp / "missing.npy")],
        "empty text": ["synth", "", "-o", out, *base],
        "whitespace text": ["synth", " \n\t ", "-o", out, *base],
        "text too long": ["synth", "a" * (tiny_config().max_text_positions + 1), "-o", out, *base],
        "output parent is a file": ["synth", TEXT, "-o", str(tmp / "not_a_dir" / "out.wav"), *base],
        "output is a directory": ["synth", TEXT, "-o", str(tmp), *base],
        "Fx2TTNNError from lower_model": ["synth", TEXT, "-o", out, *base, "--backend", "ttnn"],
        "max steps beyond the model": ["synth", TEXT, "-o", out, *base, "--max-steps", "4032"],
        "device unknown": ["synth", TEXT, "-o", out, *base, "--device", "foo"],
        "device meta": ["synth", TEXT, "-o", out, *base, "--device", "meta"],
        "device with ttnn": ["synth", TEXT, "-o", out, *base, "--backend", "ttnn", "--device", "cpu"],
        "minlenratio and min-seconds": ["synth", TEXT, "-o", out, *base, "--minlenratio", "1", "--min-seconds", "1"],
        "text the tokenizer does not know": ["synth", "\U0001F600 \u65e5\u672c", "-o", out, *base],
        "speaker not npy": ["synth", TEXT, "-o", out, *base, "--speaker", str(tmp / "speaker.txt")],
        "malformed config.json": ["synth", TEXT, "-o", out, "--model", str(tmp / "bad_config")],
        "config.json without model_type": ["synth", TEXT, "-o", out, "--model", str(tmp / "untyped_config")],
    }


# argparse's own usage errors: one line naming the flag, the value and what is allowed
USAGE_CASES = {
    "invalid dtype": (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16' (choose from"),
    "invalid backend": (["--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
    "maxlenratio nan": (["--maxlenratio", "nan"], "argument --maxlenratio: must be a finite number > 0, got nan"),
    "maxlenratio inf": (["--maxlenratio", "inf"], "argument --maxlenratio: must be a finite number > 0, got inf"),
    "maxlenratio zero": (["--maxlenratio", "0"], "argument --maxlenratio: must be a finite number > 0, got 0.0"),
    "minlenratio inf": (["--minlenratio", "inf"], "argument --minlenratio: must be a finite number >= 0, got inf"),
    "threshold nan": (["--threshold", "nan"], "argument --threshold: must be a finite number >= 0, got nan"),
    "threshold negative": (["--threshold", "-1"], "argument --threshold: must be a finite number >= 0, got -1.0"),
    "seed float": (["--seed", "1.5"], "argument --seed: must be an integer, got '1.5'"),
    "max steps not a multiple": (["--max-steps", "48"], "argument --max-steps: must be an integer >= 32, a "
                                                        "multiple of 32, got 48"),
    "max steps float": (["--max-steps", "64.5"], "argument --max-steps: must be an integer, got '64.5'"),
    "min seconds negative": (["--min-seconds", "-2"], "argument --min-seconds: must be a finite number >= 0"),
}
MESSAGES = {
    "Fx2TTNNError from lower_model": "error: backend='ttnn' requested but",
    "max steps beyond the model": "error: --max-steps must be an integer >= 32 and <= 4000, a multiple of 32, got "
                                  "4032",
    "device unknown": "error: --device must be a torch device (cpu, cuda), got 'foo'",
    "device meta": "error: --device must be a torch device (cpu, cuda), got 'meta' (a 'meta' device cannot run",
    "device with ttnn": "error: --device selects the reference backend's torch device",
    "minlenratio and min-seconds": "error: give --minlenratio or --min-seconds, not both",
    "text the tokenizer does not know": "error: TEXT has no character the tokenizer knows ('\U0001F600' '\u65e5' "
                                        "'\u672c')",
    "speaker not npy": "error: speaker file '{tmp}/speaker.txt' is not a NumPy .npy file (no NumPy header)",
    "speaker unreadable": "error: speaker file '{tmp}/garbage.npy' is not a NumPy .npy file",
    "malformed config.json": "error: model config '{tmp}/bad_config/config.json' is not valid JSON",
    "config.json without model_type": "error: model config '{tmp}/untyped_config/config.json' has no "
                                      "\"model_type\"",
    "speaker wrong shape": "error: speaker embedding in '{tmp}/wrong_shape.npy' has shape [2, 64]; expected [64] "
                           "or [1, 64]",
}


@pytest.mark.parametrize("case", [
    "missing model dir", "model dir without config", "vocoder given as model", "missing vocoder dir",
    "speaker wrong shape", "speaker wrong dim", "speaker unreadable", "speaker missing", "empty text",
    "whitespace text", "text too long", "output parent is a file", "output is a directory",
    "Fx2TTNNError from lower_model", "max steps beyond the model", "device unknown", "device meta",
    "device with ttnn", "minlenratio and min-seconds", "text the tokenizer does not know", "speaker not npy",
    "malformed config.json", "config.json without model_type"])
def test_errors(case, checkpoint, tmp_path):
    (tmp_path / "speaker.txt").write_text("0.1 0.2 0.3\n")
    for name, text in (("bad_config", "{not json"), ("untyped_config", '{"hidden_size": 64}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(text)
    argv = _error_cases(checkpoint, tmp_path)[case]
    rc, out, err = run_main(argv)
    assert rc == 2, (case, out, err)
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert err.rstrip().splitlines()[-1] == errors[0]
    if case in MESSAGES:
        assert errors[0].startswith(MESSAGES[case].format(tmp=tmp_path)), errors[0]
    assert not (tmp_path / "out.wav").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("case", list(USAGE_CASES))
def test_usage_errors(case, checkpoint, tmp_path):
    import fx2ttnn.model
    flags, message = USAGE_CASES[case]
    out_wav = tmp_path / "out.wav"
    with pytest.MonkeyPatch.context() as mp:  # usage errors come before anything is loaded or lowered
        mp.setattr(fx2ttnn.model, "lower_model", lambda *a, **k: pytest.fail("lowered before the usage error"))
        rc, out, err = run_main(["synth", TEXT, "-o", str(out_wav), "--model", str(checkpoint / "model"), *flags])
    assert rc == 2 and out == "", err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: fx2ttnn synth: {message}"), lines[0]
    assert lines[0].endswith("(see 'fx2ttnn synth --help')")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def hub_cache(checkpoint, tmp_path, monkeypatch):
    """A Hugging Face cache holding the tiny model and vocoder as hub ids ``fx2ttnn-test/tiny-*``; offline mode on,
    as on a machine without network (no request is tried)."""
    import huggingface_hub.constants
    cache = tmp_path / "hub"
    for name, src in [("tiny-speecht5", "model"), ("tiny-hifigan", "vocoder")]:
        repo = cache / f"models--fx2ttnn-test--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("0" * 40)
        shutil.copytree(checkpoint / src, repo / "snapshots" / ("0" * 40))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_ids_load_from_the_cache(hub_cache, tmp_path):
    """Hub ids resolve through the HF cache (here offline); both load, then --max-steps is checked against the
    model's own limit."""
    rc, out, err = run_main(["synth", TEXT, "-o", str(tmp_path / "out.wav"), "--model", "fx2ttnn-test/tiny-speecht5",
                             "--vocoder", "fx2ttnn-test/tiny-hifigan", "--max-steps", "4032"])
    assert rc == 2 and out == ""
    assert err.rstrip().splitlines()[-1].startswith("error: --max-steps must be an integer >= 32 and <= 4000"), err


def test_hub_id_not_cached_while_offline_is_one_clear_line(hub_cache, tmp_path):
    rc, out, err = run_main(["synth", TEXT, "-o", str(tmp_path / "out.wav"), "--model", "fx2ttnn-test/absent"])
    assert rc == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: model 'fx2ttnn-test/absent' is not in the local Hugging Face cache ({hub_cache}) and "
                     "HF_HUB_OFFLINE=1 is set; connect to the network once to download it, or give a "
                     "save_pretrained directory"], err


def test_hub_errors_say_what_to_do():
    """How a failed hub load reads, by what huggingface_hub raised underneath transformers' OSError."""
    import huggingface_hub.errors as hub_errors

    from fx2ttnn.tools.common import _hub_error

    def wrapped(inner: BaseException) -> OSError:
        try:
            try:
                raise inner
            except BaseException as e:
                raise OSError("transformers could not load it") from e
        except OSError as outer:
            return outer

    class Response:  # what huggingface_hub's HTTP errors carry
        status_code, headers, url, request = 404, {}, "https://huggingface.co", None

    cases = {
        "RepositoryNotFoundError": "is not a model on the Hugging Face Hub",
        "GatedRepoError": "is a gated model",
        "LocalEntryNotFoundError": "is not in the local Hugging Face cache",
    }
    for name, text in cases.items():
        cls = getattr(hub_errors, name)
        try:
            inner = cls("x", response=Response())
        except TypeError:
            inner = cls("x")
        assert text in str(_hub_error(wrapped(inner), "model", "org/name"))
    assert "cannot load model 'org/name' from the Hugging Face Hub: boom" in str(
        _hub_error(RuntimeError("boom"), "model", "org/name"))


def test_help_returns_zero(capsys):
    assert main(["synth", "--help"]) == 0
    assert "--speaker" in capsys.readouterr().out
    assert main([]) == 2


# -- WAV writing -----------------------------------------------------------------------------------------
def test_write_wav_is_atomic(tmp_path, monkeypatch):
    dest = tmp_path / "a.wav"

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio.os, "replace", boom)
    with pytest.raises(OSError):
        audio.write_wav(dest, np.zeros(100), 16000)
    assert list(tmp_path.iterdir()) == []


def test_pcm16_clips_and_zeroes_non_finite():
    pcm = audio.to_pcm16(np.array([0.0, 0.5, 2.0, -3.0, np.nan, np.inf]))
    assert pcm.dtype == np.dtype("<i2")
    assert pcm.tolist() == [0, 16384, 32767, -32767, 0, 0]


# -- built-in tokenizer ------------------------------------------------------------------------------------
def test_tokenizer_deterministic_and_eos():
    tok = CharTokenizer()
    a, b = tok.encode("Hello, World!"), CharTokenizer().encode("Hello, World!")
    assert a == b and a[-1] == EOS and EOS not in a[:-1]
    assert tok("Hello, World!")["input_ids"].tolist() == [a]
    assert tok.encode("") == [EOS]


def test_tokenizer_matches_speecht5_vocab():
    # ids of microsoft/speecht5_tts's spm_char.model (transformers' SpeechT5 tokenizer tests), lower case
    assert CharTokenizer().encode("this is a test") == [4, 6, 11, 10, 12, 4, 10, 12, 4, 7, 4, 6, 5, 12, 6, EOS]
    assert CharTokenizer().encode("a = b") == [4, 7, 4, UNK, 4, 25, EOS]
    assert CharTokenizer().encode("THIS  is\tA\nTEST") == CharTokenizer().encode("this is a test")
    assert normalize("Café: 42!") == "cafe, forty two."


@pytest.mark.parametrize("vocab_size", [4, 20, 81])
def test_tokenizer_ids_below_vocab(vocab_size):
    text = "The quick brown fox jumps over the lazy dog (1234)? Ünïcödé & 日本語 - ok; 'quoted'."
    ids = CharTokenizer(vocab_size).encode(text)
    assert all(0 <= i < vocab_size for i in ids) and ids[-1] == EOS
    assert max(CHAR_IDS.values()) < 81


def test_tokenizer_rejects_tiny_vocab():
    with pytest.raises(ValueError):
        CharTokenizer(3)
