"""Every ttnn op the lowering emits: its handle and the operand requirements the layout pass satisfies.

One row per op.  ``tile``/``row_major`` name the tensor operands (positional index or keyword) that
must arrive in that layout; ``index`` names operands that must be integer (uint32/int32) tensors;
``host`` operands stay on the host in ROW_MAJOR (the torch-layout conv weights ``prepare_conv_weights`` turns
into device tensors once, when a program is bound); ``float_dtypes`` restricts the float dtypes an op accepts
(OP_CONTRACT: gelu bf16/bf8_b, sigmoid bf16),
so a float32 program gets a typecast around such an op — reported, never silent.  ``compute_config`` names the
keyword an op takes its compute kernel config by (``compute_kernel_config``, or ``compute_config`` for the conv
ops, per the 0.81.1 bindings) and ``precision`` the op class of ``fx2ttnn/precision.py`` that decides its value:
``assign_compute_configs`` gives every such op an explicit config.  The reference implementation enforces the
full contract; this table only says what the compiler must arrange.
"""
from __future__ import annotations

from dataclasses import dataclass

from .ir import OpKind, TTNNOp


@dataclass(frozen=True)
class OpRule:
    op: TTNNOp
    tile: tuple[int | str, ...] = ()
    row_major: tuple[int | str, ...] = ()
    index: tuple[int | str, ...] = ()
    float_dtypes: tuple[str, ...] | None = None
    host: tuple[int | str, ...] = ()  # operands given as host ROW_MAJOR ttnn tensors (conv weights to prepare)
    compute_config: str | None = None  # keyword of the op's compute kernel config, if it takes one
    precision: str | None = None       # its op class in fx2ttnn/precision.py


RULES: dict[int, OpRule] = {}


def _op(name: str, kind: OpKind = OpKind.COMPUTE, *, inplace: int | None = None, **rule) -> TTNNOp:
    op = TTNNOp(name, kind, inplace)
    RULES[id(op)] = OpRule(op, **rule)
    return op


def rule_for(op: TTNNOp) -> OpRule:
    return RULES.get(id(op)) or OpRule(op)


C, DM, T = OpKind.COMPUTE, OpKind.DATA_MOVEMENT, OpKind.TRANSFER

# -- transfers and layout (OP_CONTRACT §1) ------------------------------------------------------
from_torch = _op("from_torch", T)
to_torch = _op("to_torch", T)
to_layout = _op("to_layout", DM)
typecast = _op("typecast", DM)
to_memory_config = _op("to_memory_config", DM)
interleaved_to_sharded = _op("interleaved_to_sharded", DM)
sharded_to_interleaved = _op("sharded_to_interleaved", DM)
deallocate = _op("deallocate", OpKind.MEMORY)

# -- compute -------------------------------------------------------------------------------------
linear = _op("linear", tile=(0, 1, "bias"), compute_config="compute_kernel_config", precision="linear")
matmul = _op("matmul", tile=(0, 1), compute_config="compute_kernel_config", precision="matmul")
embedding = _op("embedding", row_major=(0, 1), index=(0,))
layer_norm = _op("layer_norm", tile=(0, "weight", "bias", "residual_input_tensor"),
                 compute_config="compute_kernel_config", precision="layer_norm")
batch_norm = _op("batch_norm", tile=(0, "running_mean", "running_var", "weight", "bias"),
                 compute_config="compute_kernel_config", precision="batch_norm")
softmax = _op("softmax", tile=(0,), compute_config="compute_kernel_config", precision="softmax")
add = _op("add")
add_ = _op("add", inplace=0)
plus_one = _op("plus_one", inplace=0, row_major=(0,), index=(0,))  # int32/uint32 ROW_MAJOR, + 1 in place
subtract = _op("subtract")
multiply = _op("multiply")
divide = _op("divide")
ge = _op("ge", tile=(0, 1))
gt = _op("gt", tile=(0, 1))
lt = _op("lt", tile=(0, 1))
where = _op("where", tile=(0, 1, 2))
sum_ = _op("sum", tile=(0,))
relu = _op("relu")
gelu = _op("gelu", float_dtypes=("bfloat16", "bfloat8_b"))
sigmoid = _op("sigmoid", float_dtypes=("bfloat16",))
tanh = _op("tanh")
leaky_relu = _op("leaky_relu")
sqrt = _op("sqrt")
neg = _op("neg")

# -- data movement (OP_CONTRACT §7) --------------------------------------------------------------
reshape = _op("reshape", DM)
permute = _op("permute", DM)
transpose = _op("transpose", DM)
concat = _op("concat", DM)
slice_ = _op("slice", DM)
pad = _op("pad", DM)
repeat = _op("repeat", DM)

# -- attention and KV cache (OP_CONTRACT §6) -----------------------------------------------------
paged_update_cache = _op("experimental.paged_update_cache", inplace=0, tile=(0, 1), index=("update_idxs_tensor",),
                         compute_config="compute_kernel_config", precision="kv_cache")
scaled_dot_product_attention = _op("transformer.scaled_dot_product_attention", tile=(0, 1, 2, "attn_mask"),
                                   compute_config="compute_kernel_config", precision="sdpa")
scaled_dot_product_attention_decode = _op("transformer.scaled_dot_product_attention_decode",
                                          tile=(0, 1, 2, "attn_mask"), index=("cur_pos_tensor",),
                                          compute_config="compute_kernel_config", precision="sdpa_decode")
split_query_key_value_and_split_heads = _op("transformer.split_query_key_value_and_split_heads", DM, tile=(0,))
concatenate_heads = _op("transformer.concatenate_heads", DM, tile=(0,))
nlp_create_qkv_heads = _op("experimental.nlp_create_qkv_heads", DM, tile=(0,))
nlp_concat_heads = _op("experimental.nlp_concat_heads", DM, tile=(0,))

# -- convolutions (OP_CONTRACT §8): flattened NHWC activations, weights prepared once ----------------------
conv2d = _op("conv2d", tile=("input_tensor",), host=(), compute_config="compute_config", precision="conv")
conv_transpose2d = _op("conv_transpose2d", tile=("input_tensor",), host=(), compute_config="compute_config",
                       precision="conv")
prepare_conv_weights = _op("prepare_conv_weights", DM, host=("weight_tensor",), compute_config="compute_config",
                           precision="conv")
prepare_conv_bias = _op("prepare_conv_bias", DM, host=("bias_tensor",), compute_config="compute_config",
                        precision="conv")
prepare_conv_transpose2d_weights = _op("prepare_conv_transpose2d_weights", DM, host=("weight_tensor",),
                                       compute_config="compute_config", precision="conv")
prepare_conv_transpose2d_bias = _op("prepare_conv_transpose2d_bias", DM, host=("bias_tensor",),
                                    compute_config="compute_config", precision="conv")

UNARY = {"relu": relu, "gelu": gelu, "sigmoid": sigmoid, "tanh": tanh, "leaky_relu": leaky_relu, "sqrt": sqrt,
         "neg": neg}
