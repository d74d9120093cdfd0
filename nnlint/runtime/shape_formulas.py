"""Output shapes of the common layers' aten ops on meta, computed by formula.

Why: since torch 2.x, almost every aten op's meta kernel is a Python reference (`torch._refs`,
`torch._meta_registrations`) written for symbolic shapes. The first one a meta run reaches calls
`torch._check(...)`, which imports `torch.fx.experimental.symbolic_shapes` and sympy: 0.25-0.35 s,
the largest single cost of `nnlint --static` beyond importing torch and building the model. For
the ops that make up most models (convolution, batch norm, linear, pooling, activations,
elementwise arithmetic, layer norm, embedding, concatenation) the output's shape, dtype and
strides follow from a short formula, the ones torch's documentation states; this module computes
them, and only them.

The rule that keeps findings unchanged: a formula answers only the plain case it is sure of
(meta inputs in the strided layout, float32/float64, contiguous where it matters, no empty
dimension, arguments that torch accepts) and returns None for anything else, which then runs
torch's own meta kernel exactly as before, raising torch's own error for a wrong channel count or
a kernel larger than its input. tests/test_shape_formulas.py compares every formula with torch's
meta kernel over a range of layer configurations (shapes, strides, dtypes, outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nnlint.runtime.torch_compat import DispatchMode

aten = torch.ops.aten

Formula = Callable[..., Any]
_FORMULAS: dict[Any, Formula] = {}
_FLOATS = (torch.float32, torch.float64)
_PLAIN = (torch.Tensor, nn.Parameter)


class ShapeFormulas(DispatchMode):
    """While entered, aten ops with a formula here get their meta output from it, when it applies."""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        formula = _FORMULAS.get(func)
        if formula is not None:
            output = formula(*args, **kwargs)
            if output is not None:
                return output
        return func(*args, **kwargs)


def formula_for(op: Any) -> Formula | None:
    """The formula registered for an aten op overload (for tests), or None."""
    return _FORMULAS.get(op)


def _formula(*ops: Any) -> Callable[[Formula], Formula]:
    def register(function: Formula) -> Formula:
        for op in ops:
            _FORMULAS[op] = function
        return function

    return register


# -- what a formula accepts --------------------------------------------------------------------------------
def _meta(*tensors: Any, dtypes: Sequence[torch.dtype] = _FLOATS) -> bool:
    """Plain strided meta tensors of one of `dtypes`, none with an empty dimension."""
    return all(type(t) in _PLAIN and t.is_meta and t.layout is torch.strided and t.dtype in dtypes and 0 not in t.shape for t in tensors)


def _same_dtype(*tensors: torch.Tensor) -> bool:
    return len({t.dtype for t in tensors}) == 1


def _contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _standard(tensor: torch.Tensor) -> bool:
    """Exactly the strides `torch.empty` gives (`is_contiguous` ignores the stride of a size-1
    dimension; torch's layout rules do not), and not also channels-last contiguous (where torch
    may pick either layout)."""
    if tensor.stride() != _contiguous_strides(tensor.shape):
        return False
    if tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        return False
    return not (tensor.dim() == 5 and tensor.is_contiguous(memory_format=torch.channels_last_3d))


def _ints(value: Any, count: int) -> list[int] | None:
    """An int or a list of 1 or `count` ints as `count` ints; None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * count
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if len(value) == count:
            return list(value)
        if len(value) == 1:
            return [value[0]] * count
    return None


