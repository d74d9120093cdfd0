"""From what a script built at its first optimizer step to lint targets.

- The models are the modules the script called (outermost calls) whose parameters an optimizer
  holds, keeping only the outermost of nested ones: a GAN's generator and discriminator, each
  paired with the optimizer that holds its parameters.
- The loss is found from the tensor `.backward()` was called on, walking back through its autograd
  graph (a scaled, averaged or summed loss) to the first tensor a recorded loss produced: a loss
  module or `torch.nn.functional` loss the script called (its first argument tells which model's
  output it judged), or a scalar the model returned itself (nanoGPT's `logits, loss = model(X, Y)`,
  a Hugging Face model given `labels`).
- The batch is the model's real arguments in that call; the targets are the loss's second argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import RandomSampler

from nnlint.context import DataLoaderFacts
from nnlint.findings import Location
from nnlint.loader import LoadedTarget
from nnlint.runtime.torch_compat import LossBase
from nnlint.script.capture import LossCall, ModuleCall, StepRecord
from nnlint.sources import recorded_site
from nnlint.targets import Target

_SEARCH_DEPTH = 12  # autograd nodes walked back from the backward tensor, and from a loss's input
# Autograd nodes that only reshape: a loss on `output.view(-1, V)` can be replayed on the output.
_RESHAPES = frozenset({"ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "CloneBackward0", "SqueezeBackward0"})
_RESHAPES |= {"SqueezeBackward1", "SqueezeBackward2", "UnsqueezeBackward0"}


_ARGUMENTS_CHANGED = (
    "the script called {name}.forward directly and it reassigns its arguments before calling its layers: "
    "its real input is not known, nnlint infers one"
)


@dataclass
class ScriptModel:
    """One model the script trains, with what nnlint lints it with."""

    loaded: LoadedTarget
    notes: list[str] = field(default_factory=list)


@dataclass
class _LossFound:
    call: ModuleCall | None  # the model call whose output the loss judged
    loss_fn: Any  # what the probe calls as loss_fn(output, targets)
    targets: Any
    describe: str
    site: Location | None
    note: str | None = None


class ReplayedLoss:
    """The script's loss, called as it was (keyword arguments kept), on the model's output
    reshaped as the script reshaped it (`output.view(-1, ntokens)`)."""

    def __init__(self, loss: Any, kwargs: dict[str, Any], trailing_shape: tuple[int, ...] | None) -> None:
        self.loss, self.kwargs, self.trailing_shape = loss, kwargs, trailing_shape
        self.__name__ = getattr(loss, "__name__", type(loss).__name__)

    def __call__(self, output: Any, targets: Any) -> Any:
        value = _main_tensor(output)
        if self.trailing_shape is not None and value is not None:
            value = value.reshape(-1, *self.trailing_shape)
        return self.loss(value if value is not None else output, targets, **self.kwargs)


class OutputLoss:
    """The loss the model returns itself: `output[1]` (nanoGPT) or `output.loss` (Hugging Face)."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.__name__ = f"the model's own loss (output[{key!r}])"

    def __call__(self, output: Any, targets: Any) -> Any:
        return output[self.key]


def script_models(record: StepRecord, namespace: Mapping[str, Any], path: Any) -> list[ScriptModel]:
    """The lint targets for a script stopped at its first optimizer step."""
    loader = loader_facts(record)
    loss = _find_loss(record)
    models: list[ScriptModel] = []
    paired: set[int] = set()
    trained: list[tuple[torch.optim.Optimizer | None, Location | None, set[int]]]
    trained = [(o, site, {id(p) for group in o.param_groups for p in group["params"]}) for o, site in record.optimizers]
    if not record.optimizers:  # no optimizer: the parameters the backward reached are the trained ones
        trained = [(None, None, {id(p) for call in record.calls for p in call.module.parameters() if p.grad is not None})]
    for optimizer, optimizer_site, held in trained:
        for call in _trained_models(record.calls, held):
            if id(call.module) in paired:
                continue
            paired.add(id(call.module))
            models.append(_script_model(call, optimizer, optimizer_site, loss, loader, record, namespace, path))
    return models


