"""plan_memory: ttnn.deallocate after the last use of each device intermediate, alias-aware, and the peak."""
from __future__ import annotations

import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import TensorSpec
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.passes.plan_memory import PlanMemory
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.executor import BoundProgram
from fx2ttnn.runtime.generate import upload

from .helpers import capture_module, count_ops, finish, nodes_of, run_pass, run_passes, to_host


class Chain(nn.Module):
    """x → linear → relu → linear → (+ x): three per-call intermediates with disjoint lifetimes."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 64)
        self.b = nn.Linear(64, 64)

    def forward(self, x):
        return (self.b(torch.relu(self.a(x))) + x,)


class Viewed(nn.Module):
    """An intermediate read through a reshape much later: it must outlive the reshape's last reader."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 64)
        self.b = nn.Linear(64, 64)

    def forward(self, x):
        h = self.a(x)                    # [1, 32, 64]
        v = h.reshape(32, 64)            # may alias h on device
        g = torch.relu(self.b(x))        # unrelated work in between
        return (v.reshape(1, 32, 64) + g,)


def _lowered(module, shape=(1, 32, 64)):
    torch.manual_seed(0)
    m = module.eval()
    x = torch.randn(*shape)
    gm = run_passes(capture_module(m, x, names=["x"]), LowerLinear(), LowerElementwise(), LowerDataMovement())
    gm = finish(gm, [x], device_inputs={"x": TensorSpec(tuple(x.shape), "float32", "TILE", "DRAM", True)})
    return m, x, gm


def _run(gm, x):
    backend = open_backend("reference")
    prog = BoundProgram(gm, backend, name="test")
    dev = backend.device
    x_dev = upload(backend.ttnn, dev, prog.input_specs[0], x)
    dev.reset_peak()
    start = dev.allocated_bytes
    outs = prog(x_dev)
    return [to_host(o) for o in outs], dev.peak_bytes, start


def _freed(gm):
    return [d.args[0] for d in nodes_of(gm, ops.deallocate)]


def test_each_intermediate_is_freed_right_after_its_last_reader():
    m, x, gm = _lowered(Chain())
    res = run_pass(gm, PlanMemory())

    freed = _freed(gm)
    assert res.stats == {"deallocate": 2} and len(freed) == 2
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for d in nodes_of(gm, ops.deallocate):
        owner = d.args[0]
        readers = [u for u in owner.users if u is not d]
        assert readers and order[d] > max(order[u] for u in readers)
        # right after: nothing but other deallocations between the last reader and the free
        between = [n for n in gm.graph.nodes if max(order[u] for u in readers) < order[n] < order[d]]
        assert all(n.target is ops.deallocate for n in between)
    outs, _, _ = _run(gm, x)
    torch.testing.assert_close(outs[0], m(x)[0], atol=1e-5, rtol=1e-5)


def test_inputs_outputs_and_constants_are_never_freed():
    _, _, gm = _lowered(Chain())
    run_pass(gm, PlanMemory())
    freed = set(_freed(gm))
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    assert not freed & set(out_node.all_input_nodes)
    assert all(n.op == "call_function" and n.target is not ops.from_torch for n in freed)
    assert not any(n.op in ("placeholder", "get_attr") for n in freed)


def test_a_value_read_through_a_reshape_lives_until_the_reshape_is_read():
    m, x, gm = _lowered(Viewed())
    h = nodes_of(gm, ops.linear)[0]
    reshapes = nodes_of(gm, ops.reshape)
    assert reshapes, "the test needs the reshape chain on device"
    run_pass(gm, PlanMemory())

    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    (free_h,) = [d for d in nodes_of(gm, ops.deallocate) if d.args[0] is h]
    view_readers = [u for r in reshapes for u in r.users if u.target is not ops.deallocate]
    assert order[free_h] > max(order[u] for u in view_readers)
    assert not any(d.args[0] in reshapes for d in nodes_of(gm, ops.deallocate))  # views are freed with h
    outs, _, _ = _run(gm, x)
    torch.testing.assert_close(outs[0], m(x)[0], atol=1e-5, rtol=1e-5)


def test_planned_peak_bounds_what_the_reference_device_allocates():
    _, x, gm = _lowered(Chain())
    before_peak = _run(gm, x)[1] - _run(gm, x)[2]
    run_pass(gm, PlanMemory())
    mem = gm.meta["memory"]
    _, peak, start = _run(gm, x)

    tile = 32 * 64 * 4  # one [1, 32, 64] float32 activation
    assert mem["inputs"] == tile
    assert mem["constants"] >= 2 * (64 * 64 + 64) * 4
    # inputs + constants + at most two live activations at any op (its input and its output)
    assert mem["peak"] == mem["constants"] + mem["inputs"] + 2 * tile
    assert peak - start <= before_peak  # freeing never raises the high-water mark
    assert peak - start <= mem["peak"] - mem["constants"] - mem["inputs"]


def test_a_program_without_device_intermediates_is_left_alone():
    class Identity(nn.Module):
        def forward(self, x):
            return (x + 1.0,)

    _, x, gm = _lowered(Identity())
    before = count_ops(gm)
    res = run_pass(gm, PlanMemory())
    assert not res.modified and not res.stats.get("deallocate") and count_ops(gm) == before
    assert gm.meta["memory"]["peak"] == gm.meta["memory"]["inputs"] + 32 * 64 * 4
