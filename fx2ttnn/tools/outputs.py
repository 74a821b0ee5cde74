"""Output files of the command line: checked before any work, written atomically.

One rule for every output path (``synth -o``, ``dump --out``, ``export --out``, ``--json``): missing parent
directories are created when the output is written (``mkdir -p``); before any work, ``check_writable`` /
``check_out_dir`` make sure the output can be created there — the nearest existing ancestor must be a writable
directory — and create nothing.  ``write_atomic`` writes to a temporary file in the destination directory and
renames it over the destination, so a failed or interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


class OutputPathError(OSError):
    """The output path cannot be written (its message is one line, meant for the user)."""


def check_writable(path: str | os.PathLike, flag: str = "output") -> Path:
    """Raise ``OutputPathError`` unless a file can be created at ``path``, before any work is done.

    The project's one rule for outputs: a missing parent directory is created when the output is written
    (``mkdir -p``), so here the nearest existing ancestor must be a writable directory, and ``path`` itself
    must not be a directory.  Nothing is created."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputPathError(f"{flag} {str(path)!r} is a directory; give a file name")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{flag} {str(path)!r} exists and is not writable")
    existing_ancestor(p.parent, flag, str(path))
    return p


def existing_ancestor(path: Path, flag: str, given: str) -> Path:
    """The nearest existing ancestor of ``path`` (itself included), which must be a writable directory."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"cannot write {flag} {given!r}: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {flag} {given!r}: {str(probe)!r} is not writable")
    return probe


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` into a temporary file next to ``path`` (missing parents are created first), then rename it
    over ``path``: a failed or interrupted write never leaves a half-written file behind."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Raise ``OutputPathError`` unless ``path`` is, or can be created as, a writable directory; creates nothing."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{flag} {str(path)!r} exists and is not a directory")
    existing_ancestor(p, flag, str(path))
    return p


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` into ``path``, atomically (``write_atomic``)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))
