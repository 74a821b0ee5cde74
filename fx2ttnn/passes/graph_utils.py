"""Small helpers shared by passes: constants, logical values, replacement, declarative matching."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.fx
from torch.fx.passes.utils.matcher_utils import InternalMatch, SubgraphMatcher

from ..lowering.ir import copy_meta, is_aten

aten = torch.ops.aten


def const_tensor(gm: torch.fx.GraphModule, node: Any) -> torch.Tensor | None:
    """The tensor behind a ``get_attr`` node (a lowering-time constant), else None."""
    if isinstance(node, torch.fx.Node) and node.op == "get_attr":
        obj = gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj if isinstance(obj, torch.Tensor) else None
    return None


def add_constant(gm: torch.fx.GraphModule, hint: str, tensor: torch.Tensor, *,
                 before: torch.fx.Node) -> torch.fx.Node:
    """Register ``tensor`` on ``gm`` under a fresh name and return a ``get_attr`` node placed before ``before``."""
    base = "c_" + "".join(ch if ch.isalnum() else "_" for ch in hint).removeprefix("c_")
    for i in itertools.count():
        name = base if i == 0 else f"{base}_{i}"
        if not hasattr(gm, name):
            break
    gm.register_buffer(name, tensor.detach().contiguous(), persistent=False)
    with gm.graph.inserting_before(before):
        node = gm.graph.get_attr(name)
    node.meta["val"] = torch.empty_like(tensor, device="meta")
    return node


def val(node: Any) -> torch.Tensor | None:
    """The logical value (FakeTensor / meta tensor) torch.export or a pass recorded for ``node``."""
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def shape(node: Any) -> tuple[int, ...]:
    v = val(node)
    if v is None:
        raise KeyError(f"node {node} has no recorded value")
    return tuple(int(d) for d in v.shape)


def set_val(node: torch.fx.Node, shape_: tuple[int, ...], dtype: torch.dtype) -> torch.fx.Node:
    node.meta["val"] = torch.empty(shape_, dtype=dtype, device="meta")
    return node


def replace(old: torch.fx.Node, new: torch.fx.Node, *, keep_val: bool = True) -> None:
    """Point every user of ``old`` at ``new`` (carrying provenance and the logical value), erase ``old``."""
    copy_meta(new, old)
    if keep_val and "val" in old.meta and "val" not in new.meta:
        new.meta["val"] = old.meta["val"]
    old.replace_all_uses_with(new)
    old.graph.erase_node(old)


def aten_nodes(gm: torch.fx.GraphModule, *targets: Any) -> Iterator[torch.fx.Node]:
    wanted = set(targets)
    for node in list(gm.graph.nodes):
        if is_aten(node) and (not wanted or node.target in wanted):
            yield node


def arg(node: torch.fx.Node, index: int, name: str, default: Any = None) -> Any:
    """Positional-or-keyword argument of an ATen call."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def normalize_dim(dim: int, rank: int) -> int:
    return dim + rank if dim < 0 else dim


# ---------------------------------------------------------------------------------------------
# declarative patterns (torch.fx SubgraphMatcher), rewritten by a function


@dataclass(frozen=True)
class Pattern:
    """A subgraph to find, given as a small function over ATen ops, with named side conditions.

    ``check(gm, match)`` returns None to accept or a string saying why the match is declined (the reason
    is recorded on the anchor node for reports).  A pattern placeholder matches an absent (None) argument
    only if it is listed in ``optional``; otherwise write a separate pattern for the form without it
    (``linear(x, w)`` vs ``linear(x, w, b)``).
    ``rewrite(gm, match)`` builds the replacement and returns the node that replaces the pattern's output.
    With ``ignore_literals`` the pattern's literal arguments (view shapes, transpose dims, scales) match any
    value, so one pattern covers every size; ``check`` must then validate the literals that matter.
    """

    name: str
    fn: Callable[..., Any]
    check: Callable[[torch.fx.GraphModule, "Match"], str | None]
    rewrite: Callable[[torch.fx.GraphModule, "Match"], torch.fx.Node]
    ignore_literals: bool = False
    optional: tuple[str, ...] = ()

    def graph(self) -> torch.fx.Graph:
        """The traced pattern; op nodes are named by their ATen op (``linear``, ``gelu``; ``add_1`` if repeated)."""
        g = torch.fx.symbolic_trace(self.fn).graph
        seen: dict[str, int] = {}
        for n in g.nodes:
            if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload):
                base = n.target._opname
                k = seen.get(base, 0)
                seen[base] = k + 1
                n.name = base if k == 0 else f"{base}_{k}"
        return g