def _new(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def _broadcast(*shapes: Sequence[int]) -> list[int] | None:
    """The broadcast of shapes (numpy's rule); None where they do not broadcast."""
    result: list[int] = []
    for sizes in zip(*(reversed([1] * (max(map(len, shapes)) - len(s)) + list(s)) for s in shapes), strict=True):
        others = {size for size in sizes if size != 1}
        if len(others) > 1:
            return None
        result.append(others.pop() if others else 1)
    return result[::-1]


# -- convolution ----------------------------------------------------------------------------------------------
@_formula(aten.convolution.default)
def _convolution(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    transposed: bool,
    output_padding: Any,
    groups: int,
) -> torch.Tensor | None:
    """Conv1d/2d/3d and their transposes: the output-size formulas of nn.Conv2d's and nn.ConvTranspose2d's docs."""
    if not (_meta(input, weight) and (bias is None or _meta(bias)) and _same_dtype(input, weight, *([bias] if bias is not None else []))):
        return None
    spatial = input.dim() - 2
    if spatial not in (1, 2, 3) or weight.dim() != input.dim() or not isinstance(groups, int) or groups < 1:
        return None
    strides, paddings, dilations = _ints(stride, spatial), _ints(padding, spatial), _ints(dilation, spatial)
    extra = _ints(output_padding, spatial) if transposed else [0] * spatial
    if strides is None or paddings is None or dilations is None or extra is None:
        return None
    if min(strides) < 1 or min(dilations) < 1 or min(paddings) < 0 or min(extra) < 0:
        return None
    batch, channels, *lengths = input.shape
    kernel = weight.shape[2:]
    if transposed:
        if weight.shape[0] != channels or channels % groups:
            return None
        if any(o >= s and o >= d for o, s, d in zip(extra, strides, dilations, strict=True)):
            return None  # torch: output padding must be smaller than either stride or dilation
        out_channels = weight.shape[1] * groups
        sizes = [
            (n - 1) * s - 2 * p + d * (k - 1) + o + 1
            for n, s, p, d, k, o in zip(lengths, strides, paddings, dilations, kernel, extra, strict=True)
        ]
    else:
        if weight.shape[1] * groups != channels or weight.shape[0] % groups:
            return None
        out_channels = weight.shape[0]
        sizes = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1 for n, s, p, d, k in zip(lengths, strides, paddings, dilations, kernel, strict=True)
        ]
    if min(sizes) < 1 or (bias is not None and tuple(bias.shape) != (out_channels,)):
        return None
    return _new((batch, out_channels, *sizes), input.dtype)


# -- normalization ----------------------------------------------------------------------------------------
@_formula(aten.native_batch_norm.default)
def _batch_norm(
    input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any, training: bool, momentum: float, eps: float
) -> tuple[torch.Tensor, ...] | None:
    """BatchNorm1d/2d/3d: the output has the input's shape; the saved statistics one value per channel."""
    vectors = [v for v in (weight, bias, running_mean, running_var) if v is not None]
    if not (_meta(input, *vectors) and _same_dtype(input, *vectors) and input.dim() >= 2 and _standard(input)):
        return None
    channels = input.shape[1]
    if any(tuple(v.shape) != (channels,) for v in vectors):
        return None
    return _new(input.shape, input.dtype), _new((channels,), input.dtype), _new((channels,), input.dtype)


@_formula(aten.native_layer_norm.default)
def _layer_norm(input: Any, normalized_shape: Any, weight: Any, bias: Any, eps: float) -> tuple[torch.Tensor, ...] | None:
    """LayerNorm: the output has the input's shape; mean and rstd one value per normalized row."""
    vectors = [v for v in (weight, bias) if v is not None]
    if not (_meta(input, *vectors) and _same_dtype(input, *vectors) and input.stride() == _contiguous_strides(input.shape)):
        return None
    normalized = _ints(normalized_shape, len(normalized_shape)) if isinstance(normalized_shape, (list, tuple)) else None
    if not normalized or len(normalized) > input.dim() or list(input.shape[-len(normalized) :]) != normalized:
        return None
    if any(list(v.shape) != normalized for v in vectors):
        return None
    rows = [*input.shape[: input.dim() - len(normalized)], *([1] * len(normalized))]
    return _new(input.shape, input.dtype), _new(rows, input.dtype), _new(rows, input.dtype)


