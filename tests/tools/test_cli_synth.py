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
from fx2ttnn.tools.cli import main
from fx2ttnn.tools.tokenizer import CHAR_IDS, EOS, UNK, CharTokenizer, normalize

from tests.conftest import tiny_config, tiny_vocoder_config

TEXT = "Hello world"
# threshold above the largest possible sum of stop probabilities (reduction_factor x 1): the run always goes
# to maxlen = int(tokens * maxlenratio / r) steps, well under --max-steps.
BOUNDED = ["--max-steps", "64", "--threshold", "1000", "--maxlenratio", "2"]
SUMMARY = re.compile(r"^wrote (?P<path>.+): (?P<audio>\d+\.\d\d) s audio, (?P<steps>\d+) decode steps?, "
                     r"(?P<secs>\d+\.\d) s \(RTF (?P<rtf>\d+\.\d\d)\); TTNN ops per decode step (?P<ops>\d+), "
                     r"host fallbacks (?P<fallbacks>\d+)(?: \((?P<where>[a-z_+]+)\))?, backend (?P<backend>.+)$")


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


@pytest.fixture(scope="module")
def synth(checkpoint, tmp_path_factory):
    """One in-process run: saved model + vocoder + speaker file, reference backend, float32."""
    import fx2ttnn.model
    out_dir = tmp_path_factory.mktemp("out")
    wav = out_dir / "out.wav"
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
        "output dir missing": ["synth", TEXT, "-o", str(tmp / "no_such_dir" / "out.wav"), *base],
        "output parent is a file": ["synth", TEXT, "-o", str(tmp / "not_a_dir" / "out.wav"), *base],
        "output is a directory": ["synth", TEXT, "-o", str(tmp), *base],
        "Fx2TTNNError from lower_model": ["synth", TEXT, "-o", out, *base, "--max-steps", "48"],
        "invalid dtype": ["synth", TEXT, "-o", out, *base, "--dtype", "float16"],
        "invalid backend": ["synth", TEXT, "-o", out, *base, "--backend", "gpu"],
    }


ERROR_IDS = ["missing model dir", "model dir without config", "vocoder given as model", "missing vocoder dir",
             "speaker wrong shape", "speaker wrong dim", "speaker unreadable", "speaker missing", "empty text",
             "whitespace text", "text too long", "output dir missing", "output parent is a file",
             "output is a directory", "Fx2TTNNError from lower_model", "invalid dtype", "invalid backend"]


@pytest.mark.parametrize("case", ERROR_IDS)
def test_errors(case, checkpoint, tmp_path):
    argv = _error_cases(checkpoint, tmp_path)[case]
    rc, out, err = run_main(argv)
    assert rc == 2, (case, out, err)
    assert out == ""
    assert "Traceback" not in err
    if case.startswith("invalid "):  # argparse's own usage error
        assert "invalid choice" in err
        return
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    assert err.rstrip().splitlines()[-1] == errors[0]
    assert not (tmp_path / "out.wav").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_hub_ids_load_from_local_cache(checkpoint, tmp_path, monkeypatch):
    """Hub ids resolve through the local HF cache only; here both load, then lower_model rejects max_steps."""
    import huggingface_hub.constants
    cache = tmp_path / "hub"
    for name, src in [("tiny-speecht5", "model"), ("tiny-hifigan", "vocoder")]:
        repo = cache / f"models--fx2ttnn-test--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("0" * 40)
        shutil.copytree(checkpoint / src, repo / "snapshots" / ("0" * 40))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    rc, out, err = run_main(["synth", TEXT, "-o", str(tmp_path / "out.wav"), "--model", "fx2ttnn-test/tiny-speecht5",
                             "--vocoder", "fx2ttnn-test/tiny-hifigan", "--max-steps", "48"])
    assert rc == 2 and out == ""
    assert err.rstrip().splitlines()[-1].startswith("error: max_steps must be a multiple of 32"), err
    rc, out, err = run_main(["synth", TEXT, "-o", str(tmp_path / "out.wav"), "--model", "fx2ttnn-test/absent"])
    assert rc == 2 and "neither a local directory nor in the local Hugging Face cache" in err


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
