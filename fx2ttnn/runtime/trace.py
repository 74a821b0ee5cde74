"""The decode step as a ttnn trace: captured once per program variant, replayed once per step.

OP_CONTRACT §9's pattern for traced decode (as in tt-metal's Whisper/SpeechT5 demos):

- every step input lives at a fixed address: ``TracedStep`` allocates one device tensor per per-utterance
  input (``allocate_tensor_on_device``) and refreshes it with ``ttnn.copy`` (device to device) when an
  utterance starts; the KV caches are the generator's persistent ones, written in place by the step;
- the position is a device tensor the step advances itself, so the trace has no host integers baked in;
- the loop-carried mel frame is copied into the fixed ``frame`` input *inside* the trace (``ttnn.copy``), so
  one ``execute_trace`` is a whole step;
- the step is run once untraced (compile) before ``begin_trace_capture``; the inputs are refreshed after the
  compile run and after the capture, so neither advances the utterance (the cache row they wrote at the
  first position is rewritten by the first replay);
- the step's spectrum and stop outputs are trace buffers, overwritten by every replay: after each replay they
  are cloned on device (two ops outside the trace) so the generator can keep every step's frames and read
  the stop probabilities once per ``stop_check_interval`` steps.

Capture runs the program through ``BoundProgram.run_checked``: the real ttnn calls the same functions as the
bound program; the reference records the checked calls (``reference/trace.py``) and replays them on the
same tensor objects.  One trace serves every utterance of its (batch, text bucket) variant;
``release()`` frees it.
"""
from __future__ import annotations

from typing import Any, Mapping

from .executor import BoundProgram

FRAME_INPUT = "frame"
NEXT_FRAME_OUTPUT = 2  # decoder_step outputs: (spectrum, stop logits, next frame)


class TracedStep:
    """``step`` captured as a ttnn trace; ``persistent`` are device inputs already at fixed addresses
    (the KV caches) that the trace reads and writes in place."""

    def __init__(self, ttnn: Any, device: Any, step: BoundProgram, persistent: Mapping[str, Any]):
        self.ttnn, self.device, self.step = ttnn, device, step
        self.fixed: dict[str, Any] = {}
        self.refreshed: list[str] = []  # inputs copied in when an utterance starts
        for name, spec in zip(step.input_names, step.input_specs):
            if name in persistent:
                self.fixed[name] = persistent[name]
                continue
            layout = getattr(ttnn, f"{spec.layout}_LAYOUT")
            self.fixed[name] = ttnn.allocate_tensor_on_device(ttnn.Shape(list(spec.shape)), getattr(ttnn, spec.dtype),
                                                              layout, device, ttnn.DRAM_MEMORY_CONFIG)
            self.refreshed.append(name)
        self.args = [self.fixed[n] for n in step.input_names]
        self.trace_id: int | None = None
        self.outputs: tuple = ()

    def _refresh(self, env: Mapping[str, Any]) -> None:
        for name in self.refreshed:
            self.ttnn.copy(env[name], self.fixed[name])

    def _body(self) -> tuple:
        outs = self.step.run_checked(*self.args)
        self.ttnn.copy(outs[NEXT_FRAME_OUTPUT], self.fixed[FRAME_INPUT])
        return outs

    def start(self, env: Mapping[str, Any]) -> None:
        """Load an utterance's inputs (``env``: step input name → device tensor); capture on first use."""
        self._refresh(env)
        if self.trace_id is not None:
            return
        ttnn = self.ttnn
        self.step.check_inputs(tuple(self.args))
        self._body()  # compile run, untraced
        self._refresh(env)
        tid = ttnn.begin_trace_capture(self.device, cq_id=0)
        try:
            outs = self._body()
        finally:
            ttnn.end_trace_capture(self.device, tid, cq_id=0)
        self._refresh(env)
        self.trace_id, self.outputs = tid, outs[:NEXT_FRAME_OUTPUT]

    def __call__(self) -> tuple[Any, Any]:
        """One decode step: replay the trace; returns this step's (spectrum, stop logits), cloned out of the
        trace's buffers."""
        self.ttnn.execute_trace(self.device, self.trace_id, cq_id=0, blocking=False)
        spectrum, prob = self.outputs
        return self.ttnn.clone(spectrum), self.ttnn.clone(prob)

    def release(self) -> None:
        if self.trace_id is not None:
            self.ttnn.release_trace(self.device, self.trace_id)
            self.trace_id, self.outputs = None, ()
