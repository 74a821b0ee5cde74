"""Every accuracy threshold of the test suite, in one place: PCC of fx2ttnn vs HF eager (float32).

Stages: encoder hidden states, one decoder step, the generated spectrogram (after the postnet), the
waveform (HiFi-GAN).  ``float32`` programs must match HF to rounding; ``bfloat16`` programs store weights
and activations in bfloat16 as the device does.
"""
PCC = {
    "encoder": {"float32": 0.9999, "bfloat16": 0.99},
    "decoder_step": {"float32": 0.9999, "bfloat16": 0.99},
    "spectrogram": {"float32": 0.9999, "bfloat16": 0.99},
    "postnet": {"float32": 0.9999, "bfloat16": 0.99},
    "waveform": {"float32": 0.9999, "bfloat16": 0.99},
}

# Single ops of the reference ttnn against their torch meaning.
OP_ATOL = {"float32": 1e-5, "bfloat16": 2e-2}
