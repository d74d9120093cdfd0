"""Example inputs: an ordered list of candidate sources and one verifier.

The sources, most trusted first (`input_sources`): what the file gives (`example_input`,
`example_batch`, `--input-shape`), the batch a training script's model received at its first step
(filled by script mode), then made-up candidates: what a Hugging Face config says (`nnlint.hf`),
the image size a model or its constructor arguments declare (`image_size`, `patch_size`), and
plausible shapes for its first layers (Conv, Linear, Embedding, RNN, BatchNorm, ...). A candidate
is passed the way the forward takes its required arguments: once for each (a Siamese
`forward(input1, input2)`), a recurrent state from the model's own `init_hidden`.

Given inputs are used as they are. Made-up ones go through the verifier (`verified_input`): the
first the forward accepts on the meta device — which costs no compute — wins. A forward that cannot
run on meta (it reads values: `.item()`, `x in tensor`, data-dependent kernels) gets a second
chance on one real sample, as the recorder does. When none is accepted, the error says what was
tried and why the first was rejected.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, TypeGuard

import torch
from torch import nn

from nnlint import hf
from nnlint.context import BatchSize
from nnlint.graph import ModelGraph
from nnlint.loader import LoadedTarget
from nnlint.runtime.execution import (
    call_arguments,
    made_up,
    meta_stand_ins,
    needs_real_values,
    one_sample,
    real_copies,
    run_with_tensors,
)
from nnlint.runtime.state import evaluation_run, is_on_meta, model_device, model_float_dtype, training_flags
from nnlint.runtime.torch_compat import tree_flatten

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


@dataclass(frozen=True)
class InputSource:
    """One candidate input and where it came from. A given one is used as it is; a made-up one
    (`checked`) is used only if the forward accepts it."""

    value: Any
    origin: str
    checked: bool = True
    # Which dimension holds the samples: 1 for one made up as (time, batch, …) for a sequence layer
    # with batch_first=False; None for a given input that is one sequence, not a batch of them.
    batch_dim: int | None = 0
    # A made-up shape the model or its constructor arguments declare, not one read off a layer.
    declared: bool = False


@dataclass(frozen=True)
class ChosenInput:
    """The input to trace and probe with, whether nnlint made it up, and its batch dimension."""

    value: Any
    inferred: bool
    batch_dim: int | None = 0
    # Why the input holds no batch of independent samples, when batch_dim is None (`no_batch_because`).
    no_batch: str | None = None
    # Where a made-up input's shape came from, as the report says it ("the first layer").
    origin: str | None = None


def example_input_for(loaded: LoadedTarget, input_shape: tuple[int, ...] | None, trains: bool = True) -> tuple[Any, bool]:
    """The input to trace and probe with, and whether nnlint had to make it up (see `chosen_input`)."""
    chosen = chosen_input(loaded, input_shape, trains)
    return chosen.value, chosen.inferred


def chosen_input(loaded: LoadedTarget, input_shape: tuple[int, ...] | None, trains: bool = True) -> ChosenInput:
    """The input to trace and probe with, whether nnlint had to make it up (`trains`: one the
    forward also takes in training mode, for the probe), and which of its dimensions is the batch.

    The candidates come from an ordered list of sources (`input_sources`); the first given one
    wins, else the first made-up one the forward accepts (`verified_input`)."""
    model = loaded.target.model
    sources = input_sources(loaded, input_shape)
    for source in sources:
        if not source.checked:
            why = no_batch_because(model, source.value)
            return ChosenInput(source.value, False, None if why else 0, why)
        # Given sources come first: the rest are made up, and made (random tensors) only when tried.
        made_up_ones = islice(chain([source], sources), _CANDIDATES_TRIED)
        verified = _verified_source(model, made_up_ones, trains)
        why = no_batch_because(model, verified.value) if verified.batch_dim is None else None  # a made-up whole graph
        origin = verified.origin if verified.declared else "the first layer"
        return ChosenInput(verified.value, True, verified.batch_dim, why, origin=origin)
    return ChosenInput(verified_input(model, [], trains), True)


def time_major_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The model's first sequence layer (an RNN, or the attention of a Transformer layer), when it
    reads its input as (time, batch, …): built with batch_first=False, as PyTorch's default is."""
    for path, module in model.named_modules():
        if isinstance(module, _SEQUENCE_LAYERS):
            return (path, module) if getattr(module, "batch_first", True) is False else None
    return None


def one_sequence_for_time_major(model: nn.Module, given: Any) -> bool:
    """A given input that is one sequence (only 1-D tensors, like a sentence of word indices) for a
    model whose sequence layer reads (time, batch, …): the model lays it out as (time, 1, …) itself
    (PyTorch's sequence-models tutorial tagger), so it holds one sample and has no batch dimension."""
    tensors = _tensors(given)
    return bool(tensors) and all(t.dim() == 1 for t in tensors) and time_major_layer(model) is not None


