"""Device constants shared by the programs bound to one backend, found by what they are made of.

Every variant of a program (another batch size, text bucket or frame bucket) is captured and lowered on its own,
so each one holds its own host copy of the same weights and, when bound, would upload its own device copy:
the decoder's 226 MB (float32) once per text bucket.  A :class:`ConstantPool` lets binding reuse a device value
that an earlier program bound, when the bind-time computation that produces it is the same.

The key of a bind-time value is structural and content-addressed:

* a host constant (``get_attr``): its dtype, shape, strides and the SHA-1 of its bytes;
* a bind-time call: the op's qualified name and the keys of its arguments (nodes by their keys, ttnn references
  and constructed configs by their ``repr``, Python scalars and containers by value).

Two bind-time values with equal keys are the same op applied to bitwise-equal inputs, so they are equal.  A value
has no key, and is never shared, when anything it is made of cannot be keyed (an unknown argument type), or when
the program writes it in place, passes it as an output buffer or deallocates it.  Only the values the per-call
code reads are pooled; intermediates of the bind-time computation are dropped as before.
"""
from __future__ import annotations

import enum
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable

import torch
import torch.fx

from ..lowering.ir import Construct, OpKind, Ref

OUTPUT_BUFFER_KWARGS = ("output_tensor", "optional_output_tensor")


def tensor_key(t: torch.Tensor) -> Hashable | None:
    """Dtype, shape, strides and SHA-1 of the bytes of a host tensor (None for a meta or non-CPU tensor)."""
    if t.device.type != "cpu":
        return None
    flat = t.detach().contiguous().reshape(-1)
    data = flat.view(torch.uint8).numpy() if flat.numel() else b""
    return ("tensor", str(t.dtype), tuple(t.shape), tuple(t.stride()), hashlib.sha1(data).hexdigest())


def _target_name(target: Any) -> str:
    name = getattr(target, "qualified_name", None)
    if name is not None:
        return name
    return f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', repr(target))}"


class _Unkeyable(Exception):
    pass


def _arg_key(a: Any, keys: dict[torch.fx.Node, Hashable | None]) -> Hashable:
    if isinstance(a, torch.fx.Node):
        k = keys.get(a)
        if k is None:
            raise _Unkeyable
        return k
    if a is None or isinstance(a, (bool, int, float, str)):
        return (type(a).__name__, repr(a))
    if isinstance(a, (Ref, Construct, torch.dtype, enum.Enum)):
        return ("repr", repr(a))
    if isinstance(a, (list, tuple)):
        return (type(a).__name__, tuple(_arg_key(x, keys) for x in a))
    if isinstance(a, dict):
        return ("dict", tuple((k, _arg_key(v, keys)) for k, v in sorted(a.items())))
    raise _Unkeyable


def _written_by_program(node: torch.fx.Node, constants: set[torch.fx.Node]) -> bool:
    """Whether per-call code writes ``node`` in place, writes into it as an output buffer, or frees it."""
    for user in node.users:
        if user in constants:
            continue
        if getattr(user.target, "kind", None) is OpKind.MEMORY:
            return True
        inplace = getattr(user.target, "inplace", None)
        if inplace is not None and inplace < len(user.args) and user.args[inplace] is node:
            return True
        if any(user.kwargs.get(k) is node for k in OUTPUT_BUFFER_KWARGS):
            return True
    return False


def constant_keys(gm: torch.fx.GraphModule, constants: Iterable[torch.fx.Node],
                  resolve: Any) -> dict[torch.fx.Node, Hashable | None]:
    """The key of each bind-time node (``constants``, in graph order); ``resolve(node)`` gives a get_attr's value.
    Host tensors are hashed in parallel (hashlib releases the GIL)."""
    constants = list(constants)
    attrs = [n for n in constants if n.op == "get_attr"]
    values = [resolve(n) for n in attrs]
    tensors = [(n, v) for n, v in zip(attrs, values) if isinstance(v, torch.Tensor)]
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        digests = dict(zip((n for n, _ in tensors), pool.map(lambda nv: tensor_key(nv[1]), tensors)))
    const_set = set(constants)
    keys: dict[torch.fx.Node, Hashable | None] = {}
    for n in constants:
        if n.op == "get_attr":
            keys[n] = digests.get(n)
            continue
        try:
            keys[n] = ("call", _target_name(n.target), _arg_key(n.args, keys), _arg_key(n.kwargs, keys))
        except _Unkeyable:
            keys[n] = None
    for n in constants:
        if keys[n] is not None and _written_by_program(n, const_set):
            keys[n] = None
    return keys


@dataclass
class ConstantPool:
    """Bound device constants by key (see the module docstring); one pool per backend / lowering."""

    values: dict[Hashable, Any] = field(default_factory=dict)
    hits: int = 0
    bytes_reused: int = 0   # device bytes a binding did not allocate because the pool had them

    def get(self, key: Hashable | None, nbytes: int = 0) -> tuple[bool, Any]:
        """``(True, value)`` if a value of this key was bound before (``nbytes``: its device size, counted as
        reused), else ``(False, None)``."""
        if key is None or key not in self.values:
            return False, None
        self.hits += 1
        self.bytes_reused += nbytes
        return True, self.values[key]

    def put(self, key: Hashable | None, value: Any) -> None:
        if key is not None:
            self.values.setdefault(key, value)

    def __len__(self) -> int:
        return len(self.values)
