"""Typed errors. Every error fx2ttnn raises on bad input says what was wrong and what is supported."""
from __future__ import annotations


class Fx2TTNNError(Exception):
    """Base class of all fx2ttnn errors."""


class TTNNContractError(Fx2TTNNError, ValueError):
    """A call violates the ttnn 0.81.1 op contract (layout, dtype, shape, argument) that the device enforces."""


class UnsupportedModelError(Fx2TTNNError, TypeError):
    """The model (or one of its settings) is not something fx2ttnn knows how to lower."""


class CaptureError(Fx2TTNNError):
    """torch.export could not capture a program of the model."""


class LoweringError(Fx2TTNNError):
    """A pass could not produce a valid lowered program (the pass name and node are in the message)."""


class GenerationError(Fx2TTNNError, ValueError):
    """Bad arguments to ``generate_speech`` (shapes, dtypes, lengths beyond what was lowered)."""


class BackendUnavailableError(Fx2TTNNError, RuntimeError):
    """The requested backend (real ttnn) cannot be imported or no device opens."""
