"""Analyses of lowered TTNN programs for ``fx2ttnn dump``, on networkx views of their fx graphs.

``to_networkx(gm)`` is a ``DiGraph`` whose nodes are the fx nodes themselves (operand → user edges); the rest
are graph queries on it instead of hand-written walks:

- ``bind_time``: what the executor evaluates once when it binds a program (``runtime/executor.py``): nodes
  not reachable from a per-call source (program inputs, in-place ops, ops without operands);
- ``longest_chain``: the longest dependency chain of per-call TTNN ops (``nx.dag_longest_path``), the
  number of ops that must run one after another in a call;
- ``module_graph``: per-call ops grouped by HF layer (``nx.quotient_graph``): ops per group and which groups
  feed which;
- ``program_stats``: everything the dump summary says about one program (see ``tools/dump.py`` for the
  definitions and the JSON schema).
"""
from __future__ import annotations

import math
import operator
import re
from collections import Counter
from typing import Any

import networkx as nx
import torch.fx

from ..lowering.ir import DTYPE_BYTES, HostOp, OpKind, TensorSpec, TTNNOp, source_module
from ..lowering.printer import node_kind, target_name

_SOURCE = "__per_call_source__"


def to_networkx(gm: torch.fx.GraphModule) -> nx.DiGraph:
    """The graph as a ``DiGraph`` keyed by fx node, ``kind`` (``printer.NODE_KINDS``) on every node."""
    g = nx.DiGraph()
    for n in gm.graph.nodes:
        g.add_node(n, kind=node_kind(n))
        g.add_edges_from((a, n) for a in n.all_input_nodes)
    return g


def bind_time(g: nx.DiGraph) -> set[torch.fx.Node]:
    """Nodes evaluated once at bind time: constants and the ops that depend only on constants.

    Mirrors ``lowering.ir.is_bind_time``: a call is per-call iff it is in-place, has no operands, or reads a
    program input (transitively).
    """
    seeds = [n for n in g if n.op in ("placeholder", "output") or (
        n.op == "call_function" and (getattr(n.target, "inplace", None) is not None or g.in_degree(n) == 0))]
    h = nx.DiGraph(g.edges)
    h.add_nodes_from(g)
    h.add_edges_from((_SOURCE, s) for s in seeds)
    per_call = nx.descendants(h, _SOURCE)
    return {n for n in g if n.op in ("get_attr", "call_function") and n not in per_call}


def per_call_constants(g: nx.DiGraph, bound: set[torch.fx.Node]) -> list[torch.fx.Node]:
    """Bound values read by per-call code (the executor keeps exactly these after binding)."""
    return [n for n in bound if any(u not in bound for u in g.successors(n))]


def _is_op(n: torch.fx.Node) -> bool:
    return n.op == "call_function" and n.target is not operator.getitem


def longest_chain(g: nx.DiGraph, bound: set[torch.fx.Node]) -> list[torch.fx.Node]:
    """The longest chain of per-call ops where each reads the one before (``getitem``s are free)."""
    ops = [n for n in g if n.op == "call_function" and n not in bound]
    h = g.subgraph(ops)
    if h.number_of_nodes() == 0:
        return []
    weighted = nx.DiGraph()
    weighted.add_nodes_from(h)
    weighted.add_weighted_edges_from((a, b, 1 if _is_op(b) else 0) for a, b in h.edges)
    # a lone first op counts too: dag_longest_path measures edges, so start every chain from a virtual root
    weighted.add_weighted_edges_from((_SOURCE, n, 1 if _is_op(n) else 0) for n in h if h.in_degree(n) == 0)
    path = nx.dag_longest_path(weighted, weight="weight")
    return [n for n in path if n != _SOURCE and _is_op(n)]


_LAYER = re.compile(r"^(.*?\.\d+)(?:\.|$)")


def module_group(path: str) -> str:
    """An HF module path cut after its first numbered component: ``…layers.3.self_attn`` → ``…layers.3``."""
    m = _LAYER.match(path)
    return m.group(1) if m else path