def no_batch_because(model: nn.Module, given: Any) -> str | None:
    """Why a given input is not a batch of independent samples, if it is not; else None."""
    if one_sequence_for_time_major(model, given):
        return "the input is one sequence, not a batch of samples"
    if holds_one_graph(given):
        return "the input is one graph (an N×N adjacency beside its N nodes' features): nodes mix by design, not a batch of samples"
    return None


def holds_one_graph(given: Any) -> bool:
    """A whole graph as input: a square N×N adjacency (sparse or dense) beside another tensor of N
    rows, the nodes' features. Full-batch node classification trains this way
    (tkipf/pygcn train.py: `model(features, adj)` on all 2,708 Cora nodes; Diego999/pyGAT the
    same with a dense adjacency): dimension 0 counts nodes, which the model mixes on purpose."""
    tensors = _tensors(given)
    for adjacency in tensors:
        if adjacency.dim() != 2 or adjacency.shape[0] != adjacency.shape[1] or adjacency.shape[0] < _FEWEST_GRAPH_NODES:
            continue
        nodes = adjacency.shape[0]
        if any(t is not adjacency and t.dim() >= 1 and t.shape[0] == nodes for t in tensors):
            return True
    return False


# Fewer nodes than this and a square input is as likely a small mask or a distance matrix.
_FEWEST_GRAPH_NODES = 8


def input_sources(loaded: LoadedTarget, input_shape: tuple[int, ...] | None) -> Iterator[InputSource]:
    """Where an input can come from, most trusted first: given by the file (`example_input`,
    `example_batch`, `--input-shape`), captured from the script's own first step, then made up from
    what the model declares (a Hugging Face config, an image size) and from its first layers."""
    target = loaded.target
    if target.example_input is not None:
        yield InputSource(target.example_input, "example_input", checked=False)
    if target.labeled_batch is not None:
        yield InputSource(target.labeled_batch[0], "example_batch", checked=False)
    if input_shape is not None:
        yield InputSource(_tensor_of_shape(target.model, input_shape), "--input-shape", checked=False)
    if loaded.captured_input is not None:  # script mode: the batch the model received at the first step
        yield InputSource(loaded.captured_input, "the script's first step", checked=False)
    yield from made_up_sources(target.model, loaded.construction)


def infer_input(model: nn.Module, trains: bool = True, construction: Mapping[str, Any] | None = None) -> Any:
    """A made-up input the forward accepts (see `verified_input`)."""
    return verified_input(model, list(islice(made_up_sources(model, construction or {}), _CANDIDATES_TRIED)), trains)


def runs_on_made_up_input(model: nn.Module, construction: Mapping[str, Any]) -> bool:
    """Whether the forward accepts one of the inputs nnlint can make up for it (in evaluation and
    training mode): how a model built from made-up arguments is checked before it is linted."""
    try:
        infer_input(model, trains=True, construction=construction)
    except InputError:
        return False
    return True


def verified_input(model: nn.Module, candidates: Iterable[InputSource], trains: bool = True) -> Any:
    """The first candidate input the forward accepts (see `_verified_source`)."""
    return _verified_source(model, candidates, trains).value


def _verified_source(model: nn.Module, candidates: Iterable[InputSource], trains: bool = True) -> InputSource:
    """The first candidate input the forward accepts in evaluation mode and, when `trains` (the
    probe will train on it), in training mode too, where a branch may need more (Inception's
    auxiliary head rejects 224×224 images only in training mode). When none is accepted, the
    error says what was tried and why the first was rejected."""
    real_tries = _REAL_TRIES if not is_on_meta(model) else 0
    tried_real: list[int] = []
    evaluation_only = None  # the first input only evaluation mode accepts: used when none suits both modes
    misread = None  # the first input whose batch the sequence layer reads as time: used when no other runs
    first_reason: str | None = None
    tried: list[InputSource] = []  # consumed one by one: a later candidate is made only if needed
    sequence_layer = time_major_layer(model)
    for index, candidate in enumerate(candidates):
        tried.append(candidate)
        with _first_input_shape(sequence_layer) as seen:  # what the sequence layer receives, from the verdict's own forward
            verdict, reason = _verdict_on_meta(model, candidate.value)
        first_reason = first_reason or reason
        if verdict is True:
            if _batch_read_as_time(sequence_layer, candidate, seen):
                misread = candidate if misread is None else misread
                continue
            if not trains or _verdict_on_meta(model, candidate.value, training=True)[0] is not False:
                return candidate
            evaluation_only = candidate if evaluation_only is None else evaluation_only
            continue
        if verdict is None and len(tried_real) < real_tries:  # meta could not tell: values were needed
            tried_real.append(index)
            if accepts(model, candidate.value, on_meta=False, batch_dim=candidate.batch_dim):
                return candidate
    fallback = evaluation_only or misread
    if fallback is not None:
        return fallback
    # A meta kernel can be stricter than the real one; give the first candidates a real try.
    for index in [i for i in range(len(tried)) if i not in tried_real][: real_tries - len(tried_real)]:
        if accepts(model, tried[index].value, on_meta=False, batch_dim=tried[index].batch_dim):
            return tried[index]
    raise InputError(_no_input_message(model, tried, first_reason))


