"""``ttnn.transformer.*`` attention ops (OP_CONTRACT §6)."""
from __future__ import annotations
