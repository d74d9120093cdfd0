"""Context managers that change a user's model or process and always undo it — on the way out
of a forward that raised or was stopped by --probe-timeout too."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nnlint.runtime.randomness import restore_rng, rng_states
from nnlint.runtime.timeout import protect
from nnlint.runtime.torch_compat import (
    default_device_context,
    global_module_hooks,
    global_optimizer_hooks,
    pop_torch_function_modes,
    set_version_counters,
    stored_tensors,
    torch_function_mode_depth,
    tree_flatten,
    tree_map_only,
)


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


@contextmanager
def preserved_object_attributes(item: Any) -> Iterator[None]:
    """A plain object's attributes, as they were: a loss written as a class that is not an
    `nn.Module` (`self.step += 1`, `self.center = ...` in its `__call__`)."""
    attributes = vars(item)
    saved = dict(attributes)
    try:
        yield
    finally:
        attributes.clear()
        attributes.update(saved)


def _is_plain_object(item: Any) -> bool:
    if isinstance(item, (nn.Module, torch.Tensor, type, types.ModuleType, types.FunctionType, types.MethodType, functools.partial)):
        return False
    return isinstance(getattr(item, "__dict__", None), dict)


def _copy_container(container: Any) -> Any:
    if isinstance(container, list):
        return list(container)
    return set(container) if isinstance(container, set) else dict(container)


def tensor_attributes(model: nn.Module) -> list[tuple[nn.Module, str, Any]]:
    """The tensors a model keeps between calls in plain attributes (not parameters, buffers or
    submodules), with the object each holds now: an RNN's state its forward stores
    (`self.hidden = (h, c)`), which the user's loop re-initialises before each batch."""
    kept = []
    for module in model.modules():
        for name, value in vars(module).items():
            if name in _MODULE_BOOKKEEPING or name in ("_parameters", "_buffers", "_modules", "_flat_weights"):
                continue
            leaves = [value] if isinstance(value, torch.Tensor) else tree_flatten(value)[0] if isinstance(value, (tuple, list)) else []
            tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
            if tensors and not any(isinstance(t, nn.Parameter) for t in tensors):
                kept.append((module, name, value))
    return kept


def reset_tensor_attributes(kept: list[tuple[nn.Module, str, Any]]) -> None:
    """Put each attribute back as `tensor_attributes` found it, detached from any graph: what the
    user's loop gives each step (`model.hidden = model.init_hidden()`, or word_language_model's
    `repackage_hidden`), rather than the state a previous step left, whose graph is freed."""
    for module, name, value in kept:
        module.__dict__[name] = tree_map_only(torch.Tensor, lambda t: t.detach() if t.grad_fn is not None else t, value)


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
        parameters, buffers = stored_tensors(module)
        own = [*parameters.values(), *buffers.values()]
        if any(tensor is not None and torch.nn.parameter.is_lazy(tensor) for tensor in own):
            return path
    return None


@contextmanager
def preserved_user_state(model: nn.Module, *related: Any) -> Iterator[None]:
    """Leave `model`, the objects `related` to it (its loss function, its example inputs) and the
    process's torch and Python state exactly as they were when the block exits.

    The model's parameters and buffers are never written by nnlint (every run swaps in copies or
    meta stand-ins); what a forward can still reach is put back here: plain tensor attributes,
    tensors in lists and dicts, `torch.Generator`s, a loss function's parameters and buffers, the
    inputs themselves, every `.grad`, and the global state a forward may change.
    """
    modules = [model, *(item for item in related if isinstance(item, nn.Module) and item is not model)]
    registered = {id(tensor) for tensor in _tensors(model)}
    with contextlib.ExitStack() as stack:
        # Entered first, undone last: tensor values are copied back once the process's modes,
        # default device and dtype are the user's again (a mode left on the stack would see the copy).
        stack.enter_context(preserved_reachable_state([model, *related], skip=registered))
        for module in modules:
            stack.enter_context(preserved_module_attributes(module))
        for item in related:
            if _is_plain_object(item):
                stack.enter_context(preserved_object_attributes(item))
        stack.enter_context(detached_grads(modules))
        stack.enter_context(preserved_process_state())
        yield


