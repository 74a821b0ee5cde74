"""hoist_invariants: per-utterance work of a step program moves into a prologue run once."""
from __future__ import annotations

import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import TensorSpec
from fx2ttnn.passes.hoist_invariants import HoistInvariants
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.executor import BoundProgram
from fx2ttnn.runtime.generate import upload

from .helpers import capture_module, count_ops, finish, run_pass, run_passes, to_host


class Step(nn.Module):
    """A step whose input ``frame`` changes every call while ``speaker`` is fixed per utterance."""

    def __init__(self):
        super().__init__()
        self.frame_proj = nn.Linear(32, 32)
        self.speaker_proj = nn.Linear(16, 32)

    def forward(self, frame, speaker):
        s = torch.relu(self.speaker_proj(speaker)) * 2.0   # per utterance
        return (torch.relu(self.frame_proj(frame)) + s,)   # per step


def _lowered():
    torch.manual_seed(0)
    m = Step().eval()
    inputs = [torch.randn(1, 32), torch.randn(1, 16)]
    gm = run_passes(capture_module(m, *inputs, names=["frame", "speaker"]), LowerLinear(), LowerElementwise())
    dev = {n: TensorSpec(tuple(t.shape), "float32", "TILE", "DRAM", True) for n, t in zip(["frame", "speaker"], inputs)}
    return m, inputs, finish(gm, inputs, device_inputs=dev)


def test_invariant_ops_move_to_the_prologue_and_results_agree():
    m, inputs, gm = _lowered()
    before = count_ops(gm)

    res = run_pass(gm, HoistInvariants({"speaker"}))

    prologue, sig = gm.meta["prologue"]
    assert res.stats == {"hoisted": 2, "step_inputs_added": 1, "step_inputs_dropped": 1}
    pro_ops = count_ops(prologue)
    assert pro_ops[ops.linear] == 1 and pro_ops[ops.multiply] == 1  # (+ its own weight uploads)
    step_ops = count_ops(gm)
    assert step_ops[ops.linear] == before[ops.linear] - 1 and step_ops[ops.multiply] == 0
    assert sig.inputs == ["speaker"] and sig.outputs == ["hoisted_ttnn_multiply"]
    assert [n.name for n in gm.graph.nodes if n.op == "placeholder"] == ["frame", "hoisted_ttnn_multiply"]

    backend = open_backend("reference")
    ttnn, dev = backend.ttnn, backend.device
    pro = BoundProgram(prologue, backend, name="prologue")
    step = BoundProgram(gm, backend, name="step")
    (hoisted,) = pro(upload(ttnn, dev, pro.input_specs[0], inputs[1]))
    out = to_host(step(upload(ttnn, dev, step.input_specs[0], inputs[0]), hoisted)[0])
    torch.testing.assert_close(out, m(*inputs)[0], atol=1e-5, rtol=1e-5)


def test_nothing_is_hoisted_without_invariant_inputs():
    _, _, gm = _lowered()
    res = run_pass(gm, HoistInvariants(set()))
    assert not res.modified and "prologue" not in gm.meta
