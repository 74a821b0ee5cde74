"""Shared by the CLI subcommands: user-facing errors, notices, loading checkpoints / tokenizers / speakers.

Nothing here touches the network: checkpoints load from a local directory or, for a hub id, from the local
Hugging Face cache only (``local_files_only=True``).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CliError(Exception):
    """A problem with what the user asked for; ``main`` prints it as one ``error: ...`` line and exits 2."""


def one_line(e: BaseException | str) -> str:
    """An exception (or text) as a single line: whitespace runs, newlines included, become one space."""
    text = str(e) if not isinstance(e, str) else e
    text = " ".join(text.split())
    return text or type(e).__name__


def notice(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


# -- checkpoints -------------------------------------------------------------------------------------
def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec or spec.endswith("/")


def _read_model_type(directory: Path) -> str | None:
    try:
        return json.loads((directory / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def load_pretrained(cls: type, spec: str, what: str) -> Any:
    """``cls.from_pretrained(spec, local_files_only=True)`` with one-line ``CliError``s for the user.

    ``spec`` is a ``save_pretrained`` directory or a hub id already in the local HF cache.  The checkpoint's
    ``model_type`` must be ``cls``'s (a vocoder checkpoint given as ``--model`` is an error, not a model with
    random weights); weights missing from the checkpoint are reported as a notice.
    """
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # "Loading weights" bars: noise next to the CLI's own progress bar

    expected = cls.config_class.model_type
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CliError(f"{what} {spec!r} is not a directory (expected a save_pretrained checkpoint directory "
                           "or a hub id in the local Hugging Face cache)")
        if not (path / "config.json").is_file():
            raise CliError(f"{what} directory {spec!r} has no config.json (not a save_pretrained checkpoint)")
        model_type = _read_model_type(path)
        if model_type != expected:
            raise CliError(f"{what} {spec!r} is a {model_type!r} checkpoint; expected {expected!r} "
                           f"({cls.__name__})")
        source, hub_id = str(path), False
    elif _looks_like_path(spec):
        raise CliError(f"{what} directory {spec!r} does not exist")
    else:
        source, hub_id = spec, True
    try:
        if hub_id:  # hub id: check the cached config's type before loading weights
            from transformers import AutoConfig
            config = AutoConfig.from_pretrained(spec, local_files_only=True)
            if config.model_type != expected:
                raise CliError(f"{what} {spec!r} is a {config.model_type!r} checkpoint; expected {expected!r} "
                               f"({cls.__name__})")
        model, info = cls.from_pretrained(source, local_files_only=True, output_loading_info=True)
    except CliError:
        raise
    except Exception as e:  # noqa: BLE001 - any loading failure is the user's checkpoint/path problem
        if hub_id and isinstance(e, OSError):  # transformers' "couldn't find them in the cached files"
            raise CliError(f"{what} {spec!r} is neither a local directory nor in the local Hugging Face cache "
                           "(nothing is downloaded; give a save_pretrained directory)") from None
        if hub_id:
            raise CliError(f"cannot load {what} {spec!r} from the local Hugging Face cache: {one_line(e)}") from None
        raise CliError(f"cannot load {what} from {spec!r}: {one_line(e)}") from None
    missing = list(info.get("missing_keys", []) or [])
    if missing:
        warn(f"{len(missing)} weight(s) of the {what} are not in {spec!r} and were randomly initialized "
             f"(e.g. {missing[0]})")
    return model.eval()


def load_tokenizer(spec: str) -> tuple[Any | None, str]:
    """The checkpoint's own SpeechT5 tokenizer, or ``(None, reason)`` when it has none or it cannot load."""
    path = Path(spec).expanduser()
    if path.is_dir() and not (path / "spm_char.model").is_file():
        return None, f"{spec!r} has no tokenizer files (spm_char.model)"
    try:
        from transformers import SpeechT5Tokenizer
        return SpeechT5Tokenizer.from_pretrained(str(path) if path.is_dir() else spec, local_files_only=True), ""
    except Exception as e:  # noqa: BLE001 - e.g. sentencepiece not installed, or no tokenizer in the cache
        return None, f"the tokenizer of {spec!r} could not be loaded ({one_line(e)})"


# -- speaker embeddings --------------------------------------------------------------------------------
def load_speaker(path: str, dim: int) -> torch.Tensor:
    """A ``[1, dim]`` float32 speaker embedding from a ``.npy`` file holding ``[dim]`` or ``[1, dim]``."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - missing file, not .npy, pickled objects, truncated file...
        reason = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e)
        raise CliError(f"cannot read speaker file {path!r}: {reason}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            if len(names) != 1:
                raise CliError(f"speaker file {path!r} is an .npz archive with {len(names)} arrays; "
                               "give a .npy file (or an .npz holding one array)")
            data = data[names[0]]
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise CliError(f"speaker embedding in {path!r} has dtype {data.dtype}; expected a float array")
    if data.shape not in ((dim,), (1, dim)):
        raise CliError(f"speaker embedding in {path!r} has shape {list(data.shape)}; expected [{dim}] or "
                       f"[1, {dim}] (the model's speaker_embedding_dim)")
    if not np.isfinite(data).all():
        raise CliError(f"speaker embedding in {path!r} contains NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).reshape(1, dim)


def random_speaker(dim: int, seed: int) -> torch.Tensor:
    """A seeded random unit vector ``[1, dim]`` (x-vectors are L2-normalized)."""
    v = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
    return (v / v.norm()).reshape(1, dim)


def load_models(model_spec: str | None, vocoder_spec: str | None, *, seed: int,
                with_vocoder: bool) -> tuple[Any, Any, str]:
    """(model, vocoder or None, a line saying where they came from) for ``--model`` / ``--vocoder``.

    A missing spec means the default config with random weights, seeded by ``seed`` (a notice says so); the
    vocoder is only built or loaded when ``with_vocoder``, and must take the model's mel bins.
    """
    from transformers import SpeechT5Config, SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5HifiGanConfig

    if model_spec is None:
        notice(f"no --model: default SpeechT5Config with random weights (seed {seed})")
        torch.manual_seed(seed)
        model = SpeechT5ForTextToSpeech(SpeechT5Config()).eval()
        source = f"random weights (default SpeechT5Config, seed {seed})"
    else:
        model, source = load_pretrained(SpeechT5ForTextToSpeech, model_spec, "model"), model_spec
    if not with_vocoder:
        return model, None, source
    if vocoder_spec is None:
        notice(f"no --vocoder: default SpeechT5HifiGanConfig with random weights (seed {seed})")
        torch.manual_seed(seed)
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig()).eval()
        source += f"; vocoder: random weights (default SpeechT5HifiGanConfig, seed {seed})"
    else:
        vocoder = load_pretrained(SpeechT5HifiGan, vocoder_spec, "vocoder")
        source += f"; vocoder: {vocoder_spec}"
    if vocoder.config.model_in_dim != model.config.num_mel_bins:
        raise CliError(f"the vocoder takes {vocoder.config.model_in_dim} mel bins but the model makes "
                       f"{model.config.num_mel_bins}")
    return model, vocoder, source
