"""The four SpeechT5 programs as capturable modules, and the static shapes they are captured at.

Each wrapper calls Hugging Face's own modules so the captured graph holds HF's computation exactly
(``SpeechT5Attention``, the decoder layers, the postnet's BatchNorm conv layers, HiFi-GAN), adding only
what a static-shape program needs:

* ``encoder``: token ids + a 0/1 padding mask + speaker embeddings → encoder states, the additive
  cross-attention mask, the normalized speaker embedding, and every decoder layer's cross-attention K/V
  (HF's own ``k_proj``/``v_proj``): everything that is computed once per utterance.
  The 4-D additive mask is built here (HF accepts a prepared 4-D mask as-is), with ``MASK_MIN``.
* ``decoder_step``: one decode step for the newest mel frame at ``position``.  HF's prenet runs on the
  newest frame only (its per-frame layers are the same; the positional term is ``alpha * pe[position]``);
  HF's decoder layers run with a ``Cache`` whose self-attention layers write K/V into preallocated
  ``[B, H, max_steps, dh]`` buffers at ``position`` (``index_copy_``, as HF's ``StaticLayer``) and whose
  cross-attention layers return the encoder program's K/V.  The additive self-attention mask hides
  positions after ``position``; it is row ``position`` of a precomputed table (a device-side gather, like the
  positional-encoding row), so the step takes no host data and can be replayed.  ``position`` ([B] int, all
  equal) is incremented in place by the step itself.
  HF's prenet dropout (applied even in eval mode: keep with probability p, scale 1/(1-p), one mask shared
  by the batch) enters as per-layer tables ``[max_steps, units]`` of pre-scaled masks, one row per step.
* ``postnet``: HF's postnet on ``[B, L, mel]`` padded to a frame bucket; every conv's input is multiplied by
  the per-utterance valid-frame mask, so each conv sees zeros past an utterance's end exactly as HF's
  exact-length run does, and so is the output (zero past the end, as HF's padded batch is).
* ``vocoder``: HiFi-GAN on the padded spectrogram; every conv / transposed conv's input is multiplied by the
  valid mask of its resolution, for the same reason; samples past the valid length are cut by the generator.

Masks are applied to conv inputs with forward pre-hooks during capture, so HF's ``forward`` code runs
unmodified and each conv is directly followed by its activation (which the conv lowering fuses).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import UnsupportedModelError

# HF's additive masks use finfo(float32).min, which rounds to -inf in bfloat16; bfloat16's own minimum is finite
# in every program dtype and masks exactly the same way (exp underflows to 0 either way).
MASK_MIN = torch.finfo(torch.bfloat16).min

# ---------------------------------------------------------------------------------------------
# shapes


def text_buckets(max_text_positions: int) -> tuple[int, ...]:
    """Encoder sequence buckets: powers of two from 32, capped by the model's text positions."""
    out, b = [], 32
    while b < max_text_positions:
        out.append(b)
        b *= 2
    out.append(max_text_positions)
    return tuple(out)


def bucket_for(n: int, buckets: Sequence[int], what: str) -> int:
    for b in buckets:
        if n <= b:
            return b
    raise UnsupportedModelError(f"{what} {n} exceeds the largest supported size {buckets[-1]}")


def frame_bucket(frames: int) -> int:
    """Spectrogram buckets: 2^k x {1, 1.25, 1.5, 1.75} (at most 25% padding), multiples of 32, from 64."""
    if frames <= 64:
        return 64
    k = 1 << (frames.bit_length() - 1)
    for f in (1.0, 1.25, 1.5, 1.75, 2.0):
        b = int(k * f)
        if frames <= b and b % 32 == 0:
            return b
    return 2 * k


# ---------------------------------------------------------------------------------------------
# encoder


class EncoderProgram(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.encoder = model.speecht5.encoder                     # SpeechT5EncoderWithTextPrenet
        self.cross_attn = nn.ModuleList(layer.encoder_attn for layer in model.speecht5.decoder.wrapped_decoder.layers)
        self.num_heads = model.config.decoder_attention_heads

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, speaker_embeddings: torch.Tensor):
        bsz, seq = input_ids.shape
        additive = (1.0 - attention_mask[:, None, None, :]) * MASK_MIN  # [B, 1, 1, S]
        hidden = self.encoder(input_values=input_ids, attention_mask=additive.expand(bsz, 1, seq, seq),
                              return_dict=True).last_hidden_state
        # The decoder prenet's speaker normalization (HF SpeechT5SpeechDecoderPrenet.forward) depends only on
        # the utterance, so it is computed here once instead of in every decode step.
        speaker = nn.functional.normalize(speaker_embeddings).unsqueeze(1)
        outs = [hidden, additive, speaker]
        for attn in self.cross_attn:
            k = attn.k_proj(hidden).view(bsz, -1, self.num_heads, attn.head_dim).transpose(1, 2)
            v = attn.v_proj(hidden).view(bsz, -1, self.num_heads, attn.head_dim).transpose(1, 2)
            outs += [k, v]
        return tuple(outs)


