"""conv1d_to_conv2d: every 1-D convolution → ``ttnn.conv2d`` on flattened NHWC, weights prepared once.

Input:   ATen graph; ``aten.conv1d`` / non-transposed 1-D ``aten.convolution`` with constant weight (and bias).
Output:  ``to_flat(x)`` → ``ttnn.conv2d(input_tensor=..., weight_tensor=w, bias_tensor=b, batch_size=B,
         input_height=1, input_width=L, kernel_size=(1, K), stride=(1, s), padding=(0, p), dilation=(1, d), groups=g,
         conv_config=Conv2dConfig(weights_dtype, activation, output_layout=TILE), memory_config=DRAM)`` →
         ``from_flat(y)`` (markers of conv_layout.py; sink_layout_conversions removes them between convs).
         The torch weight ``[O, I/g, K]`` becomes OIHW ``[O, I/g, 1, K]`` and the bias ``[1, 1, 1, O]`` here; both go
         through ``ttnn.prepare_conv_weights`` / ``prepare_conv_bias`` on constants, so they are prepared once,
         when the program is bound (the contract requires prepared weights under trace).  The activation that is
         the conv's only consumer (relu, tanh, sigmoid, leaky_relu with its slope, exact gelu) is fused through
         ``Conv2dConfig.activation`` — HiFi-GAN's leaky_relu(0.1) after each resblock conv, the postnet's tanh,
         the speech feature encoder's gelu (``UnaryWithParam(GELU, 0.0)``: the accurate, erf form).
         A trailing crop — the conv's only consumer is ``slice(y, -1, 0, L_out - r)`` with ``r * stride`` at most
         the padding — is folded into the padding: ``(left, right - r * stride)`` gives exactly the first
         ``L_out - r`` outputs (the "same" padding of an even kernel, HF ``SpeechT5SamePadLayer``), so the
         activation after the crop fuses too and no slice runs.
Leaves alone: non-constant weights, ``padding="same"`` strings, 2-D/3-D convolutions, gelu with
         ``approximate="tanh"`` (not fused), crops that do not start at 0 or cut more than the right padding.

Why ``ttnn.conv2d`` and not ``ttnn.conv1d``: both exist in 0.81.1 and ``conv1d`` is a conv2d with H = 1, but
``conv1d`` is documented without a golden, cannot DRAM-slice (``slice_config``), rejects a bias for depthwise
convs, and returns ``out_len`` in its own return pattern; conv2d's contract (input/output forms, prepared
weights, ``prepare_conv_weights``) is the better specified one, and the same code path serves conv_transpose2d.
"""
from __future__ import annotations

import torch
import torch.fx

from ..lowering import op_table as ops
from ..lowering.ir import DEVICE, Ref, construct, ttnn_call
from .conv_layout import from_flat, make_marker, to_flat
from .graph_utils import add_constant, aten, aten_nodes, const_tensor, impure, normalize_dim, set_val, shape
from .pass_manager import FxPass, PassResult

ACTIVATIONS = {aten.relu.default: "RELU", aten.tanh.default: "TANH", aten.sigmoid.default: "SIGMOID",
               aten.leaky_relu.default: "LEAKY_RELU", aten.gelu.default: "GELU"}


def conv1d_args(node: torch.fx.Node) -> dict | None:
    """stride/padding/dilation/groups of a 1-D conv node (None if it is not a plain 1-D convolution)."""
    a = list(node.args)
    if node.target is aten.conv1d.default:
        x, w, b = a[0], a[1], a[2] if len(a) > 2 else None
        stride, padding, dilation = (a[3] if len(a) > 3 else [1]), (a[4] if len(a) > 4 else [0]), (a[5] if len(a) > 5 else [1])
        groups = a[6] if len(a) > 6 else 1
    elif node.target is aten.convolution.default and not a[6] and len(shape(a[0])) == 3:
        x, w, b, stride, padding, dilation, groups = a[0], a[1], a[2], a[3], a[4], a[5], a[8]
    else:
        return None
    if isinstance(padding, str):
        return None
    return dict(x=x, w=w, b=b, stride=int(stride[0]), padding=int(padding[0]), dilation=int(dilation[0]),
                groups=int(groups))


def fused_activation(conv: torch.fx.Node):
    """(activation node, ttnn UnaryWithParam) when the conv's only user is an activation conv2d can apply."""
    if len(conv.users) != 1:
        return None, None
    (user,) = conv.users
    if user.op != "call_function" or user.target not in ACTIVATIONS:
        return None, None
    param = None
    if user.target is aten.leaky_relu.default:
        param = float(user.args[1]) if len(user.args) > 1 else 0.01
    elif user.target is aten.gelu.default:
        if user.kwargs.get("approximate", user.args[1] if len(user.args) > 1 else "none") != "none":
            return None, None
        param = 0.0  # ttnn's GELU parameter is fast_and_approximate_mode: 0 is the accurate (erf) GELU
    args = (Ref(f"UnaryOpType.{ACTIVATIONS[user.target]}"),) + ((param,) if param is not None else ())
    return user, construct("UnaryWithParam", *args)


