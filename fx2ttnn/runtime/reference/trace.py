"""Reference ttnn trace capture and replay (OP_CONTRACT §9).

``tid = begin_trace_capture(device)`` starts recording every op that runs on ``device``; the ops still run
(the reference is eager), so capture also returns results.  ``end_trace_capture(device, tid)`` closes the
trace; ``execute_trace(device, tid)`` replays it: every recorded op runs again on the *same* tensor objects
— the fixed addresses of a device trace — and writes its result into the tensor it produced during capture,
so inputs refreshed in place (``ttnn.copy``, ``copy_host_to_device_tensor``, ``output_tensor=``) are seen by
the replay and outputs appear in the tensors captured as outputs.

The device rules are enforced: host-synchronizing work (``to_torch``, ``from_device``, ``to_device``,
``from_torch(device=...)``, ``copy_host_to_device_tensor``) raises while a capture is active; one capture at
a time; a released or unknown trace id cannot be executed.  What a device trace also bakes in — host
integers such as ``update_cache``'s ``update_index`` — is baked in here too: replays reuse the recorded
arguments.  Recording happens in the checked entry points (``tensor.checked``): an executor that calls the
bare kernels (``.unchecked``) must capture through the checked functions (``BoundProgram.run_checked``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import TTNNContractError
from .tensor import Device, Tensor, require

__all__ = ["begin_trace_capture", "end_trace_capture", "execute_trace", "release_trace",
           "is_trace_capture_active"]

# ops that synchronize with the host: not allowed while a capture is active (OP_CONTRACT §9)
HOST_SYNCHRONIZING = frozenset({"to_torch", "from_device", "to_device", "from_torch", "copy_host_to_device_tensor"})


@dataclass
class Trace:
    """The ops of one capture, in order: (kernel, args, kwargs, result at capture)."""

    tid: int
    records: list[tuple[Callable[..., Any], tuple, dict, Any]] = field(default_factory=list)
    complete: bool = False

    def record(self, name: str, kernel: Callable[..., Any], args: tuple, kwargs: dict, result: Any) -> None:
        self.records.append((kernel, args, kwargs, result))

    def admit(self, name: str) -> None:
        """Reject host-synchronizing work during capture (before it runs)."""
        if name in HOST_SYNCHRONIZING:
            raise TTNNContractError(f"ttnn.{name}: host-synchronizing work is not supported while a trace capture "
                                    f"is active (trace {self.tid}; OP_CONTRACT §9): move it before "
                                    "begin_trace_capture or after end_trace_capture")

    def replay(self) -> None:
        for kernel, args, kwargs, captured in self.records:
            _adopt(captured, kernel(*args, **kwargs))


_trace_ids = itertools.count(1)


def _adopt(captured: Any, fresh: Any) -> None:
    """Move a replayed op's result into the tensor(s) it produced at capture (the trace's fixed buffers)."""
    if isinstance(captured, Tensor):
        if fresh is captured or not isinstance(fresh, Tensor):
            return
        if captured._value is not None and (fresh._value.shape != captured._value.shape
                                            or fresh.dtype is not captured.dtype):
            raise TTNNContractError("ttnn.execute_trace: a replayed op produced a different shape or dtype than at "
                                    "capture; traces need static shapes")
        device = captured._device
        if captured._nbytes and device is not None:
            device.allocated_bytes -= captured._nbytes  # the capture-time buffer is reused, not kept twice
        captured._value, captured._nbytes, captured._aux = fresh._value, fresh._nbytes, None
        fresh._value, fresh._nbytes, fresh._aux = None, 0, None
    elif isinstance(captured, (tuple, list)) and isinstance(fresh, (tuple, list)):
        for c, f in zip(captured, fresh):
            _adopt(c, f)


def _device(mesh_device: Any, op: str) -> Device:
    require(isinstance(mesh_device, Device), op, f"expected a ttnn device, got {type(mesh_device).__name__}")
    require(mesh_device.is_open, op, "the device is closed")
    return mesh_device


def begin_trace_capture(mesh_device, *, cq_id=None) -> int:
    """Start recording the ops run on ``mesh_device``; returns the trace id."""
    dev = _device(mesh_device, "begin_trace_capture")
    require(dev.capturing is None, "begin_trace_capture",
            f"trace {getattr(dev.capturing, 'tid', '?')} is still being captured (one capture at a time)")
    trace = Trace(next(_trace_ids))
    dev.traces[trace.tid] = trace
    dev.capturing = trace
    return trace.tid


def end_trace_capture(mesh_device, trace_id, *, cq_id=None) -> None:
    dev = _device(mesh_device, "end_trace_capture")
    require(dev.capturing is not None and dev.capturing.tid == trace_id, "end_trace_capture",
            f"trace {trace_id} is not being captured on this device")
    dev.capturing.complete = True
    dev.capturing = None


def execute_trace(mesh_device, trace_id, *, cq_id=None, blocking=True) -> None:
    """Replay a captured trace (the reference is synchronous: ``blocking`` changes nothing)."""
    dev = _device(mesh_device, "execute_trace")
    require(dev.capturing is None, "execute_trace", "cannot execute a trace while a capture is active")
    trace = dev.traces.get(trace_id)
    require(trace is not None and trace.complete, "execute_trace",
            f"no captured trace {trace_id} on this device (released, or end_trace_capture not called)")
    trace.replay()


def release_trace(mesh_device, trace_id) -> None:
    dev = _device(mesh_device, "release_trace")
    require(trace_id in dev.traces, "release_trace", f"no trace {trace_id} on this device")
    require(dev.capturing is None or dev.capturing.tid != trace_id, "release_trace",
            f"trace {trace_id} is still being captured")
    del dev.traces[trace_id]


def is_trace_capture_active(device) -> bool:
    return isinstance(device, Device) and device.capturing is not None