def _trained_models(calls: list[ModuleCall], held: set[int]) -> list[ModuleCall]:
    """The latest call of each outermost called module holding any of the parameters `held`."""
    latest: dict[int, ModuleCall] = {}
    for call in calls:
        if not isinstance(call.module, LossBase) and any(id(p) in held for p in call.module.parameters()):
            latest[id(call.module)] = call
    modules = [call.module for call in latest.values()]
    return [
        call
        for call in latest.values()
        if not any(other is not call.module and any(sub is call.module for sub in other.modules()) for other in modules)
    ]


def _script_model(
    call: ModuleCall,
    optimizer: torch.optim.Optimizer | None,
    optimizer_site: Location | None,
    loss: _LossFound | None,
    loader: DataLoaderFacts | None,
    record: StepRecord,
    namespace: Mapping[str, Any],
    path: Any,
) -> ScriptModel:
    model = call.module
    own_loss = loss is not None and loss.call is not None and loss.call.module is model
    if own_loss and loss is not None and loss.call is not None:
        call = loss.call  # the inputs of the very call whose output the loss judged
    inputs = None if call.arguments_changed else _detached(_example_input(call))
    target = Target(model, example_input=inputs, optimizer=optimizer, name=_name(model, namespace), grads_from_first_step=True)
    locations: dict[str, Location] = {}
    if optimizer_site is not None:
        locations["optimizer"] = optimizer_site
    notes = []
    if own_loss and loss is not None:
        target.loss_fn = loss.loss_fn
        if loss.targets is not None and inputs is not None:
            target.example_batch = (inputs, _detached(loss.targets))
        if loss.site is not None:
            locations["loss_fn"] = loss.site
        if loss.note:
            notes.append(loss.note)
    elif loss is None or loss.call is None:
        targets = _loader_targets(record, inputs)
        if targets is not None:
            target.example_batch = (inputs, _detached(targets))
    if loader is not None and loader.batch_size is not None:
        target.batch_size = loader.batch_size
        if loader.location is not None:
            locations["batch_size"] = loader.location
            locations["example_batch"] = loader.location
    if call.arguments_changed:
        notes.append(_ARGUMENTS_CHANGED.format(name=type(model).__name__))
    notes.insert(0, _summary(record, optimizer, loss if own_loss else None, loader))
    site = recorded_site(model)
    loaded = LoadedTarget(target, target.name or type(model).__name__, Path(path), site, context_locations=locations)
    loaded.data_loader = loader
    return ScriptModel(loaded, notes)


def _name(model: nn.Module, namespace: Mapping[str, Any]) -> str:
    """The script's global name for the model, else its class name."""
    for name, value in namespace.items():
        if value is model and not name.startswith("_"):
            return name
    return type(model).__name__


# -- the loss ---------------------------------------------------------------------------------
def _find_loss(record: StepRecord) -> _LossFound | None:
    if record.backward is None or record.backward.grad_fn is None:
        return None
    outputs = {id(tensor.grad_fn): (call, key) for call in record.calls for key, tensor in _output_scalars(call.output)}
    losses: dict[int, LossCall] = {}
    for loss_call in record.losses:  # a loss module's result is also its F.* call's: the module wins
        losses.setdefault(id(loss_call.result.grad_fn), loss_call)
        if isinstance(loss_call.loss, nn.Module):
            losses[id(loss_call.result.grad_fn)] = loss_call
    for node in _walk_back(record.backward.grad_fn):
        if id(node) in outputs:
            call, key = outputs[id(node)]
            inner = next((c for c in reversed(record.losses) if _reaches(node, c.result.grad_fn)), None)
            targets = call.kwargs.get("labels", _loss_targets(inner) if inner else None)
            name = type(call.module).__name__
            return _LossFound(call, OutputLoss(key), targets, f"{name}'s own loss (output[{key!r}])", record.backward_site)
        if id(node) in losses:
            return _from_loss_call(losses[id(node)], record)
    return None


