"""lower_kv_cache: the decode step's in-place cache writes → ``ttnn.experimental.paged_update_cache``.

Input:   ATen graph with ``aten.index_copy_(cache, 2, pos, new)`` where ``cache`` is a program input
         ``[B, H, S, dh]`` (HF ``Cache.update`` on a preallocated cache), ``new`` is ``[B, H, 1, dh]`` and
         ``pos`` is the step's position (``position[:1]`` of the ``[B]`` position input, or that input).
Output:  ``new`` reshaped to ``[1, B, H, dh]`` (same element order), moved to an L1 height-sharded memory
         config of one ``(H padded to 32) x (dh padded to 32)`` shard per user (OP_CONTRACT §6; ttnn 0.81.1
         shards a TILE tensor in whole tiles, and paged_update_cache wants the shard as wide as the padded
         row, so a head dim that is not a multiple of 32 is sharded at its padded width), then
         ``paged_update_cache(cache, x, update_idxs_tensor=position)``: the position stays a device tensor,
         so the step takes no host integer and can be captured in a ttnn trace.  The node's value is the
         updated cache (readers of the old ``index_copy_`` result read it after the write).
Leaves alone: ``index_copy_`` along other dims or into non-inputs (a LoweringError at fallback time:
         an in-place write to a device input cannot run on the host).

Why not ``ttnn.update_cache``: its ``update_index`` is a host int, baked into a trace (OP_CONTRACT §6).
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import Ref, construct, ttnn_call
from .graph_utils import aten, aten_nodes, impure, replace, set_val, shape, val
from .pass_manager import FxPass, PassResult

TILE = 32


def position_source(pos: torch.fx.Node) -> torch.fx.Node:
    """The ``[B]`` position input behind ``position[:1]`` (look through the slice)."""
    while pos.op == "call_function" and pos.target is aten.slice.Tensor:
        pos = pos.args[0]
    return pos


def _tiles(n: int) -> int:
    return -(-n // TILE) * TILE


def height_sharded(rows: int, width: int, cores: int):
    return construct("create_sharded_memory_config", (rows, width),
                     core_grid=construct("CoreGrid", y=1, x=cores), strategy=Ref("ShardStrategy.HEIGHT"),
                     use_height_and_width_as_shard_shape=True)


class LowerKVCache(FxPass):
    name = "lower_kv_cache"

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"cache_update": 0, "declined": 0}
        g = gm.graph
        for node in aten_nodes(gm, aten.index_copy_.default, aten.index_copy.default):
            cache, dim, pos, new = node.args
            if node.target is not aten.index_copy_.default or cache.op != "placeholder" or dim != 2 \
                    or len(shape(cache)) != 4 or shape(new)[2] != 1:
                node.meta["lowering_note"] = "cache update declined: expects index_copy_(cache_input, 2, pos, [B,H,1,dh])"
                stats["declined"] += 1
                continue
            b, h, _, dh = shape(cache)
            position = position_source(pos)
            with g.inserting_before(node):
                x = ttnn_call(g, ops.reshape, (new, [1, b, h, dh]), like=node)
                set_val(x, (1, b, h, dh), val(new).dtype)
                x = ttnn_call(g, ops.interleaved_to_sharded, (x, height_sharded(_tiles(h), _tiles(dh), b)), like=node)
                set_val(x, (1, b, h, dh), val(new).dtype)
                upd = ttnn_call(g, ops.paged_update_cache, (cache, x), {"update_idxs_tensor": position}, like=node)
            replace(node, upd)
            stats["cache_update"] += 1
        g.eliminate_dead_code(is_impure_node=impure)  # the ``position[:1]`` slice the write no longer reads
        return self.result(gm, stats)