def encoder_io(num_layers: int) -> tuple[list[str], list[str]]:
    outs = ["encoder_hidden_states", "cross_attention_mask", "speaker"]
    for i in range(num_layers):
        outs += [f"cross_k_{i}", f"cross_v_{i}"]
    return ["input_ids", "attention_mask", "speaker_embeddings"], outs


# ---------------------------------------------------------------------------------------------
# decoder step


def _cache_classes():
    from transformers.cache_utils import Cache, CacheLayerMixin, EncoderDecoderCache

    class PositionKVLayer(CacheLayerMixin):
        """One layer's K/V: preallocated buffers written at ``position`` (self-attn) or fixed (cross-attn)."""

        is_compileable = True
        is_sliding = False

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, position: torch.Tensor | None = None):
            super().__init__()
            self.keys, self.values, self.position = keys, values, position
            self.is_initialized = True

        def lazy_initialization(self, key_states, value_states) -> None:
            pass

        def update(self, key_states, value_states, *args, **kwargs):
            self.keys.index_copy_(2, self.position, key_states)
            self.values.index_copy_(2, self.position, value_states)
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.keys.shape[-2]

        def get_max_length(self) -> int:
            return self.keys.shape[-2]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.keys.shape[-2], 0

    return Cache, PositionKVLayer, EncoderDecoderCache


class DecoderStepProgram(nn.Module):
    def __init__(self, model: nn.Module, *, max_steps: int, prenet_dropout: bool):
        super().__init__()
        cfg = model.config
        self.prenet = model.speecht5.decoder.prenet               # SpeechT5SpeechDecoderPrenet
        self.decoder = model.speecht5.decoder.wrapped_decoder     # SpeechT5Decoder
        self.postnet = model.speech_decoder_postnet               # feat_out / prob_out
        self.reduction_factor = cfg.reduction_factor
        self.num_mel_bins = cfg.num_mel_bins
        self.prenet_dropout = prenet_dropout
        # Row p hides cache positions after p (HF's causal mask for a query at p, additive, finfo.min).
        steps = torch.arange(max_steps)
        table = torch.where(steps[None, :] > steps[:, None], MASK_MIN, 0.0)
        self.register_buffer("causal_mask_table", table, persistent=False)

    def forward(self, frame, position, speaker, cross_attention_mask, self_k, self_v, cross_k, cross_v,
                dropout_masks=()):
        Cache, PositionKVLayer, EncoderDecoderCache = _cache_classes()
        bsz = frame.shape[0]
        max_steps = self.causal_mask_table.shape[0]
        pos = position[:1]  # every utterance of the batch is at the same step
        # HF SpeechT5SpeechDecoderPrenet.forward, for the newest frame at `pos` (speaker pre-normalized).
        x = frame
        for i, layer in enumerate(self.prenet.layers):
            x = nn.functional.relu(layer(x))
            if self.prenet_dropout:
                x = x * dropout_masks[i].index_select(0, pos)
        x = self.prenet.final_layer(x)
        pe = self.prenet.encode_positions
        x = x + pe.alpha * pe.pe[0].index_select(0, pos)
        x = nn.functional.relu(self.prenet.speaker_embeds_layer(torch.cat([x, speaker], dim=-1)))
        # HF's decoder layers against the preallocated cache.
        self_mask = self.causal_mask_table.index_select(0, pos).view(1, 1, 1, max_steps).expand(bsz, 1, 1, max_steps)
        cache = EncoderDecoderCache(
            Cache(layers=[PositionKVLayer(k, v, pos) for k, v in zip(self_k, self_v)]),
            Cache(layers=[PositionKVLayer(k, v) for k, v in zip(cross_k, cross_v)]),
        )
        for layer in self.decoder.layers:
            x = layer(x, self_mask, cross_k[0], encoder_attention_mask=cross_attention_mask,
                      past_key_values=cache, use_cache=True)[0]
        # HF _generate_speech: feat_out → r frames, sigmoid(prob_out) → stop probabilities.  The r frames stay
        # one [B, 1, r * mel] row (HF views it as [B, r, mel]; the generator does so once per utterance) and
        # the next input frame is its last mel-bins slice (HF's spectrum[:, -1, :]).
        spectrum = self.postnet.feat_out(x)
        prob = torch.sigmoid(self.postnet.prob_out(x))  # [B, 1, r]; HF's [B, r] view is read on the host
        position.add_(1)
        return spectrum, prob, spectrum[:, :, -self.num_mel_bins:]


