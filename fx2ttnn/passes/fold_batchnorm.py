"""fold_batchnorm: an eval-mode batch norm right after a convolution is folded into the conv's weight and bias.

Input:   ATen graph (torch.export training IR: ``aten.batch_norm.default(x, γ, β, mean, var, training,
         momentum, eps, cudnn)``; the core-ATen ``_native_batch_norm_legit_no_training`` + ``getitem(·, 0)`` is
         matched too); conv weights and BN parameters as ``get_attr`` constants.
Output:  ``batch_norm(conv(x, w, b, ...), γ, β, mean, var, training=False, ..., eps)`` → ``conv(x, w', b', ...)``,
         the same conv op with ``w' = w·s`` (``s = γ/√(var+eps)`` per output channel) and
         ``b' = (b − mean)·s + β`` (``b = 0`` when the conv had none; ``γ = 1``, ``β = 0`` when not affine):
         the formula of ``ttnn.model_preprocessing.fold_batch_norm2d_into_conv2d`` (OP_CONTRACT §8), computed once
         here in float64 and cast back to the weight's dtype.  Convs: ``conv1d``, ``conv2d`` and the
         non-transposed 1-D/2-D ``convolution``.  Stats: ``folded``, and ``declined`` (batch norms left, each with
         a ``lowering_note`` saying why; ``lower_batch_norm`` lowers the eval-mode ones on their own).
Leaves alone: training-mode BN, BN without running statistics, a conv whose output has other users, BN not after
         a conv, non-constant conv weight/bias or BN parameters, transposed convs.

Patterns (declarative, SubgraphMatcher): ``batch_norm(conv(x, w, b, ...), ...)`` for each conv form, conv bias and
BN γ/β/stats optional.  The matcher never matches when the conv output has another user (it would leak out of the
subgraph), so the notes for BNs that no pattern matched come from a walk over the batch norms left afterwards.
"""
from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx

from ..lowering.ir import copy_meta
from .graph_utils import Match, Pattern, add_constant, apply_patterns, arg, aten, const_tensor
from .pass_manager import FxPass, PassResult

BATCH_NORMS = (aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default)
CONVS = (aten.conv1d.default, aten.conv2d.default, aten.convolution.default)


def bn_params(node: torch.fx.Node) -> dict[str, Any]:
    """The arguments of either batch-norm form by name (the decomposed one is always inference)."""
    p = {k: arg(node, i, k) for i, k in enumerate(("input", "weight", "bias", "running_mean", "running_var"))}
    if node.target is aten.batch_norm.default:
        p.update(training=arg(node, 5, "training"), eps=arg(node, 7, "eps", 1e-5))
    else:
        p.update(training=False, eps=arg(node, 6, "eps"))
    return p


def bn_reason(gm: torch.fx.GraphModule, p: dict[str, Any]) -> str | None:
    """Why an eval-mode batch norm with these parameters cannot be computed from constants (None: it can)."""
    if p["training"] is not False:
        return "training-mode batch_norm (normalizes with batch statistics)"
    if p["running_mean"] is None or p["running_var"] is None:
        return "batch_norm has no running statistics"
    if any(p[k] is not None and const_tensor(gm, p[k]) is None
           for k in ("weight", "bias", "running_mean", "running_var")):
        return "batch_norm parameters are not constants"
    if not isinstance(p["eps"], (int, float)):
        return "batch_norm eps is not a number"
    return None


def _conv_reason(gm: torch.fx.GraphModule, conv: torch.fx.Node, channels: int) -> str | None:
    w = const_tensor(gm, conv.args[1])
    if w is None:
        return "conv weight is not a constant"
    b = arg(conv, 2, "bias")
    if b is not None and const_tensor(gm, b) is None:
        return "conv bias is not a constant"
    if conv.target is aten.convolution.default and (arg(conv, 6, "transposed") or w.dim() not in (3, 4)):
        return "only non-transposed 1-D/2-D convolutions are folded"
    if not w.is_floating_point():
        return f"conv weight is {w.dtype}"
    if w.shape[0] != channels:
        return f"conv has {w.shape[0]} output channels, batch_norm {channels}"
    return None


def _bn_node(m: Match) -> torch.fx.Node:
    return next(n for n in m.nodes.values() if n.target in BATCH_NORMS)


def _conv_node(m: Match) -> torch.fx.Node:
    return next(n for n in m.nodes.values() if n.target in CONVS)


def _check(gm: torch.fx.GraphModule, m: Match) -> str | None:
    p = bn_params(_bn_node(m))
    return bn_reason(gm, p) or _conv_reason(gm, _conv_node(m), const_tensor(gm, p["running_mean"]).numel())


