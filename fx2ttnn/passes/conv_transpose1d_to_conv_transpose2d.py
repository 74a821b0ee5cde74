"""conv_transpose1d_to_conv_transpose2d: HiFi-GAN's ConvTranspose1d upsamplers → ``ttnn.conv_transpose2d``.

Input:   ATen graph; ``aten.conv_transpose1d`` / transposed 1-D ``aten.convolution`` with constant weight/bias.
Output:  ``to_flat(x)`` → ``ttnn.conv_transpose2d(input_tensor=..., weight_tensor=w, batch_size=B,
         input_height=1, input_width=L, kernel_size=(1, K), stride=(1, s), padding=(0, p),
         output_padding=(0, op), dilation=(1, d), groups=g, mirror_kernel=True)`` → ``sharded_to_interleaved``
         (the op has no ``memory_config`` and may return a sharded tensor) → ``add(bias [1, 1, 1, O])`` →
         ``from_flat(y)``.  The torch weight ``[C_in, C_out/g, K]`` is IOHW ``[C_in, C_out/g, 1, K]``, prepared once
         by ``ttnn.prepare_conv_transpose2d_weights`` on a constant (bound once).  ``mirror_kernel=True``: torch's
         ConvTranspose weights are not pre-mirrored.  The output length is the contract's formula,
         ``(L - 1)·s - 2p + d·(K - 1) + op + 1``, equal to PyTorch's.
         The bias is a separate add: OP_CONTRACT §8 gives no bias preparation for conv_transpose2d, and a
         prepared weight cannot be mixed with an unprepared bias.
Leaves alone: non-constant weights, 2-D transposed convolutions.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import DEVICE, Ref, construct, ttnn_call
from .conv_layout import from_flat, make_marker, to_flat
from .graph_utils import add_constant, aten, aten_nodes, const_tensor, impure, set_val, shape
from .pass_manager import FxPass, PassResult


def conv_transpose1d_args(node: torch.fx.Node) -> dict | None:
    a = list(node.args)
    if node.target is aten.conv_transpose1d.default:
        get = lambda i, d: a[i] if len(a) > i else d  # noqa: E731
        x, w, b = a[0], a[1], get(2, None)
        stride, padding, out_pad, groups, dilation = get(3, [1]), get(4, [0]), get(5, [0]), get(6, 1), get(7, [1])
    elif node.target is aten.convolution.default and a[6] and len(shape(a[0])) == 3:
        x, w, b, stride, padding, dilation, out_pad, groups = a[0], a[1], a[2], a[3], a[4], a[5], a[7], a[8]
    else:
        return None
    return dict(x=x, w=w, b=b, stride=int(stride[0]), padding=int(padding[0]), output_padding=int(out_pad[0]),
                dilation=int(dilation[0]), groups=int(groups))


class ConvTranspose1dToConvTranspose2d(FxPass):
    name = "conv_transpose1d_to_conv_transpose2d"

    def __init__(self, dtype: str = "bfloat16"):
        self.dtype = dtype

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"conv_transpose": 0, "declined": 0}
        g = gm.graph
        for node in aten_nodes(gm, aten.conv_transpose1d.default, aten.convolution.default):
            c = conv_transpose1d_args(node)
            if c is None:
                continue
            w = const_tensor(gm, c["w"])
            bias = const_tensor(gm, c["b"]) if c["b"] is not None else None
            if w is None or (c["b"] is not None and bias is None):
                node.meta["lowering_note"] = "conv_transpose1d declined: needs constant weight and bias"
                stats["declined"] += 1
                continue
            batch, cin, length = shape(c["x"])
            cout = w.shape[1] * c["groups"]
            k = w.shape[-1]
            lout = shape(node)[-1]
            geometry = dict(in_channels=cin, out_channels=cout, batch_size=batch, input_height=1, input_width=length,
                            kernel_size=(1, k), stride=(1, c["stride"]), padding=(0, c["padding"]),
                            output_padding=(0, c["output_padding"]), dilation=(1, c["dilation"]), groups=c["groups"])
            config = construct("Conv2dConfig", weights_dtype=Ref(self.dtype), output_layout=Ref("TILE_LAYOUT"))
            with g.inserting_before(node):
                w4 = add_constant(gm, f"{node.name}_weight_iohw", w.unsqueeze(2), before=node)
                w_dev = ttnn_call(g, ops.prepare_conv_transpose2d_weights, (), dict(
                    weight_tensor=w4, input_memory_config=Ref("DRAM_MEMORY_CONFIG"), input_layout=Ref("TILE_LAYOUT"),
                    weights_format="IOHW", has_bias=False, device=DEVICE, input_dtype=Ref(self.dtype),
                    conv_config=config, mirror_kernel=True, **geometry), like=node)
                y = ttnn_call(g, ops.conv_transpose2d, (), dict(
                    input_tensor=make_marker(g, to_flat, c["x"], batch, length, node, cin), weight_tensor=w_dev,
                    device=DEVICE, **geometry, conv_config=config, mirror_kernel=True), like=node)
                set_val(y, (1, 1, batch * lout, cout), torch.float32)
                y = set_val(ttnn_call(g, ops.sharded_to_interleaved, (y, Ref("DRAM_MEMORY_CONFIG")), like=node),
                            (1, 1, batch * lout, cout), torch.float32)
                if bias is not None:
                    b4 = add_constant(gm, f"{node.name}_bias", bias.reshape(1, 1, 1, -1), before=node)
                    y = set_val(ttnn_call(g, ops.add, (y, b4), like=node), (1, 1, batch * lout, cout), torch.float32)
                out = make_marker(g, from_flat, y, batch, lout, node, cout)
            node.replace_all_uses_with(out)
            g.erase_node(node)
            stats["conv_transpose"] += 1
        g.eliminate_dead_code(is_impure_node=impure)
        return self.result(gm, stats)
