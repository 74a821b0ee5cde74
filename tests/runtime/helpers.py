"""Helpers for the reference-ttnn unit tests: uploads, goldens, tolerances and the bfloat8_b format bound."""
from __future__ import annotations

import re

import pytest
import torch

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn

from ..pcc_thresholds import OP_ATOL

TILE, RM = ttnn.TILE_LAYOUT, ttnn.ROW_MAJOR_LAYOUT
FLOAT_DTYPES = {"float32": ttnn.float32, "bfloat16": ttnn.bfloat16}
float_dtypes = pytest.mark.parametrize("dtype_name", list(FLOAT_DTYPES))


class Make:
    """Tensor factory bound to one reference device (keeps the rejection tables one line per case)."""

    def __init__(self, device: ttnn.Device):
        self.device = device

    def tile(self, *shape, dtype=ttnn.float32, mc=None, value=None) -> ttnn.Tensor:
        x = torch.randn(shape) if value is None else value
        return ttnn.from_torch(x, dtype=dtype, layout=TILE, device=self.device, memory_config=mc)

    def rm(self, *shape, dtype=ttnn.float32, mc=None, value=None) -> ttnn.Tensor:
        x = torch.randn(shape) if value is None else value
        return ttnn.from_torch(x, dtype=dtype, layout=RM, device=self.device, memory_config=mc)

    def host(self, *shape, dtype=ttnn.float32, layout=TILE) -> ttnn.Tensor:
        return ttnn.from_torch(torch.randn(shape), dtype=dtype, layout=layout)

    def ints(self, values, dtype=ttnn.uint32, layout=RM) -> ttnn.Tensor:
        return ttnn.from_torch(torch.as_tensor(values), dtype=dtype, layout=layout, device=self.device)

    def freed(self, *shape) -> ttnn.Tensor:
        t = self.tile(*shape)
        ttnn.deallocate(t)
        return t

    def height_sharded(self, *shape, dtype=ttnn.bfloat16, cores=None, value=None) -> ttnn.Tensor:
        cores = shape[1] if cores is None else cores
        mc = ttnn.create_sharded_memory_config(shape, ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.HEIGHT)
        return self.tile(*shape, dtype=dtype, mc=mc, value=value)


def upload(x: torch.Tensor, dtype_name: str, device, layout=TILE, memory_config=None) -> ttnn.Tensor:
    return ttnn.from_torch(x, dtype=FLOAT_DTYPES[dtype_name], layout=layout, device=device, memory_config=memory_config)


def assert_close(actual: torch.Tensor, golden: torch.Tensor, atol: float) -> None:
    """Shapes equal and ``|actual - golden| <= atol`` everywhere (equal infinities and NaNs pass).

    Cheaper than ``torch.testing.assert_close`` (which dominates the runtime of these small tests).
    """
    actual, golden = actual.to(torch.float32), golden.to(torch.float32)
    assert actual.shape == golden.shape, f"shape {tuple(actual.shape)} != golden {tuple(golden.shape)}"
    diff = (actual - golden).abs()
    bad = ~((diff <= atol) | (actual == golden) | (actual.isnan() & golden.isnan()))
    if bool(bad.any()):
        i = int(bad.flatten().nonzero()[0])
        raise AssertionError(f"{int(bad.sum())}/{bad.numel()} elements differ by more than {atol}: max "
                             f"{float(diff[bad].max()):.3g}; first at flat index {i}: {float(actual.flatten()[i])} "
                             f"vs golden {float(golden.flatten()[i])}")


def assert_op_close(out: ttnn.Tensor, golden: torch.Tensor, dtype_name: str) -> None:
    """``out`` (a reference tensor) has ``dtype_name`` and matches the float32 ``golden`` within OP_ATOL."""
    assert out.dtype is FLOAT_DTYPES[dtype_name], (out.dtype, dtype_name)
    assert tuple(out.shape) == tuple(golden.shape), f"shape {tuple(out.shape)} != golden {tuple(golden.shape)}"
    assert_close(ttnn.to_torch(out), golden, OP_ATOL[dtype_name])


def stored(x: torch.Tensor, dtype_name: str) -> torch.Tensor:
    """``x`` as a tensor of that dtype stores it (bf16: round to nearest even)."""
    return x.to(torch.bfloat16).to(torch.float32) if dtype_name == "bfloat16" else x


def bfp8_quantum(x: torch.Tensor) -> torch.Tensor:
    """Per value, the step of the bfloat8_b grid of its 16-value block (blocks run along the last dim).

    The format stores one 8-bit exponent per block and a sign + 7-bit mantissa per value, aligned to the shared
    exponent E = floor(log2(max |x| in the block)); representable magnitudes are k * 2**(E - 6), k = 0..127.
    """
    w = x.shape[-1]
    g = torch.nn.functional.pad(x, (0, (-w) % 16)).reshape(*x.shape[:-1], -1, 16)
    m = g.abs().amax(-1, keepdim=True)
    q = torch.where(m > 0, torch.exp2(torch.floor(torch.log2(m)) - 6), torch.zeros_like(m))
    return q.expand_as(g).reshape(*x.shape[:-1], -1)[..., :w]


def block_max(x: torch.Tensor) -> torch.Tensor:
    """Per value, the max |x| of its 16-value block."""
    w = x.shape[-1]
    g = torch.nn.functional.pad(x, (0, (-w) % 16)).reshape(*x.shape[:-1], -1, 16)
    return g.abs().amax(-1, keepdim=True).expand_as(g).reshape(*x.shape[:-1], -1)[..., :w]


def assert_rejected(call, device, message: str) -> None:
    """``call(Make(device))`` raises TTNNContractError whose message contains ``message``."""
    with pytest.raises(TTNNContractError, match=re.escape(message)):
        call(Make(device))
