"""lower_batch_norm: an eval-mode batch norm with constant running statistics → rank-4 ``ttnn.batch_norm``.

Input:   ATen graph (``aten.batch_norm.default``, or the decomposed ``_native_batch_norm_legit_no_training`` +
         ``getitem(·, 0)``); running stats and γ/β as ``get_attr`` constants.  Run after ``fold_batchnorm``:
         what it lowers is a batch norm that could not be folded into a conv.
Output:  ``x [N, C] / [N, C, L] / [N, C, H, W]`` → ``ttnn.reshape(x, [N, C, H, W])`` (size-1 dims appended; none
         for rank 4) → ``ttnn.batch_norm(x4, running_mean=m, running_var=v, weight=g, bias=b, training=False,
         eps=eps)`` → ``ttnn.reshape`` back.  The op takes only a rank-4 ``[N, C, H, W]`` input and ``[1, C, 1, 1]``
         parameters (OP_CONTRACT §5); the parameters are reshaped here, once.  ``eps`` is always passed.
         ``meta["val"]`` is set on every node created.
Leaves alone: training mode, missing running statistics, non-constant parameters (they become host fallbacks,
         each with its ``lowering_note``), inputs of rank < 2 or > 4.

Patterns (declarative): ``batch_norm(x, g, b, mean, var, training, momentum, eps, cudnn)`` and
``getitem(_native_batch_norm_legit_no_training(x, g, b, mean, var, momentum, eps), 0)``; γ/β and the running
statistics are optional placeholders so that a batch norm without them is matched and declined with a reason.
"""
from __future__ import annotations

import operator

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import ttnn_call
from .fold_batchnorm import BATCH_NORMS, bn_params, bn_reason
from .graph_utils import Match, Pattern, add_constant, apply_patterns, aten, const_tensor, set_val, shape, val
from .pass_manager import FxPass, PassResult


def batch_norm(x, weight, bias, mean, var, training, momentum, eps, cudnn):
    return aten.batch_norm.default(x, weight, bias, mean, var, training, momentum, eps, cudnn)


def native_batch_norm(x, weight, bias, mean, var, momentum, eps):
    return operator.getitem(aten._native_batch_norm_legit_no_training.default(x, weight, bias, mean, var,
                                                                              momentum, eps), 0)


def _bn(m: Match) -> torch.fx.Node:
    return next(n for n in m.nodes.values() if n.target in BATCH_NORMS)


def _check(gm: torch.fx.GraphModule, m: Match) -> str | None:
    p = bn_params(_bn(m))
    reason = bn_reason(gm, p)
    if reason is None and not 2 <= len(shape(p["input"])) <= 4:
        reason = f"rank {len(shape(p['input']))} input: ttnn.batch_norm takes [N, C, H, W] (from rank 2-4)"
    return reason


def _rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    bn = _bn(m)
    p = bn_params(bn)
    g, x = gm.graph, p["input"]
    dims, dtype = shape(x), val(x).dtype
    dims4 = dims + (1,) * (4 - len(dims))
    c = dims[1]
    kwargs = {}
    for key in ("running_mean", "running_var", "weight", "bias"):
        t = p[key]
        if t is not None:
            kwargs[key] = add_constant(gm, f"{t.target}_1c11", const_tensor(gm, t).reshape(1, c, 1, 1), before=bn)
    kwargs.update(training=False, eps=float(p["eps"]))
    x4 = x if dims4 == dims else set_val(ttnn_call(g, ops.reshape, (x, list(dims4)), like=bn), dims4, dtype)
    y4 = set_val(ttnn_call(g, ops.batch_norm, (x4,), kwargs, like=bn), dims4, dtype)
    return y4 if dims4 == dims else set_val(ttnn_call(g, ops.reshape, (y4, list(dims)), like=bn), dims, dtype)


_OPTIONAL = ("weight", "bias", "mean", "var", "cudnn")
PATTERNS = [Pattern("batch_norm", batch_norm, _check, _rewrite, optional=_OPTIONAL),
            Pattern("native_batch_norm", native_batch_norm, _check, _rewrite, optional=_OPTIONAL)]


class LowerBatchNorm(FxPass):
    name = "lower_batch_norm"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats: dict[str, int] = {}
        apply_patterns(gm, PATTERNS, stats)
        return self.result(gm, stats)