def _from_loss_call(loss_call: LossCall, record: StepRecord) -> _LossFound:
    judged = loss_call.args[0] if loss_call.args else loss_call.kwargs.get("input")
    name = _loss_name(loss_call.loss)
    kwargs = {k: v for k, v in loss_call.kwargs.items() if k not in ("input", "target")}
    targets = _loss_targets(loss_call)
    for call in reversed(record.calls):
        output = _main_tensor(_judged_output(call))
        if not isinstance(judged, torch.Tensor) or output is None:
            continue
        if judged is output:
            loss_fn = loss_call.loss if not kwargs and isinstance(loss_call.loss, nn.Module) else ReplayedLoss(loss_call.loss, kwargs, None)
            return _LossFound(call, loss_fn, targets, name, loss_call.site)
        if judged.grad_fn is not None and output.grad_fn is not None and _reaches(judged.grad_fn, output.grad_fn, _RESHAPES):
            trailing = tuple(judged.shape[1:])
            return _LossFound(call, ReplayedLoss(loss_call.loss, kwargs, trailing), targets, name, loss_call.site)
        if judged.grad_fn is not None and output.grad_fn is not None and _reaches(judged.grad_fn, output.grad_fn):
            note = (
                f"the loss ({name}) is computed on a transformation of the model's output, which nnlint cannot replay: "
                "the probe uses a loss guessed from the targets"
            )
            return _LossFound(call, None, targets, name, loss_call.site, note)
    return _LossFound(None, None, targets, name, loss_call.site)


def _judged_output(call: ModuleCall) -> Any:
    """What the call returned; for a `forward` the script called directly (its return is not
    seen), what its last outermost child returned: `return self.fc_layer(x)`. A loss on anything
    else reaching it is judged a transformation nnlint cannot replay."""
    return call.last_child_output if call.called_directly else call.output


def _loss_targets(loss_call: LossCall) -> Any:
    return loss_call.args[1] if len(loss_call.args) > 1 else loss_call.kwargs.get("target")


def _loss_name(loss: Any) -> str:
    return type(loss).__name__ if isinstance(loss, nn.Module) else f"F.{getattr(loss, '__name__', 'loss')}"


def _walk_back(start: Any, through: frozenset[str] | None = None) -> Iterator[Any]:
    """Autograd nodes breadth-first from `start` (only through `through` node types, if given)."""
    seen = {id(start)}
    frontier = [start]
    for _ in range(_SEARCH_DEPTH):
        following = []
        for node in frontier:
            yield node
            if through is not None and type(node).__name__ not in through:
                continue
            for parent, _ in getattr(node, "next_functions", ()):
                if parent is not None and id(parent) not in seen:
                    seen.add(id(parent))
                    following.append(parent)
        frontier = following
        if not frontier:
            return


def _reaches(start: Any, wanted: Any, through: frozenset[str] | None = None) -> bool:
    return any(node is wanted for node in _walk_back(start, through))


def _output_scalars(output: Any) -> Iterator[tuple[Any, torch.Tensor]]:
    """(key, tensor) for each scalar tensor with a graph directly in the model's output."""
    items: Iterator[tuple[Any, Any]]
    if isinstance(output, Mapping):
        items = iter(output.items())
    elif isinstance(output, (tuple, list)):
        items = iter(enumerate(output))
    else:
        return
    for key, value in items:
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.grad_fn is not None:
            yield key, value


def _main_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        logits = output.get("logits")
        return logits if isinstance(logits, torch.Tensor) else None
    if isinstance(output, (tuple, list)) and output:
        return _main_tensor(output[0])
    return None


# -- the batch and the loader -------------------------------------------------------------------
def _example_input(call: ModuleCall) -> Any:
    """The call's arguments as nnlint's example input: a tensor, a tuple (positional) or a dict.
    One positional dict or sequence stays one argument (pytorch-forecasting's `forward(self, x)`
    takes a dict of tensors): alone it would read as keyword arguments or as several inputs."""
    if not call.kwargs:
        if len(call.args) == 1 and isinstance(call.args[0], (dict, tuple, list)):
            return (call.args[0],)
        return call.args[0] if len(call.args) == 1 else tuple(call.args)
    if not call.args:
        return dict(call.kwargs)
    try:
        return dict(inspect.signature(call.module.forward).bind(*call.args, **call.kwargs).arguments)
    except (TypeError, ValueError):
        return tuple(call.args)


def _detached(value: Any) -> Any:
    from nnlint.runtime.torch_compat import tree_map_only

    return tree_map_only(torch.Tensor, lambda t: t.detach().clone(), value)


