"""Shared by the CLI subcommands: user-facing errors, notices, loading checkpoints / tokenizers / speakers.

``--model`` / ``--vocoder`` take a ``save_pretrained`` directory or a Hugging Face Hub id.  A hub id loads
like every HF tool: from the local Hugging Face cache when it is there, otherwise downloaded into it (with
huggingface_hub's progress bars); with no network, or ``HF_HUB_OFFLINE=1``, an id that is not cached is one
clear error line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import options


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


# -- options -----------------------------------------------------------------------------------------
# The API's own checks (fx2ttnn/options.py), run by the command line before it loads or lowers anything, with
# errors that name the flag (``--max-steps``) instead of the Python argument (``max_steps``).
SEED_MAX = 2**64 - 1  # torch.manual_seed / torch.Generator accept seeds up to this


positive_int = options.argparse_type(options.integer, low=1)                 # --steps, --repeat, --text-len ...
seed_int = options.argparse_type(options.integer, low=0, high=SEED_MAX)      # --seed
step_count = options.argparse_type(options.integer, low=32, multiple_of=32)  # --max-steps (model limit: later)


def check_lowering_flags(args: Any, config: Any = None) -> None:
    """``--device`` (and ``--backend``) and, given the model's config, ``--max-steps`` (against its
    ``max_speech_positions``), as ``lower_model`` would check them, but before any lowering and under the flag
    names."""
    max_steps = getattr(args, "max_steps", None)
    if max_steps is not None and config is not None:
        options.integer(max_steps, "--max-steps", low=32, high=config.max_speech_positions, multiple_of=32,
                        error=CliError)
    device = getattr(args, "device", None)
    if device is not None:
        if getattr(args, "backend", None) == "ttnn":
            raise CliError("--device selects the reference backend's torch device; it cannot be used with "
                           "--backend ttnn")
        options.torch_device(device, "--device", error=CliError)


# -- checkpoints -------------------------------------------------------------------------------------
def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec or spec.endswith("/")


def _read_model_type(directory: Path, spec: str, what: str) -> str:
    """``model_type`` of the checkpoint's ``config.json``; a ``CliError`` naming what is wrong with it."""
    config = directory / "config.json"
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except OSError as e:
        raise CliError(f"cannot read {what} config {str(config)!r}: {e.strerror or one_line(e)}") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise CliError(f"{what} config {str(config)!r} is not valid JSON ({one_line(e)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model_type"), str):
        raise CliError(f"{what} config {str(config)!r} has no \"model_type\" (not a transformers checkpoint "
                       "config.json)")
    return doc["model_type"]


def _exception_chain(e: BaseException) -> list[str]:
    names = []
    while e is not None and len(names) < 16:
        names.append(type(e).__name__)
        e = e.__cause__ or e.__context__
    return names


def _hub_error(e: BaseException, what: str, spec: str) -> CliError:
    """A loading failure of hub id ``spec`` as one line saying what the user can do."""
    import huggingface_hub.constants as hub
    chain = _exception_chain(e)
    if "RepositoryNotFoundError" in chain:
        return CliError(f"{what} {spec!r} is not a model on the Hugging Face Hub (nor a local directory); if it is "
                        "private, log in with `hf auth login`")
    if "GatedRepoError" in chain:
        return CliError(f"{what} {spec!r} is a gated model: accept its terms on huggingface.co and log in with "
                        "`hf auth login`")
    if "LocalEntryNotFoundError" in chain or "OfflineModeIsEnabled" in chain:
        why = "HF_HUB_OFFLINE=1 is set" if hub.HF_HUB_OFFLINE else "the Hugging Face Hub cannot be reached"
        return CliError(f"{what} {spec!r} is not in the local Hugging Face cache ({hub.HF_HUB_CACHE}) and {why}; "
                        "connect to the network once to download it, or give a save_pretrained directory")
    return CliError(f"cannot load {what} {spec!r} from the Hugging Face Hub: {one_line(e)}")