# -- linear algebra ---------------------------------------------------------------------------------------
@_formula(aten.addmm.default)
def _addmm(self: Any, mat1: Any, mat2: Any, *, beta: Any = 1, alpha: Any = 1) -> torch.Tensor | None:
    """nn.Linear on a batch of rows: `bias + mat1 @ mat2`, shape (rows, out_features)."""
    if not (_meta(self, mat1, mat2) and _same_dtype(self, mat1, mat2) and mat1.dim() == 2 and mat2.dim() == 2):
        return None
    if mat1.shape[1] != mat2.shape[0] or self.dim() > 2:
        return None
    out = [mat1.shape[0], mat2.shape[1]]
    if _broadcast(self.shape, out) != out:
        return None
    return _new(out, mat1.dtype)


@_formula(aten.mm.default)
def _mm(self: Any, mat2: Any) -> torch.Tensor | None:
    if not (_meta(self, mat2) and _same_dtype(self, mat2) and self.dim() == 2 and mat2.dim() == 2 and self.shape[1] == mat2.shape[0]):
        return None
    return _new((self.shape[0], mat2.shape[1]), self.dtype)


@_formula(aten.bmm.default)
def _bmm(self: Any, mat2: Any) -> torch.Tensor | None:
    if not (_meta(self, mat2) and _same_dtype(self, mat2) and self.dim() == 3 and mat2.dim() == 3):
        return None
    if self.shape[0] != mat2.shape[0] or self.shape[2] != mat2.shape[1]:
        return None
    return _new((self.shape[0], self.shape[1], mat2.shape[2]), self.dtype)