def _no_input_message(model: nn.Module, candidates: list[InputSource], first_reason: str | None) -> str:
    if not candidates:
        return "cannot infer an input: the model has no Conv/Linear/Embedding/RNN/Norm layer to read a shape from"
    tried = [_describe(c.value) for c in candidates]
    shapes = ", ".join(tried[:6]) + (", …" if len(tried) > 6 else "")
    origins = ", ".join(dict.fromkeys(c.origin for c in candidates))
    because = f" (first: {first_reason})" if first_reason else ""
    return f"cannot infer an input: the forward rejected {shapes} (from {origins}){because}"


def accepts(model: nn.Module, example_input: Any, on_meta: bool = True, batch_dim: int | None = 0) -> bool:
    """Whether the forward runs on this input: on meta (no compute, no memory), else on its first
    sample (along `batch_dim`: 1 for (time, batch, …) inputs)."""
    if on_meta:
        return _verdict_on_meta(model, example_input)[0] is True
    args, kwargs = call_arguments(example_input)
    device = model_device(model)
    try:
        with evaluation_run(model):  # on copies of the weights: a forward may count its calls in a buffer
            sample_args, sample_kwargs = one_sample((args, kwargs), device, batch_dim)
            run_with_tensors(model, real_copies(model), model, sample_args, sample_kwargs, on_meta=False)
    except Exception:
        return False
    return True


def _verdict_on_meta(model: nn.Module, example_input: Any, training: bool = False) -> tuple[bool | None, str | None]:
    """True: the forward ran on meta (in training mode when `training`); False: it rejected the
    input; None: it needed real values. With the reason, in one line, when it did not run."""
    try:
        _forward_on_meta(model, example_input, training)
    except Exception as error:
        return (None if needs_real_values(error) else False), _one_line(error)
    return True, None


def _forward_on_meta(model: nn.Module, example_input: Any, training: bool = False) -> Any:
    """The forward's output on meta (shapes only, no compute), in evaluation mode or, when
    `training`, in the model's training configuration; raises what the forward raises."""
    args, kwargs = call_arguments(example_input)
    with evaluation_run(model), training_flags(model, True) if training else nullcontext():
        return run_with_tensors(model, meta_stand_ins(model), model, args, kwargs)


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


def _batch_read_as_time(sequence_layer: tuple[str, nn.Module] | None, candidate: InputSource, seen: list[torch.Size]) -> bool:
    """Whether the model's (time, batch, …) sequence layer received the made-up batch (`seen`: the
    shape of its first input in the forward that accepted the candidate) somewhere other than its
    dimension 1, or as one unbatched (time, features) sequence: the input is laid out the other
    way round from what the forward expects (it transposes a (batch, time) input itself, or takes
    (time, batch) and does not), and the probe would compare time steps as if they were samples."""
    made = _tensors(candidate.value)
    if sequence_layer is None or candidate.batch_dim is None or not made or made[0].dim() <= candidate.batch_dim:
        return False
    batch = made[0].shape[candidate.batch_dim]
    # Two dimensions is one unbatched sequence: the made-up samples are read as its time steps.
    return bool(seen) and (len(seen[0]) == 2 or (len(seen[0]) >= 3 and seen[0][1] != batch))


@contextmanager
def _first_input_shape(layer: tuple[str, nn.Module] | None) -> Iterator[list[torch.Size]]:
    """The shape of the first tensor the layer receives while this is open (nothing is watched for
    no layer): watched during the verdict's forward, so it costs no forward of its own."""
    seen: list[torch.Size] = []
    if layer is None:
        yield seen
        return

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not seen and args and isinstance(args[0], torch.Tensor):
            seen.append(args[0].shape)

    handle = layer[1].register_forward_pre_hook(record)
    try:
        yield seen
    finally:
        handle.remove()


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 160 else text[:157] + "..."