@dataclass
class Match:
    """A match: pattern placeholders and pattern ops mapped to nodes of the graph, by pattern node name."""

    inputs: dict[str, Any]
    nodes: dict[str, torch.fx.Node]
    output: torch.fx.Node


def find_matches(gm: torch.fx.GraphModule, pattern: Pattern) -> list[Match]:
    pg = pattern.graph()
    matcher = SubgraphMatcher(pg, match_output=False, match_placeholder=False, remove_overlapping_matches=True,
                              ignore_literals=pattern.ignore_literals)
    out = []
    for m in matcher.match(gm.graph):
        match = _to_match(pg, m)
        # SubgraphMatcher normalizes ``linear(x, w)`` to ``linear(x, w, None)`` and lets a pattern placeholder
        # match that None: the argument is absent, which is a different (more specific) pattern's match.
        if any(v is None and k not in pattern.optional for k, v in match.inputs.items()):
            continue
        out.append(match)
    return out


def _to_match(pg: torch.fx.Graph, m: InternalMatch) -> Match:
    inputs, nodes = {}, {}
    for pn, gn in m.nodes_map.items():
        if pn.op == "placeholder":
            inputs[pn.name] = gn
        elif pn.op == "call_function":
            nodes[pn.name] = gn
    out_pn = next(n for n in pg.nodes if n.op == "output").args[0]
    return Match(inputs, nodes, m.nodes_map[out_pn])


def apply_patterns(gm: torch.fx.GraphModule, patterns: list[Pattern], stats: dict[str, int]) -> None:
    """Find and rewrite every match of each pattern in order; count rewrites/declines under the pattern's name."""
    for pattern in patterns:
        replaced: dict[torch.fx.Node, torch.fx.Node] = {}
        for match in find_matches(gm, pattern):
            if any(getattr(n, "_erased", False) for n in match.nodes.values()):
                continue  # an earlier rewrite of an overlapping match consumed these nodes
            for k, v in match.inputs.items():  # inputs may be outputs of earlier rewrites
                while isinstance(v, torch.fx.Node) and v in replaced:
                    v = replaced[v]
                match.inputs[k] = v
            reason = pattern.check(gm, match)
            if reason is not None:
                match.output.meta.setdefault("lowering_note", f"{pattern.name} declined: {reason}")
                stats[f"{pattern.name}_declined"] = stats.get(f"{pattern.name}_declined", 0) + 1
                continue
            with gm.graph.inserting_before(match.output):
                new = pattern.rewrite(gm, match)
            replaced[match.output] = new
            replace(match.output, new)
            _erase_matched(match)
            stats[pattern.name] = stats.get(pattern.name, 0) + 1
        gm.graph.eliminate_dead_code(is_impure_node=impure)


def _erase_matched(match: Match) -> None:
    """The rewrite replaces the whole matched subgraph: drop its nodes nothing reads any more, in-place ones
    (e.g. KV-cache writes the replacement re-does) included, which dead-code elimination would keep."""
    pending = [n for n in match.nodes.values() if not getattr(n, "_erased", False)]
    changed = True
    while changed:
        changed = False
        for n in list(pending):
            if not n.users:
                n.graph.erase_node(n)
                pending.remove(n)
                changed = True


def impure(node: torch.fx.Node) -> bool:
    """In-place ops (KV-cache writes, position increment) are kept by dead-code elimination."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        return target._schema.is_mutable
    return getattr(target, "inplace", None) is not None or node.is_impure()


def loop_invariant(gm: torch.fx.GraphModule, invariant_inputs: set[str]) -> set[torch.fx.Node]:
    """Nodes whose value is the same on every call of a step program: they depend only on the inputs named
    ``invariant_inputs`` (per-utterance data) and on constants, and on at least one such input (nodes of
    constants alone are bound once anyway).  In-place ops are never invariant."""
    const: set[torch.fx.Node] = set()
    inv: set[torch.fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if node.name in invariant_inputs:
                inv.add(node)
        elif node.op == "get_attr":
            const.add(node)
        elif node.op == "call_function" and not impure(node):
            inputs = node.all_input_nodes
            if inputs and all(n in const for n in inputs):
                const.add(node)
            elif inputs and all(n in const or n in inv for n in inputs):
                inv.add(node)
    return inv
