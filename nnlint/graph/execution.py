"""Running a user's model without touching its weights: meta stand-ins and input plumbing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils._pytree import tree_map_only


def call_arguments(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An example input as forward's (args, kwargs): tensor -> (x,), tuple -> args, dict -> kwargs."""
    if isinstance(example_input, dict):
        return (), dict(example_input)
    if isinstance(example_input, (tuple, list)):
        return tuple(example_input), {}
    return (example_input,), {}


def to_meta(value: Any) -> Any:
    """The same structure with every tensor replaced by a meta tensor of its shape and dtype."""
    return tree_map_only(torch.Tensor, lambda t: t if t.is_meta else torch.empty_like(t, device="meta"), value)


def one_sample(value: Any, device: torch.device) -> Any:
    """The first sample of every batched tensor, moved to `device` (for a cheap real forward)."""

    def first(t: torch.Tensor) -> torch.Tensor:
        t = t[:1] if t.dim() > 0 and t.shape[0] > 1 else t
        return t.to(device)

    return tree_map_only(torch.Tensor, first, value)


def on_device(value: Any, device: torch.device) -> Any:
    """The same structure with every tensor moved to `device`."""
    return tree_map_only(torch.Tensor, lambda t: t.to(device), value)


def meta_stand_ins(model: nn.Module) -> dict[str, torch.Tensor]:
    """A meta tensor for every parameter and buffer name; tied tensors share one stand-in."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return _one_per_tensor(named, lambda t: t if t.is_meta else torch.empty_like(t, device="meta"))


def buffer_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every buffer, for a real run: a forward that updates a buffer in place (a counter,
    a running statistic) then writes the copy, not the user's buffer. Tied buffers share a copy."""
    return _one_per_tensor(model.named_buffers(remove_duplicate=False), lambda t: t.clone())


def _one_per_tensor(named: Iterable[tuple[str, torch.Tensor]], replace: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    by_identity: dict[int, torch.Tensor] = {}
    replacements: dict[str, torch.Tensor] = {}
    for name, tensor in named:
        if id(tensor) not in by_identity:
            by_identity[id(tensor)] = replace(tensor)
        replacements[name] = by_identity[id(tensor)]
    return replacements


class _Runner(nn.Module):
    """Holds the user's model as its child so `functional_call` can swap its tensors for ours."""

    def __init__(self, model: nn.Module, body: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self._body = body

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._body(*args, **kwargs)


def run_with_tensors(
    model: nn.Module,
    tensors: dict[str, torch.Tensor] | None,
    body: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_meta: bool = True,
) -> Any:
    """Call `body(*args, **kwargs)` while `model`'s parameters and buffers are `tensors`.

    With `tensors=None` the model's own tensors are used. The model's own tensors are never
    copied or written; `functional_call` puts them back when the call returns or raises.
    `on_meta`: tensors the forward creates itself are made on the meta device.
    """
    runner = _Runner(model, body)
    if tensors is None:
        return runner(*args, **kwargs)
    prefixed = {f"model.{name}": tensor for name, tensor in _one_name_per_slot(model, tensors).items()}
    # Tensors the forward creates itself (`torch.arange(T)`) must land on meta too.
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        return functional_call(runner, prefixed, args, kwargs, tie_weights=False)


def _one_name_per_slot(model: nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop names that reach a tensor slot another name already reached (`self.alias = self.fc`).

    `functional_call` swaps and restores name by name: a slot swapped twice would be "restored"
    to the stand-in it held after the first swap, leaving meta tensors in the user's model.
    Tied tensors in different modules keep one name each, so every module sees the stand-in.
    """
    kept: dict[str, torch.Tensor] = {}
    slots: set[tuple[int, str]] = set()
    for name, tensor in tensors.items():
        owner, _, attribute = name.rpartition(".")
        slot = (id(model.get_submodule(owner)), attribute)
        if slot not in slots:
            slots.add(slot)
            kept[name] = tensor
    return kept
