"""Reference ttnn compute ops against their torch meaning (OP_CONTRACT §3-§5, §11): linear, matmul, binary and
comparison ops, where, sum, unary ops, layer_norm, softmax, batch_norm, and their contract rejections.

Goldens are the torch computation on the float32 values the op receives (for bfloat16 tensors, the stored,
rounded inputs); outputs must match within ``OP_ATOL`` of their dtype. Input scales keep outputs below 8 so
that one bfloat16 rounding of the output stays inside ``OP_ATOL["bfloat16"]``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fx2ttnn.runtime import reference as ttnn

from ..pcc_thresholds import OP_ATOL
from .helpers import (
    FLOAT_DTYPES, RM, TILE, assert_close, assert_op_close, assert_rejected, float_dtypes, upload,
)


def vals(t: ttnn.Tensor) -> torch.Tensor:
    """The float32 values a tensor holds (what the op computes on)."""
    return ttnn.to_torch(t).to(torch.float32)


def uniform(*shape, lo=-2.0, hi=2.0) -> torch.Tensor:
    return torch.rand(shape) * (hi - lo) + lo


# ---------------------------------------------------------------------------------------------
# linear / matmul

ACTIVATIONS = {
    None: lambda y: y,
    "relu": torch.relu,
    "gelu": F.gelu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "silu": F.silu,
    ttnn.UnaryWithParam(ttnn.UnaryOpType.LEAKY_RELU, 0.2): lambda y: F.leaky_relu(y, 0.2),
    ttnn.UnaryWithParam(ttnn.UnaryOpType.RELU): torch.relu,
    ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU): F.gelu,
}


@float_dtypes
@pytest.mark.parametrize("activation", list(ACTIVATIONS), ids=lambda a: str(getattr(a, "op_type", a)))
@pytest.mark.parametrize("bias_shape", [None, (1, 96), (1, 1, 1, 96)], ids=["nobias", "bias2d", "bias4d"])
def test_linear(dev, dtype_name, activation, bias_shape):
    x = upload(torch.randn(2, 40, 64), dtype_name, dev)
    w = upload(torch.randn(64, 96) / 8, dtype_name, dev)
    b = upload(torch.randn(bias_shape) * 0.1, dtype_name, dev) if bias_shape else None
    out = ttnn.linear(x, w, bias=b, activation=activation)
    golden = vals(x) @ vals(w) + (vals(b).reshape(-1) if b is not None else 0)
    assert out.layout is TILE and out.memory_config() == ttnn.DRAM_MEMORY_CONFIG
    assert_op_close(out, ACTIVATIONS[activation](golden), dtype_name)


@float_dtypes
def test_linear_transpose_b_and_options(dev, dtype_name):
    """transpose_b=True takes a torch nn.Linear weight [out, in] as is."""
    lin = torch.nn.Linear(64, 32)
    x = upload(torch.randn(3, 64), dtype_name, dev)
    w = upload(lin.weight.detach() * 4, dtype_name, dev)
    b = upload(lin.bias.detach().reshape(1, -1), dtype_name, dev)
    out = ttnn.linear(x, w, bias=b, transpose_b=True, memory_config=ttnn.L1_MEMORY_CONFIG, dtype=ttnn.float32)
    assert out.memory_config() == ttnn.L1_MEMORY_CONFIG and out.dtype is ttnn.float32 and out.shape == (3, 32)
    assert_close(vals(out), F.linear(vals(x), vals(w), vals(b).reshape(-1)), OP_ATOL["float32"])


@pytest.mark.parametrize("a_shape, b_shape", [
    ((40, 64), (64, 48)),
    ((3, 32, 64), (3, 64, 48)),
    ((2, 3, 32, 64), (2, 3, 64, 48)),  # equal batch dims
    ((2, 3, 32, 64), (1, 1, 64, 48)),  # B broadcast (batch all 1)
    ((2, 3, 32, 64), (64, 48)),  # rank-2 B
    ((1, 1, 32, 64), (2, 3, 64, 48)),  # A batch 1 vs batched B: equal ranks >= 3, interleaved
    ((5, 64), (64,)),  # rank-1 B
], ids=str)
@float_dtypes
def test_matmul_batch_broadcasting(dev, dtype_name, a_shape, b_shape):
    a = upload(torch.randn(a_shape), dtype_name, dev)
    b = upload(torch.randn(b_shape) / 8, dtype_name, dev)
    out = ttnn.matmul(a, b)
    assert out.layout is TILE and out.memory_config() == ttnn.DRAM_MEMORY_CONFIG and out.device() is dev
    assert_op_close(out, torch.matmul(vals(a), vals(b)), dtype_name)
    assert_op_close(a @ b, torch.matmul(vals(a), vals(b)), dtype_name)


@float_dtypes
@pytest.mark.parametrize("transpose_a, transpose_b", [(True, False), (False, True), (True, True)])
def test_matmul_transposes(dev, dtype_name, transpose_a, transpose_b):
    """Attention scores: q [B,H,S,d] x k [B,H,S,d] with transpose_b=True."""
    a = upload(torch.randn(2, 2, *((64, 32) if transpose_a else (32, 64))), dtype_name, dev)
    b = upload(torch.randn(2, 2, *((48, 64) if transpose_b else (64, 48))) / 8, dtype_name, dev)
    ga = vals(a).transpose(-1, -2) if transpose_a else vals(a)
    gb = vals(b).transpose(-1, -2) if transpose_b else vals(b)
    assert_op_close(ttnn.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b), ga @ gb, dtype_name)


def test_matmul_options(dev):
    a = upload(torch.randn(32, 64), "float32", dev)
    b = upload(torch.randn(64, 32) / 8, "float32", dev)
    out = ttnn.matmul(a, b, activation="relu", dtype=ttnn.bfloat16, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert out.memory_config() == ttnn.L1_MEMORY_CONFIG
    assert_op_close(out, torch.relu(vals(a) @ vals(b)), "bfloat16")
    bf8 = ttnn.matmul(a, upload(torch.randn(64, 32) / 8, "float32", dev), dtype=ttnn.bfloat8_b)
    assert bf8.dtype is ttnn.bfloat8_b and bf8.layout is TILE


# ---------------------------------------------------------------------------------------------
# elementwise binary

BINARY = {"add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "divide": torch.div}
B_FORMS = {
    "same": (2, 32, 64),
    "row": (1, 64),
    "col": (2, 32, 1),
    "vector": (64,),
    "bigger": (3, 2, 32, 64),  # a broadcasts up to b
}


def _b_values(op: str, shape) -> torch.Tensor:
    if op == "divide":  # |b| in [1, 2]: quotients stay small
        return uniform(*shape, lo=1.0, hi=2.0) * torch.where(torch.rand(shape) < 0.5, -1.0, 1.0)
    return uniform(*shape)


@float_dtypes
@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("b_form", [*B_FORMS, "scalar", "int-scalar"])
def test_binary(dev, dtype_name, op, b_form):
    a = upload(uniform(2, 32, 64), dtype_name, dev)
    if b_form in B_FORMS:
        b = upload(_b_values(op, B_FORMS[b_form]), dtype_name, dev, layout=RM if b_form == "row" else TILE)
        gb = vals(b)
    else:
        b = gb = -1.5 if b_form == "scalar" else 2
    out = getattr(ttnn, op)(a, b)
    assert out.layout is TILE and out.memory_config() == a.memory_config()
    assert_op_close(out, BINARY[op](vals(a), gb), dtype_name)


@pytest.mark.parametrize("op", list(BINARY))
def test_binary_row_major_input_keeps_layout(dev, op):
    a = upload(uniform(3, 40), "float32", dev, layout=RM)
    b = upload(_b_values(op, (3, 40)), "float32", dev, layout=RM)
    out = getattr(ttnn, op)(a, b, memory_config=ttnn.L1_MEMORY_CONFIG)
    assert out.layout is RM and out.memory_config() == ttnn.L1_MEMORY_CONFIG
    assert_op_close(out, BINARY[op](vals(a), vals(b)), "float32")


@pytest.mark.parametrize("out_dtype", ["float32", "bfloat16"])
def test_binary_output_tensor(dev, out_dtype):
    a = upload(uniform(32, 64), "float32", dev)
    b = upload(uniform(1, 64), "float32", dev)
    buf = ttnn.allocate_tensor_on_device((32, 64), FLOAT_DTYPES[out_dtype], TILE, dev)
    assert ttnn.add(a, b, output_tensor=buf) is buf
    assert_op_close(buf, vals(a) + vals(b), out_dtype)
    before = vals(a)
    assert ttnn.multiply(a, 3.0, output_tensor=a) is a  # the in-place increment pattern
    assert_op_close(a, before * 3.0, "float32")


@float_dtypes
@pytest.mark.parametrize("acts, golden", [
    (["relu"], torch.relu),
    ([ttnn.UnaryWithParam(ttnn.UnaryOpType.LEAKY_RELU, 0.1)], lambda y: F.leaky_relu(y, 0.1)),
    (["relu", "tanh"], lambda y: torch.tanh(torch.relu(y))),
], ids=["relu", "leaky", "relu-tanh"])
def test_binary_fused_activations(dev, dtype_name, acts, golden):
    a, b = upload(uniform(32, 64), dtype_name, dev), upload(uniform(32, 64), dtype_name, dev)
    assert_op_close(ttnn.subtract(a, b, activations=acts), golden(vals(a) - vals(b)), dtype_name)


def test_binary_input_activations_and_dtype(dev):
    a, b = upload(uniform(32, 64), "float32", dev), upload(uniform(32, 64), "float32", dev)
    out = ttnn.add(a, b, input_tensor_a_activations=["relu"], input_tensor_b_activations=["sigmoid"],
                   dtype=ttnn.bfloat16)
    assert_op_close(out, torch.relu(vals(a)) + torch.sigmoid(vals(b)), "bfloat16")


# ---------------------------------------------------------------------------------------------
# comparisons and where

COMPARE = {"ge": torch.ge, "gt": torch.gt, "lt": torch.lt, "le": torch.le, "eq": torch.eq}


@float_dtypes
@pytest.mark.parametrize("op", list(COMPARE))
@pytest.mark.parametrize("b_form", ["tensor", "row", "scalar"])
def test_comparisons_return_one_zero_in_input_dtype(dev, dtype_name, op, b_form):
    a = upload(torch.randint(-2, 3, (2, 32, 64)).float() * 0.5, dtype_name, dev)  # many ties
    if b_form == "scalar":
        b = gb = 0.5
    else:
        b = upload(torch.randint(-2, 3, (2, 32, 64) if b_form == "tensor" else (1, 64)).float() * 0.5, dtype_name, dev)
        gb = vals(b)
    out = getattr(ttnn, op)(a, b)
    golden = COMPARE[op](vals(a), gb).to(torch.float32)
    assert out.dtype is FLOAT_DTYPES[dtype_name] and set(vals(out).unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(vals(out), golden)


@float_dtypes
@pytest.mark.parametrize("branches", ["tensor-tensor", "tensor-scalar", "scalar-tensor", "scalar-scalar",
                                      "row-tensor", "tensor-col"])
def test_where(dev, dtype_name, branches):
    cond = ttnn.gt(upload(torch.randn(2, 32, 64), dtype_name, dev), 0.0)
    shapes = {"tensor": (2, 32, 64), "row": (1, 64), "col": (2, 32, 1)}
    args, goldens = [], []
    for kind, scalar in zip(branches.split("-"), (1.25, -3.0)):
        if kind == "scalar":
            args.append(scalar)
            goldens.append(torch.tensor(scalar))
        else:
            args.append(upload(torch.randn(shapes[kind]), dtype_name, dev))
            goldens.append(vals(args[-1]))
    out = ttnn.where(cond, *args)
    assert out.layout is cond.layout
    assert_op_close(out, torch.where(vals(cond) != 0, *goldens), dtype_name)


@float_dtypes
@pytest.mark.parametrize("dim, keepdim", [(-1, False), (-1, True), (0, False), (1, True), ((1, 2), False),
                                          (None, False)])
def test_sum(dev, dtype_name, dim, keepdim):
    shape = (2, 32, 64)
    n = 2 * 32 * 64 if dim is None else (32 * 64 if dim == (1, 2) else shape[dim])
    x = upload(torch.randn(shape) / n**0.5, dtype_name, dev)
    out = ttnn.sum(x, dim, keepdim) if dim is not None else ttnn.sum(x)
    golden = vals(x).sum() if dim is None else vals(x).sum(dim=dim, keepdim=keepdim)
    assert_op_close(out, golden, dtype_name)


def test_sum_over_time_of_masked_frames(dev):
    """The speech encoder's masked statistics: ``sum(x * mask, 1)`` of a [B, T, C] tensor (a -2 reduction), with a
    [B, T, 1] frame mask broadcast along channels, and a sharded input reduced along -2."""
    x, mask = torch.randn(2, 70, 64), (torch.arange(70)[None, :, None] < torch.tensor([70, 33])[:, None, None])
    masked = ttnn.multiply(upload(x, "float32", dev), upload(mask.float(), "float32", dev))
    out = ttnn.sum(masked, 1, True)
    assert tuple(out.shape) == (2, 1, 64)
    torch.testing.assert_close(ttnn.to_torch(out), (x * mask).sum(1, keepdim=True), atol=1e-5, rtol=1e-5)
    sharded = ttnn.from_torch(x[0], dtype=ttnn.float32, layout=TILE, device=dev,
                              memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG)
    torch.testing.assert_close(ttnn.to_torch(ttnn.sum(sharded, -2)), x[0].sum(0), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# unary

UNARY = {  # name: (golden, input sampler, dtypes the contract allows)
    "relu": (torch.relu, lambda s: torch.randn(s), ("float32", "bfloat16")),
    "tanh": (torch.tanh, lambda s: torch.randn(s) * 2, ("float32", "bfloat16")),
    "sigmoid": (torch.sigmoid, lambda s: torch.randn(s) * 3, ("bfloat16",)),
    "gelu": (F.gelu, lambda s: torch.randn(s) * 2, ("bfloat16",)),
    "sqrt": (torch.sqrt, lambda s: torch.rand(s) * 10, ("float32", "bfloat16")),
    "rsqrt": (torch.rsqrt, lambda s: torch.rand(s) * 4 + 0.5, ("float32", "bfloat16")),
    "exp": (torch.exp, lambda s: torch.randn(s) * 0.5, ("float32", "bfloat16")),
    "neg": (torch.neg, lambda s: torch.randn(s), ("float32", "bfloat16")),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.01), lambda s: torch.randn(s), ("float32", "bfloat16")),
}


@pytest.mark.parametrize("layout", [TILE, RM], ids=["tile", "rm"])
@pytest.mark.parametrize("op, dtype_name", [(op, d) for op, (_, _, ds) in UNARY.items() for d in ds])
def test_unary(dev, op, dtype_name, layout):
    golden, sample, _ = UNARY[op]
    x = upload(sample((2, 40, 48)), dtype_name, dev, layout=layout)
    out = getattr(ttnn, op)(x)
    assert out.layout is layout and out.memory_config() == x.memory_config()
    assert_op_close(out, golden(vals(x)), dtype_name)


@float_dtypes
@pytest.mark.parametrize("slope", [0.1, 0.2, 0.01])
def test_leaky_relu_slope(dev, dtype_name, slope):
    x = upload(torch.randn(32, 64) * 2, dtype_name, dev)
    golden = F.leaky_relu(vals(x), slope)
    assert_op_close(ttnn.leaky_relu(x, slope), golden, dtype_name)
    assert_op_close(ttnn.leaky_relu(x, negative_slope=slope), golden, dtype_name)


def test_gelu_variants(dev):
    """Accurate is erf GELU (HF's "gelu"), Tanh is approximate="tanh": checked on the inputs where the two
    differ after bfloat16 rounding."""
    grid = torch.linspace(-4, 4, 4096).to(torch.bfloat16).float().unique()
    erf_out = F.gelu(grid).to(torch.bfloat16).float()
    tanh_out = F.gelu(grid, approximate="tanh").to(torch.bfloat16).float()
    differ = erf_out != tanh_out
    assert differ.sum() >= 10
    x = upload(grid[differ].reshape(1, -1), "bfloat16", dev)
    assert torch.equal(vals(ttnn.gelu(x)), erf_out[differ].reshape(1, -1))
    assert torch.equal(vals(ttnn.gelu(x, variant=ttnn.GeluVariant.Accurate)), erf_out[differ].reshape(1, -1))
    assert torch.equal(vals(ttnn.gelu(x, variant=ttnn.GeluVariant.Tanh)), tanh_out[differ].reshape(1, -1))


def test_unary_output_tensor_and_int_relu(dev):
    x = upload(torch.randn(32, 64), "bfloat16", dev)
    buf = ttnn.allocate_tensor_on_device((32, 64), ttnn.bfloat16, TILE, dev)
    assert ttnn.relu(x, output_tensor=buf) is buf
    assert torch.equal(vals(buf), torch.relu(vals(x)))
    i = ttnn.from_torch(torch.tensor([[-3, 0, 4]]), dtype=ttnn.int32, layout=TILE, device=dev)
    assert ttnn.to_torch(ttnn.relu(i)).tolist() == [[0, 0, 4]]
    assert ttnn.to_torch(ttnn.neg(i)).tolist() == [[3, 0, -4]]


# ---------------------------------------------------------------------------------------------
# layer_norm / softmax / batch_norm


def _gamma(form: str, w: torch.Tensor, dtype_name: str, dev):
    if form == "tile":
        return upload(w.reshape(1, -1), dtype_name, dev)
    return upload(w.reshape(-1, 32), dtype_name, dev, layout=RM)  # [W/32, 32] ROW_MAJOR


@float_dtypes
@pytest.mark.parametrize("params", ["none", "tile", "rm", "weight-only"])
@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
def test_layer_norm(dev, dtype_name, params, residual):
    W = 96
    x = upload(torch.randn(2, 40, W) * 3 + 1, dtype_name, dev)
    r = upload(torch.randn(2, 40, W), dtype_name, dev) if residual else None
    w = b = None
    if params != "none":
        form = "tile" if params == "weight-only" else params
        w = _gamma(form, 1 + 0.1 * torch.randn(W), dtype_name, dev)
        b = _gamma(form, 0.1 * torch.randn(W), dtype_name, dev) if params != "weight-only" else None
    out = ttnn.layer_norm(x, epsilon=1e-5, weight=w, bias=b, residual_input_tensor=r)
    inp = vals(x) + (vals(r) if residual else 0)
    golden = F.layer_norm(inp, (W,), vals(w).reshape(-1) if w is not None else None,
                          vals(b).reshape(-1) if b is not None else None, 1e-5)
    assert out.layout is TILE
    assert_op_close(out, golden, dtype_name)


def test_layer_norm_default_epsilon_is_1e_12(dev):
    x = upload(torch.randn(4, 64) * 1e-3, "float32", dev)  # variance ~1e-6: epsilon matters
    out = vals(ttnn.layer_norm(x))
    assert_close(out, F.layer_norm(vals(x), (64,), eps=1e-12), OP_ATOL["float32"])
    assert (out - F.layer_norm(vals(x), (64,), eps=1e-5)).abs().max() > 0.5


@pytest.mark.parametrize("strategy", [ttnn.ShardStrategy.WIDTH, ttnn.ShardStrategy.BLOCK], ids=lambda s: s.name)
def test_layer_norm_accepts_width_and_block_sharded(dev, strategy):
    x = upload(torch.randn(1, 1, 64, 128), "bfloat16", dev)
    mc = ttnn.create_sharded_memory_config(x.shape, ttnn.CoreGrid(y=2, x=2), strategy)
    out = ttnn.layer_norm(ttnn.interleaved_to_sharded(x, mc), epsilon=1e-5)
    assert out.memory_config() == mc
    assert_op_close(out, F.layer_norm(vals(x), (128,), eps=1e-5), "bfloat16")


@float_dtypes
@pytest.mark.parametrize("dim", [-1, -2, 1, 0, 3])
def test_softmax(dev, dtype_name, dim):
    x = upload(torch.randn(2, 3, 32, 64) * 3, dtype_name, dev)
    out = ttnn.softmax(x, dim)
    assert out.layout is TILE
    assert_op_close(out, torch.softmax(vals(x), dim), dtype_name)
    if dim == -1:
        assert_op_close(ttnn.softmax(x), torch.softmax(vals(x), -1), dtype_name)


@float_dtypes
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_batch_norm(dev, dtype_name, affine, eps):
    C = 8
    x = upload(torch.randn(2, C, 32, 4) * 0.5, dtype_name, dev)
    p = lambda v: upload(v.reshape(1, C, 1, 1), dtype_name, dev)  # noqa: E731
    mean, var = p(torch.randn(C) * 0.5), p(torch.rand(C) + 0.5)
    w, b = (p(1 + 0.2 * torch.randn(C)), p(0.2 * torch.randn(C))) if affine else (None, None)
    out = ttnn.batch_norm(x, running_mean=mean, running_var=var, weight=w, bias=b, eps=eps)
    v = lambda t: None if t is None else vals(t).reshape(-1)  # noqa: E731
    golden = F.batch_norm(vals(x), v(mean), v(var), v(w), v(b), False, 0.1, eps)
    assert_op_close(out, golden, dtype_name)


# ---------------------------------------------------------------------------------------------
# preallocated outputs (output_tensor= / optional_output_tensor= / output=)

C = 4


def _bn(x, dev, **kw):
    p = lambda v: upload(v.reshape(1, C, 1, 1), "float32", dev)  # noqa: E731
    return ttnn.batch_norm(x, running_mean=p(torch.zeros(C) + 0.5), running_var=p(torch.ones(C) * 2), **kw)


PREALLOCATED = {  # name: (call writing into buf, golden from the input values x, w)
    "relu": (lambda x, w, buf, dev: ttnn.relu(x, output_tensor=buf), lambda x, w: torch.relu(x)),
    "sigmoid": (lambda x, w, buf, dev: ttnn.sigmoid(ttnn.typecast(x, ttnn.bfloat16), output_tensor=buf),
                lambda x, w: torch.sigmoid(x.to(torch.bfloat16).float())),
    "typecast": (lambda x, w, buf, dev: ttnn.typecast(x, buf.dtype, output_tensor=buf), lambda x, w: x),
    "where": (lambda x, w, buf, dev: ttnn.where(ttnn.gt(x, 0.0), x, -1.0, output_tensor=buf),
              lambda x, w: torch.where(x > 0, x, -1.0)),
    "matmul": (lambda x, w, buf, dev: ttnn.matmul(x, w, optional_output_tensor=buf), lambda x, w: x @ w),
    "linear": (lambda x, w, buf, dev: ttnn.linear(x, w, activation="relu", optional_output_tensor=buf),
               lambda x, w: torch.relu(x @ w)),
    "batch_norm": (lambda x, w, buf, dev: _bn(x, dev, output=buf), lambda x, w: (x - 0.5) / (2 + 1e-5) ** 0.5),
}


@float_dtypes
@pytest.mark.parametrize("op", list(PREALLOCATED))
def test_preallocated_output_is_written_in_place(dev, dtype_name, op):
    call, golden = PREALLOCATED[op]
    x = upload(torch.randn(1, C, 32, 64), "float32", dev)
    w = upload(torch.randn(64, 64) / 8, "float32", dev)
    buf = ttnn.allocate_tensor_on_device((1, C, 32, 64), FLOAT_DTYPES[dtype_name], TILE, dev)
    before = dev.allocated_bytes
    assert call(x, w, buf, dev) is buf
    assert dev.allocated_bytes == before  # nothing new stays allocated
    assert_op_close(buf, golden(vals(x), vals(w)), dtype_name)


def test_linear_rank1_weight(dev):
    x, w = upload(torch.randn(5, 64), "float32", dev), upload(torch.randn(64) / 8, "float32", dev)
    assert_op_close(ttnn.linear(x, w), vals(x) @ vals(w), "float32")


# ---------------------------------------------------------------------------------------------
# contract rejections


def _hs(m, shape=(1, 2, 32, 64)):
    """A height-sharded device tensor (two cores)."""
    return ttnn.interleaved_to_sharded(m.tile(*shape), ttnn.create_sharded_memory_config(
        shape, ttnn.CoreGrid(y=1, x=2), ttnn.ShardStrategy.HEIGHT))


REJECTIONS = [
    # matmul / linear
    ("matmul-rm-a", lambda m: ttnn.matmul(m.rm(32, 32), m.tile(32, 32)), "input_tensor_a must be in TILE layout"),
    ("matmul-rm-b", lambda m: ttnn.matmul(m.tile(32, 32), m.rm(32, 32)), "input_tensor_b must be in TILE layout"),
    ("matmul-host", lambda m: ttnn.matmul(m.host(32, 32), m.tile(32, 32)), "must be on device"),
    ("matmul-int", lambda m: ttnn.matmul(m.tile(32, 32, dtype=ttnn.int32), m.tile(32, 32)),
     "input_tensor_a dtype int32 is not supported"),
    ("matmul-inner", lambda m: ttnn.matmul(m.tile(32, 64), m.tile(32, 32)), "inner dimensions differ"),
    ("matmul-inner-transpose", lambda m: ttnn.matmul(m.tile(32, 64), m.tile(64, 32), transpose_b=True),
     "inner dimensions differ"),
    ("matmul-batch-mismatch", lambda m: ttnn.matmul(m.tile(2, 32, 64), m.tile(3, 64, 32)),
     "batch dims must match"),
    ("matmul-a-batch1-rank2", lambda m: ttnn.matmul(m.tile(32, 64), m.tile(2, 64, 32)),
     "needs equal ranks >= 3"),
    ("matmul-a-batch1-sharded", lambda m: ttnn.matmul(_hs(m, (1, 1, 64, 64)), m.tile(2, 3, 64, 32)),
     "and interleaved inputs"),
    ("matmul-a-batch1-rank-mismatch", lambda m: ttnn.matmul(m.tile(1, 32, 64), m.tile(1, 2, 64, 32)),
     "needs equal ranks >= 3"),
    ("matmul-bad-activation", lambda m: ttnn.matmul(m.tile(32, 32), m.tile(32, 32), activation="swish"),
     "activation must be one of"),
    ("linear-rm", lambda m: ttnn.linear(m.rm(32, 32), m.tile(32, 32)), "input_tensor_a must be in TILE layout"),
    ("linear-host-weight", lambda m: ttnn.linear(m.tile(32, 32), m.host(32, 32)), "must be on device"),
    ("linear-inner", lambda m: ttnn.linear(m.tile(4, 64), m.tile(32, 64)), "inner dimensions differ"),
    ("linear-bias-column", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), bias=m.tile(32, 1)),
     "bias must be a row vector [1, 32]"),
    ("linear-bias-matrix", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), bias=m.tile(4, 32)),
     "bias must be a row vector"),
    ("linear-bias-width", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), bias=m.tile(1, 64)),
     "bias must be a row vector"),
    ("linear-bias-rm", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), bias=m.rm(1, 32)),
     "bias must be in TILE layout"),
    ("linear-bias-host", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), bias=m.host(1, 32)),
     "bias must be on device"),
    ("linear-bad-activation", lambda m: ttnn.linear(m.tile(4, 64), m.tile(64, 32), activation="leaky_relu"),
     "activation must be one of"),
    ("linear-deallocated", lambda m: ttnn.linear(m.freed(4, 64), m.tile(64, 32)), "was deallocated"),
    # binary / comparisons
    ("add-not-broadcastable", lambda m: ttnn.add(m.tile(2, 32, 64), m.tile(3, 32, 64)), "do not broadcast"),
    ("multiply-not-broadcastable", lambda m: ttnn.multiply(m.tile(32, 64), m.tile(32, 32)), "do not broadcast"),
    ("ge-not-broadcastable", lambda m: ttnn.ge(m.tile(32, 64), m.tile(1, 48)), "do not broadcast"),
    ("add-host", lambda m: ttnn.add(m.host(32, 32), m.tile(32, 32)), "input_tensor_a must be on device"),
    ("add-host-b", lambda m: ttnn.add(m.tile(32, 32), m.host(32, 32)), "input_tensor_b must be on device"),
    ("add-b-string", lambda m: ttnn.add(m.tile(32, 32), "1"), "must be a ttnn.Tensor or a number"),
    ("add-uint8", lambda m: ttnn.add(m.rm(4, 4, dtype=ttnn.uint8, value=torch.ones(4, 4)), 1),
     "input_tensor_a dtype uint8 is not supported"),
    ("add-output-shape", lambda m: ttnn.add(m.tile(32, 64), m.tile(1, 64), output_tensor=m.tile(1, 64)),
     "output_tensor shape [1, 64] != result shape [32, 64]"),
    ("add-bad-activation", lambda m: ttnn.add(m.tile(32, 32), 1.0, activations=["swish"]),
     "activation must be one of"),
    ("add-bad-a-activation", lambda m: ttnn.add(m.tile(32, 32), 1.0, input_tensor_a_activations=["bogus"]),
     "activation must be one of"),
    ("divide-deallocated-b", lambda m: ttnn.divide(m.tile(32, 32), m.freed(32, 32)), "input_tensor_b was deallocated"),
    # unary
    ("gelu-float32", lambda m: ttnn.gelu(m.tile(32, 32)), "input_tensor dtype float32 is not supported"),
    ("sigmoid-float32", lambda m: ttnn.sigmoid(m.tile(32, 32)), "input_tensor dtype float32 is not supported"),
    ("sigmoid-bf8b", lambda m: ttnn.sigmoid(m.tile(32, 32, dtype=ttnn.bfloat8_b)), "dtype bfloat8_b is not supported"),
    ("tanh-int32", lambda m: ttnn.tanh(m.tile(32, 32, dtype=ttnn.int32)), "dtype int32 is not supported"),
    ("relu-uint32", lambda m: ttnn.relu(m.rm(4, dtype=ttnn.uint32, value=torch.ones(4))), "dtype uint32 is not"),
    ("relu-host", lambda m: ttnn.relu(m.host(32, 32)), "must be on device"),
    # where / sum
    ("where-branch-string", lambda m: ttnn.where(m.tile(32, 32), "a", 0.0), "true_value must be a ttnn.Tensor or"),
    ("where-branch-none", lambda m: ttnn.where(m.tile(32, 32), 1.0, None), "false_value must be a ttnn.Tensor or"),
    ("where-branch-shape", lambda m: ttnn.where(m.tile(32, 64), m.tile(32, 32), 0.0), "does not broadcast"),
    ("where-branches-disagree", lambda m: ttnn.where(m.tile(1, 64), m.tile(3, 1), m.tile(4, 1)),
     "does not broadcast"),
    ("where-host-branch", lambda m: ttnn.where(m.tile(32, 32), m.host(32, 32), 0.0), "true_value must be on device"),
    ("where-host-condition", lambda m: ttnn.where(m.host(32, 32), 1.0, 0.0), "condition must be on device"),
    ("sum-rm", lambda m: ttnn.sum(m.rm(32, 32), -1), "must be in TILE layout"),
    ("sum-dim", lambda m: ttnn.sum(m.tile(32, 32), 2), "dim 2 out of range for rank 2"),
    ("sum-dims", lambda m: ttnn.sum(m.tile(32, 32), (0, -3)), "out of range for rank 2"),
    ("sum-float-dim", lambda m: ttnn.sum(m.tile(32, 32), 1.0), "dim must be an int or a tuple of ints"),
    ("sum-keepdim", lambda m: ttnn.sum(m.tile(32, 32), -1, 1), "keepdim must be a bool"),
    ("sum-sharded-batch-dim", lambda m: ttnn.sum(m.tile(2, 32, 64, mc=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG), 0),
     "a sharded input can only be reduced along -1 / -2"),
    ("sum-sharded-all", lambda m: ttnn.sum(m.tile(32, 64, mc=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG)),
     "a sharded input can only be reduced along -1 / -2"),
    # preallocated outputs of the wrong shape
    ("relu-output-shape", lambda m: ttnn.relu(m.tile(32, 64), output_tensor=m.tile(32, 32)),
     "output_tensor shape [32, 32] != result shape [32, 64]"),
    ("relu-output-host", lambda m: ttnn.relu(m.tile(32, 64), output_tensor=m.host(32, 64)),
     "output_tensor must be on device"),
    ("typecast-output-shape", lambda m: ttnn.typecast(m.tile(32, 64), ttnn.bfloat16, output_tensor=m.tile(1, 64)),
     "output_tensor shape [1, 64] != result shape [32, 64]"),
    ("where-output-shape", lambda m: ttnn.where(m.tile(32, 64), m.tile(1, 64), 0.0, output_tensor=m.tile(1, 64)),
     "output_tensor shape [1, 64] != result shape [32, 64]"),
    ("matmul-output-shape", lambda m: ttnn.matmul(m.tile(32, 64), m.tile(64, 48),
                                                  optional_output_tensor=m.tile(32, 64)),
     "output_tensor shape [32, 64] != result shape [32, 48]"),
    ("linear-output-shape", lambda m: ttnn.linear(m.tile(2, 32, 64), m.tile(48, 64), transpose_b=True,
                                                  optional_output_tensor=m.tile(32, 48)),
     "output_tensor shape [32, 48] != result shape [2, 32, 48]"),
    ("batch_norm-output-shape", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4), running_mean=m.tile(1, 8, 1, 1),
                                                          running_var=m.tile(1, 8, 1, 1), output=m.tile(1, 8, 4, 8)),
     "output_tensor shape [1, 8, 4, 8] != result shape [1, 8, 4, 4]"),
    # layer_norm
    ("layer_norm-rm", lambda m: ttnn.layer_norm(m.rm(32, 64)), "must be in TILE layout"),
    ("layer_norm-height-sharded", lambda m: ttnn.layer_norm(_hs(m)), "height-sharded input is not supported"),
    ("layer_norm-int", lambda m: ttnn.layer_norm(m.tile(32, 64, dtype=ttnn.int32)), "dtype int32 is not supported"),
    ("layer_norm-gamma-tile-width", lambda m: ttnn.layer_norm(m.tile(32, 64), weight=m.tile(1, 32)),
     "TILE weight must be [1, 64]"),
    ("layer_norm-gamma-tile-height", lambda m: ttnn.layer_norm(m.tile(32, 64), weight=m.tile(2, 64)),
     "TILE weight must be [1, 64]"),
    ("layer_norm-beta-rm-shape", lambda m: ttnn.layer_norm(m.tile(32, 64), bias=m.rm(1, 64)),
     "ROW_MAJOR bias must be [2, 32]"),
    ("layer_norm-beta-rm-rows", lambda m: ttnn.layer_norm(m.tile(32, 64), bias=m.rm(4, 32)),
     "ROW_MAJOR bias must be [2, 32]"),
    ("layer_norm-gamma-bf8b", lambda m: ttnn.layer_norm(m.tile(32, 64), weight=m.tile(1, 64, dtype=ttnn.bfloat8_b)),
     "weight dtype bfloat8_b is not supported"),
    ("layer_norm-gamma-host", lambda m: ttnn.layer_norm(m.tile(32, 64), weight=m.host(1, 64)),
     "weight must be on device"),
    ("layer_norm-residual-shape", lambda m: ttnn.layer_norm(m.tile(32, 64), residual_input_tensor=m.tile(1, 64)),
     "Input and residual logical and padded shapes must match"),
    # softmax
    ("softmax-rm", lambda m: ttnn.softmax(m.rm(32, 64)), "must be in TILE layout"),
    ("softmax-dim", lambda m: ttnn.softmax(m.tile(32, 64), 2), "dim 2 out of range for rank 2"),
    ("softmax-int", lambda m: ttnn.softmax(m.tile(32, 64, dtype=ttnn.int32)), "dtype int32 is not supported"),
    # batch_norm
    ("batch_norm-rank3", lambda m: ttnn.batch_norm(m.tile(2, 8, 32), running_mean=m.tile(1, 8, 1),
                                                   running_var=m.tile(1, 8, 1)), "input must be rank 4"),
    ("batch_norm-rm", lambda m: ttnn.batch_norm(m.rm(1, 8, 4, 4), running_mean=m.tile(1, 8, 1, 1),
                                                running_var=m.tile(1, 8, 1, 1)), "must be in TILE layout"),
    ("batch_norm-bf8b", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4, dtype=ttnn.bfloat8_b),
                                                  running_mean=m.tile(1, 8, 1, 1), running_var=m.tile(1, 8, 1, 1)),
     "dtype bfloat8_b is not supported"),
    ("batch_norm-sharded", lambda m: ttnn.batch_norm(_hs(m), running_mean=m.tile(1, 2, 1, 1),
                                                     running_var=m.tile(1, 2, 1, 1)), "input must be interleaved"),
    ("batch_norm-no-running-stats", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4)),
     "requires running_mean and running_var"),
    ("batch_norm-no-running-var", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4), running_mean=m.tile(1, 8, 1, 1)),
     "requires running_mean and running_var"),
    ("batch_norm-mean-shape", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4), running_mean=m.tile(8),
                                                        running_var=m.tile(1, 8, 1, 1)),
     "running_mean must be [1, 8, 1, 1]"),
    ("batch_norm-weight-shape", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4), running_mean=m.tile(1, 8, 1, 1),
                                                          running_var=m.tile(1, 8, 1, 1), weight=m.tile(1, 4, 1, 1)),
     "weight must be [1, 8, 1, 1]"),
    ("batch_norm-bias-host", lambda m: ttnn.batch_norm(m.tile(1, 8, 4, 4), running_mean=m.tile(1, 8, 1, 1),
                                                       running_var=m.tile(1, 8, 1, 1), bias=m.host(1, 8, 1, 1)),
     "bias must be on device"),
]


@pytest.mark.parametrize("call, message", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_contract_rejections(dev, call, message):
    assert_rejected(call, dev, message)


def test_unchecked_kernel_skips_the_contract(dev):
    """``op.unchecked`` is the bare kernel the executor binds after validating a program once."""
    a = upload(torch.randn(32, 32), "float32", dev)
    w = upload(torch.randn(32, 32), "float32", dev, layout=RM)
    with pytest.raises(Exception, match="TILE"):
        ttnn.linear(a, w)
    out = ttnn.linear.unchecked(a, w)
    assert_close(vals(out), vals(a) @ vals(w), OP_ATOL["float32"])
    assert ttnn.linear.check is not None and ttnn.linear.__name__ == "linear"
