"""Context managers that change a user's model or process and always undo it — on the way out
of a forward that raised or was stopped by --probe-timeout too."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nnlint.runtime.randomness import restore_rng, rng_states
from nnlint.runtime.timeout import protect
from nnlint.runtime.torch_compat import global_module_hooks, pop_torch_function_modes, torch_function_mode_depth


@contextmanager
def preserved_module_attributes(model: nn.Module) -> Iterator[None]:
    """Restore every submodule's attributes as they were: flags, caches a forward set, hooks.

    Attribute *objects* are restored, not tensor values: a forward that assigns
    `self.cache = …` or a tracer that adds `_tensor_constant0` leaves no trace.
    """
    saved: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]] = []
    for module in model.modules():
        attributes = dict(module.__dict__)
        # Containers are restored by contents too: hooks dicts, RNN's `_flat_weights` list.
        inner = {name: _copy_container(value) for name, value in attributes.items() if isinstance(value, (dict, list, set))}
        saved.append((module, attributes, inner))
    try:
        yield
    finally:
        for module, attributes, inner in saved:
            module.__dict__.clear()
            module.__dict__.update(attributes)
            for name, contents in inner.items():
                container = attributes[name]
                if isinstance(container, list):
                    container[:] = contents
                else:
                    container.clear()
                    container.update(contents)


def _copy_container(container: Any) -> Any:
    if isinstance(container, list):
        return list(container)
    return set(container) if isinstance(container, set) else dict(container)


@contextmanager
def training_flags(model: nn.Module, training: bool) -> Iterator[None]:
    """Set every submodule's `training` flag, then restore each one (mixed modes included)."""
    saved = [(module, module.training) for module in model.modules()]
    try:
        for module, _ in saved:
            module.training = training
        yield
    finally:
        for module, flag in saved:
            module.training = flag


@contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore the CPU random generator, and the CUDA one of `device` when it is a GPU."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


@contextmanager
def evaluation_run(model: nn.Module) -> Iterator[None]:
    """How nnlint runs the user's forward itself: in evaluation mode, without autograd, and with
    every attribute, flag and random generator put back afterwards (a forward may draw random
    numbers from real values: an always-on dropout on the input)."""
    with preserved_module_attributes(model), training_flags(model, False), preserved_rng(model_device(model)), torch.no_grad():
        yield


def model_device(model: nn.Module) -> torch.device:
    for tensor in _tensors(model):
        return tensor.device
    return torch.device("cpu")


def model_float_dtype(model: nn.Module) -> torch.dtype:
    for tensor in _tensors(model):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def is_on_meta(model: nn.Module) -> bool:
    return any(tensor.is_meta for tensor in _tensors(model))


def _tensors(model: nn.Module) -> Iterator[torch.Tensor]:
    yield from model.parameters()
    yield from model.buffers()


def uninitialized_module(model: nn.Module) -> str | None:
    """The path of the first lazy module whose tensors do not exist yet (`nn.LazyLinear` before its
    first forward): running it would materialize the user's parameters, and meta has nothing to copy."""
    for path, module in model.named_modules():
        # The registries themselves: a module may override parameters() without `recurse` (MAML's Learner).
        own = [*module._parameters.values(), *module._buffers.values()]
        if any(tensor is not None and torch.nn.parameter.is_lazy(tensor) for tensor in own):
            return path
    return None


@contextmanager
def preserved_user_state(model: nn.Module) -> Iterator[None]:
    """Leave `model` and the process's torch state exactly as they were when the block exits."""
    rng = rng_states()
    grad_enabled = torch.is_grad_enabled()
    mode_depth = torch_function_mode_depth()
    live_hooks = global_module_hooks()
    hooks = {name: dict(table) for name, table in live_hooks.items()}
    parameters = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    with preserved_module_attributes(model):
        try:
            yield
        finally:
            pop_torch_function_modes(mode_depth)
            for name, saved in hooks.items():
                current = live_hooks[name]
                current.clear()
                current.update(saved)
            for parameter, grad, requires_grad in parameters:
                if parameter.grad is not grad:
                    parameter.grad = grad
                if parameter.requires_grad != requires_grad:
                    parameter.requires_grad_(requires_grad)
            torch.set_grad_enabled(grad_enabled)
            restore_rng(rng)


# A timeout (--probe-timeout) never interrupts the code that puts the user's state back.
protect(preserved_user_state, preserved_module_attributes, training_flags, restore_rng)
