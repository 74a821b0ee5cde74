"""Reference rules that the real ttnn 0.81.1 decided (``fx2ttnn conformance``, the wheel's own check messages):
the in-place position increment, SDPA-decode's position tensor, layer_norm's residual, and the block-float packer
(bit for bit what ttnn's host conversion stores, from hand-computed cases of its rules)."""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.runtime import reference as ttnn
from fx2ttnn.runtime.reference.tensor import quantize_block_float

from .helpers import RM, TILE, assert_rejected


# -- the position increment ------------------------------------------------------------------------

def test_add_into_a_row_major_output_is_refused_as_ttnn_refuses_it(dev):
    """ttnn 0.81.1: ``add(position, 1, output_tensor=position)`` on an int32 ROW_MAJOR tensor fails in the binary op
    (binary.cpp) before it needs a device; the reference refuses it with the same reason."""
    assert_rejected(lambda m: (lambda p: ttnn.add(p, 1, output_tensor=p))(m.ints([3], ttnn.int32)), dev,
                    "Optional output tensor with Row Major input is not supported right now for Elementwise")
    assert_rejected(lambda m: (lambda a: ttnn.add(a, m.rm(1, 32), output_tensor=a))(m.rm(1, 32)), dev,
                    "Optional output tensor with Row Major input")


def test_add_into_a_tile_output_is_accepted(make):
    a = make.tile(1, 32, value=torch.ones(1, 32))
    out = ttnn.add(a, 2.0, output_tensor=a)
    assert out is a and torch.equal(ttnn.to_torch(a), torch.full((1, 32), 3.0))


@pytest.mark.parametrize("dtype", [ttnn.int32, ttnn.uint32])
def test_plus_one_increments_in_place(make, dtype):
    p = make.ints([3, 7], dtype)
    assert ttnn.plus_one(p) is p
    assert ttnn.to_torch(p).tolist() == [4, 8]


def test_plus_one_skip_negative_entries_keeps_inactive_users(make):
    p = make.ints([-1, 5, 2**31 - 1], ttnn.int32)
    ttnn.plus_one(p, skip_negative_entries=True)
    assert ttnn.to_torch(p).tolist() == [-1, 6, 2**31 - 1]


@pytest.mark.parametrize("call, message", [
    (lambda m: ttnn.plus_one(m.rm(4, dtype=ttnn.bfloat16)), "dtype bfloat16 is not supported"),
    (lambda m: ttnn.plus_one(m.ints([1], ttnn.int32, layout=TILE)), "must be in ROW_MAJOR layout"),
    (lambda m: ttnn.plus_one(m.ints(torch.zeros(1, 1, 1, 1, 2, dtype=torch.int32), ttnn.int32)), "1 to 4 dimensions"),
    (lambda m: ttnn.plus_one(ttnn.from_torch(torch.tensor([1]), dtype=ttnn.int32)), "must be on device"),
])
def test_plus_one_contract(dev, call, message):
    assert_rejected(call, dev, message)


def test_plus_one_inside_a_trace_is_replayed(dev):
    p = ttnn.from_torch(torch.tensor([0], dtype=torch.int32), dtype=ttnn.int32, layout=RM, device=dev)
    tid = ttnn.begin_trace_capture(dev)
    ttnn.plus_one(p)
    ttnn.end_trace_capture(dev, tid)
    for _ in range(3):
        ttnn.execute_trace(dev, tid)
    assert ttnn.to_torch(p).tolist() == [4]  # the captured call ran once, then three replays


# -- SDPA decode's position tensor, layer_norm's residual -------------------------------------------

def _decode_call(m, pos):
    q = m.tile(1, 1, 2, 32, dtype=ttnn.bfloat16)
    k = m.tile(1, 2, 64, 32, dtype=ttnn.bfloat16)
    return ttnn.transformer.scaled_dot_product_attention_decode(q, k, k, cur_pos_tensor=pos, scale=0.125)


def test_sdpa_decode_takes_an_int32_position(make):
    out = _decode_call(make, make.ints([5], ttnn.int32))
    assert tuple(out.shape) == (1, 1, 32, 32)  # heads padded to 32


