"""Reference trace capture/replay (OP_CONTRACT §9): fixed buffers, in-place refresh, the capture-time rules."""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.errors import TTNNContractError
from fx2ttnn.runtime import reference as ttnn

from .helpers import TILE


def _fixed(dev, value):
    t = ttnn.allocate_tensor_on_device(ttnn.Shape(list(value.shape)), ttnn.float32, TILE, dev, ttnn.DRAM_MEMORY_CONFIG)
    ttnn.copy(ttnn.from_torch(value, dtype=ttnn.float32, layout=TILE, device=dev), t)
    return t


def test_replay_reads_refreshed_inputs_and_writes_the_captured_outputs(dev):
    w = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.float32, layout=TILE, device=dev)
    x = _fixed(dev, torch.randn(1, 32))
    tid = ttnn.begin_trace_capture(dev, cq_id=0)
    h = ttnn.relu(ttnn.linear(x, w))
    y = ttnn.add(h, 1.0)
    ttnn.deallocate(h)
    ttnn.end_trace_capture(dev, tid, cq_id=0)
    assert not ttnn.is_trace_capture_active(dev)

    for _ in range(3):
        new = torch.randn(1, 32)
        ttnn.copy(ttnn.from_torch(new, dtype=ttnn.float32, layout=TILE, device=dev), x)  # refresh in place
        ttnn.execute_trace(dev, tid, cq_id=0, blocking=False)
        torch.testing.assert_close(ttnn.to_torch(y), torch.relu(new @ ttnn.to_torch(w)) + 1.0)


def test_a_loop_carried_value_copied_inside_the_trace_advances_each_replay(dev):
    state = _fixed(dev, torch.zeros(1, 32))
    tid = ttnn.begin_trace_capture(dev)
    ttnn.copy(ttnn.add(state, 1.0), state)
    ttnn.end_trace_capture(dev, tid)
    for _ in range(4):
        ttnn.execute_trace(dev, tid)
    assert torch.equal(ttnn.to_torch(state), torch.full((1, 32), 5.0))  # capture ran once, 4 replays


def test_replay_keeps_device_memory_flat(dev):
    x = _fixed(dev, torch.randn(1, 32))
    tid = ttnn.begin_trace_capture(dev)
    a = ttnn.multiply(x, 2.0)
    b = ttnn.add(a, x)
    ttnn.deallocate(a)
    ttnn.end_trace_capture(dev, tid)
    ttnn.execute_trace(dev, tid)
    before = dev.allocated_bytes
    for _ in range(5):
        ttnn.execute_trace(dev, tid)
    assert dev.allocated_bytes == before
    assert b.is_allocated() and not a.is_allocated()


@pytest.mark.parametrize("op", ["to_torch", "from_torch", "copy_host_to_device_tensor", "from_device"])
def test_host_synchronizing_work_is_rejected_during_capture(dev, op):
    x = _fixed(dev, torch.randn(1, 32))
    calls = {
        "to_torch": lambda: ttnn.to_torch(x),
        "from_torch": lambda: ttnn.from_torch(torch.randn(1, 32), dtype=ttnn.float32, layout=TILE, device=dev),
        "copy_host_to_device_tensor": lambda: ttnn.copy_host_to_device_tensor(
            ttnn.from_torch(torch.randn(1, 32), dtype=ttnn.float32, layout=TILE), x),
        "from_device": lambda: ttnn.from_device(x),
    }
    tid = ttnn.begin_trace_capture(dev)
    with pytest.raises(TTNNContractError, match=f"ttnn.{op}: host-synchronizing work is not supported"):
        calls[op]()
    ttnn.end_trace_capture(dev, tid)
    ttnn.to_torch(x)  # fine again once the capture ended


def test_trace_id_rules(dev):
    tid = ttnn.begin_trace_capture(dev)
    with pytest.raises(TTNNContractError, match="one capture at a time"):
        ttnn.begin_trace_capture(dev)
    with pytest.raises(TTNNContractError, match="while a capture is active"):
        ttnn.execute_trace(dev, tid)
    ttnn.end_trace_capture(dev, tid)
    ttnn.release_trace(dev, tid)
    with pytest.raises(TTNNContractError, match=f"no captured trace {tid}"):
        ttnn.execute_trace(dev, tid)
    with pytest.raises(TTNNContractError, match="is not being captured"):
        ttnn.end_trace_capture(dev, tid)
