"""fx2ttnn: lower Hugging Face SpeechT5 text-to-speech (+ HiFi-GAN) onto Tenstorrent TTNN programs.

    from fx2ttnn import lower_model
    tts = lower_model(hf_model, vocoder=hf_vocoder)
    wave = tts.generate_speech(input_ids, speaker_embeddings)
"""
from .errors import (  # noqa: F401
    BackendUnavailableError, CaptureError, Fx2TTNNError, GenerationError, LoweringError, TTNNContractError,
    UnsupportedModelError,
)


def __getattr__(name: str):
    """``lower_model`` / ``LoweredSpeechT5`` are imported on first use, so ``fx2ttnn.runtime.reference`` (the ttnn
    API in torch, used by exported scripts) does not pull in transformers and the compiler."""
    if name in ("lower_model", "LoweredSpeechT5"):
        from . import model
        return getattr(model, name)
    raise AttributeError(f"module 'fx2ttnn' has no attribute {name!r}")

__all__ = ["lower_model", "LoweredSpeechT5", "Fx2TTNNError", "TTNNContractError", "UnsupportedModelError",
           "CaptureError", "LoweringError", "GenerationError", "BackendUnavailableError"]
__version__ = "0.1.0"
