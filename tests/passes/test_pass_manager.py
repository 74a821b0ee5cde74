"""pass_manager: ordered passes, dumps and printing after each pass, lint checks, errors naming the pass."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fx2ttnn.errors import LoweringError
from fx2ttnn.lowering import op_table as ops
from fx2ttnn.passes.canonicalize import Canonicalize
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.passes.pass_manager import FxPass, PassManager, PassResult

from .helpers import aten, capture_module, count_ops


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(32, 32)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.drop(torch.relu(self.lin(x))) * 2


@pytest.fixture
def gm():
    torch.manual_seed(0)
    return capture_module(Block().eval(), torch.randn(2, 32))


PASSES = [Canonicalize, LowerLinear, LowerElementwise]


def test_passes_run_in_order_and_are_recorded(gm):
    result = PassManager([p() for p in PASSES])(gm)

    assert result.passes_run == ["canonicalize", "lower_linear", "lower_elementwise"]
    assert [r.stats for r in result.records] == [{"noop_removed": 1}, {"linear_relu": 1}, {"binary": 1}]
    assert [(r.nodes_before, r.nodes_after) for r in result.records] == [(8, 7), (7, 6), (6, 6)]
    assert count_ops(result.graph_module) == {ops.linear: 1, ops.multiply: 1}


def test_dump_dir_gets_one_file_per_pass_with_stats_headers(gm, tmp_path):
    PassManager([p() for p in PASSES], dump_dir=tmp_path / "dumps", program="block")(gm)

    files = sorted(p.name for p in (tmp_path / "dumps").iterdir())
    assert files == ["000_captured.txt", "001_canonicalize.txt", "002_lower_linear.txt", "003_lower_elementwise.txt"]
    captured = (tmp_path / "dumps" / "000_captured.txt").read_text()
    assert captured.startswith("# block: after captured\n# stats: no change\n")
    assert "aten.dropout.default" in captured
    linear = (tmp_path / "dumps" / "002_lower_linear.txt").read_text()
    assert linear.startswith("# block: after lower_linear\n# stats: {'linear_relu': 1}\n")
    assert "ttnn_linear" in linear and "dropout" not in linear


@pytest.mark.parametrize("print_after, printed", [
    ({"lower_linear"}, ["lower_linear"]),
    ({"captured", "lower_elementwise"}, ["captured", "lower_elementwise"]),
    ("all", ["captured", "canonicalize", "lower_linear", "lower_elementwise"]),
    ((), []),
], ids=["one", "captured-and-last", "all", "none"])
def test_print_after_filters_by_pass_name(gm, print_after, printed):
    out: list[str] = []

    PassManager([p() for p in PASSES], print_after=print_after, printer=out.append,
                render=lambda g: f"{len(g.graph.nodes)} nodes\n")(gm)

    assert [text.split("\n")[0].removeprefix("# after ") for text in out] == printed
    assert all(text.endswith(" nodes\n") for text in out)


def test_unknown_pass_name_in_print_after_raises():
    with pytest.raises(LoweringError, match=r"unknown pass name\(s\) \['lower_linaer'\]; passes are: canonicalize"):
        PassManager([p() for p in PASSES], print_after={"lower_linaer"})


class Boom(FxPass):
    name = "boom"

    def __init__(self, error: Exception):
        self.error = error

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        raise self.error


@pytest.mark.parametrize("error", [ValueError("bad shape"), LoweringError("bad node")], ids=["ValueError",
                                                                                              "LoweringError"])
def test_failing_pass_is_reraised_naming_it_and_the_passes_before(gm, error):
    pm = PassManager([Canonicalize(), LowerLinear(), Boom(error), LowerElementwise()], program="block")

    with pytest.raises(LoweringError) as info:
        pm(gm)

    assert str(info.value) == (f"pass 'boom' failed on block (passes before it: canonicalize, lower_linear): "
                               f"{error}")
    assert info.value.__cause__ is error


def test_first_pass_failing_says_none_ran(gm):
    with pytest.raises(LoweringError, match=r"pass 'boom' failed \(passes before it: none\): oops"):
        PassManager([Boom(RuntimeError("oops"))])(gm)


class BreakGraph(FxPass):
    """Leaves a node that reads a value defined after it: ``graph.lint()`` rejects the graph."""

    name = "break_graph"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        first = next(n for n in gm.graph.nodes if n.op == "call_function")
        last = [n for n in gm.graph.nodes if n.op == "call_function"][-1]
        first.args = (last, *first.args[1:])
        return PassResult(gm, True, {"broken": 1})


def test_check_lints_the_graph_after_each_pass(gm):
    with pytest.raises(LoweringError, match=r"pass 'break_graph' failed \(passes before it: canonicalize\)"):
        PassManager([Canonicalize(), BreakGraph()], check=True)(gm)


def test_without_check_a_broken_graph_passes_through(gm):
    result = PassManager([Canonicalize(), BreakGraph()], check=False)(gm)

    assert result.records[-1].stats == {"broken": 1}


def test_pass_result_keeps_non_zero_stats_and_declines_are_no_modification(gm):
    class Declines(FxPass):
        name = "declines"

        def call(self, gm):
            return self.result(gm, {"linear_declined": 2, "rewritten": 0})

    res = Declines()(gm)

    assert res.stats == {"linear_declined": 2}
    assert not res.modified
    assert count_ops(gm)[aten.linear.default] == 1
