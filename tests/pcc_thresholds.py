"""The test suite's accuracy thresholds: those of the package (fx2ttnn/accuracy.py), the one place they are set."""
from fx2ttnn.accuracy import OP_ATOL, PCC  # noqa: F401