def module_graph(g: nx.DiGraph, bound: set[torch.fx.Node]) -> nx.DiGraph:
    """Per-call ops grouped by ``module_group`` of their HF module (``""``: no module recorded).

    Nodes are group names with ``ops`` (per-call TTNN/host ops; getitems not counted) and ``first`` (the
    group's first node position); an edge ``a → b`` with ``tensors`` = how many values of ``a`` ``b`` reads.
    """
    order = {n: i for i, n in enumerate(g)}
    calls = [n for n in g if n.op == "call_function" and n not in bound]
    blocks: dict[str, set[torch.fx.Node]] = {}
    for n in calls:
        blocks.setdefault(module_group(source_module(n)), set()).add(n)
    h = g.subgraph(calls)
    q = nx.quotient_graph(h, list(blocks.values()), relabel=False)
    out = nx.DiGraph()
    name_of = {frozenset(v): k for k, v in blocks.items()}
    for block in q:
        out.add_node(name_of[block], ops=sum(1 for n in block if _is_op(n)), first=min(order[n] for n in block))
    for a, b in q.edges:
        tensors = sum(1 for x in a for y in g.successors(x) if y in b)
        out.add_edge(name_of[a], name_of[b], tensors=tensors)
    return out


def module_groups(gm: torch.fx.GraphModule) -> dict[torch.fx.Node, str]:
    """Every call's ``module_group`` (DOT clusters)."""
    return {n: module_group(source_module(n)) for n in gm.graph.nodes if n.op == "call_function"}


# ---------------------------------------------------------------------------------------------
# per-program numbers for the dump summary


def _spec(n: torch.fx.Node) -> TensorSpec | None:
    return n.meta.get("tensor_spec")


def _device_bytes(n: torch.fx.Node) -> int:
    """A device value's bytes: ``TensorSpec.nbytes`` (tile-padded), except prepared conv weights.

    ``ttnn.prepare_conv_weights`` & co. return ttnn's own flattened conv-weight layout; their spec keeps the
    logical ``[O, I, KH, KW]`` shape, whose tile padding of ``(KH, KW)`` would overstate them ~100x, so they
    count their logical bytes.
    """
    s = _spec(n)
    if s is None or not s.is_ttnn or not s.on_device:
        return 0
    if isinstance(n.target, TTNNOp) and n.target.name.startswith("prepare_conv"):
        return int(math.prod(s.shape) * DTYPE_BYTES.get(s.dtype, 4.0))
    return s.nbytes


def _gathered_bytes(table: torch.fx.Node, reader: torch.fx.Node) -> int | None:
    """Bytes ``reader`` reads of ``table`` when it is a ``ttnn.embedding`` gathering rows of it, else None."""
    if not (isinstance(reader.target, TTNNOp) and reader.target.name == "embedding"):
        return None
    if len(reader.args) < 2 or reader.args[1] is not table or not isinstance(reader.args[0], torch.fx.Node):
        return None
    idx, spec = _spec(reader.args[0]), _spec(table)
    if idx is None or spec is None:
        return None
    return int(math.prod(idx.shape) * spec.shape[-1] * DTYPE_BYTES.get(spec.dtype, 4.0))


def per_call_read_bytes(g: nx.DiGraph, bound: set[torch.fx.Node]) -> int:
    """Bytes of bound device constants one call reads: whole tensors, except ``ttnn.embedding`` tables,
    of which only the gathered rows (indices × row bytes) count."""
    total = 0
    for c in per_call_constants(g, bound):
        size = _device_bytes(c)
        readers = [u for u in g.successors(c) if u not in bound]
        gathered = [_gathered_bytes(c, u) for u in readers]
        total += size if any(b is None for b in gathered) else min(size, sum(gathered))
    return total


def _direction(n: torch.fx.Node) -> str:
    out = _spec(n)
    src = next((_spec(a) for a in n.all_input_nodes), None)
    out_dev = bool(out is not None and out.is_ttnn and out.on_device)
    in_dev = bool(src is not None and src.is_ttnn and src.on_device)
    if out_dev and not in_dev:
        return "host_to_device"
    if in_dev and not out_dev:
        return "device_to_host"
    return "host" if not out_dev else "device"


