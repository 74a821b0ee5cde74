"""Precision policies: the compute kernel config (and weight dtype) of every class of op, in one table.

``lower_model(..., precision=NAME)`` picks a policy; the ``assign_compute_configs`` pass gives every op that takes
a compute kernel config an explicit one from it (``init_device_compute_kernel_config(device.arch(), ...)``, made
once when a program is bound); ``dump``, ``tts.report()`` and ``export`` show the result.  Op classes come from
``lowering/op_table.py`` (``precision=``), with ``ttnn.linear`` split by the size of its weight: a decode step
streams every weight once per step, and its large linears carry nearly all of those bytes.

Policies (the choices follow tt-metal's own model configs, ``models/tt_transformers/tt/model_config.py``:
``ModelOptimizations.accuracy`` / ``performance`` and its ``compute_kernel_config_*`` presets):

* ``accuracy``: bfloat16 weights; matmul-type ops (linear, matmul, conv) at HiFi3 with a 32-bit DST -- for
  bfloat16 operands HiFi3 leaves out only the A_lo x B_lo phase (SrcA's 3 low bits times SrcB's 7th), and
  tt-metal warns that HiFi4 with fp32 accumulation is wrong on Wormhole at times ("Prefer using HiFi3 with fp32
  accumulation on Wormhole", ``verify_numerical_configuration``, string present in the 0.81.1 .so); attention,
  layer norm and softmax at HiFi4 with a 32-bit DST (tt-metal's accuracy preset: SDPA at HiFi4).  No
  approximate SFPU modes.
* ``performance``: bfloat8_b weights for the large linears at HiFi2 with a 32-bit DST (tt-metal's default for
  BFP8 attention weights, ``compute_kernel_config_hifi2``); the rest at HiFi2 with a 16-bit DST except the
  normalizations, which keep HiFi4 (their multiplies are few); bfloat16 conv weights.
* ``ttnn-defaults``: every op with the config it gets when none is passed (``runtime/reference/numerics.py``
  ``OP_DEFAULTS``, read from tt-metal's source), made explicit: what an unconfigured program computes.

A float32 output needs a 32-bit DST (the ``fp32_dest_acc_en`` docstring), so the pass sets it for those ops
whatever the policy says, and counts them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UnsupportedModelError

# ttnn.linear weights with at least this many elements are "large" (768 x 768 = 589824 and up in SpeechT5; the
# prenet's 256 x 256, the mel head's 768 x 160 and the stop head's 768 x 2 are "small")
LARGE_LINEAR_ELEMENTS = 1 << 18

OP_CLASSES: dict[str, str] = {
    "linear.large": f"ttnn.linear with a weight of >= {LARGE_LINEAR_ELEMENTS} elements",
    "linear.small": "any other ttnn.linear",
    "matmul": "ttnn.matmul (activation x activation)",
    "sdpa": "ttnn.transformer.scaled_dot_product_attention",
    "sdpa_decode": "ttnn.transformer.scaled_dot_product_attention_decode",
    "layer_norm": "ttnn.layer_norm",
    "softmax": "ttnn.softmax",
    "batch_norm": "ttnn.batch_norm",
    "conv": "ttnn.conv2d / conv_transpose2d and their prepare_* calls",
    "kv_cache": "ttnn.experimental.paged_update_cache",
}


@dataclass(frozen=True)
class OpPrecision:
    """One op class's compute kernel config, and the dtype its weight is stored in (None: the program's)."""

    math_fidelity: str
    math_approx_mode: bool
    fp32_dest_acc_en: bool
    packer_l1_acc: bool
    weights_dtype: str | None = None

    def describe(self) -> str:
        parts = [self.math_fidelity, "fp32 DST" if self.fp32_dest_acc_en else "bf16 DST"]
        if self.packer_l1_acc:
            parts.append("L1 acc")
        if self.math_approx_mode:
            parts.append("approx")
        if self.weights_dtype:
            parts.append(f"{self.weights_dtype} weights")
        return ", ".join(parts)


def _p(fidelity: str, fp32: bool, l1: bool = False, weights: str | None = None, approx: bool = False) -> OpPrecision:
    return OpPrecision(fidelity, approx, fp32, l1, weights)


POLICIES: dict[str, dict[str, OpPrecision] | None] = {
    "accuracy": {
        "linear.large": _p("HiFi3", True, True),
        "linear.small": _p("HiFi3", True, True),
        "matmul": _p("HiFi3", True, True),
        "conv": _p("HiFi3", True, True),
        "sdpa": _p("HiFi4", True),
        "sdpa_decode": _p("HiFi4", True),
        "layer_norm": _p("HiFi4", True),
        "softmax": _p("HiFi4", True),
        "batch_norm": _p("HiFi4", True),
        "kv_cache": _p("HiFi4", False),  # a copy into the cache: no arithmetic, no accumulation
    },
    "performance": {
        "linear.large": _p("HiFi2", True, True, weights="bfloat8_b"),
        "linear.small": _p("HiFi2", False, True),
        "matmul": _p("HiFi2", False, True),
        "conv": _p("HiFi2", False, True),
        "sdpa": _p("HiFi2", False),
        "sdpa_decode": _p("HiFi2", False),
        "layer_norm": _p("HiFi4", False),
        "softmax": _p("HiFi4", False),
        "batch_norm": _p("HiFi4", False),
        "kv_cache": _p("LoFi", False),
    },
    "ttnn-defaults": None,  # each op's own default (numerics.OP_DEFAULTS)
}
PRECISIONS = tuple(POLICIES)
DEFAULT_PRECISION = "accuracy"

# the op-default key (numerics.OP_DEFAULTS) of each op that takes a compute config
_DEFAULT_KEY = {
    "prepare_conv_weights": "conv2d", "prepare_conv_bias": "conv2d", "prepare_conv_transpose2d_weights":
    "conv_transpose2d", "prepare_conv_transpose2d_bias": "conv_transpose2d",
}


def check_precision(name: str) -> None:
    if name not in POLICIES:
        raise UnsupportedModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")


def op_class(op_name: str, rule_class: str, weight_elements: int | None) -> str:
    """The op class of a ttnn op (``rule_class`` from op_table; linears split by their weight's size)."""
    if rule_class != "linear":
        return rule_class
    return "linear.large" if (weight_elements or 0) >= LARGE_LINEAR_ELEMENTS else "linear.small"


def precision_for(policy: str, cls: str, op_name: str, *, fp32_in: bool, fp32_out: bool) -> OpPrecision:
    """The entry of ``policy`` for an op of class ``cls`` (``ttnn-defaults``: the op's own default)."""
    table = POLICIES[policy]
    if table is not None:
        return table[cls]
    from .runtime.reference.numerics import default_config
    key = op_name.rsplit(".", 1)[-1]
    cfg = default_config(_DEFAULT_KEY.get(key, key), fp32_in=fp32_in, fp32_out=fp32_out)
    return OpPrecision(cfg.math_fidelity.value, cfg.math_approx_mode, cfg.fp32_dest_acc_en, cfg.packer_l1_acc)


def describe_policy(policy: str) -> list[str]:
    """One line per op class: what ``policy`` gives it (for reports and dumps)."""
    table = POLICIES[policy]
    if table is None:
        return ["every op: its own default config (runtime/reference/numerics.py OP_DEFAULTS), made explicit"]
    return [f"{cls:<13} {table[cls].describe()}" for cls in OP_CLASSES]
