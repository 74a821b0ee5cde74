"""fx2ttnn: lower Hugging Face SpeechT5 text-to-speech (+ HiFi-GAN) onto Tenstorrent TTNN programs.

    from fx2ttnn import lower_model
    tts = lower_model(hf_model, vocoder=hf_vocoder)
    wave = tts.generate_speech(input_ids, speaker_embeddings)
"""
from .errors import (  # noqa: F401
    BackendUnavailableError, CaptureError, Fx2TTNNError, GenerationError, LoweringError, TTNNContractError,
    UnsupportedModelError,
)
from .model import LoweredSpeechT5, lower_model  # noqa: F401

__all__ = ["lower_model", "LoweredSpeechT5", "Fx2TTNNError", "TTNNContractError", "UnsupportedModelError",
           "CaptureError", "LoweringError", "GenerationError", "BackendUnavailableError"]
__version__ = "0.1.0"