# -- the process -------------------------------------------------------------------------------
@contextmanager
def preserved_process_state(generators: bool = True) -> Iterator[None]:
    """Every piece of process-wide state a forward may change, each put back on its own.

    Around each run of the user's code (`generators=False`: the probe seeds the random generators
    and compares them across a forward), so that nnlint's own work after it — the loss, gradient
    norms, the rules — never runs on a default device or dtype the forward left behind."""
    with (
        preserved_function_modes(),
        preserved_global_hooks(),
        preserved_default_device(),
        preserved_default_dtype(),
        preserved_grad_mode(),
        preserved_backend_flags(),
        preserved_thread_count(),
        preserved_anomaly_mode(),
        preserved_recursion_limit(),
        preserved_cwd(),
        preserved_generators() if generators else contextlib.nullcontext(),
    ):
        yield


@contextmanager
def preserved_function_modes() -> Iterator[None]:
    """TorchFunctionModes a forward (or an interrupted tracer) pushed and never popped."""
    depth = torch_function_mode_depth()
    try:
        yield
    finally:
        pop_torch_function_modes(depth)


@contextmanager
def preserved_global_hooks() -> Iterator[None]:
    """`register_module_forward_hook`, `register_optimizer_step_pre_hook` and friends: process-wide
    hooks a forward or a training script may register."""
    live_hooks = global_module_hooks() | global_optimizer_hooks()
    hooks = {name: dict(table) for name, table in live_hooks.items()}
    try:
        yield
    finally:
        for name, saved in hooks.items():
            current = live_hooks[name]
            current.clear()
            current.update(saved)


@contextmanager
def preserved_default_device() -> Iterator[None]:
    """`torch.set_default_device(...)`: torch keeps it as a DeviceContext mode in a global."""
    saved = default_device_context()
    try:
        yield
    finally:
        current = default_device_context()
        if current is not saved:
            torch.set_default_device(None)  # leaves the user's forward's context
            if saved is not None:
                torch.set_default_device(saved.device)


@contextmanager
def preserved_default_dtype() -> Iterator[None]:
    saved = torch.get_default_dtype()
    try:
        yield
    finally:
        if torch.get_default_dtype() != saved:
            torch.set_default_dtype(saved)


@contextmanager
def preserved_grad_mode() -> Iterator[None]:
    saved = torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.set_grad_enabled(saved)


@contextmanager
def preserved_backend_flags() -> Iterator[None]:
    """cuDNN's benchmark/deterministic flags, TF32, float32 matmul precision, deterministic algorithms.

    Each is set back only if it changed: setting some of them warns (TF32's deprecation)."""
    cudnn = torch.backends.cudnn
    flags = {
        "benchmark": cudnn.benchmark,
        "deterministic": cudnn.deterministic,
        "enabled": cudnn.enabled,
    }
    precision = torch.get_float32_matmul_precision()
    tf32 = (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32)
    deterministic = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        yield
    finally:
        for name, value in flags.items():
            if getattr(cudnn, name) != value:
                setattr(cudnn, name, value)
        if torch.get_float32_matmul_precision() != precision:
            torch.set_float32_matmul_precision(precision)
        if (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32) != tf32:
            torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32 = tf32
        if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) != deterministic:
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


@contextmanager
def preserved_thread_count() -> Iterator[None]:
    saved = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)


@contextmanager
def preserved_anomaly_mode() -> Iterator[None]:
    """`torch.autograd.set_detect_anomaly(True)` left on makes every later backward slow."""
    saved = (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
    try:
        yield
    finally:
        if (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()) != saved:
            torch.set_anomaly_enabled(*saved)


# Deeply nested models (a module per layer, 200 deep) recurse further than Python's default
# limit of 1000 frames allows once nnlint's own frames (tracing, hooks) are added.
RECURSION_LIMIT = 20_000


@contextmanager
def preserved_recursion_limit() -> Iterator[None]:
    saved = sys.getrecursionlimit()
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


@contextmanager
def deep_recursion_allowed() -> Iterator[None]:
    """Room for a model nested a few hundred modules deep; the user's limit comes back after."""
    with preserved_recursion_limit():
        sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
        yield


@contextmanager
def preserved_cwd() -> Iterator[None]:
    """`os.chdir` in a forward (a model that loads its vocabulary relative to its own file)."""
    try:
        saved: str | None = os.getcwd()
    except OSError:  # the working directory was deleted: there is nothing to go back to
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError):
                if os.getcwd() != saved:
                    os.chdir(saved)


