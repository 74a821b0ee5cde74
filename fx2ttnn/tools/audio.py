"""WAV output for the CLI: 16-bit PCM mono with the stdlib ``wave`` module, written atomically.

``check_writable`` is meant to run before any expensive work; ``write_wav`` writes to a temporary file in the
destination directory and renames it over the destination, so a failed or interrupted run never leaves a
half-written file behind.
"""
from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np


class OutputPathError(OSError):
    """The output path cannot be written (its message is one line, meant for the user)."""


def check_writable(path: str | os.PathLike) -> Path:
    """Raise ``OutputPathError`` unless a file can be created at ``path`` (tested by creating a temp file)."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"output path {str(p)!r} is a directory")
    parent = p.parent
    if not parent.exists():
        raise OutputPathError(f"output directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"output directory {str(parent)!r} is not a directory")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"output file {str(p)!r} is not writable")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputPathError(f"cannot write to output directory {str(parent)!r}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(tmp)
    return p


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples → little-endian int16: non-finite values become 0, the rest is clipped to [-1, 1]."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM ``samples`` (floats in [-1, 1]) to ``path`` atomically (temp file + rename)."""
    p = Path(path)
    pcm = to_pcm16(samples)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(int(sample_rate))
                w.writeframes(pcm.tobytes())
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p
