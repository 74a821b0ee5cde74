"""Backends: a ttnn module (the real package or the reference implementation) and an open device.

``backend="auto"`` uses the real ``ttnn`` when it imports and a device opens, and otherwise the reference
(saying which, in ``Backend.description``; a ``RuntimeWarning`` when the real package is installed but no device
opened); ``"ttnn"`` requires the real one (BackendUnavailableError with
the reason if it is missing); ``"reference"`` always uses the reference, on the CPU or — with
``device="cuda"`` — on a CUDA GPU.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .. import options
from ..errors import BackendUnavailableError
from ..lowering.abstract import resolve_path, spec_from_value
from ..lowering.ir import TensorSpec, TTNNOp
from . import reference, ttnn_probe


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


def open_backend(kind: str = "auto", *, device: str | torch.device | None = None, numerics: str | None = None
                 ) -> Backend:
    """Open a backend.  ``numerics`` ("exact" / "device", default "exact") is a reference option: how its compute
    ops calculate (``runtime/reference/numerics.py``); the real ttnn computes as the device does, so asking it
    for "exact" is an error."""
    if numerics is not None:
        numerics = options.choice(numerics, "numerics", reference.NUMERICS, error=BackendUnavailableError)
    if kind not in ("auto", "reference", "ttnn"):
        raise BackendUnavailableError(f"backend must be 'auto', 'reference' or 'ttnn', got {kind!r}")
    if kind == "ttnn" and device not in (None, "tt"):
        raise BackendUnavailableError(f"device={device!r} selects where the reference backend runs; "
                                      "backend='ttnn' always uses Tenstorrent device 0")
    if kind in ("auto", "ttnn") and device in (None, "tt"):
        probe = ttnn_probe.probe_real_ttnn()
        if probe.device is not None:
            if numerics == "exact":
                probe.module.close_device(probe.device)
                raise BackendUnavailableError("numerics='exact' is a reference-backend option; the ttnn backend "
                                              "computes as the device does (numerics='device' or None)")
            return Backend(probe.module, probe.device, "ttnn", "ttnn (Tenstorrent device 0)")
        why = probe.reason
        if kind == "ttnn":
            raise BackendUnavailableError(f"backend='ttnn' requested but {why}. Install fx2ttnn[tt] on a machine "
                                          "with a Tenstorrent device, or use backend='reference'.")
        if probe.module is not None:  # the real package is installed: say why its device is not used
            warnings.warn(f"backend='auto': {why}; running on fx2ttnn's reference implementation of the ttnn API "
                          "instead", RuntimeWarning, stacklevel=2)
    else:
        why = ""
    torch_device = torch.device("cpu") if device in (None, "tt") else \
        options.torch_device(device, "device", error=BackendUnavailableError)
    dev = reference.open_device(0, torch_device=torch_device, numerics=numerics or "exact")
    what = f"reference ttnn on {torch_device}" + (", device numerics" if dev.emulate else "")
    return Backend(reference, dev, "reference", what, why)
