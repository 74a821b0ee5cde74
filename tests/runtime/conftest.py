"""Fixtures of the reference-ttnn unit tests: a fresh reference device (clean byte counters) and a fixed seed."""
from __future__ import annotations

import pytest
import torch

from fx2ttnn.runtime import reference as ttnn

from .helpers import Make


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def dev():
    device = ttnn.open_device(0)
    yield device
    ttnn.close_device(device)


@pytest.fixture
def make(dev):
    return Make(dev)