@contextmanager
def preserved_generators() -> Iterator[None]:
    """torch's CPU and CUDA generators, Python's `random` and NumPy's global generator."""
    saved = rng_states()
    try:
        yield
    finally:
        restore_rng(saved)


# -- what the user's objects hold besides their registered tensors ------------------------------
# The user's `.grad` of each parameter `detached_grads` has set aside, by id, while it is aside.
_GRADS_SET_ASIDE: dict[int, torch.Tensor] = {}


def user_grad(parameter: torch.Tensor) -> torch.Tensor | None:
    """The parameter's `.grad` as the user left it, also while nnlint has set it aside (a rule that
    asks whether a weight was already trained reads this, not `.grad`)."""
    return _GRADS_SET_ASIDE.get(id(parameter), parameter.grad)


@contextmanager
def detached_grads(modules: list[nn.Module]) -> Iterator[None]:
    """Every parameter's `.grad` is set aside while the block runs and put back after, with its
    `requires_grad`: a loss that closes over the model and calls backward on it accumulates into
    a fresh `.grad`, never into the user's existing one."""
    saved = [(p, p.grad, p.requires_grad) for module in modules for p in module.parameters()]
    set_aside = [id(parameter) for parameter, grad, _ in saved if grad is not None and id(parameter) not in _GRADS_SET_ASIDE]
    try:
        for parameter, grad, _ in saved:
            if grad is not None:
                _GRADS_SET_ASIDE.setdefault(id(parameter), grad)
                parameter.grad = None
        yield
    finally:
        for key in set_aside:
            _GRADS_SET_ASIDE.pop(key, None)
        for parameter, grad, requires_grad in saved:
            if parameter.grad is not grad:
                parameter.grad = grad
            if parameter.requires_grad != requires_grad:
                parameter.requires_grad_(requires_grad)


# Tensors reachable from the user's objects are copied up to this many bytes in all (beyond
# it, larger tensors are left out: a model holding a dataset must not double its memory).
SNAPSHOT_BYTES = 1 << 30
_WALK_LIMIT = 20_000
_WALK_DEPTH = 8


@contextmanager
def preserved_reachable_state(roots: list[Any], skip: set[int] = frozenset()) -> Iterator[None]:  # type: ignore[assignment]
    """Put back the values of every tensor and `torch.Generator` reachable from `roots`.

    Reachable: module attributes (plain tensor attributes, lists, tuples, dicts and sets of them,
    registered parameters and buffers of modules other than those in `skip`), a function's
    closure and defaults, a bound method's object, and the attributes of plain objects. A forward
    that writes one in place — `self.cache[0].zero_()`, `x /= 255` on its input, an EMA buffer of
    a loss, `torch.Generator` draws — leaves no trace: values (and version counters) come back.
    """
    tensors, generators = _reachable(roots, skip)
    saved: list[tuple[torch.Tensor, torch.Tensor, int]] = []
    budget = SNAPSHOT_BYTES
    for tensor in tensors:
        size = tensor.numel() * tensor.element_size()
        if size <= budget:
            budget -= size
            saved.append((tensor, tensor.detach().clone(), tensor._version))
    states = [(generator, generator.get_state()) for generator in generators]
    # Parameters outside `parameters()` (layers kept in a plain list) get gradients too.
    # Set aside while the block runs, as `detached_grads` does: backward accumulates into a fresh one.
    grads = [(tensor, tensor.grad, tensor.requires_grad) for tensor in tensors if tensor.is_leaf]
    try:
        for tensor, grad, _ in grads:
            if grad is not None:
                tensor.grad = None
        yield
    finally:
        for generator, state in states:
            generator.set_state(state)
        for tensor, grad, requires_grad in grads:
            if tensor.grad is not grad:
                tensor.grad = grad
            if tensor.requires_grad != requires_grad:
                tensor.requires_grad_(requires_grad)
        _put_back(saved)


