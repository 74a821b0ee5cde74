"""Backends: a ttnn module (the real package or the reference implementation) and an open device.

``backend="auto"`` uses the real ``ttnn`` when it imports and a device opens, and otherwise the reference
(saying which, in ``Backend.description``); ``"ttnn"`` requires the real one (BackendUnavailableError with
the reason if it is missing); ``"reference"`` always uses the reference, on the CPU or — with
``device="cuda"`` — on a CUDA GPU.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import BackendUnavailableError
from ..lowering.abstract import resolve_path, spec_from_value
from ..lowering.ir import TensorSpec, TTNNOp
from . import reference

# Device parameters for the real ttnn: conv ops need an L1 small region and trace capture a trace region
# (OP_CONTRACT §0, values of the tt-metal SpeechT5 demo).
L1_SMALL_SIZE = 300_000
TRACE_REGION_SIZE = 10_000_000


@dataclass
class Backend:
    ttnn: Any
    device: Any
    name: str            # "reference" or "ttnn"
    description: str     # e.g. "reference ttnn on cpu"
    fallback_reason: str = ""  # why backend="auto" did not use the real ttnn

    @property
    def is_reference(self) -> bool:
        return self.name == "reference"

    @property
    def numerics(self) -> str:
        """"exact" (the reference's float32 math) or "device" (the device, or the reference emulating it)."""
        return self.device.numerics if self.is_reference else "device"

    def fn(self, op: TTNNOp) -> Any:
        """The function for ``op``; on the reference, the kernel without per-call contract checks."""
        f = resolve_path(self.ttnn, op.name)
        return getattr(f, "unchecked", f) if self.is_reference else f

    def spec_of(self, value: Any) -> TensorSpec | None:
        if self.is_reference or isinstance(value, torch.Tensor):
            return spec_from_value(value)
        mc = value.memory_config()
        memory = mc.buffer_type.name if not mc.is_sharded() else f"L1_{mc.memory_layout.name}"
        return TensorSpec(tuple(value.shape), value.dtype.name.lower(), value.layout.name.replace("_LAYOUT", ""),
                          memory, True)

    def close(self) -> None:
        if self.device is not None and not self.is_reference:
            self.ttnn.close_device(self.device)


def _real_ttnn() -> tuple[Any | None, str]:
    try:
        module = importlib.import_module("ttnn")
    except Exception as e:  # ImportError, or a broken install raising anything
        return None, f"the ttnn package is not importable ({type(e).__name__}: {e})"
    if getattr(module, "IS_REFERENCE", False):
        return None, "the importable 'ttnn' is fx2ttnn's reference"
    return module, ""


def open_backend(kind: str = "auto", *, device: str | torch.device | None = None, numerics: str | None = None
                 ) -> Backend:
    """Open a backend.  ``numerics`` ("exact" / "device", default "exact") is a reference option: how its compute
    ops calculate (``runtime/reference/numerics.py``); the real ttnn computes as the device does, so asking it
    for "exact" is an error."""
    if numerics not in (None, *reference.NUMERICS):
        raise BackendUnavailableError(f"numerics must be one of {', '.join(reference.NUMERICS)}, got {numerics!r}")
    if kind not in ("auto", "reference", "ttnn"):
        raise BackendUnavailableError(f"backend must be 'auto', 'reference' or 'ttnn', got {kind!r}")
    if kind == "ttnn" and device not in (None, "tt"):
        raise BackendUnavailableError(f"device={device!r} selects where the reference backend runs; "
                                      "backend='ttnn' always uses Tenstorrent device 0")
    if kind in ("auto", "ttnn") and device in (None, "tt"):
        module, why = _real_ttnn()
        if module is not None:
            try:
                dev = module.open_device(device_id=0, l1_small_size=L1_SMALL_SIZE, trace_region_size=TRACE_REGION_SIZE)
            except Exception as e:
                why = f"ttnn imported but no device opened ({type(e).__name__}: {e})"
            else:
                if numerics == "exact":
                    module.close_device(dev)
                    raise BackendUnavailableError("numerics='exact' is a reference-backend option; the ttnn backend "
                                                  "computes as the device does (numerics='device' or None)")
                return Backend(module, dev, "ttnn", "ttnn (Tenstorrent device 0)")
        if kind == "ttnn":
            raise BackendUnavailableError(f"backend='ttnn' requested but {why}. Install fx2ttnn[tt] on a machine "
                                          "with a Tenstorrent device, or use backend='reference'.")
    else:
        why = ""
    torch_device = torch.device(device) if device not in (None, "tt") else torch.device("cpu")
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("device='cuda' requested but torch sees no CUDA device")
    dev = reference.open_device(0, torch_device=torch_device, numerics=numerics or "exact")
    what = f"reference ttnn on {torch_device}" + (", device numerics" if dev.emulate else "")
    return Backend(reference, dev, "reference", what, why)