# -- pooling and reductions ---------------------------------------------------------------------------------
def _pooled_length(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """torch's pooling output size (`pooling_output_shape`), for the ceil_mode of nn.MaxPool2d's docs."""
    numerator = length + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


@_formula(aten.max_pool2d_with_indices.default)
def _max_pool2d(
    self: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """MaxPool2d on a batch: the output and its int64 indices, both of the pooled shape."""
    if not (_meta(self) and self.dim() == 4 and _standard(self)):
        return None
    kernels, paddings, dilations = _ints(kernel_size, 2), _ints(padding, 2), _ints(dilation, 2)
    strides = kernels if isinstance(stride, (list, tuple)) and len(stride) == 0 else _ints(stride, 2)
    if kernels is None or strides is None or paddings is None or dilations is None or not isinstance(ceil_mode, bool):
        return None
    if min(kernels) < 1 or min(strides) < 1 or min(dilations) < 1 or min(paddings) < 0:
        return None
    if any(p > ((k - 1) * d + 1) // 2 for p, k, d in zip(paddings, kernels, dilations, strict=True)):
        return None  # torch: padding at most half the effective kernel size
    sizes = [_pooled_length(*args, ceil_mode) for args in zip(self.shape[2:], kernels, strides, paddings, dilations, strict=True)]
    if min(sizes) < 1:
        return None
    shape = (*self.shape[:2], *sizes)
    return _new(shape, self.dtype), _new(shape, torch.int64)


@_formula(aten.mean.dim)
def _mean(self: Any, dim: Any, keepdim: bool = False, *, dtype: Any = None) -> torch.Tensor | None:
    """`x.mean(dims)` (AdaptiveAvgPool2d(1) and global average pooling): the reduced shape."""
    if not (
        _meta(self) and self.stride() == _contiguous_strides(self.shape) and dtype is None and isinstance(keepdim, bool) and self.dim() > 0
    ):
        return None
    dims = _ints(dim, len(dim)) if isinstance(dim, (list, tuple)) and dim else None
    if dims is None or any(not -self.dim() <= d < self.dim() for d in dims):
        return None
    reduced = {d % self.dim() for d in dims}
    if len(reduced) != len(dims):
        return None
    shape = [1 if i in reduced else size for i, size in enumerate(self.shape) if keepdim or i not in reduced]
    return _new(shape, self.dtype)


# -- elementwise ------------------------------------------------------------------------------------------
@_formula(aten.relu.default, aten.gelu.default, aten.sigmoid.default, aten.tanh.default, aten.silu.default)
def _unary(self: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """Activations: the input's shape and dtype."""
    if not (_meta(self) and _standard(self)):
        return None
    return _new(self.shape, self.dtype)


@_formula(aten.relu_.default, aten.silu_.default, aten.sigmoid_.default, aten.tanh_.default)
def _unary_in_place(self: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """In-place activations (`nn.ReLU(inplace=True)`): the input itself, as torch returns it."""
    return self if _meta(self) else None


@_formula(aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor)
def _binary(self: Any, other: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """Arithmetic between two tensors of one dtype: the broadcast shape (residual sums, scaling)."""
    if "rounding_mode" in kwargs or not (_meta(self, other) and _same_dtype(self, other)):
        return None
    decided = _leading_operand_decides(self, other)
    if decided is not None:
        return _new(decided, self.dtype)
    if not (_standard(self) and _standard(other)):
        return None
    shape = _broadcast(self.shape, other.shape)
    full = [t for t in (self, other) if list(t.shape) == shape]
    if shape is None or not full or not all(_standard(t) for t in full):
        return None  # torch orders the output's strides from the operands: left to it unless plainly contiguous
    return _new(shape, self.dtype)


def _leading_operand_decides(self: torch.Tensor, other: torch.Tensor) -> list[int] | None:
    """The output shape when `self` alone fixes a contiguous output: it has that shape, is
    contiguous and has no dimension of size 1, so torch's stride ordering, which asks the
    operands in turn, never reaches `other` (a residual sum with a transposed view)."""
    shape = _broadcast(self.shape, other.shape)
    if shape is None or list(self.shape) != shape or 1 in shape or self.stride() != _contiguous_strides(shape):
        return None
    return shape


@_formula(aten.add_.Tensor, aten.sub_.Tensor, aten.mul_.Tensor, aten.div_.Tensor)
def _binary_in_place(self: Any, other: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """`x += y`: `x` itself, when `y` broadcasts to its shape."""
    if "rounding_mode" in kwargs or not (_meta(self, other) and _same_dtype(self, other)):
        return None
    return self if _broadcast(self.shape, other.shape) == list(self.shape) else None


@_formula(aten.mul.Scalar, aten.add.Scalar, aten.sub.Scalar, aten.div.Scalar)
def _with_scalar(self: Any, other: Any, *args: Any, **kwargs: Any) -> torch.Tensor | None:
    """A float tensor and a Python int or float: the tensor's shape and dtype (attention scaling,
    often of a transposed view, whose dimension order torch keeps)."""
    if kwargs or args or type(other) not in (int, float) or not _meta(self):
        return None
    if _standard(self):
        return _new(self.shape, self.dtype)
    strides = _strides_in_input_order(self)
    return None if strides is None else torch.empty_strided(tuple(self.shape), strides, dtype=self.dtype, device="meta")


def _strides_in_input_order(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """A one-input elementwise output's strides: contiguous, with the dimensions ordered as the
    input's strides order them (torch's rule, so a transposed or sliced view gives a transposed
    output). Only where that order is plain: no dimension of size 1, no two strides equal."""
    if 1 in tensor.shape or len(set(tensor.stride())) != tensor.dim() or min(tensor.stride(), default=1) < 1:
        return None
    strides = [0] * tensor.dim()
    expected = 1
    for _, dim in sorted((stride, dim) for dim, stride in enumerate(tensor.stride())):
        strides[dim] = expected
        expected *= tensor.shape[dim]
    return tuple(strides)


@_formula(aten._safe_softmax.default, aten._softmax.default)
def _softmax(self: Any, dim: Any, dtype_or_half: Any = None) -> torch.Tensor | None:
    """Softmax over one dimension (attention weights): the input's shape."""
    if not (_meta(self) and _standard(self) and isinstance(dim, int) and -self.dim() <= dim < max(self.dim(), 1)):
        return None
    if dtype_or_half not in (None, False):  # `_safe_softmax`'s dtype, `_softmax`'s half_to_float
        return None
    return _new(self.shape, self.dtype)


@_formula(aten.tril.default, aten.triu.default)
def _triangle(self: Any, diagonal: int = 0) -> torch.Tensor | None:
    """`torch.tril(mask)` (causal masks): the input's shape and dtype."""
    if not (_meta(self, dtypes=(*_FLOATS, torch.bool, torch.int64)) and _standard(self) and self.dim() >= 2):
        return None
    return _new(self.shape, self.dtype) if isinstance(diagonal, int) else None


@_formula(aten.where.self)
def _where(condition: Any, self: Any, other: Any) -> torch.Tensor | None:
    """`torch.where(mask, x, y)` on a full-shape contiguous mask (masked_fill-style attention masks)."""
    if not (_meta(condition, dtypes=(torch.bool,)) and _meta(self, other) and _same_dtype(self, other) and _standard(condition)):
        return None
    if _broadcast(condition.shape, self.shape, other.shape) != list(condition.shape):
        return None
    if any(t.dim() > 0 and (list(t.shape) != list(condition.shape) or not _standard(t)) for t in (self, other)):
        return None
    return _new(condition.shape, self.dtype)


@_formula(aten.arange.default, aten.arange.start, aten.arange.start_step)
def _arange(*bounds: Any, dtype: Any = None, layout: Any = None, device: Any = None, pin_memory: Any = None) -> torch.Tensor | None:
    """`torch.arange` of ints on meta (position ids): `ceil((end - start) / step)` int64 values."""
    if device is None or torch.device(device).type != "meta" or layout not in (None, torch.strided) or dtype not in (None, torch.int64):
        return None
    if not 1 <= len(bounds) <= 3 or any(type(b) is not int for b in bounds):
        return None
    start, end, step = (0, bounds[0], 1) if len(bounds) == 1 else (*bounds, 1)[:3]
    if step == 0 or (end - start) * step < 0:
        return None
    return _new((-((start - end) // step),), torch.int64)


# -- indexing and joining ---------------------------------------------------------------------------------
@_formula(aten.embedding.default)
def _embedding(
    weight: Any, indices: Any, padding_idx: int = -1, scale_grad_by_freq: bool = False, sparse: bool = False
) -> torch.Tensor | None:
    """nn.Embedding: one row of the table per index, shape `indices.shape + (dim,)`."""
    if not (
        _meta(weight)
        and _meta(indices, dtypes=(torch.int64, torch.int32))
        and weight.dim() == 2
        and indices.stride() == _contiguous_strides(indices.shape)
    ):
        return None
    return _new((*indices.shape, weight.shape[1]), weight.dtype)


@_formula(aten.cat.default)
def _cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    """`torch.cat` of same-dtype tensors (UNet's skip connections): sizes add along `dim`."""
    if (
        not isinstance(tensors, (list, tuple))
        or not tensors
        or not isinstance(dim, int)
        or not _meta(*tensors)
        or not _same_dtype(*tensors)
    ):
        return None
    rank = tensors[0].dim()
    if rank == 0 or not -rank <= dim < rank or any(t.dim() != rank or not _standard(t) for t in tensors):
        return None
    dim %= rank
    if any(t.shape[:dim] != tensors[0].shape[:dim] or t.shape[dim + 1 :] != tensors[0].shape[dim + 1 :] for t in tensors):
        return None
    shape = list(tensors[0].shape)
    shape[dim] = sum(t.shape[dim] for t in tensors)
    return _new(shape, tensors[0].dtype)
