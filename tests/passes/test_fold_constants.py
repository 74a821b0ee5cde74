"""fold_constants: ATen nodes whose inputs are all constants are computed at lowering time."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.fold_constants import FoldConstants
from fx2ttnn.passes.graph_utils import const_tensor

from .helpers import aten, assert_matches_eager, capture_module, count_ops, run_pass, run_passes


class PositionalTerm(nn.Module):
    """SpeechT5's scaled positional encoding ``alpha * pe[:S]`` plus an ``arange`` ramp: all constant."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pe", torch.randn(10, 32))
        self.alpha = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return x + self.alpha * self.pe[:4] + torch.arange(32).float()


def test_constant_subgraphs_fold_into_tables():
    torch.manual_seed(0)
    m, x = PositionalTerm(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())
    assert count_ops(gm) == {aten.slice.Tensor: 1, aten.mul.Tensor: 1, aten.arange.default: 1,
                             aten.to.dtype: 1, aten.add.Tensor: 2}

    res = run_pass(gm, FoldConstants())

    assert count_ops(gm) == {aten.add.Tensor: 2}
    # slice, mul, arange, to; the folded-away inputs (pe, alpha) and intermediates (slice, arange) are dropped
    assert res.modified and res.stats == {"folded": 4, "constants_dropped": 4}
    tables = sorted((tuple(t.shape) for t in gm.buffers()))
    assert tables == [(4, 32), (32,)]
    first_add = next(n for n in gm.graph.nodes if n.target is aten.add.Tensor)
    torch.testing.assert_close(const_tensor(gm, first_add.args[1]), m.alpha.detach() * m.pe[:4])
    assert_matches_eager(m, gm, [x])


class ScaledTable(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pe", torch.randn(10, 32))
        self.alpha = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return x + self.alpha * self.pe[:4]


def test_fold_larger_than_max_bytes_is_not_folded():
    """``pe[:4]`` and ``alpha * pe[:4]`` are 512 bytes each: they stay computed at run time."""
    m, x = ScaledTable(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())
    before = count_ops(gm)

    res = run_pass(gm, FoldConstants(max_bytes=511))

    assert count_ops(gm) == before == {aten.slice.Tensor: 1, aten.mul.Tensor: 1, aten.add.Tensor: 1}
    assert not res.modified and res.stats == {}


def test_unfolded_constant_chain_runs():
    torch.manual_seed(0)
    m, x = ScaledTable(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize(), FoldConstants(max_bytes=511))
    assert_matches_eager(m, gm, [x])


class RowsTimesInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("pe", torch.randn(10, 32))

    def forward(self, x):
        return x * self.pe[:4]


def test_unfolded_constant_runs_at_run_time():
    torch.manual_seed(0)
    m, x = RowsTimesInput(), torch.randn(4, 32)
    gm = run_passes(capture_module(m, x), Canonicalize())

    res = run_pass(gm, FoldConstants(max_bytes=511))

    assert count_ops(gm) == {aten.slice.Tensor: 1, aten.mul.Tensor: 1}
    assert res.stats == {}
    assert_matches_eager(m, gm, [x])


class Ramp(nn.Module):
    def forward(self, x):
        return x + torch.arange(32).float()


@pytest.mark.parametrize("max_bytes, folded", [(256, 2), (255, 0)])
def test_max_bytes_is_inclusive(max_bytes, folded):
    """``arange(32)`` (int64, 256 bytes) and the float32 ``to`` (128 bytes) fold exactly when within the limit."""
    x = torch.randn(32)
    gm = run_passes(capture_module(Ramp(), x), Canonicalize())

    res = run_pass(gm, FoldConstants(max_bytes=max_bytes))

    assert res.stats.get("folded", 0) == folded
    assert count_ops(gm)[aten.arange.default] == (0 if folded else 1)


def test_unfolded_arange_runs_at_run_time():
    m, x = Ramp(), torch.randn(32)
    gm = run_passes(capture_module(m, x), Canonicalize(), FoldConstants(max_bytes=255))
    assert_matches_eager(m, gm, [x])


class InplaceOnConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(4, 8))

    def forward(self, x):
        c = self.table * 2
        c.add_(1)
        return x + c


def test_inplace_op_is_not_folded():
    m, x = InplaceOnConstant(), torch.randn(4, 8)
    gm = capture_module(m, x)

    res = run_pass(gm, FoldConstants())

    assert count_ops(gm) == {aten.add_.Tensor: 1, aten.add.Tensor: 1}
    assert res.stats == {"folded": 1, "constants_dropped": 1}  # table * 2 only; `table` is dropped
    assert_matches_eager(m, gm, [x])


class TupleResult(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(4, 8))

    def forward(self, x):
        values, _ = self.table.max(0)
        return x + values


def test_op_with_non_tensor_result_is_not_folded():
    """``max.dim`` returns a (values, indices) tuple: it is not folded (its getitem stays too)."""
    m, x = TupleResult(), torch.randn(8)
    gm = capture_module(m, x)

    res = run_pass(gm, FoldConstants())

    assert count_ops(gm)[aten.max.dim] == 1
    assert not res.modified and res.stats == {}


class ScaledGather(nn.Module):
    """The decode step's ``x + alpha * pe[position]``: a per-row transform of a gathered table row."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pe", torch.randn(16, 32))
        self.alpha = nn.Parameter(torch.tensor(1.7))

    def forward(self, x, pos):
        return x + self.alpha * self.pe.index_select(0, pos)


def test_constant_transform_of_a_gathered_row_folds_into_the_table():
    torch.manual_seed(0)
    m, x, pos = ScaledGather(), torch.randn(1, 32), torch.tensor([3])
    gm = run_passes(capture_module(m, x, pos), Canonicalize())

    res = run_pass(gm, FoldConstants())

    assert res.stats.get("gathers_folded") == 1
    assert count_ops(gm) == {aten.index_select.default: 1, aten.add.Tensor: 1}  # no multiply left
    (gather,) = [n for n in gm.graph.nodes if n.target is aten.index_select.default]
    torch.testing.assert_close(const_tensor(gm, gather.args[0]), m.pe * 1.7)
    assert_matches_eager(m, gm, [x, pos])


def test_gather_with_another_reader_is_not_folded():
    """Folding would need the original table as well: the gather stays and the multiply runs."""
    torch.manual_seed(0)

    class TwoReaders(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("pe", torch.randn(16, 32))

        def forward(self, pos):
            row = self.pe.index_select(0, pos)
            return row * 2.0 + row

    m, pos = TwoReaders(), torch.tensor([5])
    gm = run_passes(capture_module(m, pos), Canonicalize())
    res = run_pass(gm, FoldConstants())
    assert "gathers_folded" not in res.stats
    assert count_ops(gm)[aten.mul.Tensor] == 1
    assert_matches_eager(m, gm, [pos])
