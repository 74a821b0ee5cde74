"""fuse_attention: every HF ``SpeechT5Attention`` → fused TTNN attention (patterns in patterns/attention.py).

Input:   ATen graph after canonicalize / fold_constants / decompose, projections still ``aten.linear``.
Output:  each matched site is a fused QKV (or Q) ``aten.linear`` with weights concatenated here (lowered
         by lower_linear) followed by TTNN head-split / SDPA / cache-update / head-merge ops; no ``bmm`` or
         ``softmax`` of a matched site remains.  Stats count matched sites per kind (``encoder_self``,
         ``decoder_self``, ``decoder_cross``) and ``unmatched`` sites.
         ``graph_module.meta["attention"]`` records the per-kind counts and every SpeechT5Attention site that
         was not rewritten, with the reason (a declined check, or no pattern matched); the ``unmatched`` stat
         counts them (``fx2ttnn dump``).  Such a site still runs on the device, through the generic
         matmul/softmax/``lower_kv_cache`` lowering: e.g. a head dim that is not a multiple of 32, which the
         fused head-split and SDPA ops cannot take (tests/e2e/test_fuzz_hf.py covers those against HF).
Leaves alone: attention of other module types (other models), sites whose checks decline.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering.ir import source_module
from .graph_utils import aten, apply_patterns
from .pass_manager import FxPass, PassResult
from .patterns.attention import PATTERNS

ATTENTION_TYPE = "SpeechT5Attention"
KINDS = {"attention": "encoder_self", "self_attn": "decoder_self", "encoder_attn": "decoder_cross"}


def attention_sites(gm: torch.fx.GraphModule) -> dict[str, str]:
    """Module path → kind for every SpeechT5Attention the graph's nodes came from."""
    sites: dict[str, str] = {}
    for node in gm.graph.nodes:
        for path, typ in (node.meta.get("nn_module_stack") or {}).values():
            if str(typ).rsplit(".", 1)[-1].rstrip("'>") == ATTENTION_TYPE:
                hf = source_module_path(path)
                sites[hf] = KINDS.get(hf.rsplit(".", 1)[-1], "unknown")
    return sites


def source_module_path(path: str) -> str:
    from ..lowering.ir import strip_wrapper_prefix
    return strip_wrapper_prefix(path)


class FuseAttention(FxPass):
    name = "fuse_attention"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        sites = attention_sites(gm)
        stats: dict[str, int] = {}
        for patterns in PATTERNS.values():
            apply_patterns(gm, patterns, stats)
        unmatched = []
        for node in gm.graph.nodes:
            if node.op == "call_function" and node.target in (aten.softmax.int, aten._softmax.default):
                mod = source_module(node)
                if mod in sites:
                    reason = node.meta.get("lowering_note") or _decline_reason(node) or \
                        "no attention pattern matched this subgraph"
                    unmatched.append({"module": mod, "kind": sites[mod], "reason": reason})
        counts = {kind: sum(1 for k in sites.values() if k == kind) for kind in set(sites.values())}
        for u in unmatched:
            counts[u["kind"]] -= 1
        gm.meta["attention"] = {"matched": counts, "unmatched": unmatched, "sites": len(sites)}
        stats["unmatched"] = len(unmatched)
        return self.result(gm, {k: v for k, v in stats.items() if not k.endswith("_declined")} | {
            "declined": sum(v for k, v in stats.items() if k.endswith("_declined"))})


def _decline_reason(softmax: torch.fx.Node) -> str | None:
    """A pattern that declined records its reason on the site's output node, downstream of the softmax."""
    seen, frontier = set(), [softmax]
    while frontier:
        n = frontier.pop()
        if n in seen:
            continue
        seen.add(n)
        if "lowering_note" in n.meta:
            return n.meta["lowering_note"]
        if source_module(n) == source_module(softmax):
            frontier.extend(n.users)
    return None