def program_stats(gm: torch.fx.GraphModule) -> dict[str, Any]:
    """The summary numbers of one lowered program (keys as in ``tools/dump.py``'s ``program_stats`` schema)."""
    g = to_networkx(gm)
    bound = bind_time(g)
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    hist, per_call_hist, bind_hist = Counter(), Counter(), Counter()
    ops_per_call = transfers_per_call = host_per_call = 0
    for n in calls:
        if isinstance(n.target, (TTNNOp, HostOp)):
            hist[n.target.qualified_name] += 1
            (bind_hist if n in bound else per_call_hist)[n.target.qualified_name] += 1
        if n in bound or n.target is operator.getitem:
            continue
        kind = getattr(n.target, "kind", None)  # counted as the executor counts its generated calls
        if kind is OpKind.HOST:
            host_per_call += 1
        elif kind is OpKind.TRANSFER:
            transfers_per_call += 1
        elif kind is not OpKind.MEMORY:
            ops_per_call += 1
    transfers = [{"node": n.name, "op": target_name(n), "direction": _direction(n), "module": source_module(n),
                  "spec": str(_spec(n)) if _spec(n) is not None else "?",
                  "nbytes": _spec(n).nbytes if _spec(n) is not None else 0}
                 for n in calls if n not in bound and getattr(n.target, "kind", None) is OpKind.TRANSFER]
    fallbacks = [{"op": n.target.name.removeprefix("host."), "module": source_module(n),
                  "reason": n.meta.get("fallback_reason", ""), "node": n.name}
                 for n in calls if isinstance(n.target, HostOp)]
    uploads = [n for n in calls if isinstance(n.target, TTNNOp) and n.target.name == "from_torch"
               and all(a.op == "get_attr" for a in n.all_input_nodes)]
    chain = longest_chain(g, bound)
    mg = module_graph(g, bound)
    modules = [{"module": m, "ops_per_call": mg.nodes[m]["ops"],
                "feeds": sorted(mg.successors(m), key=lambda x: mg.nodes[x]["first"])}
               for m in sorted(mg, key=lambda x: mg.nodes[x]["first"])]
    return {
        "nodes": len(gm.graph.nodes),
        "op_histogram": dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "op_histogram_per_call": dict(sorted(per_call_hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "op_histogram_bind_time": dict(sorted(bind_hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        "ttnn_ops": sum(1 for n in calls if isinstance(n.target, TTNNOp) and n.target.kind in
                        (OpKind.COMPUTE, OpKind.DATA_MOVEMENT)),
        "ops_per_call": ops_per_call,
        "transfers_per_call": transfers_per_call,
        "host_ops_per_call": host_per_call,
        "bind_time_ops": sum(1 for n in bound if n.op == "call_function" and _is_op(n)),
        "host_fallbacks": fallbacks,
        "transfers": transfers,
        "weight_bytes": sum(_spec(n).nbytes for n in uploads if _spec(n) is not None),
        "constant_bytes": sum(_device_bytes(n) for n in per_call_constants(g, bound)),
        "per_call_read_bytes": per_call_read_bytes(g, bound),
        "peak_device_bytes": gm.meta.get("memory", {}).get("peak", 0),
        "deallocations_per_call": sum(1 for n in calls if n not in bound and getattr(n.target, "kind", None)
                                      is OpKind.MEMORY),
        "longest_chain": {"length": len(chain), "nodes": [n.name for n in chain]},
        "modules": modules,
        "compute_configs": compute_configs(n for n in calls if n not in bound),
    }


def compute_configs(nodes) -> list[dict[str, Any]]:
    """Per op class (``fx2ttnn/precision.py``): the compute kernel config its ops carry and how many ops
    (``assign_compute_configs`` records both in ``node.meta["precision"]``)."""
    counts: Counter = Counter()
    for n in nodes:
        if "precision" in n.meta:
            cls, p = n.meta["precision"]
            counts[(cls, p.describe())] += 1
    return [{"class": c, "config": d, "ops": k} for (c, d), k in sorted(counts.items())]
