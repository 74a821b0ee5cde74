"""Accuracy thresholds: PCC of fx2ttnn vs HF eager (float32), per stage.  The one place they are set — the test
suite (tests/pcc_thresholds.py) and ``fx2ttnn compare`` both read them.

Stages: encoder hidden states, the speech encoder's states and cross-attention K/V, one decoder step, the postnet,
the generated spectrogram, the waveform.
``float32`` programs (an exact, reference-only mode) must match HF to rounding; ``bfloat16`` programs store weights
and activations in bfloat16 as the device does.  ``DEVICE_PCC``: targets with device numerics, per precision policy.
"""
import torch

PCC = {
    "encoder": {"float32": 0.9999, "bfloat16": 0.99},
    "speech_encoder": {"float32": 0.9999, "bfloat16": 0.99},
    "decoder_step": {"float32": 0.9999, "bfloat16": 0.99},
    "spectrogram": {"float32": 0.9999, "bfloat16": 0.99},
    "postnet": {"float32": 0.9999, "bfloat16": 0.99},
    "waveform": {"float32": 0.9999, "bfloat16": 0.99},
}

# Targets of bfloat16 programs with the reference emulating the device's math (numerics="device"), per precision
# policy (fx2ttnn/precision.py), end to end over >= 120 decode steps: what accuracy claims are held to.
DEVICE_PCC = {
    "accuracy": {"spectrogram": 0.999, "waveform": 0.99},
    "performance": {"spectrogram": 0.99, "waveform": 0.98},
}

# Single ops of the reference ttnn against their torch meaning; small values (a step's stop probabilities).
OP_ATOL = {"float32": 1e-5, "bfloat16": 2e-2}

# Values with fewer elements are judged by max abs error (OP_ATOL) instead of PCC: a correlation over a
# handful of numbers says little (a one-sample waveform has none).
SMALL_NUMEL = 32


def min_pcc(dtype: str) -> float:
    """The strictest stage threshold for ``dtype`` (what a single pass/fail over all stages uses)."""
    return max(stage[dtype] for stage in PCC.values())


def pcc(golden: torch.Tensor, actual: torch.Tensor) -> float:
    """Pearson correlation of two tensors of the same number of elements: 1.0 for identical tensors (constant
    ones included), NaN if either holds a NaN, 0.0 if exactly one is constant."""
    g = golden.detach().flatten().to(torch.float64)
    a = actual.detach().flatten().to(torch.float64)
    if torch.isnan(g).any() or torch.isnan(a).any():
        return float("nan")
    if torch.equal(g, a):
        return 1.0
    gc, ac = g - g.mean(), a - a.mean()
    denom = gc.norm() * ac.norm()
    if denom == 0:
        return 0.0
    return float((gc @ ac) / denom)
