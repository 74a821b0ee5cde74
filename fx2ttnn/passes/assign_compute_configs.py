"""assign_compute_configs: give every op that takes a compute kernel config an explicit one, from a precision policy.

Input:   a lowered TTNN program after ``assign_layouts`` (every value has its TensorSpec; weights are uploaded by
         bind-time ``ttnn.from_torch(<constant>, dtype=..., layout=TILE, device=device)`` nodes).
Output:  every node whose op has a ``compute_config`` keyword in ``lowering/op_table.py`` passes it
         ``ttnn.init_device_compute_kernel_config(device.arch(), math_fidelity=..., math_approx_mode=...,
         fp32_dest_acc_en=..., packer_l1_acc=...)`` from ``fx2ttnn/precision.py``'s policy for its op class (a
         ``Construct``: built once when the program is bound, a parameter of ``load_parameters`` in exported
         scripts); ``node.meta["precision"]`` holds the op class and the entry used.  Where the policy stores a
         class's weights in another dtype (``performance``: bfloat8_b for the large linears), the weight's upload
         converts to it (a shared upload of other readers is left as is and the linear gets its own).  Ops with a
         float32 output get a 32-bit DST whatever the policy (ttnn requires it).  The program is re-checked
         against the reference contract (``infer_specs``).
Leaves alone: ops that take no compute kernel config; configs a node already has (a caller's explicit choice);
         weights that are not a bind-time upload of a constant (they keep their dtype; counted as
         ``weights_not_converted``).
"""
from __future__ import annotations

import math

import torch
import torch.fx

from ..errors import LoweringError
from ..lowering import op_table as ops
from ..lowering.abstract import infer_specs
from ..lowering.ir import DEVICE_ARCH, Construct, Ref, TTNNOp, is_bind_time
from ..precision import OpPrecision, check_precision, op_class, precision_for
from .pass_manager import FxPass, PassResult


def config_construct(p: OpPrecision):
    """``ttnn.init_device_compute_kernel_config(device.arch(), ...)`` for one policy entry."""
    kwargs = (("math_fidelity", Ref(f"MathFidelity.{p.math_fidelity}")), ("math_approx_mode", p.math_approx_mode),
              ("fp32_dest_acc_en", p.fp32_dest_acc_en), ("packer_l1_acc", p.packer_l1_acc))  # OP_CONTRACT §0 order
    return Construct("init_device_compute_kernel_config", (DEVICE_ARCH,), kwargs)


def _weight(node: torch.fx.Node) -> torch.fx.Node | None:
    w = node.args[1] if len(node.args) > 1 else node.kwargs.get("input_tensor_b")
    return w if isinstance(w, torch.fx.Node) else None


def _dtype_of(node: torch.fx.Node) -> str | None:
    spec = node.meta.get("tensor_spec")
    return spec.dtype if spec is not None else None


class AssignComputeConfigs(FxPass):
    name = "assign_compute_configs"

    def __init__(self, precision: str):
        check_precision(precision)
        self.precision = precision

    def requires(self, gm: torch.fx.GraphModule) -> None:
        missing = [n.name for n in gm.graph.nodes if n.op == "placeholder" and "tensor_spec" not in n.meta]
        if missing:
            raise LoweringError(f"assign_compute_configs runs after assign_layouts; inputs without a spec: {missing}")

    def ensures(self, gm: torch.fx.GraphModule) -> None:
        for n in gm.graph.nodes:
            rule = ops.rule_for(n.target) if isinstance(n.target, TTNNOp) else None
            if rule is not None and rule.compute_config and n.kwargs.get(rule.compute_config) is None:
                raise LoweringError(f"{n.target.qualified_name} node {n.name} has no {rule.compute_config}")

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        self.requires(gm)
        stats: dict[str, int] = {}
        constants: set[torch.fx.Node] = set()
        for node in gm.graph.nodes:
            if is_bind_time(node, constants):
                constants.add(node)
        for node in list(gm.graph.nodes):
            if node.op != "call_function" or not isinstance(node.target, TTNNOp):
                continue
            rule = ops.rule_for(node.target)
            if not rule.compute_config or node.kwargs.get(rule.compute_config) is not None:
                continue
            w = _weight(node) if rule.precision == "linear" else None
            wspec = w.meta.get("tensor_spec") if w is not None else None
            cls = op_class(node.target.name, rule.precision, None if wspec is None else math.prod(wspec.shape))
            ins = [a for a in node.all_input_nodes if _dtype_of(a) is not None]
            fp32_in = bool(ins) and _dtype_of(ins[0]) == "float32"
            fp32_out = _dtype_of(node) == "float32"
            p = precision_for(self.precision, cls, node.target.name, fp32_in=fp32_in, fp32_out=fp32_out)
            if fp32_out and not p.fp32_dest_acc_en:
                p = OpPrecision(p.math_fidelity, p.math_approx_mode, True, p.packer_l1_acc, p.weights_dtype)
                stats["fp32_dest_for_float32_output"] = stats.get("fp32_dest_for_float32_output", 0) + 1
            if p.weights_dtype and w is not None:
                self._convert_weight(gm, node, w, p.weights_dtype, constants, stats)
            node.kwargs = {**node.kwargs, rule.compute_config: config_construct(p)}
            node.meta["precision"] = (cls, p)
            stats["configs"] = stats.get("configs", 0) + 1
        if stats.get("configs"):
            infer_specs(gm)  # weight dtypes changed; every call re-checked with its config
        self.ensures(gm)
        return self.result(gm, stats)

    @staticmethod
    def _convert_weight(gm: torch.fx.GraphModule, node: torch.fx.Node, w: torch.fx.Node, dtype: str,
                        constants: set[torch.fx.Node], stats: dict[str, int]) -> None:
        """Store ``node``'s weight in ``dtype``: its upload converts to it (a copy of the upload if others read it)."""
        if _dtype_of(w) == dtype:
            return
        if not (w.op == "call_function" and w.target is ops.from_torch and w in constants
                and isinstance(w.args[0], torch.fx.Node) and w.args[0].op == "get_attr"):
            stats["weights_not_converted"] = stats.get("weights_not_converted", 0) + 1
            return
        target = w
        if any(u is not node for u in w.users):
            with gm.graph.inserting_after(w):
                target = gm.graph.call_function(ops.from_torch, w.args, dict(w.kwargs))
            target.meta.update({k: v for k, v in w.meta.items() if k != "tensor_spec"})
            node.replace_input_with(w, target)
            constants.add(target)
        target.kwargs = {**target.kwargs, "dtype": Ref(dtype)}
        stats[f"weights_{dtype}"] = stats.get(f"weights_{dtype}", 0) + 1
