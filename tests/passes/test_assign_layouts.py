"""assign_layouts: uploads, layout conversions, dtype casts and host round trips, only at boundaries."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.errors import LoweringError
from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Ref, TensorSpec
from fx2ttnn.passes.assign_layouts import AssignLayouts
from fx2ttnn.passes.insert_host_fallbacks import InsertHostFallbacks
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_embedding import LowerEmbedding
from fx2ttnn.passes.lower_kv_cache import LowerKVCache
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.passes.lower_softmax import LowerSoftmax

from .helpers import (Host, aten, assert_program_matches, capture_module, count_ops, input_specs, nodes_of, run_pass,
                      run_passes)


def assign(gm, inputs, dtype="float32", device_inputs=(), outputs=()):
    """InsertHostFallbacks, then the pass under test; returns its result."""
    gm = run_passes(gm, InsertHostFallbacks())
    return run_pass(gm, AssignLayouts(dtype, input_specs(gm, inputs, device_inputs), outputs))


def every_value_is_typed(gm):
    """Every input, constant and used call result carries a TensorSpec."""
    return all("tensor_spec" in n.meta for n in gm.graph.nodes if n.op in ("placeholder", "get_attr")
               or (n.op == "call_function" and n.users))


class FFN(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(32, 64), nn.Linear(64, 32)

    def forward(self, x):
        return self.down(torch.relu(self.up(x))) + x


def test_host_input_and_constants_are_uploaded_once_in_tile():
    torch.manual_seed(0)
    m, x = FFN().eval(), torch.randn(2, 5, 32)
    gm = run_passes(capture_module(m, x), LowerLinear(), LowerElementwise())

    res = assign(gm, [x])

    # x (read by the first linear and the residual add: one upload), 2 weights, 2 biases
    assert count_ops(gm) == {ops.from_torch: 5, ops.linear: 2, ops.add: 1}
    assert res.stats == {"from_torch": 5}
    for up in nodes_of(gm, ops.from_torch):
        assert up.kwargs == {"dtype": Ref("float32"), "layout": Ref("TILE_LAYOUT"), "device": Ref("device")}
    assert every_value_is_typed(gm)
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0][0]
    assert str(out.meta["tensor_spec"]) == "f32[2,5,32] TILE DRAM"
    assert_program_matches(m, gm, [x])


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(10, 32)

    def forward(self, ids, x):
        return torch.softmax(self.tokens(ids) + x, dim=-1)


def test_layouts_are_converted_where_an_op_requires_one():
    """``AUTO`` ids take the ROW_MAJOR embedding needs, the table is uploaded ROW_MAJOR, the host add's result
    comes back in the TILE layout softmax needs."""
    torch.manual_seed(0)
    m, ids, x = Lookup().eval(), torch.tensor([[1, 2, 7]]), torch.randn(1, 3, 32)
    gm = run_passes(capture_module(m, ids, x), LowerEmbedding(), LowerSoftmax())
    devices = {"x0": TensorSpec((1, 3), "uint32", "AUTO", "DRAM", True),
               "x1": TensorSpec((1, 3, 32), "float32", "ROW_MAJOR", "DRAM", True)}

    res = assign(gm, [ids, x], device_inputs=devices)

    # the host add (no lowering ran for it) reads the embedding and x on the host, softmax needs TILE back
    assert count_ops(gm) == {ops.from_torch: 2, ops.embedding: 1, ops.to_torch: 2, Host(aten.add.Tensor): 1,
                             ops.softmax: 1}
    assert res.stats == {"from_torch": 2, "to_torch": 2}
    ph = {n.name: n.meta["tensor_spec"] for n in gm.graph.nodes if n.op == "placeholder"}
    assert ph["x0"].layout == "ROW_MAJOR"  # AUTO resolved by its consumer
    (table,) = [n for n in nodes_of(gm, ops.from_torch) if n.args[0].op == "get_attr"]
    assert table.kwargs["layout"] == Ref("ROW_MAJOR_LAYOUT")
    (sm,) = nodes_of(gm, ops.softmax)
    assert sm.args[0].target is ops.from_torch and sm.args[0].kwargs["layout"] == Ref("TILE_LAYOUT")
    assert_program_matches(m, gm, [ids.to(torch.int32), x])


class Scores(nn.Module):
    def forward(self, x, mask):
        return torch.softmax(x + mask, dim=-1)


def test_row_major_device_value_is_tilized_for_a_tile_op():
    m, x, mask = Scores(), torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    gm = run_passes(capture_module(m, x, mask), LowerElementwise(), LowerSoftmax())
    rm = TensorSpec((2, 4, 32), "float32", "ROW_MAJOR", "DRAM", True)

    res = assign(gm, [x, mask], device_inputs={"x0": rm, "x1": rm})

    assert count_ops(gm) == {ops.add: 1, ops.to_layout: 1, ops.softmax: 1}
    assert res.stats == {"to_layout": 1}
    (tl,) = nodes_of(gm, ops.to_layout)
    assert tl.args[1] == Ref("TILE_LAYOUT") and tl.users.keys() == set(nodes_of(gm, ops.softmax))
    assert_program_matches(m, gm, [x, mask])


class GeluResidual(nn.Module):
    def forward(self, x, y):
        return nn.functional.gelu(x) + y


def test_float32_program_typecasts_around_a_bfloat16_only_op():
    m, x, y = GeluResidual(), torch.randn(2, 32), torch.randn(2, 32)
    gm = run_passes(capture_module(m, x, y), LowerElementwise())

    res = assign(gm, [x, y], device_inputs=["x0", "x1"])

    assert count_ops(gm) == {ops.typecast: 2, ops.gelu: 1, ops.add: 1}
    assert res.stats == {"typecast": 2, "dtype_demoted": 1}
    (gelu,) = nodes_of(gm, ops.gelu)
    assert gelu.args[0].target is ops.typecast and gelu.meta["tensor_spec"].dtype == "bfloat16"
    (add,) = nodes_of(gm, ops.add)
    assert add.args[0].target is ops.typecast and add.meta["tensor_spec"].dtype == "float32"  # float32 after
    assert_program_matches(m, gm, [x, y], atol=2e-2, rtol=1e-2)


def test_outputs_are_converted_to_the_declared_specs():
    m, x, mask = Scores(), torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    gm = run_passes(capture_module(m, x, mask), LowerElementwise(), LowerSoftmax())
    want = TensorSpec((2, 4, 32), "bfloat16", "ROW_MAJOR", "DRAM", True)

    res = assign(gm, [x, mask], device_inputs=["x0", "x1"], outputs=[want])

    assert res.stats == {"to_layout": 1, "typecast": 1}
    out = next(n for n in gm.graph.nodes if n.op == "output").args[0][0]
    assert out.meta["tensor_spec"] == want
    assert_program_matches(m, gm, [x, mask], atol=1e-2, rtol=1e-2)


class ExpMul(nn.Module):
    def forward(self, x):
        return torch.exp(x * 0.5) * 2


def test_host_fallback_round_trip_is_explicit():
    """``exp`` has no lowering: its operand goes to the host in float32 and its result comes back."""
    m, x = ExpMul(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), LowerElementwise())

    res = assign(gm, [x], device_inputs=["x0"])

    assert count_ops(gm) == {ops.multiply: 2, ops.to_torch: 1, Host(aten.exp.default): 1, ops.from_torch: 1}
    assert res.stats == {"to_torch": 1, "from_torch": 1}
    (down,) = nodes_of(gm, ops.to_torch)
    assert down.kwargs == {"dtype": torch.float32}
    assert_program_matches(m, gm, [x])


def test_bfloat16_program_uploads_in_bfloat16():
    torch.manual_seed(0)
    m, x = FFN().eval(), torch.randn(2, 5, 32)
    gm = run_passes(capture_module(m, x), LowerLinear(), LowerElementwise())

    assign(gm, [x], dtype="bfloat16")

    assert {n.kwargs["dtype"] for n in nodes_of(gm, ops.from_torch)} == {Ref("bfloat16")}
    assert_program_matches(m, gm, [x], atol=5e-2, rtol=5e-2)


class CacheWrite(nn.Module):
    def forward(self, cache, position, k):
        cache.index_copy_(2, position[:1], k)
        return cache * 2


class PositionIncrement(nn.Module):
    def forward(self, position, x):
        position.add_(1)
        return x * 2


@pytest.mark.parametrize("module, inputs, lower, op", [
    (CacheWrite(), (torch.zeros(1, 2, 8, 32), torch.tensor([3]), torch.randn(1, 2, 1, 32)), LowerKVCache(),
     "experimental.paged_update_cache"),
    (PositionIncrement(), (torch.tensor([3]), torch.randn(2, 32)), LowerElementwise(), "plus_one"),
], ids=["cache-on-host", "position-on-host"])
def test_inplace_operand_that_needs_a_conversion_raises(module, inputs, lower, op):
    gm = run_passes(capture_module(module, *inputs), lower)

    with pytest.raises(LoweringError, match=rf"ttnn\.{op} writes operand 0 in place but it needs a conversion"):
        assign(gm, list(inputs))  # every input on the host: the written one would be uploaded as a copy


def test_missing_input_spec_raises():
    gm = capture_module(Scores(), torch.randn(2, 32), torch.randn(2, 32))

    with pytest.raises(LoweringError, match="no input spec for program input 'x1'"):
        AssignLayouts("float32", {"x0": TensorSpec((2, 32), "torch.float32")})(gm)
