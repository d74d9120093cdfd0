"""Example inputs: the one the user gave, one built from `--input-shape`, or one inferred.

With no input given, nnlint looks at the first layers that fix an input's shape (Conv, Linear,
Embedding, RNN, BatchNorm, ...) and tries a few plausible shapes on the meta device — which
costs no compute — keeping the first one the forward accepts. Hugging Face models say what
they take in their config; those candidates come first (`nnlint.hf`). A forward that cannot
run on meta (it reads values: `.item()`, `x in tensor`, data-dependent kernels) gets a second
chance on one real sample, as the recorder does.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from contextlib import nullcontext
from itertools import islice
from typing import Any

import torch
from torch import nn

from nnlint import hf
from nnlint.context import BatchSize
from nnlint.loader import LoadedTarget
from nnlint.runtime.execution import call_arguments, made_up, meta_stand_ins, needs_real_values, one_sample, real_copies, run_with_tensors
from nnlint.runtime.state import evaluation_run, is_on_meta, model_device, model_float_dtype, training_flags

INFERRED_BATCH = 4
_SEQUENCE_LENGTH = 16
_IMAGE_SIDES = (224, 32, 28, 64, 96, 128, 256, 299)
_SIGNAL_LENGTHS = (128, 1000, 32, 16000)
_VOLUME_SIDES = ((16, 112, 112), (8, 32, 32), (32, 64, 64))
_LAYERS_TRIED = 6
_CANDIDATES_TRIED = 40
# Candidates tried again on one real sample when none ran on meta: real runs cost compute.
_REAL_TRIES = 4


class InputError(ValueError):
    """No input could be found or built for a target."""


def example_input_for(loaded: LoadedTarget, input_shape: tuple[int, ...] | None, trains: bool = True) -> tuple[Any, bool]:
    """The input to trace and probe with, and whether nnlint had to make it up (`trains`: one the
    forward also takes in training mode, for the probe)."""
    target = loaded.target
    if target.example_input is not None:
        return target.example_input, False
    if target.example_batch is not None:
        inputs = _batch_inputs(target.example_batch)
        if inputs is not None:
            return inputs, False
    if input_shape is not None:
        return _tensor_of_shape(target.model, input_shape), False
    return infer_input(target.model, trains), True


def _batch_inputs(example_batch: Any) -> Any:
    if isinstance(example_batch, (tuple, list)) and len(example_batch) == 2:
        return example_batch[0]
    return None


def infer_input(model: nn.Module, trains: bool = True) -> Any:
    """The first candidate input the forward accepts in evaluation mode and, when `trains` (the
    probe will train on it), in training mode too, where a branch may need more (Inception's
    auxiliary head rejects 224×224 images only in training mode)."""
    candidates = list(islice(_candidates(model), _CANDIDATES_TRIED))
    real_tries = _REAL_TRIES if not is_on_meta(model) else 0
    tried_real: list[int] = []
    evaluation_only = None  # the first input only evaluation mode accepts: used when none suits both modes
    for index, candidate in enumerate(candidates):
        verdict = _verdict_on_meta(model, candidate)
        if verdict is True:
            if not trains or _verdict_on_meta(model, candidate, training=True) is not False:
                return candidate
            evaluation_only = candidate if evaluation_only is None else evaluation_only
            continue
        if verdict is None and len(tried_real) < real_tries:  # meta could not tell: values were needed
            tried_real.append(index)
            if accepts(model, candidate, on_meta=False):
                return candidate
    if evaluation_only is not None:
        return evaluation_only
    # A meta kernel can be stricter than the real one; give the first candidates a real try.
    for index in [i for i in range(len(candidates)) if i not in tried_real][: real_tries - len(tried_real)]:
        if accepts(model, candidates[index], on_meta=False):
            return candidates[index]
    tried = [_describe(candidate) for candidate in candidates]
    first = _first_shaping_layer(model)
    if first is None:
        if tried:
            raise InputError(f"cannot infer an input: the forward rejected {', '.join(tried[:6])}")
        raise InputError("cannot infer an input: the model has no Conv/Linear/Embedding/RNN/Norm layer to read a shape from")
    shapes = ", ".join(tried[:6]) + (", …" if len(tried) > 6 else "")
    raise InputError(f"cannot infer an input from {type(first).__name__} `{_path_of(model, first)}`: the forward rejected {shapes}")


def accepts(model: nn.Module, example_input: Any, on_meta: bool = True) -> bool:
    """Whether the forward runs on this input: on meta (no compute, no memory), else on its first sample."""
    if on_meta:
        return _verdict_on_meta(model, example_input) is True
    args, kwargs = call_arguments(example_input)
    device = model_device(model)
    try:
        with evaluation_run(model):  # on copies of the weights: a forward may count its calls in a buffer
            run_with_tensors(model, real_copies(model), model, *one_sample((args, kwargs), device), on_meta=False)
    except Exception:
        return False
    return True


def _verdict_on_meta(model: nn.Module, example_input: Any, training: bool = False) -> bool | None:
    """True: the forward ran on meta (in training mode when `training`); False: it rejected the
    input; None: it needed real values."""
    args, kwargs = call_arguments(example_input)
    try:
        with evaluation_run(model), training_flags(model, True) if training else nullcontext():
            run_with_tensors(model, meta_stand_ins(model), model, args, kwargs)
    except Exception as error:
        return None if needs_real_values(error) else False
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
    if hf.is_transformers_model(model):
        yield from hf.example_inputs(model, INFERRED_BATCH, dtype)
    passed_as = _keyword_for_one_tensor(model)
    declared_shapes, declared_sides = _declared_image_sizes(model)
    shapes = [(shape, None) for shape in declared_shapes]
    for _, layer in islice(_shaping_layers(model), _LAYERS_TRIED):
        shapes += _shapes_for(layer, INFERRED_BATCH, declared_sides)
    for shape, integer_high in dict.fromkeys(shapes):
        tensor = _make(shape, dtype, integer_high)
        yield {passed_as: tensor} if passed_as else tensor


# Where models say what image size they were built for: timm's `pretrained_cfg["input_size"]`
# (channels, height, width), and `img_size`/`image_size` on the model or its patch embedding.
_INPUT_CONFIGS = ("pretrained_cfg", "default_cfg")
_IMAGE_SIZE_ATTRIBUTES = ("img_size", "image_size", "input_size", "input_resolution")


def _declared_image_sizes(model: nn.Module) -> tuple[list[tuple[int, ...]], list[tuple[int, int]]]:
    """Full input shapes (batch, C, H, W) and image sides (H, W) that the model's modules declare."""
    shapes: list[tuple[int, ...]] = []
    sides: list[tuple[int, int]] = []
    for module in model.modules():
        attributes = vars(module)
        for name in _INPUT_CONFIGS:
            size = attributes.get(name, {}).get("input_size") if isinstance(attributes.get(name), dict) else None
            if isinstance(size, (tuple, list)) and len(size) == 3 and all(isinstance(n, int) and n > 0 for n in size):
                shapes.append((INFERRED_BATCH, *size))
        for name in _IMAGE_SIZE_ATTRIBUTES:
            side = _side(attributes.get(name))
            if side is not None:
                sides.append(side)
    return list(dict.fromkeys(shapes)), list(dict.fromkeys(sides))