def load_pretrained(cls: type, spec: str, what: str) -> Any:
    """``cls.from_pretrained(spec)`` with one-line ``CliError``s for the user.

    ``spec`` is a ``save_pretrained`` directory or a hub id (from the local HF cache, else downloaded into it).
    The checkpoint's ``model_type`` must be ``cls``'s (a vocoder checkpoint given as ``--model`` is an error,
    not a model with random weights); weights missing from the checkpoint are reported as a warning.
    """
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # "Loading weights" bars: noise next to the CLI's own progress bar

    expected = cls.config_class.model_type
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CliError(f"{what} {spec!r} is not a directory (expected a save_pretrained checkpoint directory "
                           "or a Hugging Face Hub id)")
        if not (path / "config.json").is_file():
            raise CliError(f"{what} directory {spec!r} has no config.json (not a save_pretrained checkpoint)")
        model_type = _read_model_type(path, spec, what)
        if model_type != expected:
            raise CliError(f"{what} {spec!r} is a {model_type!r} checkpoint; expected {expected!r} "
                           f"({cls.__name__})")
        source, hub_id = str(path), False
    elif _looks_like_path(spec):
        raise CliError(f"{what} directory {spec!r} does not exist")
    else:
        source, hub_id = spec, True
    try:
        if hub_id:  # check the config's type before fetching weights
            from transformers import AutoConfig
            config = AutoConfig.from_pretrained(spec)
            if config.model_type != expected:
                raise CliError(f"{what} {spec!r} is a {config.model_type!r} checkpoint; expected {expected!r} "
                               f"({cls.__name__})")
        model, info = cls.from_pretrained(source, output_loading_info=True)
    except CliError:
        raise
    except Exception as e:  # noqa: BLE001 - any loading failure is the user's checkpoint/path/network problem
        if hub_id:
            raise _hub_error(e, what, spec) from None
        raise CliError(f"cannot load {what} from {spec!r}: {one_line(e)}") from None
    missing = list(info.get("missing_keys", []) or [])
    if missing:
        warn(f"{len(missing)} weight(s) of the {what} are not in {spec!r} and were randomly initialized "
             f"(e.g. {missing[0]})")
    return model.eval()


def load_tokenizer(spec: str) -> tuple[Any | None, str]:
    """The checkpoint's own SpeechT5 tokenizer, or ``(None, reason)`` when it has none or it cannot load
    (``spm_char.model`` needs the optional ``sentencepiece``: ``pip install 'fx2ttnn[speech]'``)."""
    import importlib.util
    path = Path(spec).expanduser()
    if path.is_dir() and not (path / "spm_char.model").is_file():
        return None, f"{spec!r} has no tokenizer files (spm_char.model)"
    if importlib.util.find_spec("sentencepiece") is None:
        return None, (f"the tokenizer of {spec!r} (spm_char.model) needs sentencepiece, which is not installed "
                      "(pip install 'fx2ttnn[speech]')")
    try:
        from transformers import SpeechT5Tokenizer
        return SpeechT5Tokenizer.from_pretrained(str(path) if path.is_dir() else spec), ""
    except Exception as e:  # noqa: BLE001 - e.g. no tokenizer files in the hub repo
        return None, f"the tokenizer of {spec!r} could not be loaded ({one_line(e)})"


def unknown_characters(tokenizer: Any, text: str) -> list[str]:
    """The distinct characters of ``text`` that ``tokenizer`` turns into its unknown token (in order of first
    appearance; whitespace is never one).  The built-in ``CharTokenizer`` says so itself; an HF tokenizer is
    asked character by character."""
    from .tokenizer import CharTokenizer
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.unknown_characters(text)
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return []
    word = tokenizer.convert_tokens_to_ids("▁")  # SentencePiece's word-boundary piece, prefixed to a word
    out = []
    for ch in dict.fromkeys(text):
        if ch.isspace():
            continue
        ids = list(tokenizer(ch, add_special_tokens=False)["input_ids"])
        if word != unk:
            ids = [i for i in ids if i != word]
        if ids and all(i == unk for i in ids):
            out.append(ch)
    return out


# -- speaker embeddings --------------------------------------------------------------------------------
def load_speaker(path: str, dim: int) -> torch.Tensor:
    """A ``[1, dim]`` float32 speaker embedding from a ``.npy`` file holding ``[dim]`` or ``[1, dim]``."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise CliError(f"cannot read speaker file {path!r}: {e.strerror or one_line(e)}") from None
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise CliError(f"speaker file {path!r} is not a NumPy .npy file (no NumPy header); save the x-vector "
                       "with numpy.save")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - pickled objects, truncated file...
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