def _loader_targets(record: StepRecord, inputs: Any) -> Any:
    """The second element of the loader's last `(inputs, targets)` batch, when its inputs are the
    model's (a loss written by hand leaves no loss call to take the targets from)."""
    batch = record.loader.last_batch if record.loader is not None else None
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], torch.Tensor)):
        return None
    return batch[1] if isinstance(inputs, torch.Tensor) and batch[0].shape == inputs.shape else None


def loader_facts(record: StepRecord) -> DataLoaderFacts | None:
    if record.loader is None:
        return None
    loader = record.loader.loader
    batch_size = loader.batch_size if loader.batch_size is not None else getattr(loader.batch_sampler, "batch_size", None)
    try:
        length: int | None = len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        length = None
    sampler = loader.sampler
    return DataLoaderFacts(
        batch_size=int(batch_size) if isinstance(batch_size, int) else None,
        drop_last=bool(loader.drop_last if loader.batch_size is not None else getattr(loader.batch_sampler, "drop_last", False)),
        dataset_length=length,
        shuffle=isinstance(sampler, RandomSampler),
        location=record.loader.site,
    )


def _summary(record: StepRecord, optimizer: torch.optim.Optimizer | None, loss: _LossFound | None, loader: DataLoaderFacts | None) -> str:
    """One note saying where the script stopped and what nnlint took from it."""
    if optimizer is None:
        parts = [f"script: builds no optimizer; stopped after its first backward{_at(record.backward_site)}, before it updates the weights"]
    else:
        parts = [f"script: stopped at its first optimizer step{_at(record.step_site)}, before the weights changed"]
        groups = len(optimizer.param_groups)
        lr = optimizer.param_groups[0].get("lr")
        parts.append(f"optimizer {type(optimizer).__name__} (lr {lr:g}, {groups} parameter group{'s' if groups != 1 else ''})")
    if loss is not None:
        parts.append(f"loss {loss.describe}{_at(loss.site)}")
    if loader is not None:
        length = f"{loader.dataset_length} samples, " if loader.dataset_length is not None else ""
        parts.append(
            f"DataLoader{_at(loader.location)} ({length}batch {loader.batch_size}, shuffle={loader.shuffle}, drop_last={loader.drop_last})"
        )
    parts += [f"LR scheduler {type(s).__name__}" for s, _ in record.schedulers]
    parts += [f"AMP {type(s).__name__} (enabled={getattr(s, '_enabled', '?')})" for s, _ in record.scalers]
    parts += [f"gradient clipping {c.function}({c.limit:g}){_at(c.site)}" for c in record.clipping if c.limit is not None]
    return "; ".join(parts)


def _at(site: Location | None) -> str:
    return f" at {Path(site.file).name}:{site.line}" if site is not None else ""


# -- a script stopped by its time limit before its first step ----------------------------------
_SAMPLES_KEPT = 4  # a slow script's input is cut to its first samples: the lint must stay quick


def models_built_so_far(
    record: StepRecord, first_calls: list[ModuleCall], found: Mapping[str, Any], namespace: Mapping[str, Any], path: Any, limit: float
) -> list[ScriptModel]:
    """The lint targets for a script stopped by its time limit before its first optimizer step
    (nanoGPT's `estimate_loss()` of 200 batches at iteration 0): each model an optimizer holds the
    parameters of (else each model it called), paired with that optimizer, with the arguments of
    its first forward (an evaluation under `no_grad` counts) cut to their first samples.

    `found`: modules the script's frames or globals held, for a model built but not called yet
    (its input is then inferred as for a model file)."""
    held_by: list[tuple[torch.optim.Optimizer | None, Location | None, set[int] | None]]
    held_by = [
        (optimizer, site, {id(p) for group in optimizer.param_groups for p in group["params"]}) for optimizer, site in record.optimizers
    ]
    firsts = {id(call.module): call for call in first_calls}
    completed = {id(call.module): call for call in record.calls}
    models: list[ScriptModel] = []
    chosen: set[int] = set()
    for optimizer, site, held in held_by or [(None, None, None)]:
        for module in _stopped_models(first_calls, found, held):
            if id(module) in chosen:
                continue
            chosen.add(id(module))
            first, last = firsts.get(id(module)), completed.get(id(module))
            models.append(_model_so_far(module, first, last, optimizer, site, record, namespace, path, limit))
    return models


