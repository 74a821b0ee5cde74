"""The side environment: a CPython 3.12 venv with the real ``ttnn==0.81.1``, made on demand and cached.

fx2ttnn runs on Python 3.11; the ttnn 0.81.1 wheel on PyPI is built for CPython 3.12 only.  The side environment
holds the wheel and exactly what ``import ttnn`` needs (measured: ``numpy<2``, ``loguru``, ``graphviz``; installed
with ``--no-deps`` so pip never pulls the wheel's other requirements - pandas, seaborn, ... - nor torch, which for
3.12 would be a multi-GB CUDA build: the side never needs torch, data crosses as JSON and raw buffers).

Where: ``$FX2TTNN_CACHE`` or ``~/.cache/fx2ttnn``, folder ``ttnn-0.81.1-py3.12``; a stamp file records what was
installed, so a half-made environment is made again.  ``$FX2TTNN_TTNN_WHEELS`` may name a folder holding the wheel
(pip then takes it from there, ``--find-links``); without it pip downloads it from the registry (about 100 MB).
CPython 3.12: ``$FX2TTNN_PYTHON312``, else ``python3.12`` on PATH, else pyenv's 3.12 (``pyenv root``/versions/3.12*).
Where none exists, :class:`SideEnvUnavailable` says so (the conformance test suite skips with that message).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Fx2TTNNError

TTNN_VERSION = "0.81.1"
# what ``import ttnn`` (0.81.1) needs on the host, found by importing it in a bare venv until it loaded
IMPORT_REQUIREMENTS = ("numpy>=1.24.4,<2", "loguru>=0.6.0", "graphviz>=0.20.3")
STAMP = "fx2ttnn-side-env.json"
SIDE_SCRIPT = Path(__file__).with_name("side") / "ttnn_side.py"
MOCK_CLUSTER = Path(__file__).with_name("side") / "wormhole_n150_mock_cluster.yaml"
PROBE_SCRIPT = Path(__file__).resolve().parents[1] / "runtime" / "ttnn_probe.py"


class SideEnvUnavailable(Fx2TTNNError):
    """No CPython 3.12 here, or the side environment could not be made (the message says which and why)."""


def cache_root() -> Path:
    return Path(os.environ.get("FX2TTNN_CACHE") or Path.home() / ".cache" / "fx2ttnn")


def find_python312() -> Path:
    explicit = os.environ.get("FX2TTNN_PYTHON312")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(Path(on_path))
    roots = []
    if shutil.which("pyenv"):
        try:
            roots.append(Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30,
                                             check=True).stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    roots += [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        candidates += sorted((root / "versions").glob("3.12*/bin/python3.12"), reverse=True)
    for c in candidates:  # a pyenv shim on PATH may name a version that is not selected: run each to be sure
        if c.is_file() and os.access(c, os.X_OK):
            try:
                out = subprocess.run([str(c), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                                     text=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                continue
            if out.returncode == 0 and out.stdout.strip() == "(3, 12)":
                return c
    raise SideEnvUnavailable("no CPython 3.12 found (FX2TTNN_PYTHON312, python3.12 on PATH, pyenv versions 3.12*); "
                             "the real ttnn 0.81.1 wheel exists only for CPython 3.12, so conformance cannot run here")


@dataclass
class SideEnv:
    root: Path
    python: Path
    created_seconds: float | None = None  # set when this call made the environment

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file() and not f.is_symlink())

    def run(self, request: dict[str, Any], *, mock_cluster: bool = True, timeout: float = 3600) -> dict[str, Any]:
        """Send ``request`` to ``ttnn_side.py`` and return its response (see that file for the modes)."""
        with tempfile.TemporaryDirectory(prefix="fx2ttnn-conformance-") as tmp:
            req, resp = Path(tmp) / "request.json", Path(tmp) / "response.json"
            req.write_text(json.dumps(request))
            env = {k: v for k, v in os.environ.items() if not k.startswith(("TT_", "PYTHON"))}
            env["TT_LOGGER_LEVEL"] = "error"
            if mock_cluster:
                env["TT_METAL_MOCK_CLUSTER_DESC_PATH"] = str(MOCK_CLUSTER)
            proc = subprocess.run([str(self.python), str(SIDE_SCRIPT), str(req), str(resp)], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0 or not resp.exists():
                tail = (proc.stderr or proc.stdout)[-3000:]
                raise SideEnvUnavailable(f"the ttnn side process failed (exit {proc.returncode}): {tail}")
            return json.loads(resp.read_text())


def ensure_side_env(*, log=print) -> SideEnv:
    """The cached side environment, made first if missing or incomplete."""
    python = find_python312()
    root = cache_root() / f"ttnn-{TTNN_VERSION}-py3.12"
    venv_python = root / "bin" / "python"
    stamp = root / STAMP
    wanted = {"ttnn": TTNN_VERSION, "requirements": list(IMPORT_REQUIREMENTS), "python": str(python)}
    if stamp.exists() and venv_python.exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return SideEnv(root, venv_python)
        except (OSError, ValueError):
            pass
    t0 = time.perf_counter()
    log(f"conformance: making the side environment {root} (CPython 3.12 venv + ttnn=={TTNN_VERSION}) ...")
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([str(python), "-m", "venv", str(root)], check=True, capture_output=True, text=True, timeout=600)
        pip = [str(venv_python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q"]
        wheels = os.environ.get("FX2TTNN_TTNN_WHEELS")
        if wheels:
            pip += ["--find-links", wheels]
        subprocess.run(pip + [f"ttnn=={TTNN_VERSION}", *IMPORT_REQUIREMENTS], check=True, capture_output=True,
                       text=True, timeout=1800)
        check = subprocess.run([str(venv_python), "-c", "import ttnn"], capture_output=True, text=True, timeout=600,
                               cwd=tempfile.gettempdir(), env={**os.environ, "TT_LOGGER_LEVEL": "error"})
        if check.returncode != 0:
            raise SideEnvUnavailable(f"ttnn=={TTNN_VERSION} installed but does not import: {check.stderr[-2000:]}")
    except subprocess.CalledProcessError as e:
        shutil.rmtree(root, ignore_errors=True)
        raise SideEnvUnavailable(f"could not make the side environment ({' '.join(map(str, e.cmd[:6]))} ...): "
                                 f"{(e.stderr or e.stdout or '')[-2000:]}") from None
    except subprocess.TimeoutExpired as e:
        shutil.rmtree(root, ignore_errors=True)
        raise SideEnvUnavailable(f"making the side environment timed out ({e.cmd})") from None
    stamp.write_text(json.dumps(wanted))
    env = SideEnv(root, venv_python, created_seconds=time.perf_counter() - t0)
    log(f"conformance: side environment made in {env.created_seconds:.0f} s, {env.size_bytes / 2**20:.0f} MiB")
    return env


if __name__ == "__main__":  # python -m fx2ttnn.conformance.sideenv: make (or find) it and say where
    e = ensure_side_env()
    print(e.root, e.python, file=sys.stdout)
