"""Find the real ``ttnn`` package and open Tenstorrent device 0: the probe behind ``backend="auto"`` / ``"ttnn"``.

Standard library only (no torch, no other fx2ttnn module), so the same code runs in the CPython 3.12 side
environment against the real ``ttnn==0.81.1`` wheel (``fx2ttnn conformance`` runs this file there and checks what it
says on a machine without a device).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

# Device parameters for the real ttnn: conv ops need an L1 small region and trace capture a trace region
# (OP_CONTRACT §0, values of the tt-metal SpeechT5 demo).
L1_SMALL_SIZE = 300_000
TRACE_REGION_SIZE = 10_000_000


@dataclass
class Probe:
    module: Any = None   # the imported real ttnn, or None
    device: Any = None   # device 0, opened, or None
    reason: str = ""     # why there is no module or no device ("" when both are there)


def probe_real_ttnn(*, open_device: bool = True) -> Probe:
    try:
        module = importlib.import_module("ttnn")
    except Exception as e:  # ImportError, or a broken install raising anything
        return Probe(reason=f"the ttnn package is not importable ({type(e).__name__}: {e})")
    if getattr(module, "IS_REFERENCE", False):
        return Probe(reason="the importable 'ttnn' is fx2ttnn's reference")
    if not open_device:
        return Probe(module)
    try:
        device = module.open_device(device_id=0, l1_small_size=L1_SMALL_SIZE, trace_region_size=TRACE_REGION_SIZE)
    except Exception as e:  # ttnn raises RuntimeError (TT_FATAL) when no chip is found
        first = str(e).split("\nbacktrace:")[0].strip().replace("\ninfo:\n", ": ").replace("\n", " ")
        return Probe(module, reason=f"ttnn imported but no device opened ({type(e).__name__}: {first})")
    return Probe(module, device)