@pytest.mark.parametrize("pos, message", [
    (lambda m: m.ints([5], ttnn.uint32), "Expect cur_pos to be INT32, got uint32"),
    (lambda m: m.ints([5], ttnn.int32, layout=TILE), "Expect cur_pos to be ROW_MAJOR, got TILE"),
])
def test_sdpa_decode_refuses_other_position_tensors(dev, pos, message):
    assert_rejected(lambda m: _decode_call(m, pos(m)), dev, message)


@pytest.mark.parametrize("residual, message", [
    (lambda m: m.rm(1, 32, 64), "residual_input_tensor must be in TILE layout"),
    (lambda m: m.tile(1, 1, 64), "Input and residual logical and padded shapes must match"),
])
def test_layer_norm_residual_layout_and_shape(dev, residual, message):
    assert_rejected(lambda m: ttnn.layer_norm(m.tile(1, 32, 64), epsilon=1e-5, residual_input_tensor=residual(m)),
                    dev, message)


def test_layer_norm_residual_of_another_float_dtype_is_accepted(make):
    """ttnn's residual checks (layout, logical/padded shape, tile shape) name no dtype rule."""
    out = ttnn.layer_norm(make.tile(1, 32, 64), epsilon=1e-5,
                          residual_input_tensor=make.tile(1, 32, 64, dtype=ttnn.bfloat16))
    assert tuple(out.shape) == (1, 32, 64)


# -- the block-float packer -------------------------------------------------------------------------

def _block(*values: float) -> torch.Tensor:
    """One 16-value block: ``values`` then zeros."""
    x = torch.zeros(16)
    x[:len(values)] = torch.tensor(values, dtype=torch.float32)
    return x


def _bits(x: torch.Tensor) -> list[int]:
    return x.view(torch.int32).tolist()


@pytest.mark.parametrize("mbits, values, expected", [
    # shared exponent 0 (1.0): quantum 2**-6 (bf8) / 2**-2 (bf4); 1 + 2**-7 is a tie -> even (1.0)
    (7, (1.0, 1 + 2**-7, 1 + 3 * 2**-7), (1.0, 1.0, 1 + 2**-5)),
    (3, (1.0, 1.125, 1.375), (1.0, 1.0, 1.5)),
    # the largest mantissa saturates instead of carrying into the exponent
    (7, (1.999,), (127 / 64,)),
    (3, (1.99,), (1.75,)),
    # a smaller value is aligned first: its shifted-out bits are dropped before rounding (2**-8 + 2**-30 is
    # exactly a tie after the shift, so it rounds to even: 0)
    (7, (1.0, 2**-7 + 2**-30), (1.0, 0.0)),
    (7, (1.0, 2**-7 + 2**-20), (1.0, 2**-6)),
    # subnormals and -0 become +0; a value rounding to 0 loses its sign
    (7, (1.0, -0.0, 1e-40, -2**-9), (1.0, 0.0, 0.0, 0.0)),
])
def test_block_float_rounding(mbits, values, expected):
    got = quantize_block_float(_block(*values), mbits)
    assert _bits(got) == _bits(_block(*expected))


def test_block_float_inf_and_nan_take_the_shared_exponent():
    got = quantize_block_float(_block(float("inf"), 3.0, -1.0), 7)
    assert got[0] == float("inf") and _bits(got[1:]) == _bits(torch.zeros(15))
    got = quantize_block_float(_block(float("nan"), 2.0), 7)
    assert got[0].isnan() and got[1] == 0.0


def test_block_float_blocks_are_16_wide_and_a_short_block_pads_with_zeros():
    x = torch.cat([_block(1.0, 2**-5), torch.tensor([2**-5, 2**-12, 3.0])])
    got = quantize_block_float(x, 7)
    # block 0 (max 1.0): 2**-5 exact; block 1 (max 3.0, exponent 1): 2**-5 still exact, 2**-12 below 2**-5 -> 0
    assert got[:2].tolist() == [1.0, 2**-5] and got[16:].tolist() == [2**-5, 0.0, 3.0]