def trailing_crop(conv: torch.fx.Node, stride: int, padding: int) -> tuple[torch.fx.Node | None, int]:
    """(slice node, r) when the conv's only consumer keeps its first ``L_out - r`` outputs and ``r * stride`` fits
    in the right padding; else (None, 0)."""
    if len(conv.users) != 1:
        return None, 0
    (user,) = conv.users
    if user.op != "call_function" or user.target is not aten.slice.Tensor:
        return None, 0
    a = list(user.args) + [None] * (5 - len(user.args))
    dim, start, step = a[1] if a[1] is not None else 0, a[2], a[4] if a[4] is not None else 1
    if normalize_dim(dim, 3) != 2 or start not in (0, None) or step != 1:
        return None, 0
    r = shape(conv)[-1] - shape(user)[-1]
    if r <= 0 or r * stride > padding:
        return None, 0
    return user, r


class Conv1dToConv2d(FxPass):
    name = "conv1d_to_conv2d"

    def __init__(self, dtype: str = "bfloat16"):
        self.dtype = dtype

    def call(self, gm: torch.fx.GraphModule) -> PassResult:
        stats = {"conv": 0, "activation_fused": 0, "crop_folded": 0, "declined": 0}
        g = gm.graph
        for node in aten_nodes(gm, aten.conv1d.default, aten.convolution.default):
            c = conv1d_args(node)
            w = const_tensor(gm, c["w"]) if c else None
            bias = const_tensor(gm, c["b"]) if c and c["b"] is not None else None
            if c is None or w is None or (c["b"] is not None and bias is None):
                node.meta["lowering_note"] = "conv1d declined: needs a 1-D conv with constant weight and bias"
                stats["declined"] += 1
                continue
            batch, cin, length = shape(c["x"])
            cout, _, k = w.shape
            crop, r = trailing_crop(node, c["stride"], c["padding"])
            tail = crop or node  # the value the conv2d computes
            lout = shape(tail)[-1]
            act_node, activation = fused_activation(tail)
            p = c["padding"]
            padding = (0, 0, p, p - r * c["stride"]) if crop is not None else (0, p)
            geometry = dict(in_channels=cin, out_channels=cout, batch_size=batch, input_height=1, input_width=length,
                            kernel_size=(1, k), stride=(1, c["stride"]), padding=padding,
                            dilation=(1, c["dilation"]), groups=c["groups"])
            config = construct("Conv2dConfig", weights_dtype=Ref(self.dtype), output_layout=Ref("TILE_LAYOUT"),
                               **({"activation": activation} if activation is not None else {}))
            anchor = act_node or tail
            with g.inserting_before(anchor):
                prep = dict(input_memory_config=Ref("DRAM_MEMORY_CONFIG"), input_layout=Ref("TILE_LAYOUT"),
                            device=DEVICE, input_dtype=Ref(self.dtype), conv_config=config, **geometry)
                w4 = add_constant(gm, f"{node.name}_weight_oihw", w.unsqueeze(2), before=anchor)
                w_dev = ttnn_call(g, ops.prepare_conv_weights, (), dict(weight_tensor=w4, weights_format="OIHW",
                                                                          has_bias=bias is not None, **prep), like=node)
                kwargs = dict(input_tensor=make_marker(g, to_flat, c["x"], batch, length, node, cin),
                              weight_tensor=w_dev, device=DEVICE, **geometry, conv_config=config,
                              memory_config=Ref("DRAM_MEMORY_CONFIG"))
                if bias is not None:
                    b4 = add_constant(gm, f"{node.name}_bias", bias.reshape(1, 1, 1, -1), before=anchor)
                    kwargs["bias_tensor"] = ttnn_call(g, ops.prepare_conv_bias, (), dict(bias_tensor=b4, **prep),
                                                      like=node)
                y = set_val(ttnn_call(g, ops.conv2d, (), kwargs, like=node), (1, 1, batch * lout, cout), torch.float32)
                out = make_marker(g, from_flat, y, batch, lout, node, cout)
            anchor.replace_all_uses_with(out)
            if act_node is not None:
                g.erase_node(act_node)
                stats["activation_fused"] += 1
            if crop is not None:
                g.erase_node(crop)
                stats["crop_folded"] += 1
            g.erase_node(node)
            stats["conv"] += 1
        g.eliminate_dead_code(is_impure_node=impure)
        return self.result(gm, stats)