def _folded(gm: torch.fx.GraphModule, conv: torch.fx.Node, p: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(w', b'): the BN's per-channel scale and shift folded into the conv's weight and bias, in float64."""
    w = const_tensor(gm, conv.args[1])
    f64 = (lambda k, default: default if p[k] is None else const_tensor(gm, p[k]).double())
    n = w.shape[0]
    b = arg(conv, 2, "bias")
    b = torch.zeros(n, dtype=torch.float64) if b is None else const_tensor(gm, b).double()
    gamma, beta = f64("weight", torch.ones(n, dtype=torch.float64)), f64("bias", torch.zeros(n, dtype=torch.float64))
    scale = gamma / torch.sqrt(f64("running_var", None) + float(p["eps"]))
    w_new = w.double() * scale.reshape(-1, *[1] * (w.dim() - 1))
    b_new = (b - f64("running_mean", None)) * scale + beta
    return w_new.to(w.dtype), b_new.to(w.dtype)


def _rewrite(gm: torch.fx.GraphModule, m: Match) -> torch.fx.Node:
    conv, bn = _conv_node(m), _bn_node(m)
    w_new, b_new = _folded(gm, conv, bn_params(bn))
    hint = conv.args[1].target if conv.args[1].op == "get_attr" else conv.name
    w_node = add_constant(gm, f"{hint}_bn_folded", w_new, before=conv)
    b_node = add_constant(gm, f"{hint}_bn_folded_bias", b_new, before=conv)
    args, kwargs = list(conv.args), dict(conv.kwargs)
    args[1] = w_node
    if "bias" in kwargs:
        kwargs["bias"] = b_node
    elif len(args) > 2:
        args[2] = b_node
    else:
        args.append(b_node)
    new = gm.graph.call_function(conv.target, tuple(args), kwargs)
    copy_meta(new, conv)
    new.meta["val"] = conv.meta["val"]
    return new


def _bn_of(conv):
    def fn(x, w, b, stride, padding, dilation, groups, gamma, beta, mean, var, training, momentum, eps, cudnn):
        return aten.batch_norm.default(conv(x, w, b, stride, padding, dilation, groups), gamma, beta, mean, var,
                                       training, momentum, eps, cudnn)
    return fn


def _native_of(conv):
    def fn(x, w, b, stride, padding, dilation, groups, gamma, beta, mean, var, momentum, eps):
        y = conv(x, w, b, stride, padding, dilation, groups)
        return operator.getitem(aten._native_batch_norm_legit_no_training.default(y, gamma, beta, mean, var,
                                                                                  momentum, eps), 0)
    return fn


def convolution_bn(x, w, b, stride, padding, dilation, transposed, output_padding, groups,
                   gamma, beta, mean, var, training, momentum, eps, cudnn):
    y = aten.convolution.default(x, w, b, stride, padding, dilation, transposed, output_padding, groups)
    return aten.batch_norm.default(y, gamma, beta, mean, var, training, momentum, eps, cudnn)


def convolution_native(x, w, b, stride, padding, dilation, transposed, output_padding, groups,
                       gamma, beta, mean, var, momentum, eps):
    y = aten.convolution.default(x, w, b, stride, padding, dilation, transposed, output_padding, groups)
    return operator.getitem(aten._native_batch_norm_legit_no_training.default(y, gamma, beta, mean, var,
                                                                              momentum, eps), 0)


def _patterns() -> list[Pattern]:
    fns = {}
    for name, conv in (("conv1d", aten.conv1d.default), ("conv2d", aten.conv2d.default)):
        fns[f"{name}_batch_norm"], fns[f"{name}_native_batch_norm"] = _bn_of(conv), _native_of(conv)
    fns["convolution_batch_norm"], fns["convolution_native_batch_norm"] = convolution_bn, convolution_native
    optional = ("b", "gamma", "beta", "mean", "var", "cudnn")
    return [Pattern(name, fn, _check, _rewrite, optional=optional) for name, fn in fns.items()]


def _why_left(gm: torch.fx.GraphModule, bn: torch.fx.Node) -> str:
    """The reason a batch norm no pattern matched stays (checked in the order a reader would ask)."""
    p = bn_params(bn)
    x = p["input"]
    reason = bn_reason(gm, p)
    if reason is None and not (isinstance(x, torch.fx.Node) and x.op == "call_function" and x.target in CONVS):
        reason = "batch_norm input is not a convolution"
    if reason is None and len(x.users) > 1:
        reason = "convolution output has other users"
    if reason is None:
        reason = _conv_reason(gm, x, const_tensor(gm, p["running_mean"]).numel())
    return reason or "no fold pattern matched"


class FoldBatchNorm(FxPass):
    name = "fold_batchnorm"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        per_pattern: dict[str, int] = {}
        apply_patterns(gm, PATTERNS, per_pattern)
        left = [n for n in gm.graph.nodes if n.op == "call_function" and n.target in BATCH_NORMS]
        for bn in left:
            bn.meta.setdefault("lowering_note", f"{self.name} declined: {_why_left(gm, bn)}")
        folded = sum(v for k, v in per_pattern.items() if not k.endswith("declined"))
        return self.result(gm, {"folded": folded, "declined": len(left)})


PATTERNS = _patterns()
