"""lower_matmul: bmm / matmul / mm → ttnn.matmul, absorbing a last-two-dims transpose of b as transpose_b."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.lower_kv_cache import LowerKVCache
from fx2ttnn.passes.lower_matmul import LowerMatmul

from .helpers import (aten, assert_matches_eager, capture_module, count_ops, eager, nodes_of, run_lowered,
                      run_pass, run_passes)


class Scores(nn.Module):
    """Attention scores ``softmax(q @ kᵀ)`` as HF writes them: ``bmm(q, k.transpose(1, 2))``."""

    def forward(self, q, k):
        return torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)


def test_bmm_with_transposed_key_becomes_matmul_transpose_b():
    q, k = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    m = Scores()
    gm = capture_module(m, q, k)

    res = run_pass(gm, LowerMatmul())

    assert count_ops(gm) == {ops.matmul: 1, aten.softmax.int: 1}  # the transpose is gone
    assert res.modified and res.stats == {"matmul": 1, "transpose_b_absorbed": 1}
    (mm,) = nodes_of(gm, ops.matmul)
    assert [a.name for a in mm.args] == ["x0", "x1"] and mm.kwargs == {"transpose_b": True}
    assert_matches_eager(m, gm, [q, k])


class MatMul(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, a, b):
        return self.op(a, b)


@pytest.mark.parametrize("op, sa, sb, aten_op", [
    (torch.bmm, (2, 5, 32), (2, 32, 7), aten.bmm.default),
    (torch.mm, (5, 32), (32, 7), aten.mm.default),
    (torch.matmul, (2, 3, 5, 32), (2, 3, 32, 7), aten.matmul.default),   # equal batch dims
    (torch.matmul, (2, 3, 5, 32), (1, 1, 32, 7), aten.matmul.default),   # b's batch dims all 1
    (torch.matmul, (2, 5, 32), (32, 7), aten.matmul.default),            # b without batch dims
    (torch.matmul, (1, 5, 32), (3, 32, 7), aten.matmul.default),         # batch-1 a, same rank >= 3
], ids=["bmm", "mm", "4d", "b-broadcast", "b-rank2", "a-batch1"])
def test_matmul_lowers(op, sa, sb, aten_op):
    torch.manual_seed(0)
    m, a, b = MatMul(op), torch.randn(sa), torch.randn(sb)
    gm = capture_module(m, a, b)
    assert count_ops(gm) == {aten_op: 1}

    res = run_pass(gm, LowerMatmul())

    assert count_ops(gm) == {ops.matmul: 1}
    assert res.stats == {"matmul": 1}
    assert nodes_of(gm, ops.matmul)[0].kwargs == {}
    assert_matches_eager(m, gm, [a, b])


class SharedTranspose(nn.Module):
    def forward(self, q, k):
        kt = k.transpose(-1, -2)
        return q @ kt, kt * 2


class NotLastTwo(nn.Module):
    def forward(self, q, k):
        return q @ k.transpose(0, 1)


@pytest.mark.parametrize("module, q, k", [
    (SharedTranspose(), torch.randn(2, 5, 32), torch.randn(2, 7, 32)),
    (NotLastTwo(), torch.randn(4, 2, 32), torch.randn(4, 32, 7).transpose(0, 1).contiguous()),
], ids=["other-user", "batch-transpose"])
def test_transpose_is_not_absorbed(module, q, k):
    gm = capture_module(module, q, k)

    res = run_pass(gm, LowerMatmul())

    assert count_ops(gm)[ops.matmul] == 1 and count_ops(gm)[aten.transpose.int] == 1
    assert res.stats == {"matmul": 1}
    assert nodes_of(gm, ops.matmul)[0].kwargs == {}
    assert_matches_eager(module, gm, [q, k])


@pytest.mark.parametrize("sa, sb", [
    ((5, 32), (32,)),                    # rank-1 operand
    ((1, 5, 32), (2, 3, 32, 7)),          # batch-1 a against a batched b of another rank
    ((5, 32), (3, 32, 7)),                # rank-2 a against a batched b
    ((2, 1, 5, 32), (1, 3, 32, 7)),       # both operands broadcast
], ids=["rank1", "a-batch1-rank3-vs-4", "a-rank2", "both-broadcast"])
def test_matmul_with_unsupported_layout_is_not_lowered(sa, sb):
    torch.manual_seed(0)
    m, a, b = MatMul(torch.matmul), torch.randn(sa), torch.randn(sb)
    gm = capture_module(m, a, b)

    res = run_pass(gm, LowerMatmul())

    assert count_ops(gm) == {aten.matmul.default: 1}
    assert not res.modified and res.stats == {"declined": 1}
    assert nodes_of(gm, aten.matmul.default)[0].meta["lowering_note"].startswith("matmul declined: operand shapes")
    assert_matches_eager(m, gm, [a, b])


class WriteThenMatmul(nn.Module):
    """A cache write nothing reads in this program, next to a matmul."""

    def forward(self, cache, position, k, a):
        cache.index_copy_(2, position[:1], k)
        return a @ a.transpose(-1, -2)


def test_dead_code_elimination_keeps_inplace_writes():
    inputs = (torch.zeros(1, 2, 8, 32), torch.tensor([3]), torch.randn(1, 2, 1, 32), torch.randn(4, 32))
    m = WriteThenMatmul()
    gm = run_passes(capture_module(m, *inputs), LowerKVCache())

    run_pass(gm, LowerMatmul())

    assert count_ops(gm)[ops.paged_update_cache] == 1
    golden, golden_inputs = eager(m, *inputs)
    outs, after = run_lowered(gm, inputs, device_inputs=["x0"], return_inputs=True)
    torch.testing.assert_close(outs[0], golden[0])
    torch.testing.assert_close(after[0], golden_inputs[0])