def _shaping_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for path, module in model.named_modules():
        if _shapes_for(module, 1):
            yield path, module


def _first_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The first shaping layers, and the first Embedding wherever it is: tokens enter there even
    when it was registered after a whole encoder (word_language_model's TransformerModel)."""
    layers = list(islice(_shaping_layers(model), _LAYERS_TRIED))
    if not any(isinstance(layer, nn.Embedding) for _, layer in layers):
        embedding = next(((p, m) for p, m in model.named_modules() if isinstance(m, nn.Embedding)), None)
        layers += [embedding] if embedding is not None else []
    return layers


def _first_shaping_layer(model: nn.Module) -> nn.Module | None:
    return next((module for _, module in _shaping_layers(model)), None)


def _path_of(model: nn.Module, module: nn.Module) -> str:
    return next(path for path, m in model.named_modules() if m is module)


def made_up_sources(model: nn.Module, construction: Mapping[str, Any]) -> Iterator[InputSource]:
    """Made-up candidates: from a Hugging Face config, then shapes for the first layers, with the
    image sizes and patch size the model or its constructor arguments declare tried first; each
    passed the way the forward takes its required arguments (two images for a Siamese forward)."""
    dtype = model_float_dtype(model)
    if hf.is_transformers_model(model):
        for value in hf.example_inputs(model, INFERRED_BATCH, dtype):
            yield InputSource(value, "the Hugging Face config", declared=True)
    yield from _whole_graphs(model, construction, dtype)
    yield from _channels_last_arrays(model, construction, dtype)
    declared_shapes, declared_sides = _declared_image_sizes(model, construction)
    sides = _with_patch_multiples(declared_sides, _declared_patch_size(model, construction))
    shapes: list[tuple[tuple[int, ...], int | None, str]] = [(shape, None, "the declared input size") for shape in declared_shapes]
    # Images of the declared size, even when no Conv2d reads them (vit-pytorch patchifies with a Linear).
    channels = _declared_channels(model, construction)
    shapes += [((INFERRED_BATCH, channels, h, w), None, "the declared image size") for h, w in declared_sides]
    # Sequences of the declared feature size, for a forward that reshapes before its first layer
    # (sooftware/conformer: `Conformer(input_dim=80)` reads (batch, time, 80), unsqueezed for a Conv2d).
    shapes += _declared_series(construction)
    for features, name in _declared_feature_sizes(construction).items():
        shapes += [((INFERRED_BATCH, _SEQUENCE_LENGTH, features), None, f"the declared feature size `{name}={features}`")]
    # Tokens for a model whose sequence layer reads (time, batch, …) are laid out that way first:
    # its forward accepts (batch, time) as well, and would then mix what it takes for a batch
    # (pytorch/examples word_language_model's RNNModel and TransformerModel, batch_first=False).
    time_major = time_major_layer(model) is not None
    layouts: list[tuple[tuple[int, ...], int | None, str, int]] = [(shape, high, origin, 0) for shape, high, origin in shapes]
    declared = len(layouts)  # the layouts before this one are declared sizes; the rest are read off layers
    folded = False
    for path, layer in _first_layers(model):
        origin = f"{type(layer).__name__} `{path}`"
        for shape, integer_high in _shapes_for(layer, INFERRED_BATCH, sides):
            if time_major and _has_time_after_batch(shape, integer_high):  # (time, batch, …)
                layouts.append(((shape[1], shape[0], *shape[2:]), integer_high, origin, 1))
            # An RNN read first with batch_first=False is given (time, batch, features) by `_shapes_for`.
            sequence_first = isinstance(layer, nn.modules.rnn.RNNBase) and not layer.batch_first
            layouts.append((shape, integer_high, origin, 1 if sequence_first else 0))
            if sequence_first:  # and (batch, time, features), for a forward that transposes it first
                layouts.append(((shape[1], shape[0], *shape[2:]), integer_high, origin, 0))
        if isinstance(layer, nn.Conv2d) and not folded:
            layouts.append(_folded_signal(layer, origin))  # after its images, before deeper layers' guesses
            folded = True
    required = _required_forward_parameters(model)
    seen: set[tuple[tuple[int, ...], int | None]] = set()
    for index, (shape, integer_high, origin, batch_dim) in enumerate(layouts):
        if (shape, integer_high) in seen or math.prod(shape) > _MOST_MADE_UP_ELEMENTS:
            continue
        seen.add((shape, integer_high))
        value = _as_forward_arguments(model, _make(shape, dtype, integer_high), required, batch_dim)
        yield InputSource(value, origin, batch_dim=batch_dim, declared=index < declared)


# The most elements a made-up candidate may hold: candidates are made as real tensors, and channel
# counts read off deeper layers (1024) at the larger image sides would take gigabytes to judge.
_MOST_MADE_UP_ELEMENTS = 2**24
# A signal's length for a forward that folds it into 2-D before a Conv2d.
_FOLDED_SIGNAL_LENGTH = 8192


def _folded_signal(conv: nn.Conv2d, origin: str) -> tuple[tuple[int, ...], int | None, str, int]:
    """A (batch, channels, time) signal for a first Conv2d, tried after its images: a forward may fold
    a signal into 2-D first (jik876/hifi-gan's period discriminator views (batch, 1, time) as
    (batch, 1, time / period, period))."""
    return ((INFERRED_BATCH, conv.in_channels, _FOLDED_SIGNAL_LENGTH), None, origin, 0)


# A made-up whole graph's node count: more than `_FEWEST_GRAPH_NODES`, so that it reads as a graph.
_GRAPH_NODES = 16
# Forward arguments that take a graph's adjacency (Diego999/pyGAT, tkipf/pygcn: `forward(x, adj)`).
_ADJACENCY_PARAMETERS = ("adj", "adjacency", "adj_matrix", "adj_mat", "a_hat")
# Constructor arguments that give a node's feature count (pyGAT's `GAT(nfeat, ...)`).
_NODE_FEATURE_NAMES = ("nfeat", "n_feat", "in_feats", "num_node_features", "node_features", *("in_features", "input_dim", "n_features"))


def _whole_graphs(model: nn.Module, construction: Mapping[str, Any], dtype: torch.dtype) -> Iterator[InputSource]:
    """For a forward that takes an adjacency beside the nodes' features (`forward(x, adj)`), one
    made-up whole graph: _GRAPH_NODES nodes' features and a dense N×N adjacency with self-loops.
    Its nodes are not a batch of samples (`holds_one_graph`): batch_dim is None."""
    required = _required_forward_parameters(model)
    if len(required) != 2 or required[1].name.lower() not in _ADJACENCY_PARAMETERS:
        return
    declared = [attributes.get(name) for attributes in _declared_values(construction) for name in _NODE_FEATURE_NAMES]
    first = _first_shaping_layer(model)
    sizes = [v for v in declared if isinstance(v, int) and not isinstance(v, bool) and v > 0]
    sizes += [first.in_features] if isinstance(first, nn.Linear) else []
    for features in dict.fromkeys(sizes):
        links = made_up((_GRAPH_NODES, _GRAPH_NODES), dtype, integer_high=2).to(dtype)
        adjacency = ((links + links.T + torch.eye(_GRAPH_NODES, dtype=dtype)) > 0).to(dtype)
        origin = f"the forward's adjacency argument `{required[1].name}`"
        yield InputSource((_make((_GRAPH_NODES, features), dtype, None), adjacency), origin, batch_dim=None, declared=True)


# Sides of made-up channels-last arrays: kept small, every position is a token for attention.
_CHANNELS_LAST_SIDES = (16, 32)


def _channels_last_arrays(model: nn.Module, construction: Mapping[str, Any], dtype: torch.dtype) -> Iterator[InputSource]:
    """Arrays laid out (batch, *axes, channels) for a model that declares how many axes its input
    has (lucidrains/perceiver-pytorch's `Perceiver(input_axis=2, input_channels=3)`: images as
    (batch, height, width, channels))."""
    for attributes in [*_declared_values(construction), vars(model)]:
        axes, channels = attributes.get("input_axis"), attributes.get("input_channels", _declared_channels(model, construction))
        if isinstance(axes, int) and not isinstance(axes, bool) and isinstance(channels, int) and 1 <= axes <= 3 and channels > 0:
            for side in _CHANNELS_LAST_SIDES:
                yield InputSource(_make((INFERRED_BATCH, *(side,) * axes, channels), dtype, None), "the declared input axes", declared=True)
            return


def _has_time_after_batch(shape: tuple[int, ...], integer_high: int | None) -> bool:
    """A made-up (batch, time) token shape or (batch, time, features) shape, which a model whose
    sequence layer reads (time, batch, …) may take the other way round."""
    if integer_high is not None:
        return len(shape) == 2
    return len(shape) == 3 and shape[1] == _SEQUENCE_LENGTH


# Forward parameters that take the recurrent state the model's own `init_hidden(batch)` makes
# (pytorch/examples word_language_model: `output, hidden = model(data, hidden)`).
_STATE_PARAMETERS = ("hidden", "hx", "h", "state", "hidden_state", "h0")
# A forward's second argument that holds each sequence's length (`forward(inputs, input_lengths)`).
_LENGTH_PARAMETERS = ("lengths", "lens", "seq_len", "seq_lens")
# Constructor arguments that give the size of each time step's features.
_FEATURE_SIZE_NAMES = ("input_dim", "feature_dim", "n_features", "num_features", "in_features", "input_features")


def _declared_series(construction: Mapping[str, Any]) -> list[tuple[tuple[int, ...], int | None, str]]:
    """(batch, seq_len, enc_in): a forecaster's input window, as its config declares it
    (cure-lab/LTSF-Linear's `configs.seq_len` time steps of `configs.enc_in` variables)."""
    for attributes in _declared_values(construction):
        length, variables = attributes.get("seq_len"), attributes.get("enc_in")
        if _is_size(length) and _is_size(variables):
            return [((INFERRED_BATCH, length, variables), None, f"the declared series `seq_len={length}`, `enc_in={variables}`")]
    return []


def _is_size(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _declared_feature_sizes(construction: Mapping[str, Any]) -> dict[int, str]:
    """Each declared feature size, with the first name that declares it."""
    values = [(attributes.get(name), name) for attributes in _declared_values(construction) for name in _FEATURE_SIZE_NAMES]
    found: dict[int, str] = {}
    for value, name in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            found.setdefault(value, name)
    return found


def _required_forward_parameters(model: nn.Module) -> list[inspect.Parameter]:
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in parameters if p.kind in kinds and p.default is p.empty]


def _as_forward_arguments(model: nn.Module, tensor: torch.Tensor, required: list[inspect.Parameter], batch_dim: int = 0) -> Any:
    """The tensor as forward takes it: alone, by keyword (`forward(self, *, x)`), or once for each
    required argument (`forward(input1, input2)`), a recurrent state from `init_hidden`."""
    if len(required) <= 1:
        if required and required[0].kind is inspect.Parameter.KEYWORD_ONLY:
            return {required[0].name: tensor}
        return tensor
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for index, parameter in enumerate(required):
        value = tensor if index == 0 else _companion_argument(model, tensor, parameter.name, batch_dim)
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return tuple(args) if not kwargs else _positional_and_keywords(required, args, kwargs)


def _positional_and_keywords(required: list[inspect.Parameter], args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every argument by name: an example input is a tuple (positional) or a dict (keywords), not both."""
    positional = [p.name for p in required if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    return {**dict(zip(positional, args, strict=False)), **kwargs}


def _companion_argument(model: nn.Module, tensor: torch.Tensor, name: str, batch_dim: int = 0) -> Any:
    if name in _LENGTH_PARAMETERS or name.endswith(("_lengths", "_lens")):  # every sequence full length
        if batch_dim == 1 and tensor.dim() > 1:  # (time, batch, …)
            return torch.full((tensor.shape[1],), tensor.shape[0], dtype=torch.long)
        return torch.full((tensor.shape[0],), tensor.shape[1] if tensor.dim() > 1 else 1, dtype=torch.long)
    init_hidden = getattr(model, "init_hidden", None)
    if name in _STATE_PARAMETERS and callable(init_hidden):
        try:
            return init_hidden(INFERRED_BATCH)
        except Exception:  # the user's helper: when it cannot run, a tensor like the input is the guess
            pass
    return _below_every_vocabulary(model, tensor.clone())


def _below_every_vocabulary(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Token ids for a second token input, folded below the smallest vocabulary: an encoder's
    tokens, drawn below its own vocabulary, may lie outside the decoder's (hyunwoongko/transformer's
    `forward(src, trg)` with 7,853 German and 5,893 English words)."""
    if tokens.is_floating_point() or tokens.dtype == torch.bool:
        return tokens
    vocabularies = [m.num_embeddings for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.num_embeddings > 0]
    return torch.remainder(tokens, min(vocabularies)) if vocabularies else tokens


# Where models say what image size they were built for: timm's `pretrained_cfg["input_size"]`
# (channels, height, width), and `img_size`/`image_size` on the model or its patch embedding.
_INPUT_CONFIGS = ("pretrained_cfg", "default_cfg")
_IMAGE_SIZE_ATTRIBUTES = ("img_size", "image_size", "input_size", "input_resolution")
_RECURRENT = (nn.modules.rnn.RNNBase, nn.modules.rnn.RNNCellBase)
# Layers that mix along time and have a batch_first flag (a Transformer layer's is on its attention).
_SEQUENCE_LAYERS = (nn.modules.rnn.RNNBase, nn.MultiheadAttention)


def _declared_image_sizes(model: nn.Module, construction: Mapping[str, Any]) -> tuple[list[tuple[int, ...]], list[tuple[int, int]]]:
    """Full input shapes (batch, C, H, W) and image sides (H, W) that the model's modules, or the
    arguments it was built with (`ViT(image_size=256, ...)`, a config object), declare."""
    shapes: list[tuple[int, ...]] = []
    sides: list[tuple[int, int]] = []
    # An RNN's `input_size` is its feature count, and so is the argument of a model whose first
    # layer is one (yunjey/pytorch-tutorial's `RNN(input_size, hidden_size, ...)`): not an image side.
    recurrent = isinstance(_first_shaping_layer(model), _RECURRENT)
    names = tuple(name for name in _IMAGE_SIZE_ATTRIBUTES if not (recurrent and name == "input_size"))
    modules = [vars(module) for module in model.modules() if not isinstance(module, _RECURRENT)]
    for attributes in [*_declared_values(construction), *modules]:
        for name in _INPUT_CONFIGS:
            size = attributes.get(name, {}).get("input_size") if isinstance(attributes.get(name), dict) else None
            if isinstance(size, (tuple, list)) and len(size) == 3 and all(isinstance(n, int) and n > 0 for n in size):
                shapes.append((INFERRED_BATCH, *size))
        for name in names:
            side = _side(attributes.get(name))
            if side is not None:
                sides.append(side)
    return list(dict.fromkeys(shapes)), list(dict.fromkeys(sides))


def _declared_values(construction: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The constructor's arguments, and the fields of any config object among them."""
    found = [dict(construction)]
    for value in construction.values():
        fields = getattr(value, "__dict__", None)
        if isinstance(fields, dict) and not isinstance(value, (nn.Module, torch.Tensor, type)):
            found.append(fields)
    return found


_CHANNEL_NAMES = ("channels", "in_channels", "in_chans", "num_channels", "n_channels")


def _declared_channels(model: nn.Module, construction: Mapping[str, Any]) -> int:
    """Image channels: a constructor argument (`ViT(channels=1)`), else the first Conv2d's, else 3."""
    for attributes in _declared_values(construction):
        for name in _CHANNEL_NAMES:
            value = attributes.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(conv.in_channels) if conv is not None else 3


def _declared_patch_size(model: nn.Module, construction: Mapping[str, Any]) -> int | None:
    for attributes in [*_declared_values(construction), *(vars(module) for module in model.modules())]:
        side = _side(attributes.get("patch_size"))
        if side is not None and side[0] == side[1]:
            return side[0]
    return None


def _with_patch_multiples(declared: list[tuple[int, int]], patch: int | None) -> list[tuple[int, int]]:
    """Declared sides first; with a patch size, the usual sides it divides, then small multiples of it."""
    if patch is None:
        return declared
    usual = [(n, n) for n in _IMAGE_SIDES if n % patch == 0] + [(patch * k, patch * k) for k in (4, 8, 2, 1)]
    return list(dict.fromkeys([*declared, *usual]))


def _side(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        return value, value
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(n, int) and n > 1 for n in value):
        return int(value[0]), int(value[1])
    return None


def _shapes_for(layer: nn.Module, batch: int, declared_sides: Sequence[tuple[int, int]] = ()) -> list[tuple[tuple[int, ...], int | None]]:
    """Plausible input shapes for a first layer, with the index range when it takes integers."""
    image_sides = [*declared_sides, *((n, n) for n in _IMAGE_SIDES if (n, n) not in declared_sides)]
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):  # a sequence, then one token per sample (char-rnn)
        return [((batch, _SEQUENCE_LENGTH), layer.num_embeddings), ((batch,), layer.num_embeddings)]
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        return [((batch, layer.in_channels, n), None) for n in _SIGNAL_LENGTHS]
    if isinstance(layer, nn.ConvTranspose2d):  # a generator's first layer takes a 1×1 latent (DCGAN)
        return [((batch, layer.in_channels, h, w), None) for h, w in [(1, 1), *image_sides]]
    if isinstance(layer, nn.Conv2d):
        return [((batch, layer.in_channels, h, w), None) for h, w in image_sides]
    if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
        return [((batch, layer.in_channels, *sides), None) for sides in _VOLUME_SIDES]
    if isinstance(layer, nn.modules.rnn.RNNBase):
        # Also as many steps as features: an image read row by row, the forward reshaping it to
        # (batch, rows, row) (pytorch/examples mnist_rnn, yunjey/pytorch-tutorial's recurrent network).
        lengths = dict.fromkeys((_SEQUENCE_LENGTH, layer.input_size))
        if layer.batch_first:
            return [((batch, n, layer.input_size), None) for n in lengths]
        return [((n, batch, layer.input_size), None) for n in lengths]
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
    if target.labeled_batch is not None:
        size = None if holds_one_graph(target.labeled_batch[0]) else _leading_dimension(target.labeled_batch[0])
        if size is not None:
            return BatchSize(size, "example_batch", loaded.context_locations.get("example_batch"))
    # A whole graph's nodes are not a batch, nor one sequence's time steps.
    if not inferred and not holds_one_graph(example_input) and not one_sequence_for_time_major(target.model, example_input):
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


# The side of the made-up images a fully convolutional model is probed on. A training step's cost
# grows with the pixels (a U-Net step on 224×224 takes seconds of one CPU core, on 64×64 a tenth of
# that), while what the probe measures per layer (gradient norms, never-active units, activation
# scales) does not need 224×224: a 64×64 image still leaves 4×4 positions per channel after four
# halvings, enough observations for each unit.
PROBE_IMAGE_SIDE = 64


# The fewest positions (rows and columns) the smallest feature map keeps at the smaller size: a
# unit's never-active count needs observations (a deep network halving 224 six times to 3×3
# would be left 1×1 at 64×64, and keeps its size).
_SMALLEST_MAP_SIDE = 4


def smallest_feature_map(graph: ModelGraph) -> int | None:
    """The smallest height or width of an image-shaped (4-D) value in the graph, 1×1 maps left out
    (a global pooling's, as in a squeeze-and-excitation block: they stay 1×1 at any input size)."""
    sides = [
        min(value.shape[-2:])
        for node in graph.nodes
        if isinstance(value := node.meta.get("val"), torch.Tensor) and value.dim() == 4 and tuple(value.shape[-2:]) != (1, 1)
    ]
    return min(sides, default=None)


def graph_output(graph: ModelGraph) -> torch.Tensor | None:
    """The forward's main output (its first floating-point tensor) as the graph holds it on meta, for
    the graph's own input; None for a graph recorded on real values (one sample, not the input)."""
    if graph.recorded_on != "meta":
        return None
    values = (node.meta.get("val") for node in graph.returned())
    return next((value for value in values if isinstance(value, torch.Tensor) and value.is_floating_point()), None)


def smaller_probe_image(
    model: nn.Module, example_input: Any, smallest_map: int | None = None, graph: ModelGraph | None = None
) -> torch.Tensor | None:
    """A made-up batch of PROBE_IMAGE_SIDE² images for the probe, when `example_input` is a larger
    made-up image batch and the model is fully convolutional: it accepts the smaller images in
    evaluation and training mode (on meta, no compute) and its output keeps spatial dimensions
    that shrink with them (a segmentation or super-resolution network). A model that pools to a
    fixed size or flattens into a Linear keeps its input: its layers would see other shapes. So
    does one whose smallest feature map at the full size (`smallest_map`, from the graph) would
    shrink below _SMALLEST_MAP_SIDE. The output at the full size is the one `graph` (recorded on
    `example_input`) holds, when it holds one (`graph_output`), else one more meta forward."""
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4 or not example_input.is_floating_point():
        return None
    batch, channels, height, width = example_input.shape
    if height != width or height <= PROBE_IMAGE_SIDE:
        return None
    if smallest_map is not None and smallest_map * PROBE_IMAGE_SIDE < _SMALLEST_MAP_SIDE * height:
        return None
    smaller = made_up((batch, channels, PROBE_IMAGE_SIDE, PROBE_IMAGE_SIDE), example_input.dtype)
    # The cheapest refusal first: a classifier's output (batch, classes) ends it after one meta run.
    output = _meta_output(model, smaller, training=True)
    if output is None or output.dim() != 4:
        return None
    full_size = graph_output(graph) if graph is not None else None
    full_size = full_size if full_size is not None else _meta_output(model, example_input, training=True)
    if full_size is None or not _spatial_dimensions_shrank(full_size, output):
        return None
    in_evaluation = _meta_output(model, smaller, training=False)
    return smaller if in_evaluation is not None and _spatial_dimensions_shrank(full_size, in_evaluation) else None


def _meta_output(model: nn.Module, example_input: Any, training: bool) -> torch.Tensor | None:
    """The forward's main output on meta (shapes only), or None when it rejects the input."""
    try:
        output = _forward_on_meta(model, example_input, training)
    except Exception:
        return None
    return next((leaf for leaf in _tensors(output) if leaf.is_floating_point()), None)


def _spatial_dimensions_shrank(full_size: torch.Tensor, smaller: torch.Tensor) -> bool:
    """An image-shaped output (batch, channels, height, width) whose height and width both shrank
    with the input: every layer up to the output kept the image's layout."""
    if full_size.dim() != 4 or smaller.dim() != 4 or full_size.shape[:2] != smaller.shape[:2]:
        return False
    return all(1 < small < full for small, full in zip(smaller.shape[2:], full_size.shape[2:], strict=True))