def _stopped_models(first_calls: list[ModuleCall], found: Mapping[str, Any], held: set[int] | None) -> list[nn.Module]:
    """The outermost called modules holding parameters in `held` (any parameters when no optimizer
    was built), then, only if none was called, the outermost such modules the script held."""

    def trained(module: nn.Module) -> bool:
        if isinstance(module, LossBase):
            return False
        return any(True for _ in module.parameters()) if held is None else any(id(p) in held for p in module.parameters())

    for modules in ([call.module for call in first_calls], [m for m in found.values() if isinstance(m, nn.Module)]):
        kept = [m for m in modules if trained(m)]
        outermost = [m for m in kept if not any(o is not m and any(sub is m for sub in o.modules()) for o in kept)]
        if outermost:
            return list({id(m): m for m in outermost}.values())
    return []


def _model_so_far(
    model: nn.Module,
    first: ModuleCall | None,
    completed: ModuleCall | None,
    optimizer: torch.optim.Optimizer | None,
    optimizer_site: Location | None,
    record: StepRecord,
    namespace: Mapping[str, Any],
    path: Any,
    limit: float,
) -> ScriptModel:
    call = first if first is not None and first.args else completed
    if not model.training:  # stopped inside an evaluation (`model.eval()`); the step it was heading for trains
        model.train()
    inputs, cut = (None, None) if call is None or call.arguments_changed else _first_samples(_detached(_example_input(call)))
    target = Target(model, example_input=inputs, optimizer=optimizer, name=_name(model, namespace))
    own_loss = _own_loss_key(completed.output) if completed is not None else None
    if own_loss is not None:
        target.loss_fn = OutputLoss(own_loss)
        if isinstance(inputs, tuple) and len(inputs) > 1:  # `model(X, Y)`: the targets are its second argument
            target.example_batch = (inputs, inputs[1])
    elif inputs is not None:
        targets = _loader_targets(record, inputs)
        if targets is not None:
            target.example_batch = (inputs, _first_samples(_detached(targets))[0])
    locations: dict[str, Location] = {}
    if optimizer_site is not None:
        locations["optimizer"] = optimizer_site
    loader = loader_facts(record)
    if cut is not None:
        target.batch_size = cut
    if loader is not None and loader.batch_size is not None:
        target.batch_size = loader.batch_size
        if loader.location is not None:
            locations["batch_size"] = loader.location
    if call is None:
        source = "its input inferred: it had not called it yet"
    elif call.arguments_changed:
        source = "its input inferred: its forward reassigns its arguments before calling its layers"
    else:
        source = "input from its first forward" + (f", its first {_SAMPLES_KEPT} of {cut} samples" if cut is not None else "")
    built = "the model and optimizer it had built" if optimizer is not None else "the model it had built"
    notes = [f"the script did not reach its first optimizer step within {limit:.0f} s; linted {built} ({source})"]
    if own_loss is not None:
        notes.append(f"loss: {type(model).__name__}'s own loss (output[{own_loss!r}])")
    loaded = LoadedTarget(target, target.name or type(model).__name__, Path(path), recorded_site(model), context_locations=locations)
    loaded.data_loader = loader
    return ScriptModel(loaded, notes)


def _own_loss_key(output: Any) -> Any:
    """The key of a floating-point scalar in the model's output (nanoGPT's `logits, loss`, a
    Hugging Face output's `loss`), with or without a graph: an evaluation runs under `no_grad`."""
    items: Iterator[tuple[Any, Any]]
    if isinstance(output, Mapping):
        items = iter(output.items())
    elif isinstance(output, (tuple, list)):
        items = iter(enumerate(output))
    else:
        return None
    return next((key for key, value in items if isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point()), None)


def _first_samples(value: Any) -> tuple[Any, int | None]:
    """`value` with every tensor of the batch's leading size cut to its first samples, and that
    size when it was cut (None when the batch was small enough already)."""
    from nnlint.runtime.torch_compat import tree_flatten, tree_map_only

    leaves = [leaf for leaf in tree_flatten(value)[0] if isinstance(leaf, torch.Tensor) and leaf.dim() > 0]
    if not leaves or leaves[0].shape[0] <= _SAMPLES_KEPT:
        return value, None
    size = leaves[0].shape[0]
    return tree_map_only(torch.Tensor, lambda t: t[:_SAMPLES_KEPT].clone() if t.dim() > 0 and t.shape[0] == size else t, value), size
