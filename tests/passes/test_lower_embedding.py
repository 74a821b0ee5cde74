"""lower_embedding: aten.embedding and row-gather index_select → ttnn.embedding(idx, table, layout=TILE)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import Ref
from fx2ttnn.passes.graph_utils import const_tensor
from fx2ttnn.passes.lower_embedding import LowerEmbedding

from .helpers import aten, assert_matches_eager, capture_module, count_ops, nodes_of, run_pass


class Lookups(nn.Module):
    """Token embedding plus a positional row gathered at ``position`` (the decode step's ``pe[position]``)."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(10, 64)
        self.register_buffer("pe", torch.randn(16, 64))

    def forward(self, ids, position):
        return self.tokens(ids) + self.pe.index_select(0, position)


def test_embedding_and_row_gather_lower_to_ttnn_embedding():
    torch.manual_seed(0)
    m = Lookups().eval()
    ids, position = torch.tensor([[1, 2, 3, 9]]), torch.tensor([5])
    gm = capture_module(m, ids, position)

    res = run_pass(gm, LowerEmbedding())

    assert count_ops(gm) == {ops.embedding: 2, aten.add.Tensor: 1}
    assert res.modified and res.stats == {"embedding": 1, "index_select": 1}
    for node in nodes_of(gm, ops.embedding):
        assert node.args[0].op == "placeholder"  # (indices, table): ttnn's argument order
        assert node.kwargs == {"layout": Ref("TILE_LAYOUT")}
    assert_matches_eager(m, gm, [ids, position])


class ColumnGather(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(8, 64))

    def forward(self, idx):
        return self.table.index_select(1, idx) * 2


class Gather3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(8, 2, 32))

    def forward(self, idx):
        return self.table.index_select(0, idx) * 2


@pytest.mark.parametrize("module, idx, target, reason", [
    (ColumnGather(), torch.tensor([0, 3]), aten.index_select.default, "only row gathers of a 2-D table"),
    (Gather3d(), torch.tensor([0, 3]), aten.index_select.default, "only row gathers of a 2-D table"),
], ids=["index_select-dim1", "index_select-3d"])
def test_lookup_is_not_lowered(module, idx, target, reason):
    torch.manual_seed(0)
    gm = capture_module(module.eval(), idx)

    res = run_pass(gm, LowerEmbedding())

    assert count_ops(gm) == {target: 1, aten.mul.Tensor: 1}
    assert not res.modified and res.stats == {"declined": 1}
    (node,) = nodes_of(gm, target)
    assert reason in node.meta["lowering_note"]
    assert_matches_eager(module, gm, [idx])


class NarrowLookups(nn.Module):
    """Tables of width 20 (not a multiple of 32): token embedding and a positional row (hidden_size 20)."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(10, 20)
        self.register_buffer("pe", torch.randn(16, 20))

    def forward(self, ids, position):
        return self.tokens(ids) * 2 + self.pe.index_select(0, position)


def test_narrow_constant_tables_are_padded_at_lowering_time_and_sliced_back():
    """ttnn.embedding wants rows a multiple of 32 wide: the constant tables get zero columns up to 32 (once,
    here) and each gather is cut back to 20 on the device: no host fallback."""
    torch.manual_seed(0)
    m = NarrowLookups().eval()
    ids, position = torch.tensor([[1, 2, 3, 9]]), torch.tensor([5])
    gm = capture_module(m, ids, position)

    res = run_pass(gm, LowerEmbedding())

    assert res.stats == {"embedding": 1, "index_select": 1, "padded_width": 2}
    assert count_ops(gm) == {ops.embedding: 2, ops.slice_: 2, aten.mul.Tensor: 1, aten.add.Tensor: 1}
    for node in nodes_of(gm, ops.embedding):
        table = const_tensor(gm, node.args[1])
        assert table.shape[-1] == 32 and torch.count_nonzero(table[:, 20:]) == 0
    assert [list(s.args[2]) for s in nodes_of(gm, ops.slice_)] == [[1, 4, 20], [1, 20]]
    assert_matches_eager(m, gm, [ids, position])


class MaskRow(nn.Module):
    """A row of a per-utterance table given as a program input (the decode step's dropout masks)."""

    def forward(self, x, table, position):
        return x * table.index_select(0, position)


def test_a_narrow_table_input_is_padded_on_the_device():
    x, table, position = torch.randn(1, 40), torch.rand(8, 40), torch.tensor([3])
    gm = capture_module(MaskRow(), x, table, position)

    res = run_pass(gm, LowerEmbedding())

    assert res.stats == {"index_select": 1, "padded_width": 1}
    (pad,) = nodes_of(gm, ops.pad)
    assert pad.args[0].name == "x1" and pad.args[1:] == ([(0, 0), (0, 24)], 0.0)
    assert_matches_eager(MaskRow(), gm, [x, table, position], device_inputs=["x1"])
