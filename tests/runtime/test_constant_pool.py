"""ConstantPool: programs bound to one backend share device constants made from the same bytes by the same ops."""
from __future__ import annotations

import torch
import torch.fx
from torch import nn

from fx2ttnn.lowering import op_table as ops
from fx2ttnn.lowering.ir import DEVICE, Ref, TensorSpec
from fx2ttnn.passes.lower_data_movement import LowerDataMovement
from fx2ttnn.passes.lower_elementwise import LowerElementwise
from fx2ttnn.passes.lower_linear import LowerLinear
from fx2ttnn.runtime.backend import open_backend
from fx2ttnn.runtime.constants import ConstantPool, constant_keys, tensor_key
from fx2ttnn.runtime.executor import BoundProgram
from fx2ttnn.runtime.generate import upload

from ..passes.helpers import capture_module, finish, run_passes, to_host


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 96)
        self.b = nn.Linear(96, 64)

    def forward(self, x):
        return (self.b(torch.relu(self.a(x))),)


def _program(module: nn.Module, rows: int) -> tuple[torch.fx.GraphModule, torch.Tensor]:
    """``module`` captured and lowered for a [1, rows, 64] input (a "variant": its own capture, its own weights)."""
    x = torch.randn(1, rows, 64)
    gm = run_passes(capture_module(module, x, names=["x"]), LowerLinear(), LowerElementwise(), LowerDataMovement())
    return finish(gm, [x], device_inputs={"x": TensorSpec(tuple(x.shape), "float32", "TILE", "DRAM", True)}), x


def _weights(prog: BoundProgram) -> list:
    return [prog._globals[prog._names[n]] for n in prog._names if n.op == "call_function" and n in prog._constants]


def _run(prog: BoundProgram, x: torch.Tensor) -> torch.Tensor:
    b = prog.backend
    return to_host(prog(upload(b.ttnn, b.device, prog.input_specs[0], x))[0])


def test_two_variants_of_a_program_share_their_device_weights():
    torch.manual_seed(0)
    m = MLP().eval()
    backend, pool = open_backend("reference"), ConstantPool()
    gm32, x32 = _program(m, 32)
    gm64, x64 = _program(m, 64)
    first = BoundProgram(gm32, backend, name="v32", constant_pool=pool)
    allocated = backend.device.allocated_bytes
    second = BoundProgram(gm64, backend, name="v64", constant_pool=pool)

    assert first.constants_reused == 0 and second.constants_reused == 4  # 2 weights, 2 biases
    assert backend.device.allocated_bytes == allocated  # binding the second variant uploaded nothing
    assert pool.bytes_reused == (64 * 96 + 32 * 96 + 96 * 64 + 32 * 64) * 4  # biases: one tile row high
    assert {id(w) for w in _weights(second)} == {id(w) for w in _weights(first)}
    alone = BoundProgram(_program(m, 64)[0], open_backend("reference"), name="alone")
    torch.testing.assert_close(_run(second, x64), _run(alone, x64), atol=0, rtol=0)
    torch.testing.assert_close(_run(first, x32), m(x32)[0], atol=1e-5, rtol=1e-5)


def test_a_weight_that_differs_in_one_element_is_not_shared():
    torch.manual_seed(0)
    m = MLP().eval()
    backend, pool = open_backend("reference"), ConstantPool()
    BoundProgram(_program(m, 32)[0], backend, name="v32", constant_pool=pool)
    with torch.no_grad():
        m.a.weight[3, 5] += 1e-6
    gm, x = _program(m, 32)
    other = BoundProgram(gm, backend, name="changed", constant_pool=pool)

    assert other.constants_reused == 3  # a.weight is uploaded again; a.bias, b.weight, b.bias are reused
    torch.testing.assert_close(_run(other, x), m(x)[0], atol=1e-5, rtol=1e-5)


def test_without_a_pool_nothing_is_shared():
    torch.manual_seed(0)
    m = MLP().eval()
    backend = open_backend("reference")
    first = BoundProgram(_program(m, 32)[0], backend, name="a")
    second = BoundProgram(_program(m, 32)[0], backend, name="b")
    assert second.constants_reused == 0
    assert not {id(w) for w in _weights(second)} & {id(w) for w in _weights(first)}


def _graph(weight: torch.Tensor, write_in_place: bool, dtype: str = "float32") -> torch.fx.GraphModule:
    """x + from_torch(weight); with ``write_in_place`` the program also adds x into the uploaded weight."""
    root = nn.Module()
    root.register_buffer("w", weight)
    g = torch.fx.Graph()
    x = g.placeholder("x")
    w = g.get_attr("w")
    dev = g.call_function(ops.from_torch, (w,), {"dtype": Ref(dtype), "layout": Ref("TILE_LAYOUT"), "device": DEVICE})
    if write_in_place:
        g.call_function(ops.add_, (dev, x))
    y = g.call_function(ops.add, (x, dev))
    g.output((y,))
    return torch.fx.GraphModule(root, g)


def _keys(gm: torch.fx.GraphModule) -> dict[str, object]:
    const = [n for n in gm.graph.nodes if n.op == "get_attr" or n.target is ops.from_torch]
    keys = constant_keys(gm, const, lambda n: getattr(gm, n.target))
    return {n.name: k for n, k in keys.items()}


def test_keys_follow_content_dtype_and_op_arguments():
    w = torch.randn(32, 32)
    base = _keys(_graph(w, False))
    assert base["ttnn_from_torch"] is not None
    assert _keys(_graph(w.clone(), False)) == base                    # same bytes, same ops: same key
    assert _keys(_graph(w + 1, False))["ttnn_from_torch"] != base["ttnn_from_torch"]
    assert _keys(_graph(w, False, "bfloat16"))["ttnn_from_torch"] != base["ttnn_from_torch"]
    assert tensor_key(w) != tensor_key(w.t())                         # same bytes, another tensor
    assert tensor_key(torch.empty(2, device="meta")) is None


def test_a_constant_the_program_writes_is_never_shared():
    keys = _keys(_graph(torch.randn(32, 32), True))
    assert keys["w"] is not None and keys["ttnn_from_torch"] is None