def _side(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(n, int) and n > 1 for n in value):
        return int(value[0]), int(value[1])
    return None


def _keyword_for_one_tensor(model: nn.Module) -> str | None:
    """The keyword to pass a lone tensor by when forward takes no positional argument (`forward(self, *, x)`)."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters):
        return None
    return next((p.name for p in parameters if p.kind is p.KEYWORD_ONLY), None)


def _shapes_for(layer: nn.Module, batch: int, declared_sides: list[tuple[int, int]] = ()) -> list[tuple[tuple[int, ...], int | None]]:
    """Plausible input shapes for a first layer, with the index range when it takes integers."""
    image_sides = [*declared_sides, *((n, n) for n in _IMAGE_SIDES if (n, n) not in declared_sides)]
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return [((batch, _SEQUENCE_LENGTH), layer.num_embeddings)]
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        return [((batch, layer.in_channels, n), None) for n in _SIGNAL_LENGTHS]
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        return [((batch, layer.in_channels, h, w), None) for h, w in image_sides]
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
        return [((batch, layer.num_features, h, w), None) for h, w in image_sides]
    if isinstance(layer, nn.BatchNorm3d):
        return [((batch, layer.num_features, *sides), None) for sides in _VOLUME_SIDES]
    if isinstance(layer, nn.LayerNorm):
        shape = tuple(layer.normalized_shape)
        return [((batch, _SEQUENCE_LENGTH, *shape), None), ((batch, *shape), None)]
    return []


def _make(shape: tuple[int, ...], dtype: torch.dtype, integer_high: int | None) -> torch.Tensor:
    try:
        return made_up(shape, dtype, integer_high)
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
    if isinstance(value, dict):
        return "(" + ", ".join(f"{key}={_describe(item)}" for key, item in value.items()) + ")"
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