def decoder_step_io(num_layers: int, prenet_layers: int, prenet_dropout: bool) -> tuple[list[str], list[str]]:
    ins = ["frame", "position", "speaker", "cross_attention_mask"]
    ins += [f"self_k_{i}" for i in range(num_layers)] + [f"self_v_{i}" for i in range(num_layers)]
    ins += [f"cross_k_{i}" for i in range(num_layers)] + [f"cross_v_{i}" for i in range(num_layers)]
    if prenet_dropout:
        ins += [f"dropout_mask_{i}" for i in range(prenet_layers)]
    return ins, ["spectrum", "stop_probability", "next_frame"]


# ---------------------------------------------------------------------------------------------
# postnet and vocoder: valid-length masking by hooks


@contextlib.contextmanager
def _hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class PostnetProgram(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.postnet = model.speech_decoder_postnet

    def forward(self, spectrogram: torch.Tensor, frame_mask: torch.Tensor):
        mask = frame_mask[:, None, :]                                        # [B, 1, L]
        # Frames an utterance decoded after its stop (batch decoding goes on for the others) are not its own.
        spectrogram = spectrogram * frame_mask[:, :, None]
        handles = [layer.conv.register_forward_pre_hook(lambda m, args: (args[0] * mask,))
                   for layer in self.postnet.layers]
        with _hooks(handles):
            return (self.postnet.postnet(spectrogram) * frame_mask[:, :, None],)


@dataclass(frozen=True)
class VocoderGeometry:
    """Where HiFi-GAN changes resolution: per upsampler (stride, kernel, padding, dilation, output_padding)."""

    upsamplers: tuple[tuple[int, int, int, int, int], ...]

    @staticmethod
    def of(vocoder: nn.Module) -> "VocoderGeometry":
        ups = []
        for up in vocoder.upsampler:
            ups.append((up.stride[0], up.kernel_size[0], up.padding[0], up.dilation[0], up.output_padding[0]))
        return VocoderGeometry(tuple(ups))

    def lengths(self, frames: int) -> list[int]:
        """Sequence length at each resolution (0: frames, i+1: after upsampler i), PyTorch's formula."""
        out = [frames]
        for s, k, p, d, op in self.upsamplers:
            out.append((out[-1] - 1) * s - 2 * p + d * (k - 1) + op + 1)
        return out


class VocoderProgram(nn.Module):
    def __init__(self, vocoder: nn.Module):
        super().__init__()
        self.vocoder = vocoder
        n_kernels = len(vocoder.config.resblock_kernel_sizes)
        # the resolution (0: frames, i + 1: after upsampler i) of each conv's *input*
        self._resolution: dict[nn.Module, int] = {vocoder.conv_pre: 0, vocoder.conv_post: len(vocoder.upsampler)}
        for i, up in enumerate(vocoder.upsampler):
            self._resolution[up] = i
            for block in vocoder.resblocks[i * n_kernels:(i + 1) * n_kernels]:
                for conv in list(block.convs1) + list(block.convs2):
                    self._resolution[conv] = i + 1

    def forward(self, spectrogram: torch.Tensor, *masks: torch.Tensor):
        handles = [module.register_forward_pre_hook(lambda m, args, r=r: (args[0] * masks[r],))
                   for module, r in self._resolution.items()]
        with _hooks(handles):
            return (self.vocoder(spectrogram),)


def vocoder_io(num_upsamples: int) -> tuple[list[str], list[str]]:
    return ["spectrogram"] + [f"valid_mask_{i}" for i in range(num_upsamples + 1)], ["waveform"]


def check_supported(model: nn.Module, vocoder: nn.Module | None) -> None:
    """Reject models this lowering does not cover, with what is supported."""
    from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan

    if not isinstance(model, SpeechT5ForTextToSpeech):
        raise UnsupportedModelError(
            f"lower_model supports transformers.SpeechT5ForTextToSpeech, got {type(model).__name__}")
    if vocoder is not None and not isinstance(vocoder, SpeechT5HifiGan):
        raise UnsupportedModelError(f"vocoder must be a transformers.SpeechT5HifiGan, got {type(vocoder).__name__}")
    cfg = model.config
    if vocoder is not None and vocoder.config.model_in_dim != cfg.num_mel_bins:
        raise UnsupportedModelError(f"the vocoder takes {vocoder.config.model_in_dim} mel bins but the model "
                                    f"produces {cfg.num_mel_bins}")
    if cfg.hidden_size % cfg.decoder_attention_heads or cfg.hidden_size % cfg.encoder_attention_heads:
        raise UnsupportedModelError("hidden_size must be divisible by the number of attention heads")
    if not isinstance(cfg.hidden_act, str) or cfg.hidden_act not in ("gelu", "relu"):
        raise UnsupportedModelError(f"hidden_act {cfg.hidden_act!r} is not supported (supported: 'gelu', 'relu')")
