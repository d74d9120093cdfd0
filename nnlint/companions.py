"""What a model file holds besides its models: the loss, the optimizer(s), the DataLoader.

The reserved names (`loss_fn`, `optimizer`, `batch_size`, `example_input`, `example_batch`) are the
explicit way, and are checked: a value of the wrong kind is an error that says what was expected.
Without them, module-level objects are found by type, whatever their names (`criterion`,
`loss_function`, `optimizer_G`, `opt_d`, `train_loader`): a GAN's two optimizers each go to the
model whose parameters they hold, as in PyTorch-GAN's gan.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnlint.building import loss_calls
from nnlint.runtime.torch_compat import LossBase
from nnlint.targets import RESERVED_NAMES, Target


class CompanionError(ValueError):
    """A reserved name holds the wrong kind of value (reported as a load error, exit 2)."""


@dataclass
class Companions:
    """The file's training objects found by type, each under the name the file gave it."""

    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    losses: dict[str, nn.Module] = field(default_factory=dict)
    loaders: dict[str, Any] = field(default_factory=dict)


def reserved_values(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The reserved names the file sets, read from its namespace (a PEP 562 module `__getattr__`
    is never consulted: it may raise anything), each checked for its kind."""
    values = {name: namespace[name] for name in RESERVED_NAMES if name in namespace}
    for name, value in values.items():
        problem = _CHECKS[name](value)
        if problem is not None:
            raise CompanionError(f"`{name}` must be {problem}, got {_shown(value)}")
    return values


def _shown(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__} (an instance was expected)"
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _batch_size_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return "a positive int"
    return None


def _optimizer_problem(value: Any) -> str | None:
    return (
        None
        if isinstance(value, torch.optim.Optimizer)
        else "a torch.optim.Optimizer instance (e.g. `torch.optim.Adam(model.parameters())`)"
    )


def _example_batch_problem(value: Any) -> str | None:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return None
    return "an (inputs, targets) pair"


def _example_input_problem(value: Any) -> str | None:
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        return "a tensor, a tuple of tensors, or a dict of keyword arguments with string keys"
    return None


def _loss_problem(value: Any) -> str | None:
    return None if callable(value) and not isinstance(value, type) else "a loss module or function (e.g. `nn.CrossEntropyLoss()`)"


_CHECKS = {
    "batch_size": _batch_size_problem,
    "optimizer": _optimizer_problem,
    "example_batch": _example_batch_problem,
    "example_input": _example_input_problem,
    "loss_fn": _loss_problem,
}


def found_by_type(namespace: Mapping[str, Any]) -> Companions:
    """Module-level optimizers, loss modules and DataLoaders, whatever their names (first name wins)."""
    found = Companions()
    seen: set[int] = set()
    for name, value in namespace.items():
        if name.startswith("__") or id(value) in seen:
            continue
        if isinstance(value, torch.optim.Optimizer):
            found.optimizers[name] = value
        elif isinstance(value, LossBase):
            found.losses[name] = value
        elif isinstance(value, torch.utils.data.DataLoader):
            found.loaders[name] = value
        else:
            continue
        seen.add(id(value))
    return found


def fill_from_file(targets: list[tuple[str, Target]], namespace: Mapping[str, Any], source: str) -> list[str]:
    """Give each target the file's reserved names, else what was found by type; returns notes."""
    reserved = reserved_values(namespace)
    found = found_by_type(namespace)
    notes: list[str] = []
    optimizer_notes = _pair_optimizers(targets, found, reserved)
    loss_notes = _pair_losses(targets, found, reserved, source)
    batch_note = _batch_size_from_loader(targets, found, reserved)
    for _, target in targets:
        for name, value in reserved.items():
            if getattr(target, name) is None:
                setattr(target, name, value)
    notes += optimizer_notes + loss_notes + batch_note
    return notes


def _pair_optimizers(targets: list[tuple[str, Target]], found: Companions, reserved: dict[str, Any]) -> list[str]:
    """Each optimizer goes to the target whose parameters it holds (most of them)."""
    if "optimizer" in reserved or not found.optimizers:
        return []
    notes = []
    for target_name, target in targets:
        if target.optimizer is not None:
            continue
        own = {id(p) for p in target.model.parameters()}
        overlap = {name: sum(id(p) in own for group in opt.param_groups for p in group["params"]) for name, opt in found.optimizers.items()}
        best = max(overlap, key=lambda name: overlap[name])
        if overlap[best] > 0:
            target.optimizer = found.optimizers[best]
            notes.append(f"`{target_name}`: optimizer `{best}` ({type(found.optimizers[best]).__name__}), found by type")
    return notes


def _pair_losses(targets: list[tuple[str, Target]], found: Companions, reserved: dict[str, Any], source: str) -> list[str]:
    """The loss the file calls on a model's output (`criterion(netD(x), label)`) goes to that model;
    with one model, its file's only loss goes to it. Otherwise it is left out rather than guessed:
    a GAN's BCELoss fits the discriminator's output, not the generator's images."""
    if "loss_fn" in reserved or not found.losses:
        return []
    called_on = loss_calls(source)
    notes = []
    for target_name, target in targets:
        if target.loss_fn is not None:
            continue
        chosen = [name for name in found.losses if target_name in called_on.get(name, ())]
        if not chosen and len(targets) == 1:
            chosen = list(found.losses)
        if len(chosen) == 1:
            target.loss_fn = found.losses[chosen[0]]
            notes.append(f"`{target_name}`: loss `{chosen[0]}` ({type(target.loss_fn).__name__}), found by type")
    unpaired = [name for name in found.losses if not any(t.loss_fn is found.losses[name] for _, t in targets)]
    if unpaired and len(targets) > 1:
        notes.append(f"loss {', '.join(f'`{n}`' for n in unpaired)} not paired with a model: name it `loss_fn` in a @nnlint.target")
    return notes


def _batch_size_from_loader(targets: list[tuple[str, Target]], found: Companions, reserved: dict[str, Any]) -> list[str]:
    if "batch_size" in reserved or not found.loaders:
        return []
    name, loader = next(iter(found.loaders.items()))
    size = getattr(loader, "batch_size", None)
    if not isinstance(size, int) or size <= 0:
        return []
    for _, target in targets:
        if target.batch_size is None:
            target.batch_size = size
    return [f"batch size {size} from DataLoader `{name}`"]