def _put_back(saved: list[tuple[torch.Tensor, torch.Tensor, int]]) -> None:
    changed = [(tensor, value, version) for tensor, value, version in saved if _written(tensor, value, version)]
    with torch.no_grad():
        for tensor, value, _ in changed:
            if tensor.shape != value.shape or tensor.dtype != value.dtype or tensor.device != value.device:
                tensor.data = value  # resized or re-typed (`p.data = p.data.half()`): take the saved copy
            else:
                tensor.copy_(value)
    if changed:  # autograd checks versions: a graph the user kept must not see its tensor as modified
        set_version_counters([t for t, _, _ in changed], [v for _, _, v in changed])


def _written(tensor: torch.Tensor, value: torch.Tensor, version: int) -> bool:
    if tensor._version != version or tensor.shape != value.shape or tensor.dtype != value.dtype or tensor.device != value.device:
        return True
    # `.data` writes (`p.data.clamp_()`) do not count as versions: compare the values, NaN as NaN.
    return not torch.equal(tensor, value) and not (
        tensor.is_floating_point() and torch.equal(tensor.isnan(), value.isnan()) and torch.equal(tensor.nan_to_num(), value.nan_to_num())
    )


def _reachable(roots: list[Any], skip: set[int]) -> tuple[list[torch.Tensor], list[torch.Generator]]:
    """Tensors (not meta, not in `skip`) and generators reachable from `roots`, each once."""
    tensors: dict[int, torch.Tensor] = {}
    generators: dict[int, torch.Generator] = {}
    seen: set[int] = set()
    pending: list[tuple[Any, int]] = [(root, 0) for root in roots]
    while pending and len(seen) < _WALK_LIMIT:
        value, depth = pending.pop()
        if id(value) in seen or value is None or isinstance(value, (str, bytes, int, float, bool, complex, type, types.ModuleType)):
            continue
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            if id(value) not in skip and not value.is_meta and _plain(value):
                tensors[id(value)] = value
            continue
        if isinstance(value, torch.Generator):
            generators[id(value)] = value
            continue
        if depth >= _WALK_DEPTH:
            continue
        pending += [(child, depth + 1) for child in _children(value)]
    return list(tensors.values()), list(generators.values())


def reachable_generators(roots: list[Any]) -> list[torch.Generator]:
    """The `torch.Generator`s reachable from `roots` as `preserved_reachable_state` finds them (a
    module's attribute, one in a list or dict it holds, a closure's), each once."""
    return _reachable(roots, set())[1]


def _plain(tensor: torch.Tensor) -> bool:
    """A dense tensor nnlint can copy and compare (not a subclass with its own semantics)."""
    return (type(tensor) is torch.Tensor or isinstance(tensor, nn.Parameter)) and tensor.layout == torch.strided


# What every nn.Module holds (hook dicts, flags): nothing a forward stores its tensors in.
_MODULE_BOOKKEEPING = frozenset(vars(nn.Module())) - {"_parameters", "_buffers", "_modules"}


def _children(value: Any) -> list[Any]:
    if isinstance(value, nn.Module):
        return [item for name, item in vars(value).items() if name not in _MODULE_BOOKKEEPING]
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if isinstance(value, types.MethodType):
        return [value.__self__, value.__func__]
    if isinstance(value, types.FunctionType):
        cells = [cell.cell_contents for cell in value.__closure__ or () if _filled(cell)]
        return [*cells, *(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values()]
    if isinstance(value, functools.partial):
        return [value.func, *value.args, *value.keywords.values()]
    attributes = getattr(value, "__dict__", None)
    return list(attributes.values()) if isinstance(attributes, dict) else []


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


# A timeout (--probe-timeout) never interrupts the code that puts the user's state back.
protect(
    preserved_user_state,
    preserved_module_attributes,
    preserved_object_attributes,
    training_flags,
    restore_rng,
    preserved_process_state,
    preserved_function_modes,
    preserved_global_hooks,
    preserved_default_device,
    preserved_default_dtype,
    preserved_grad_mode,
    preserved_backend_flags,
    preserved_thread_count,
    preserved_anomaly_mode,
    preserved_recursion_limit,
    deep_recursion_allowed,
    preserved_cwd,
    preserved_generators,
    detached_grads,
    preserved_reachable_state,
    _put_back,
)
