"""Checks of option values given by a user, shared by the Python API and the command line.

Every check takes the value, the name to report it under (``"max_steps"`` from Python, ``"--max-steps"``
from the command line) and the error type to raise, and returns the value normalized (``int``, ``float``,
``torch.device`` ...).  A failed check raises one line that names the option, says what is allowed and shows
what was given (``repr``), e.g. ``maxlenratio must be a finite number > 0, got nan``.  The API runs them before
any lowering or generation work; the command line runs the same checks, under the flag names, before it
loads or lowers a model (``argparse_type`` wraps a check as an argparse ``type=``).

Numbers: ``bool`` is never a number here (``True`` is not a step count); integers are ``numbers.Integral``
(Python, NumPy and 0-d integer torch values), reals are ``numbers.Real`` or 0-d real tensors, and must be finite.
"""
from __future__ import annotations

import argparse
import math
import numbers
from typing import Any, Callable, Iterable, Sequence

import torch

from .errors import Fx2TTNNError

ErrorType = Callable[[str], Exception]


def _scalar(value: Any) -> Any:
    """A 0-d torch tensor or NumPy scalar as the Python number it holds; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex():
        return value.item()
    item = getattr(value, "item", None)
    if item is not None and type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return item()
    return value


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    def num(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {num(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {num(high)}")
    return " and ".join(parts)


def real(value: Any, name: str, *, error: ErrorType, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the given range, as ``float``."""
    what = "a finite number" + (f" {_range_text(low, high, low_open, high_open)}" if low is not None or high is not None
                                else "")
    v = _scalar(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise error(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    f = float(v)
    if not math.isfinite(f) or (low is not None and (f <= low if low_open else f < low)) \
            or (high is not None and (f >= high if high_open else f > high)):
        raise error(f"{name} must be {what}, got {value!r}")
    return f


def integer(value: Any, name: str, *, error: ErrorType, low: int | None = None, high: int | None = None,
            multiple_of: int | None = None) -> int:
    """An integer (not a bool, not a float that happens to be whole) in the given range, as ``int``."""
    what = "an integer" + (f" {_range_text(low, high, False, False)}" if low is not None or high is not None else "")
    if multiple_of:
        what += f", a multiple of {multiple_of}"
    v = _scalar(value)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise error(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    i = int(v)
    if (low is not None and i < low) or (high is not None and i > high) or (multiple_of and i % multiple_of):
        raise error(f"{name} must be {what}, got {i}")
    return i


def choice(value: Any, name: str, choices: Sequence[str], *, error: ErrorType) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def flag(value: Any, name: str, *, error: ErrorType) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def names(value: Any, name: str, choices: Sequence[str], *, error: ErrorType) -> tuple[str, ...]:
    """A collection of names, each one of ``choices`` (a lone string is refused: it would iterate characters)."""
    allowed = ", ".join(map(repr, choices))
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise error(f"{name} must be a list of names from {allowed}, got {value!r} "
                    + (f"(a string; use [{value!r}])" if isinstance(value, str) else f"({type(value).__name__})"))
    items = tuple(value)
    bad = [v for v in items if not isinstance(v, str) or v not in choices]
    if bad:
        raise error(f"{name} has unknown name(s) {', '.join(map(repr, bad))}; allowed: {allowed}")
    return items


def torch_device(value: Any, name: str, *, error: ErrorType, types: Sequence[str] = ("cpu", "cuda")) -> torch.device:
    """A torch device of one of ``types`` (a string such as ``"cpu"``, ``"cuda:0"``, or a ``torch.device``) that
    exists on this machine."""
    allowed = ", ".join(types)
    if isinstance(value, torch.device):
        dev = value
    elif isinstance(value, str):
        try:
            dev = torch.device(value)
        except (RuntimeError, ValueError):
            raise error(f"{name} must be a torch device ({allowed}), got {value!r}") from None
    else:
        raise error(f"{name} must be a torch device ({allowed}), got {value!r} ({type(value).__name__})")
    if dev.type not in types:
        raise error(f"{name} must be a torch device ({allowed}), got {value!r} (a {dev.type!r} device cannot "
                    "run the reference kernels)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise error(f"{name}={value!r} asks for CUDA but torch sees no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise error(f"{name}={value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def argparse_type(check: Callable[..., Any], **kwargs: Any) -> Callable[[str], Any]:
    """``check`` as an argparse ``type=``: the string is parsed (int, else float) and checked; a failure becomes
    argparse's one-line usage error, which names the flag itself."""
    def convert(text: str) -> Any:
        value: Any = text
        if check in (integer, real):
            try:
                value = int(text) if check is integer else float(text)
            except ValueError:
                kind = "an integer" if check is integer else "a number"
                raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check(value, "value", error=_TypeMessage, **kwargs)
        except _TypeMessage as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value ")) from None
    convert.__name__ = check.__name__
    return convert


class _TypeMessage(Fx2TTNNError):
    """Carries a check's message to ``argparse_type``."""
