"""Example inputs: the one the user gave, one built from `--input-shape`, or one inferred.

With no input given, nnlint looks at the first layers that fix an input's shape (Conv, Linear,
Embedding, RNN, BatchNorm, ...) and tries a few plausible shapes on the meta device — which
costs no compute — keeping the first one the forward accepts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import Any

import torch
from torch import nn

from nnlint.context import BatchSize
from nnlint.graph.execution import call_arguments, meta_stand_ins, run_with_tensors, to_meta
from nnlint.graph.state import model_float_dtype, preserved_module_attributes, training_flags
from nnlint.loader import LoadedTarget

INFERRED_BATCH = 4
_SEQUENCE_LENGTH = 16
_IMAGE_SIDES = (224, 32, 28, 64, 96, 128, 256, 299)
_SIGNAL_LENGTHS = (128, 1000, 32, 16000)
_VOLUME_SIDES = ((16, 112, 112), (8, 32, 32), (32, 64, 64))
_LAYERS_TRIED = 6


class InputError(ValueError):
    """No input could be found or built for a target."""


def example_input_for(loaded: LoadedTarget, input_shape: tuple[int, ...] | None) -> tuple[Any, bool]:
    """The input to trace and probe with, and whether nnlint had to make it up."""
    target = loaded.target
    if target.example_input is not None:
        return target.example_input, False
    if target.example_batch is not None:
        inputs = _batch_inputs(target.example_batch)
        if inputs is not None:
            return inputs, False
    if input_shape is not None:
        return _tensor_of_shape(target.model, input_shape), False
    return infer_input(target.model), True


def _batch_inputs(example_batch: Any) -> Any:
    if isinstance(example_batch, (tuple, list)) and len(example_batch) == 2:
        return example_batch[0]
    return None


def infer_input(model: nn.Module) -> Any:
    tried: list[str] = []
    for candidate in islice(_candidates(model), 40):
        if accepts(model, candidate):
            return candidate
        tried.append(_describe(candidate))
    first = _first_shaping_layer(model)
    if first is None:
        raise InputError("cannot infer an input: the model has no Conv/Linear/Embedding/RNN/Norm layer to read a shape from")
    shapes = ", ".join(tried[:6]) + (", …" if len(tried) > 6 else "")
    raise InputError(f"cannot infer an input from {type(first).__name__} `{_path_of(model, first)}`: the forward rejected {shapes}")


def accepts(model: nn.Module, example_input: Any) -> bool:
    """Whether the forward runs on this input, tried on meta (no compute, no memory)."""
    args, kwargs = call_arguments(example_input)
    try:
        with preserved_module_attributes(model), training_flags(model, False), torch.no_grad():
            run_with_tensors(model, meta_stand_ins(model), model, *to_meta((args, kwargs)))
    except Exception:
        return False
    return True


def _shaping_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, module in model.named_modules():
        if _shapes_for(module, 1):
            yield path, module


def _first_shaping_layer(model: nn.Module) -> nn.Module | None:
    return next((module for _, module in _shaping_layers(model)), None)


def _path_of(model: nn.Module, module: nn.Module) -> str:
    return next(path for path, m in model.named_modules() if m is module)


def _candidates(model: nn.Module) -> Iterator[Any]:
    dtype = model_float_dtype(model)
    for _, layer in islice(_shaping_layers(model), _LAYERS_TRIED):
        for shape, integer_high in _shapes_for(layer, INFERRED_BATCH):
            yield _make(shape, dtype, integer_high)


def _shapes_for(layer: nn.Module, batch: int) -> list[tuple[tuple[int, ...], int | None]]:
    """Plausible input shapes for a first layer, with the index range when it takes integers."""
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return [((batch, _SEQUENCE_LENGTH), layer.num_embeddings)]
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        return [((batch, layer.in_channels, n), None) for n in _SIGNAL_LENGTHS]
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        return [((batch, layer.in_channels, n, n), None) for n in _IMAGE_SIDES]
    if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
        return [((batch, layer.in_channels, *sides), None) for sides in _VOLUME_SIDES]
    if isinstance(layer, nn.modules.rnn.RNNBase):
        if layer.batch_first:
            return [((batch, _SEQUENCE_LENGTH, layer.input_size), None)]
        return [((_SEQUENCE_LENGTH, batch, layer.input_size), None)]
    if isinstance(layer, nn.modules.rnn.RNNCellBase):
        return [((batch, layer.input_size), None)]
    if isinstance(layer, nn.Linear):
        return [((batch, layer.in_features), None), ((batch, _SEQUENCE_LENGTH, layer.in_features), None)]
    if isinstance(layer, nn.BatchNorm1d):
        return [((batch, layer.num_features), None), ((batch, layer.num_features, _SEQUENCE_LENGTH), None)]
    if isinstance(layer, nn.BatchNorm2d):
        return [((batch, layer.num_features, n, n), None) for n in _IMAGE_SIDES]
    if isinstance(layer, nn.BatchNorm3d):
        return [((batch, layer.num_features, *sides), None) for sides in _VOLUME_SIDES]
    if isinstance(layer, nn.LayerNorm):
        shape = tuple(layer.normalized_shape)
        return [((batch, _SEQUENCE_LENGTH, *shape), None), ((batch, *shape), None)]
    return []


def _make(shape: tuple[int, ...], dtype: torch.dtype, integer_high: int | None) -> torch.Tensor:
    # A private generator with a fixed seed: the user's random state is left alone, and the same
    # model gets the same made-up input on every run.
    generator = torch.Generator().manual_seed(0)
    try:
        if integer_high is not None:
            return torch.randint(0, max(integer_high, 1), shape, generator=generator)
        return torch.randn(shape, dtype=dtype, generator=generator)
    except (RuntimeError, MemoryError, OverflowError) as error:  # an --input-shape larger than memory
        size = math.prod(shape) * (8 if integer_high is not None else torch.empty((), dtype=dtype).element_size())
        raise InputError(f"cannot allocate an input of shape {'x'.join(map(str, shape))} ({size / 1e9:.1f} GB)") from error


def _tensor_of_shape(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """An `--input-shape` input: integer indices if the model starts with an embedding."""
    first = _first_shaping_layer(model)
    if isinstance(first, (nn.Embedding, nn.EmbeddingBag)):
        return _make(shape, torch.long, first.num_embeddings)
    return _make(shape, model_float_dtype(model), None)


def _describe(value: Any) -> str:
    return "x".join(str(size) for size in value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def training_batch_size(loaded: LoadedTarget, example_input: Any, inferred: bool, override: int | None) -> BatchSize | None:
    """The training batch size: `--batch-size`, `batch_size`, else the example's first dimension."""
    target = loaded.target
    if override is not None:
        return BatchSize(override, "--batch-size")
    if target.batch_size is not None:
        return BatchSize(int(target.batch_size), "batch_size", loaded.context_locations.get("batch_size"))
    if target.example_batch is not None:
        size = _leading_dimension(_batch_inputs(target.example_batch))
        if size is not None:
            return BatchSize(size, "example_batch", loaded.context_locations.get("example_batch"))
    if not inferred:
        size = _leading_dimension(example_input)
        if size is not None:
            return BatchSize(size, "example_input", loaded.context_locations.get("example_input"))
    return None


def _leading_dimension(value: Any) -> int | None:
    args, kwargs = call_arguments(value)
    for item in [*args, *kwargs.values()]:
        if isinstance(item, torch.Tensor) and item.dim() > 0:
            return int(item.shape[0])
    return None
