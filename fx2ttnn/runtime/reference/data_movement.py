"""Data movement (OP_CONTRACT §7) and ``embedding`` (§2)."""
from __future__ import annotations

import builtins
import math

import torch

from .tensor import (
    checked, like, moved, new_tensor, quantize, require, require_device, require_dtype, require_layout,
    require_output, write_into,
)
from .types import DataType, Layout


def _dims(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


# -- reshape / permute / transpose -------------------------------------------------------------

def _check_reshape(input_tensor, shape, *, memory_config=None, pad_value=0, reshape_tile_mode=None,
                   sub_core_grids=None, skip_padding_fill=False):
    require_device(input_tensor, "reshape", "input_tensor")
    new = _dims(shape)
    require(all(d >= 0 for d in new) or (sum(d == -1 for d in new) == 1 and all(d >= -1 for d in new)), "reshape",
            f"invalid shape {list(new)}")
    known, total = math.prod(d for d in new if d != -1), math.prod(input_tensor.shape)
    require(known == total if -1 not in new else (known > 0 and total % known == 0), "reshape",
            f"cannot reshape {list(input_tensor.shape)} to {list(new)} (element counts differ)")


@checked(_check_reshape)
def reshape(input_tensor, shape, *, memory_config=None, pad_value=0, reshape_tile_mode=None,
            sub_core_grids=None, skip_padding_fill=False):
    x = input_tensor._value
    try:
        value = x.reshape(shape)  # a view when the strides allow (see ``moved``)
    except TypeError:  # dims torch does not take as ints as given (e.g. a tuple of numpy ints)
        value = x.reshape(_dims(shape))
    return moved(input_tensor, value, memory_config=memory_config)


def _check_permute(input_tensor, dims, *, memory_config=None, pad_value=0.0):
    require_device(input_tensor, "permute", "input_tensor")
    rank = len(input_tensor.shape)
    require(all(-rank <= d < rank for d in dims) and sorted(d % rank for d in dims) == list(range(rank)), "permute",
            f"dims {list(dims)} is not a permutation of rank {rank}")


@checked(_check_permute)
def permute(input_tensor, dims, *, memory_config=None, pad_value=0.0):
    return moved(input_tensor, input_tensor._value.permute(*dims), memory_config=memory_config)


def _check_transpose(input_tensor, dim1, dim2, *, memory_config=None, pad_value=0.0):
    require_device(input_tensor, "transpose", "input_tensor")
    rank = len(input_tensor.shape)
    require(-rank <= dim1 < rank and -rank <= dim2 < rank, "transpose", f"dims ({dim1}, {dim2}) out of range for rank {rank}")


@checked(_check_transpose)
def transpose(input_tensor, dim1, dim2, *, memory_config=None, pad_value=0.0):
    return moved(input_tensor, input_tensor._value.transpose(dim1, dim2), memory_config=memory_config)


def _check_squeeze(input_tensor, dim, *args, **kwargs):
    require_device(input_tensor, "squeeze", "input_tensor")
    rank = len(input_tensor.shape)
    require(-rank <= dim < rank, "squeeze", f"dim {dim} out of range for rank {rank}")
    require(input_tensor.shape[dim] == 1, "squeeze", f"dim {dim} has size {input_tensor.shape[dim]}, not 1")


@checked(_check_squeeze)
def squeeze(input_tensor, dim, *args, **kwargs):
    return moved(input_tensor, input_tensor._value.squeeze(dim))


def _check_unsqueeze(input_tensor, dim, *args, **kwargs):
    require_device(input_tensor, "unsqueeze", "input_tensor")
    rank = len(input_tensor.shape) + 1
    require(-rank <= dim < rank, "unsqueeze", f"dim {dim} out of range for output rank {rank}")


@checked(_check_unsqueeze)
def unsqueeze(input_tensor, dim, *args, **kwargs):
    return moved(input_tensor, input_tensor._value.unsqueeze(dim))


# -- concat / slice / pad / repeat -------------------------------------------------------------

def _check_concat(tensors, dim=0, *, memory_config=None, output_tensor=None, groups=1, sub_core_grids=None):
    require(len(tensors) >= 1, "concat", "needs at least one tensor")
    first = tensors[0]
    for i, t in enumerate(tensors):
        require_device(t, "concat", f"tensors[{i}]")
        require(len(t.shape) == len(first.shape), "concat", "all tensors must have the same rank")
        require(t.layout is first.layout and t.dtype is first.dtype, "concat",
                "all tensors must have the same layout and dtype")
        rank = len(t.shape)
        require(-rank <= dim < rank, "concat", f"dim {dim} out of range for rank {rank}")
        d = dim % rank
        require(all(t.shape[k] == first.shape[k] for k in range(rank) if k != d), "concat",
                f"shapes {list(first.shape)} and {list(t.shape)} differ outside dim {dim}")
        if t.memory_config().is_sharded:
            require(d in (rank - 1, rank - 2), "concat", "sharded inputs only support height or width concat")
    if output_tensor is not None:
        shape = list(first.shape)
        shape[dim % len(shape)] = builtins.sum(t.shape[dim] for t in tensors)
        require_output("concat", output_tensor, tuple(shape))


@checked(_check_concat)
def concat(tensors, dim=0, *, memory_config=None, output_tensor=None, groups=1, sub_core_grids=None):
    out = torch.cat([t._value for t in tensors], dim)
    if output_tensor is not None:
        return write_into(output_tensor, out)
    return moved(tensors[0], out, memory_config=memory_config)


def _check_slice(input_tensor, slice_start, slice_end, slice_step=None, *, memory_config=None,
                 output_tensor=None, pad_value=None, sub_core_grids=None):
    require_device(input_tensor, "slice", "input_tensor")
    shape = input_tensor.shape
    require(len(slice_start) == len(shape) and len(slice_end) == len(shape), "slice",
            f"slice_start/slice_end must give one entry per dim (rank {len(shape)})")
    steps = slice_step or [1] * len(shape)
    for d, (s, e, st) in enumerate(zip(slice_start, slice_end, steps)):
        require(0 <= s <= e <= shape[d] and st >= 1, "slice",
                f"dim {d}: [{s}:{e}:{st}] is outside [0, {shape[d]}] (end is exclusive)")
    if any(st != 1 for st in steps):
        require(input_tensor.dtype is not DataType.BFLOAT8_B, "slice", "strided slicing is not supported for bfloat8_b")
    if output_tensor is not None:
        require_output("slice", output_tensor,
                       tuple(len(range(s, e, st)) for s, e, st in zip(slice_start, slice_end, steps)))


@checked(_check_slice)
def slice(input_tensor, slice_start, slice_end, slice_step=None, *, memory_config=None, output_tensor=None,  # noqa: A001
          pad_value=None, sub_core_grids=None):
    if slice_step is None:
        index = tuple(map(builtins.slice, slice_start, slice_end))
    else:
        index = tuple(map(builtins.slice, slice_start, slice_end, slice_step))
    if output_tensor is not None:
        return write_into(output_tensor, input_tensor._value[index])
    return moved(input_tensor, input_tensor._value[index], memory_config=memory_config)


def _check_pad(input_tensor, padding, value, *, use_multicore=None, memory_config=None, sub_core_grids=None):
    require_device(input_tensor, "pad", "input_tensor")
    require(len(padding) <= len(input_tensor.shape), "pad", "more padding pairs than dims")
    if input_tensor.layout is Layout.TILE:
        require(all(before == 0 for before, _ in padding), "pad",
                "TILE layout does not support front padding on device; use ROW_MAJOR")


@checked(_check_pad)
def pad(input_tensor, padding, value, *, use_multicore=None, memory_config=None, sub_core_grids=None):
    flat: list[int] = []
    for before, after in reversed(list(padding)):  # padding applies to the trailing dims
        flat += [int(before), int(after)]
    out = torch.nn.functional.pad(input_tensor._value, flat, value=float(value))
    return like(input_tensor, out, memory_config=memory_config)


def _check_repeat(input_tensor, repeat_dims, *, memory_config=None):
    require_device(input_tensor, "repeat", "input_tensor")
    require(len(repeat_dims) >= len(input_tensor.shape), "repeat", "repeat_dims must cover every dim")


@checked(_check_repeat)
def repeat(input_tensor, repeat_dims, *, memory_config=None):
    return moved(input_tensor, input_tensor._value.repeat(*_dims(repeat_dims)), memory_config=memory_config)


def _check_repeat_interleave(input_tensor, repeats, dim, *, memory_config=None):
    require_device(input_tensor, "repeat_interleave", "input_tensor")
    require(isinstance(repeats, int) and repeats >= 1, "repeat_interleave", "repeats must be a positive int")
    rank = len(input_tensor.shape)
    require(-rank <= dim < rank, "repeat_interleave", f"dim {dim} out of range for rank {rank}")


@checked(_check_repeat_interleave)
def repeat_interleave(input_tensor, repeats, dim, *, memory_config=None):
    return moved(input_tensor, input_tensor._value.repeat_interleave(repeats, dim), memory_config=memory_config)


# -- embedding ---------------------------------------------------------------------------------

def _check_embedding(input_tensor, weight, *, memory_config=None, output_tensor=None, padding_idx=None,
                     layout=Layout.ROW_MAJOR, embeddings_type=None, dtype=None):
    require_device(input_tensor, "embedding", "input_tensor")
    require_device(weight, "embedding", "weight")
    require_dtype(input_tensor, (DataType.UINT32, DataType.INT32), "embedding", "input_tensor")
    require_layout(input_tensor, (Layout.ROW_MAJOR,), "embedding", "input_tensor")
    require_dtype(weight, (DataType.BFLOAT16, DataType.FLOAT32), "embedding", "weight")
    require(len(weight.shape) == 2 or all(d == 1 for d in weight.shape[:-2]), "embedding",
            f"weight must be a 2-D table [num_embeddings, dim], got {list(weight.shape)}")
    require(not input_tensor.memory_config().is_sharded and not weight.memory_config().is_sharded, "embedding",
            "sharded inputs and sharded weights are not supported")
    require(weight.shape[-1] % 32 == 0, "embedding",
            f"embedding dimension must be divisible by tile width (32), got {weight.shape[-1]}")
    if dtype is not None and dtype is not weight.dtype:
        require(layout is Layout.TILE, "embedding", "a dtype typecast is only allowed when the output is TILE")
    if output_tensor is not None:
        require_output("embedding", output_tensor, (*input_tensor.shape, weight.shape[-1]))


@checked(_check_embedding)
def embedding(input_tensor, weight, *, memory_config=None, output_tensor=None, padding_idx=None,
              layout=Layout.ROW_MAJOR, embeddings_type=None, dtype=None):
    table = weight._value
    if table.dim() != 2:
        table = table.reshape(table.shape[-2], table.shape[-1])
    try:
        # torch checks every index (0 <= i < rows) and raises IndexError otherwise (meta tensors: no values)
        out = torch.nn.functional.embedding(input_tensor._value.long(), table)
    except IndexError:
        out = None
    if out is None:
        require(False, "embedding", f"index out of range for a table of {table.shape[0]} rows")
    if output_tensor is not None:
        return write_into(output_tensor, out)
    dtype = dtype or weight.dtype
    if dtype is not weight.dtype or not dtype._moves_exactly:
        out = quantize(out, dtype)
    return new_tensor(out, dtype, layout or weight.layout, memory_config or weight._memory_config, weight._device)

