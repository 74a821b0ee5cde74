"""WAV output for the CLI: 16-bit PCM mono with the stdlib ``wave`` module, written atomically
(``outputs.write_atomic``: temporary file + rename, missing parent directories created)."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from .outputs import write_atomic


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples → little-endian int16: non-finite values become 0, the rest is clipped to [-1, 1]."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM ``samples`` (floats in [-1, 1]) to ``path`` atomically (``write_atomic``)."""
    pcm = to_pcm16(samples)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            with wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(int(sample_rate))
                w.writeframes(pcm.tobytes())
            f.flush()
            os.fsync(f.fileno())
    return write_atomic(path, write)
