"""Bind a lowered program to a ttnn module once; run it as one generated Python function.

Binding (the mirror of ttnn trace capture on the host side):
  1. every node that depends only on constants — weight uploads ``from_torch(get_attr)``, their layout
     conversions — is executed now, with contract checks, and its result kept (weights live on device);
     with a ``ConstantPool`` (``runtime/constants.py``), a value that another program bound from the same
     bytes by the same ops is taken from the pool instead (the variants of a program share their weights);
  2. the remaining nodes become straight-line Python source, one ttnn call per line, every function,
     constant and ttnn attribute pre-resolved into the function's globals, values freed after their last
     use.  The source holds generated names (``a0``, ``v3``, ``f12``) and literals of exact ``bool`` / ``int``
     / finite ``float`` / ``str`` values only; nothing from the model (module paths, node names) is code.  On the reference backend the calls go to the kernels without per-call contract checks: the
     program was checked node by node when it was lowered (``lowering.abstract``) and its inputs are
     checked against their specs on the first call.

The same code drives the real ``ttnn`` package and the reference implementation.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.fx

from ..errors import GenerationError
from ..lowering.abstract import resolve_arg, resolve_path
from ..lowering.ir import Construct, HostOp, OpKind, Ref, TensorSpec, TTNNOp, split_bind_time
from .backend import Backend
from .constants import ConstantPool, constant_keys


@dataclass
class CallCounts:
    ttnn_ops: int = 0
    host_ops: int = 0
    transfers: int = 0
    deallocations: int = 0




class BoundProgram:
    """A lowered program bound to ``backend``: call it with the program inputs, get its outputs."""

    def __init__(self, gm: torch.fx.GraphModule, backend: Backend, *, name: str = "program",
                 output_names: list[str] | None = None, constant_pool: ConstantPool | None = None):
        self.name = name
        self.backend = backend
        self.graph_module = gm
        self.placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.input_names = [n.name for n in self.placeholders]
        self.output_names = list(output_names or [])
        self.input_specs: list[TensorSpec] = [n.meta["tensor_spec"] for n in self.placeholders]
        self._globals: dict[str, Any] = {"torch": torch, "math": math}
        self._names: dict[torch.fx.Node, str] = {}
        self.counts = CallCounts()
        self._checked_fns: dict[str, Any] = {}  # global name -> the checked function (reference backend)
        self._run_checked: Callable[..., tuple] | None = None
        self.constant_pool = constant_pool
        self.constants_reused = 0  # bound values taken from ``constant_pool`` instead of computed
        self._bind_constants(gm)
        self.source = self._codegen(gm)
        scope: dict[str, Any] = {}
        exec(compile(self.source, f"<fx2ttnn {name}>", "exec"), self._globals, scope)
        self.run: Callable[..., tuple] = scope["run"]
        self._validated = False

    # -- binding -------------------------------------------------------------------------------
    def _global(self, prefix: str, value: Any) -> str:
        name = f"{prefix}{len(self._globals)}"
        self._globals[name] = value
        return name

    def _fn(self, target: Any) -> Any:
        if isinstance(target, TTNNOp):
            return self.backend.fn(target)
        if isinstance(target, HostOp):
            return target.target
        return target

    def _bind_constants(self, gm: torch.fx.GraphModule) -> None:
        const, self._calls = split_bind_time(gm.graph)
        const_set = set(const)
        self._constants = const_set
        # only what the per-call code reads gets a name (and a place in the pool); the rest is bind-time scratch
        named = [n for n in const if any(u not in const_set for u in n.users)]
        pool = self.constant_pool
        values: dict[torch.fx.Node, Any] = {}
        keys: dict[torch.fx.Node, Any] = {}
        if pool is not None:
            keys = constant_keys(gm, const, lambda n: resolve_path(gm, n.target))
            for node in named:
                spec = node.meta.get("tensor_spec")
                hit, value = pool.get(keys[node], spec.nbytes if spec is not None else 0)
                if hit:
                    values[node] = value
                    self.constants_reused += 1
        needed: set[torch.fx.Node] = set()  # what must be computed: the named misses and what they read
        stack = [n for n in named if n not in values]
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(n.all_input_nodes)
        ttnn, device = self.backend.ttnn, self.backend.device
        for node in const:
            if node not in needed:
                continue
            if node.op == "get_attr":
                values[node] = resolve_path(gm, node.target)
            else:
                fn = resolve_path(ttnn, node.target.name) if isinstance(node.target, TTNNOp) else self._fn(node.target)
                args = resolve_arg(node.args, ttnn, device, values.__getitem__)
                kwargs = resolve_arg(node.kwargs, ttnn, device, values.__getitem__)
                values[node] = fn(*args, **kwargs)  # checked call: constants are bound once
        for node in named:
            if pool is not None and node in needed:
                pool.put(keys.get(node), values[node])
            self._names[node] = self._global("c", values[node])

    def _expr(self, a: Any) -> str:
        if isinstance(a, torch.fx.Node):
            return self._names[a]
        if isinstance(a, (Ref, Construct)):
            return self._global("r", resolve_arg(a, self.backend.ttnn, self.backend.device, lambda n: None))
        if isinstance(a, list):
            return "[" + ", ".join(self._expr(x) for x in a) + "]"
        if isinstance(a, tuple):
            return "(" + "".join(self._expr(x) + ", " for x in a) + ")"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{self._expr(k)}: {self._expr(v)}" for k, v in a.items()) + "}"
        # Only values of these exact types are written into the source, as their repr (a literal); anything
        # else — a non-finite float, a str or int subclass whose __repr__ could be anything — is a global.
        if a is None or type(a) in (bool, int, str) or (type(a) is float and math.isfinite(a)):
            return repr(a)
        return self._global("k", a)

    def _codegen(self, gm: torch.fx.GraphModule) -> str:
        nodes = self._calls
        params = []
        for i, ph in enumerate(self.placeholders):
            self._names[ph] = f"a{i}"
            params.append(f"a{i}")
        last_use: dict[torch.fx.Node, torch.fx.Node] = {}
        for n in nodes:
            for inp in n.all_input_nodes:
                last_use[inp] = n
        out_node = next(n for n in gm.graph.nodes if n.op == "output")
        outputs = set(out_node.all_input_nodes)
        lines = [f"def run({', '.join(params)}):"]
        local: set[torch.fx.Node] = set()
        for i, n in enumerate(nodes):
            var = f"v{i}"
            target = n.target
            args = ", ".join([self._expr(a) for a in n.args] + [f"{k}={self._expr(v)}" for k, v in n.kwargs.items()])
            if target is operator.getitem:
                lines.append(f"    {var} = {self._expr(n.args[0])}[{self._expr(n.args[1])}]")
            else:
                fn = self._global("f", self._fn(target))
                if isinstance(target, TTNNOp) and self.backend.is_reference:
                    self._checked_fns[fn] = resolve_path(self.backend.ttnn, target.name)
                inplace = getattr(target, "inplace", None)
                if inplace is not None:
                    lines.append(f"    {fn}({args})")
                    lines.append(f"    {var} = {self._expr(n.args[inplace])}")
                else:
                    lines.append(f"    {var} = {fn}({args})")
                kind = getattr(target, "kind", None)
                if kind is OpKind.HOST:
                    self.counts.host_ops += 1
                elif kind is OpKind.TRANSFER:
                    self.counts.transfers += 1
                elif kind is OpKind.MEMORY:
                    self.counts.deallocations += 1
                else:
                    self.counts.ttnn_ops += 1
            self._names[n] = var
            local.add(n)
            dead = [self._names[x] for x in n.all_input_nodes
                    if last_use.get(x) is n and x not in outputs and x in local]
            if dead:
                lines.append(f"    del {', '.join(dead)}")
        rets = [self._expr(a) for a in out_node.args[0]]
        lines.append(f"    return ({''.join(r + ', ' for r in rets)})")
        return "\n".join(lines) + "\n"

    # -- running -------------------------------------------------------------------------------
    def check_inputs(self, inputs: tuple) -> None:
        if len(inputs) != len(self.placeholders):
            raise GenerationError(f"{self.name} takes {len(self.placeholders)} inputs "
                                  f"({', '.join(p.name for p in self.placeholders)}), got {len(inputs)}")
        for ph, spec, x in zip(self.placeholders, self.input_specs, inputs):
            got = self.backend.spec_of(x)
            if got is None or got.shape != spec.shape or got.dtype != spec.dtype or got.layout != spec.layout \
                    or got.on_device != spec.on_device:
                raise GenerationError(f"{self.name} input '{ph.name}' must be {spec}, got {got}")

    def release_host_constants(self) -> int:
        """Drop the host copies of constants that only bind-time ops read (weights, once uploaded): the graph
        keeps a meta tensor of the same shape and dtype in their place.  Returns the bytes released.  After
        this the graph cannot be bound again (a new lowering can); tools that re-bind or export weights use
        a lowering that keeps them (``lower_model(keep_host_weights=True)``)."""
        gm = self.graph_module
        released = 0
        for node in gm.graph.nodes:
            if node.op != "get_attr" or not node.users or any(u not in self._constants for u in node.users):
                continue
            owner_path, _, attr = node.target.rpartition(".")
            owner = resolve_path(gm, owner_path) if owner_path else gm
            value = getattr(owner, attr)
            if not isinstance(value, torch.Tensor) or value.device.type == "meta":
                continue
            released += value.numel() * value.element_size()
            meta = torch.empty(value.shape, dtype=value.dtype, device="meta")
            if isinstance(value, torch.nn.Parameter):
                meta = torch.nn.Parameter(meta, requires_grad=False)
            if attr in getattr(owner, "_parameters", {}):
                owner._parameters[attr] = meta
            elif attr in getattr(owner, "_buffers", {}):
                owner._buffers[attr] = meta
            else:
                setattr(owner, attr, meta)
        return released

    @property
    def run_checked(self) -> Callable[..., tuple]:
        """``run`` with every ttnn call through the public, checked function (the same function as ``run`` on
        the real ttnn).  Trace capture goes through it: the reference records checked calls (``trace.py``)."""
        if self._run_checked is None:
            if not self._checked_fns:
                self._run_checked = self.run
            else:
                scope: dict[str, Any] = {}
                exec(compile(self.source, f"<fx2ttnn {self.name} checked>", "exec"),
                     {**self._globals, **self._checked_fns}, scope)
                self._run_checked = scope["run"]
        return self._run_checked

    def __call__(self, *inputs: Any) -> tuple:
        if not self._validated:
            self.check_inputs(inputs)
            self._validated = True
        return self.run(*inputs)
