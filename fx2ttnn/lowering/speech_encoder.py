"""The speech encoder program: 16 kHz samples → encoder states and every decoder layer's cross-attention K/V.

Shared by the heads whose encoder reads speech (voice conversion: ``SpeechT5ForSpeechToSpeech``; speech
recognition: ``SpeechT5ForSpeechToText``).  The wrapper calls HF's own modules: the speech encoder prenet
(``SpeechT5SpeechEncoderPrenet``: conv feature encoder, feature projection, positional conv embedding,
sinusoidal positions) and the transformer encoder (``SpeechT5Encoder``), then each decoder layer's
cross-attention ``k_proj`` / ``v_proj`` (passed in, so a speech or a text decoder serves).  It finds them by
structure (``.prenet`` / ``.wrapped_encoder`` of the module given, ``nn.GroupNorm`` modules in the feature
encoder), never by class name.

Static shapes and padding.  The samples are padded to a **sample bucket** (``SpeechGeometry``): the encoder frame
count of an input (HF's ``_get_feat_extract_output_lengths``) is padded to a frame bucket (``frame_bucket`` of the
TTS spectrogram: 2^k x {1, 1.25, 1.5, 1.75}, multiples of 32 from 64 — 64, 96, 128, 160, 192, 224, 256, 320 ...,
so at most 25 % padding above 128 frames (2.6 s) and under 32 frames below), capped at
``config.max_speech_positions``; the bucket's sample count is the largest that gives exactly that
many frames.  A new length therefore reuses the program of its bucket.  What padding would change, the program
masks, so every utterance of a padded batch equals HF's run on that utterance alone, at its exact length:

* ``feat_extract_norm="group"`` normalizes conv 0's output per channel over time (``GroupNorm(C, C)``): the
  statistics are taken over the utterance's valid conv-0 frames only (``norm_mask_0`` [B, L0, 1] and
  ``norm_scale_0`` = 1 / valid frames [B, 1, 1]; HF's GroupNorm over a padded input differs by up to 0.8).
  The GroupNorm module's output is replaced, during capture, by ``masked_group_norm`` (a forward hook), which
  is written in ops the lowering maps onto ttnn one to one: multiply by the mask, ``sum`` over time, scale by
  1 / count, subtract, ``sqrt``, ``divide`` on the [B, 1, C] statistics (HF's GELU after it is fused into its
  last add: ``fuse_binary_output_activation``).
  ``"layer"`` normalizes each frame over channels: padding does not reach valid frames.
* The convolutions of the feature encoder have no padding: HF's output-length formula keeps exactly the frames
  whose receptive field lies inside the valid samples, so valid frames never read padding.
* The positional conv embedding (grouped conv, kernel 128, "same" padding) mixes time: its input is multiplied
  by ``frame_mask`` (a forward pre-hook), so frames past an utterance's end are the zeros HF's exact-length run
  pads with.  Its weight norm is folded into a plain weight at lowering time (``fold_constants``).
* The sinusoidal positions of the valid frames are those of HF's exact-length run (padding mask all zero) and
  are a lowering-time constant.  The encoder's attention gets the additive mask ``(1 - frame_mask) * MASK_MIN``
  (returned as ``cross_attention_mask`` [B, 1, 1, T] for the decoder).

Why ``ttnn.conv2d`` (``conv1d_to_conv2d``) for the feature encoder and not a stride-folded linear form: measured on
the reference backend (float32, the default 7-layer encoder with GELU fused, an idle 2-core machine), conv2d took
95-105 ms for 2 s of audio and 453-457 ms for 10 s with one thread (46-56 / 249-260 ms with two); the exact
stride-folded form (reshape ``[L, C]`` → ``[L/s, s*C]``, one linear with the taps side by side, two row-shifted
slices added) took 129-144 / 692-697 ms (68-72 / 325-381 ms); HF's eager conv1d stack 110 / 565 ms (57 / 316 ms).
On a device the conv2d keeps the stride in the kernel (halo + im2col in L1) and pads conv 0's single input channel
to 8 (ROW_MAJOR or sliced input, L1 alignment 16 B) or 32 channels, which for conv 0's 0.2 % of the program's MACs
is cheaper than the folded form's ``[S/5, 5]`` activation (tile-padded to 32 columns), doubled conv-0 output and two
unaligned row slices.  The grouped positional conv runs dense on a device (ttnn zero-pads grouped weights to the
block-diagonal): 16 x its MACs and 151 MB of bfloat16 weights for the default config instead of 9.4 MB; splitting
it per group would give 48-channel convs, which are not tile aligned.  See ``passes/README.md`` "Contract
additions" for the facts relied on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..errors import GenerationError, UnsupportedModelError
from .capture import CapturedProgram, capture
from .ir import TensorSpec
from .speecht5 import MASK_MIN, _hooks, frame_bucket

PROGRAM = "speech_encoder"


# ---------------------------------------------------------------------------------------------
# geometry: HF's conv-length formula, sample buckets, host-side masks


@dataclass(frozen=True)
class SpeechGeometry:
    """The feature encoder's conv geometry and the encoder's frame limit, from a SpeechT5 config."""

    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    max_frames: int                          # config.max_speech_positions
    group_norm_layers: tuple[int, ...] = ()  # conv layers followed by a GroupNorm (statistics over valid frames)
    sample_rate: int = 16000

    @staticmethod
    def of(config) -> "SpeechGeometry":
        n = config.num_feat_extract_layers
        kernels, strides = tuple(config.conv_kernel)[:n], tuple(config.conv_stride)[:n]
        gn = (0,) if config.feat_extract_norm == "group" else ()
        return SpeechGeometry(kernels, strides, int(config.max_speech_positions), gn,
                              int(getattr(config, "sampling_rate", 16000)))

    def conv_lengths(self, samples: int) -> tuple[int, ...]:
        """Output length of each conv layer for ``samples`` input samples (HF ``_conv_out_length``: floor((L-k)/s)+1)."""
        out, n = [], samples
        for k, s in zip(self.kernels, self.strides):
            n = (n - k) // s + 1 if n >= k else 0
            out.append(n)
        return tuple(out)

    def frames(self, samples: int) -> int:
        return self.conv_lengths(samples)[-1]

    def samples_for(self, frames: int) -> int:
        """The largest sample count that gives exactly ``frames`` encoder frames."""
        n = frames + 1  # the fewest samples for frames + 1 frames, minus one
        for k, s in zip(reversed(self.kernels), reversed(self.strides)):
            n = (n - 1) * s + k
        return n - 1

    @property
    def min_samples(self) -> int:
        """The receptive field of one encoder frame: shorter inputs give no frame."""
        return self.samples_for(0) + 1

    @property
    def max_samples(self) -> int:
        return self.samples_for(self.max_frames)

    def frame_bucket(self, frames: int) -> int:
        return min(frame_bucket(frames), self.max_frames)

    def sample_bucket(self, samples: int) -> int:
        """The padded sample count (a bucket) the program for ``samples`` samples takes."""
        return self.samples_for(self.frame_bucket(self.frames(self.check_length(samples))))

    def check_length(self, samples: int, what: str = "input") -> int:
        if samples < self.min_samples:
            raise GenerationError(
                f"{what} has {samples} samples; the speech encoder needs at least {self.min_samples} "
                f"({self.min_samples / self.sample_rate * 1000:g} ms at {self.sample_rate} Hz) for one frame")
        if samples > self.max_samples:
            raise GenerationError(
                f"{what} has {samples} samples ({samples / self.sample_rate:g} s); the model takes at most "
                f"{self.max_samples} ({self.max_samples / self.sample_rate:g} s at {self.sample_rate} Hz: "
                f"max_speech_positions = {self.max_frames} encoder frames)")
        return samples


def speech_encoder_io(num_decoder_layers: int, group_norm_layers: Sequence[int]) -> tuple[list[str], list[str]]:
    """Input and output names of the program (the outputs are what the decoder step programs read)."""
    ins = ["input_values", "frame_mask"]
    for i in group_norm_layers:
        ins += [f"norm_mask_{i}", f"norm_scale_{i}"]
    outs = ["encoder_hidden_states", "cross_attention_mask"]
    for i in range(num_decoder_layers):
        outs += [f"cross_k_{i}", f"cross_v_{i}"]
    return ins, outs


def speech_encoder_inputs(geometry: SpeechGeometry, input_values: torch.Tensor,
                          lengths: Sequence[int]) -> dict[str, torch.Tensor]:
    """Host inputs of the program for a batch of utterances, padded to their bucket.

    ``input_values`` [B, S] float samples (anything past an utterance's length is ignored), ``lengths`` the
    valid samples of each utterance.  Returns ``input_values`` [B, S_bucket] (zero past each length),
    ``frame_mask`` [B, T] (1 on each utterance's encoder frames) and, per GroupNorm layer i, ``norm_mask_i``
    [B, L_i, 1] (1 on its valid conv-i frames) and ``norm_scale_i`` [B, 1, 1] (1 / that count).
    """
    if not isinstance(input_values, torch.Tensor) or input_values.dim() != 2 or not input_values.is_floating_point():
        raise GenerationError(f"input_values must be a float tensor [batch, samples], got "
                              f"{getattr(input_values, 'shape', type(input_values).__name__)}")
    bsz = input_values.shape[0]
    lengths = [int(n) for n in lengths]
    if len(lengths) != bsz:
        raise GenerationError(f"{len(lengths)} lengths for a batch of {bsz}")
    for b, n in enumerate(lengths):
        if n > input_values.shape[1]:
            raise GenerationError(f"utterance {b}: length {n} exceeds the {input_values.shape[1]} samples given")
        geometry.check_length(n, f"utterance {b}")
        if not torch.isfinite(input_values[b, :n]).all():
            raise GenerationError(f"utterance {b} has NaN or infinite samples")
    bucket = geometry.sample_bucket(max(lengths))
    samples = torch.zeros(bsz, bucket, dtype=torch.float32)
    for b, n in enumerate(lengths):
        samples[b, :n] = input_values[b, :n]
    full = geometry.conv_lengths(bucket)
    valid = [geometry.conv_lengths(n) for n in lengths]
    out = {"input_values": samples,
           "frame_mask": _prefix_mask([v[-1] for v in valid], full[-1])}
    for i in geometry.group_norm_layers:
        counts = [v[i] for v in valid]
        out[f"norm_mask_{i}"] = _prefix_mask(counts, full[i]).unsqueeze(-1)
        out[f"norm_scale_{i}"] = (1.0 / torch.tensor(counts, dtype=torch.float64)).to(torch.float32).view(bsz, 1, 1)
    return out


def _prefix_mask(counts: Sequence[int], length: int) -> torch.Tensor:
    return (torch.arange(length)[None, :] < torch.tensor(counts)[:, None]).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# the program


def masked_group_norm(norm: nn.GroupNorm, x: torch.Tensor, mask: torch.Tensor, inv_count: torch.Tensor) -> torch.Tensor:
    """``GroupNorm(C, C)`` of ``x`` [B, C, L] with each channel's statistics over the frames where ``mask``
    [B, L, 1] is 1 (``inv_count`` [B, 1, 1] = 1 / their number): biased variance, two passes, as torch's.
    Computed channels last ([B, L, C], as the conv produces it), so the transposes around it are views."""
    h = x.transpose(1, 2)
    mean = (h * mask).sum(1, keepdim=True) * inv_count          # [B, 1, C]
    centered = h - mean
    var = (centered * centered * mask).sum(1, keepdim=True) * inv_count
    scale = norm.weight.view(1, 1, -1) / torch.sqrt(var + norm.eps)  # [B, 1, C]: gamma / std, once per channel
    return (centered * scale + norm.bias.view(1, 1, -1)).transpose(1, 2)


class SpeechEncoderProgram(nn.Module):
    """``forward(input_values, frame_mask, [norm_mask_i, norm_scale_i]...)`` → encoder states, the additive
    cross-attention mask and (K, V) of each cross-attention module, heads split ``[B, H, T, dh]``.

    ``speech_encoder``: a module with ``.prenet`` (HF ``SpeechT5SpeechEncoderPrenet``) and ``.wrapped_encoder``
    (HF ``SpeechT5Encoder``), e.g. ``model.speecht5.encoder`` of the speech-to-speech or speech-to-text model.
    ``cross_attention``: the decoder layers' cross-attention modules (each with ``k_proj``, ``v_proj``,
    ``head_dim``), e.g. ``[l.encoder_attn for l in model.speecht5.decoder.wrapped_decoder.layers]``.
    """

    def __init__(self, speech_encoder: nn.Module, cross_attention: Sequence[nn.Module], num_heads: int):
        super().__init__()
        check_speech_encoder(speech_encoder)
        # held whole, under the attribute names whose module paths reports map to HF's (lowering/ir.py)
        self.encoder = speech_encoder
        self.cross_attn = nn.ModuleList(cross_attention)
        self.num_heads = num_heads
        layers = speech_encoder.prenet.feature_encoder.conv_layers
        self._group_norms = [(i, m) for i, layer in enumerate(layers) for m in layer.modules()
                             if isinstance(m, nn.GroupNorm)]
        self.geometry = dataclasses.replace(SpeechGeometry.of(speech_encoder.config),
                                            group_norm_layers=tuple(i for i, _ in self._group_norms))

    def forward(self, input_values: torch.Tensor, frame_mask: torch.Tensor, *norm_inputs: torch.Tensor):
        bsz, frames = frame_mask.shape
        prenet = self.encoder.prenet
        handles = [prenet.pos_conv_embed.register_forward_pre_hook(
            lambda m, args: (args[0] * frame_mask[:, :, None],))]
        for j, (_, norm) in enumerate(self._group_norms):
            mask, inv_count = norm_inputs[2 * j], norm_inputs[2 * j + 1]
            handles.append(norm.register_forward_hook(
                lambda m, args, out, mask=mask, inv_count=inv_count: masked_group_norm(m, args[0], mask, inv_count)))
        with _hooks(handles):
            hidden, _ = prenet(input_values)  # no attention_mask: positions as HF's exact-length run
        additive = (1.0 - frame_mask[:, None, None, :]) * MASK_MIN  # [B, 1, 1, T]
        hidden = self.encoder.wrapped_encoder(hidden_states=hidden, attention_mask=additive.expand(bsz, 1, frames, frames),
                              return_dict=True).last_hidden_state
        outs = [hidden, additive]
        for attn in self.cross_attn:
            k = attn.k_proj(hidden).view(bsz, -1, self.num_heads, attn.head_dim).transpose(1, 2)
            v = attn.v_proj(hidden).view(bsz, -1, self.num_heads, attn.head_dim).transpose(1, 2)
            outs += [k, v]
        return tuple(outs)

    def io(self) -> tuple[list[str], list[str]]:
        return speech_encoder_io(len(self.cross_attn), self.geometry.group_norm_layers)

    def example_inputs(self, batch: int, sample_bucket: int) -> tuple[torch.Tensor, ...]:
        """Inputs to capture the program with (all frames valid)."""
        lengths = self.geometry.conv_lengths(sample_bucket)
        args = [torch.zeros(batch, sample_bucket), torch.ones(batch, lengths[-1])]
        for i, _ in self._group_norms:
            args += [torch.ones(batch, lengths[i], 1), torch.full((batch, 1, 1), 1.0 / lengths[i])]
        return tuple(args)

    def specs(self, batch: int, sample_bucket: int, dtype: str) -> tuple[dict[str, TensorSpec], list[TensorSpec]]:
        """Input specs (host float32 tensors, which the program uploads) and output specs (device TILE, ``dtype``)."""
        lengths = self.geometry.conv_lengths(sample_bucket)
        frames = lengths[-1]
        host = lambda *shape: TensorSpec(tuple(shape), "torch.float32")  # noqa: E731
        dev = lambda *shape: TensorSpec(tuple(shape), dtype, "TILE", "DRAM", True)  # noqa: E731
        ins = {"input_values": host(batch, sample_bucket), "frame_mask": host(batch, frames)}
        for i, _ in self._group_norms:
            ins[f"norm_mask_{i}"] = host(batch, lengths[i], 1)
            ins[f"norm_scale_{i}"] = host(batch, 1, 1)
        hidden = self.encoder.config.hidden_size
        outs = [dev(batch, frames, hidden), dev(batch, 1, 1, frames)]
        outs += [dev(batch, self.num_heads, frames, a.head_dim) for a in self.cross_attn for _ in "kv"]
        return ins, outs

    def capture(self, batch: int, sample_bucket: int) -> CapturedProgram:
        """torch.export of this program for ``batch`` utterances of ``sample_bucket`` samples."""
        ins, outs = self.io()
        return capture(self, self.example_inputs(batch, sample_bucket), name=PROGRAM, input_names=ins,
                       output_names=outs)


def check_speech_encoder(speech_encoder: nn.Module) -> None:
    """Reject speech encoders this program does not cover, saying what is supported."""
    for attr in ("prenet", "wrapped_encoder", "config"):
        if not hasattr(speech_encoder, attr):
            raise UnsupportedModelError(f"the speech encoder program needs a module with .prenet, .wrapped_encoder "
                                        f"and .config (HF SpeechT5EncoderWithSpeechPrenet); "
                                        f"{type(speech_encoder).__name__} has no .{attr}")
    cfg = speech_encoder.config
    if cfg.feat_extract_norm not in ("group", "layer"):
        raise UnsupportedModelError(f"feat_extract_norm {cfg.feat_extract_norm!r} is not supported "
                                    "(supported: 'group', 'layer')")
    if not isinstance(cfg.feat_extract_activation, str) or cfg.feat_extract_activation not in ("gelu", "relu"):
        raise UnsupportedModelError(f"feat_extract_activation {cfg.feat_extract_activation!r} is not supported "
                                    "(supported: 'gelu', 'relu')")
    for i, layer in enumerate(speech_encoder.prenet.feature_encoder.conv_layers):
        for m in layer.modules():
            if isinstance(m, nn.GroupNorm) and (m.num_groups != m.num_channels or not m.affine):
                raise UnsupportedModelError(
                    f"feature encoder layer {i}: GroupNorm({m.num_groups}, {m.num_channels}, affine={m.affine}) is "
                    "not supported (supported: one group per channel with affine parameters, as HF's)")
    if speech_encoder.training:
        raise UnsupportedModelError("the speech encoder is in training mode; call .eval() first (dropout, "
                                    "SpecAugment masking)")
