"""What a training script builds, recorded by type while it runs, up to an optimizer step.

`Capture.installed()` puts global hooks in place for the length of a run and removes every one
of them afterwards:
- optimizers, LR schedulers and AMP grad scalers: their base classes' `__init__` (every subclass
  that calls `super().__init__`), and torch's global optimizer step pre-hook;
- `Tensor.backward`: the tensor the script called it on (the loss, or a scaled loss);
- torch's global module forward hooks: the latest calls of each outermost module (the model and
  the loss module as the script calls them, with their real arguments). A script that calls a
  model's `forward` directly (`self.forward(x)` in a LightningModule's `training_step`) never runs
  its `__call__`: its children are then the outermost calls, and are recorded as the call of the
  module whose `forward` frame runs them, with that frame's arguments;
- `torch.nn.functional`'s loss functions (`F.cross_entropy(...)`), wherever they are called from;
- `torch.nn.utils.clip_grad_norm_`/`clip_grad_value_`;
- `DataLoader`: where each was built, which one the script iterates, and the batch it yielded.

At a step, the pre-hook builds a `StepRecord` and hands it to the listeners; with
`stop_at_first_step` (script mode) it then raises `FirstStep`, before the optimizer changes a
weight. A script that builds no optimizer at all stops after its first `.backward()` returns: it
updates the weights itself, after that. `FirstStep` is a `BaseException`, so a script's `except Exception:` cannot swallow it.
A step called with a closure (Lightning's automatic optimization, LBFGS) runs the closure first:
the forward and backward happen inside the step there.
"""

from __future__ import annotations

import collections
import contextlib
import dis
import functools
import inspect
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals
from torch.optim import Optimizer
from torch.optim import optimizer as optimizer_globals
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from torch.utils.data import dataloader as dataloader_module

from nnlint.findings import Location
from nnlint.runtime.torch_compat import LossBase
from nnlint.sources import first_user_frame

# torch.nn.functional's losses: a script that calls one directly has no loss module to find.
LOSS_FUNCTIONS = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "cosine_embedding_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "triplet_margin_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "ctc_loss",
)
_NNLINT_FOLDER = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")
_CALLS_KEPT = 4  # per outermost module: a GAN calls its discriminator on real, then on fake images
_LOSSES_KEPT = 16
_STORES = frozenset({"STORE_FAST", "DELETE_FAST", "STORE_DEREF", "DELETE_DEREF"})  # what rebinds a local name
_UNSET = object()


class FirstStep(BaseException):  # noqa: N818 - raised through user code; must not look like an Exception
    """The script reached its first optimizer step; the weights have not changed."""

    def __init__(self, record: StepRecord) -> None:
        super().__init__("first optimizer step")
        self.record = record


@dataclass
class ModuleCall:
    """One call of an outermost module (not inside another module's forward)."""

    module: nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: Any
    # A module whose `forward` the script called directly (`self.forward(x)`, `model.forward(x)`):
    # its `__call__` never ran, so `output` is None; what the last of its children it ran returned.
    called_directly: bool = False
    last_child_output: Any = None
    # Its arguments may have been reassigned in `forward` before its first child ran: `args` and
    # `kwargs` are then empty and nnlint infers an input.
    arguments_changed: bool = False


@dataclass
class _DirectForward:
    """A `forward` the script called directly, still running: the frame running it and its call."""

    frame: FrameType
    call: ModuleCall


@dataclass
class LossCall:
    """One call of a loss: an `LossBase` module or a `torch.nn.functional` loss."""

    loss: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: torch.Tensor
    site: Location | None


@dataclass
class ClipCall:
    function: str  # "clip_grad_norm_" or "clip_grad_value_"
    limit: float | None  # max_norm or clip_value
    site: Location | None


@dataclass
class LoaderUse:
    """The DataLoader the script iterated last before the step, and the batch it yielded."""

    loader: DataLoader
    site: Location | None  # where the script built it
    last_batch: Any = None


@dataclass
class StepRecord:
    """Everything the capture knew when an optimizer stepped."""

    optimizer: Optimizer | None  # None: stopped after the first backward of a script with no optimizer
    step_site: Location | None
    backward: torch.Tensor | None  # the tensor `.backward()` was called on
    backward_site: Location | None
    calls: list[ModuleCall]  # recent outermost calls, oldest first
    losses: list[LossCall]  # recent loss calls, oldest first
    loader: LoaderUse | None
    optimizers: list[tuple[Optimizer, Location | None]]
    schedulers: list[tuple[Any, Location | None]]
    scalers: list[tuple[Any, Location | None]]
    clipping: list[ClipCall]
    steps_before: int  # optimizer steps already taken (0 in script mode)


@dataclass
class _Patch:
    owner: Any
    name: str
    original: Any


@dataclass
class Capture:
    """Records by type while installed; `folder` is the script's, for the lines findings point to."""

    folder: Path
    stop_at_first_step: bool = True
    listeners: list[Callable[[StepRecord], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.steps = 0
        self._depth = 0
        self._calls: collections.OrderedDict[int, collections.deque[ModuleCall]] = collections.OrderedDict()
        self._losses: collections.deque[LossCall] = collections.deque(maxlen=_LOSSES_KEPT)
        self._backward: tuple[torch.Tensor, Location | None] | None = None
        self._optimizers: list[tuple[Optimizer, Location | None]] = []
        self._schedulers: list[tuple[Any, Location | None]] = []
        self._scalers: list[tuple[Any, Location | None]] = []
        self._clipping: list[ClipCall] = []
        self._loader_sites: weakref.WeakKeyDictionary[DataLoader, Location | None] = weakref.WeakKeyDictionary()
        self._iterators: weakref.WeakKeyDictionary[Any, LoaderUse] = weakref.WeakKeyDictionary()
        self._loader: LoaderUse | None = None
        # The arguments of each outermost module's first call, taken when it starts: a script
        # stopped by its time limit in the middle of a long evaluation still has its model's input.
        self._first_calls: dict[int, ModuleCall] = {}
        # The latest directly called `forward` of each module (by id), and the one the current
        # outermost call runs inside, if any.
        self._direct: dict[int, _DirectForward] = {}
        self._inside: _DirectForward | None = None

    # -- installing and removing ----------------------------------------------------------------
    @contextlib.contextmanager
    def installed(self) -> Iterator[Capture]:
        patches: list[_Patch] = []
        handles = []
        try:
            handles.append(optimizer_globals.register_optimizer_step_pre_hook(self._on_step))
            handles.append(module_globals.register_module_forward_pre_hook(self._on_forward_start))
            handles.append(module_globals.register_module_forward_hook(self._on_forward_end, with_kwargs=True, always_call=True))
            self._patch(patches, torch.Tensor, "backward", self._recording_backward)
            self._patch_init(patches, Optimizer, self._optimizers)
            self._patch_init(patches, LRScheduler, self._schedulers)
            self._patch_init(patches, torch.amp.GradScaler, self._scalers)
            self._patch(patches, DataLoader, "__init__", self._recording_loader_site)
            self._patch(patches, DataLoader, "__iter__", self._recording_iteration)
            self._patch(patches, dataloader_module._BaseDataLoaderIter, "__next__", self._recording_batch)
            for name in LOSS_FUNCTIONS:
                if hasattr(F, name):
                    self._patch(patches, F, name, self._recording_loss_function)
            for owner in (torch.nn.utils, sys.modules.get("torch.nn.utils.clip_grad")):
                for name in ("clip_grad_norm_", "clip_grad_value_"):
                    if owner is not None and hasattr(owner, name):
                        self._patch(patches, owner, name, self._recording_clipping)
            yield self
        finally:
            for handle in handles:
                handle.remove()
            for patch in reversed(patches):
                setattr(patch.owner, patch.name, patch.original)
            self._direct.clear()  # the frames they hold keep the script's locals alive
            self._inside = None

    @staticmethod
    def _patch(patches: list[_Patch], owner: Any, name: str, wrapper: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
        patches.append(_Patch(owner, name, original))
        setattr(owner, name, wrapper(original))

    def _patch_init(self, patches: list[_Patch], cls: type, instances: list[tuple[Any, Location | None]]) -> None:
        def wrapper(original: Callable[..., None]) -> Callable[..., None]:
            @functools.wraps(original)
            def init(obj: Any, *args: Any, **kwargs: Any) -> None:
                original(obj, *args, **kwargs)
                if not any(existing is obj for existing, _ in instances):
                    instances.append((obj, self._script_site()))

            return init

        self._patch(patches, cls, "__init__", wrapper)

    # -- what each hook records -----------------------------------------------------------------
    def _script_site(self) -> Location | None:
        """The innermost line in the script's folder that led here, else the nearest user line."""
        folder = os.path.join(os.path.realpath(self.folder), "")
        frame: FrameType | None = sys._getframe(1)
        first = first_user_frame(frame)
        while frame is not None:
            filename = os.path.realpath(frame.f_code.co_filename)
            if filename.startswith(folder) and not filename.startswith(_NNLINT_FOLDER):
                return Location(frame.f_code.co_filename, frame.f_lineno)
            frame = frame.f_back
        return Location(first.f_code.co_filename, first.f_lineno) if first is not None else None

    def _on_forward_start(self, module: nn.Module, args: Any) -> None:
        if self._depth == 0 and not isinstance(module, LossBase):
            self._inside = self._direct_forward(module, sys._getframe(1))
            if self._inside is not None:
                self._first_calls.setdefault(id(self._inside.call.module), self._inside.call)
            elif id(module) not in self._first_calls:
                self._first_calls[id(module)] = ModuleCall(module, tuple(args), {}, None)
        self._depth += 1

    def _on_forward_end(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        self._depth = max(self._depth - 1, 0)
        if isinstance(module, LossBase) and isinstance(output, torch.Tensor) and output.requires_grad:
            self._losses.append(LossCall(module, tuple(args), dict(kwargs), output, self._script_site()))
        if self._depth == 0:
            inside, self._inside = self._inside, None
            if inside is not None and not isinstance(module, LossBase):
                inside.call.last_child_output = output
                self._remember(inside.call)  # the call of the module whose forward ran it
            else:
                self._remember(ModuleCall(module, tuple(args), dict(kwargs), output))

    def _remember(self, call: ModuleCall) -> None:
        calls = self._calls.pop(id(call.module), None) or collections.deque(maxlen=_CALLS_KEPT)
        if not calls or calls[-1] is not call:
            calls.append(call)
        self._calls[id(call.module)] = calls  # most recently called last

    def _direct_forward(self, module: nn.Module, frame: FrameType | None) -> _DirectForward | None:
        """The outermost module whose `forward` is running around this outermost call of `module`
        and contains it: the script called that `forward` directly (a LightningModule's
        `training_step` doing `self.forward(x)`), so its `__call__` never ran and its children look
        outermost. Frames are walked up to nnlint's own (the script runner)."""
        found: tuple[FrameType, nn.Module] | None = None
        while frame is not None and not frame.f_code.co_filename.startswith(_NNLINT_FOLDER):
            owner = _forward_owner(frame, module) if frame.f_code.co_name == "forward" else None
            if owner is not None:
                found = (frame, owner)
            frame = frame.f_back
        if found is None:
            return None
        frame, owner = found
        current = self._direct.get(id(owner))
        if current is not None and current.frame is frame:
            return current
        args, kwargs, changed = _forward_arguments(frame)
        self._direct[id(owner)] = _DirectForward(frame, ModuleCall(owner, args, kwargs, None, True, arguments_changed=changed))
        return self._direct[id(owner)]

    def _recording_backward(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            self._backward = (tensor, self._script_site())
            result = original(tensor, *args, **kwargs)
            if self.stop_at_first_step and not self._optimizers:
                # No optimizer exists: the script updates the weights itself after this backward
                # (pytorch/examples word_language_model: `p.data.add_(p.grad, alpha=-lr)`).
                raise FirstStep(self._record(None))
            return result

        return backward

    def _recording_loss_function(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def loss(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if isinstance(result, torch.Tensor) and result.requires_grad:
                self._losses.append(LossCall(original, args, kwargs, result, self._script_site()))
            return result

        return loss

    def _recording_clipping(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def clip(*args: Any, **kwargs: Any) -> Any:
            limit = args[1] if len(args) > 1 else kwargs.get("max_norm", kwargs.get("clip_value"))
            try:
                value = float(limit) if limit is not None else None
            except (TypeError, ValueError):
                value = None
            self._clipping.append(ClipCall(original.__name__, value, self._script_site()))
            return original(*args, **kwargs)

        return clip

    def _recording_loader_site(self, original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def init(loader: DataLoader, *args: Any, **kwargs: Any) -> None:
            original(loader, *args, **kwargs)
            self._loader_sites.setdefault(loader, self._script_site())

        return init

    def _recording_iteration(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def iterate(loader: DataLoader) -> Any:
            iterator = original(loader)
            use = LoaderUse(loader, self._loader_sites.get(loader))
            with contextlib.suppress(TypeError):  # an iterator that takes no weak references
                self._iterators[iterator] = use
            self._loader = use
            return iterator

        return iterate

    def _recording_batch(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def next_batch(iterator: Any) -> Any:
            batch = original(iterator)
            use = self._iterators.get(iterator)
            if use is not None:
                use.last_batch = batch
                self._loader = use
            return batch

        return next_batch

    def _on_step(self, optimizer: Optimizer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        closure = kwargs.get("closure", args[0] if args else None)
        if self.stop_at_first_step and callable(closure):
            with torch.enable_grad():
                closure()  # the forward and backward of this step happen inside it
        record = self._record(optimizer)
        self.steps += 1
        for listener in self.listeners:
            listener(record)
        if self.stop_at_first_step:
            raise FirstStep(record)
        self._backward = None
        self._losses.clear()
        self._clipping = []

    def _record(self, optimizer: Optimizer | None) -> StepRecord:
        backward, backward_site = self._backward if self._backward is not None else (None, None)
        return StepRecord(
            optimizer=optimizer,
            step_site=self._script_site(),
            backward=backward,
            backward_site=backward_site,
            calls=[call for calls in self._calls.values() for call in calls],
            losses=list(self._losses),
            loader=self._loader,
            optimizers=list(self._optimizers) or ([(optimizer, None)] if optimizer is not None else []),
            schedulers=list(self._schedulers),
            scalers=list(self._scalers),
            clipping=list(self._clipping),
            steps_before=self.steps,
        )

    def called_modules(self) -> list[ModuleCall]:
        """The latest call of every outermost module, oldest first (for a script that never stepped)."""
        return [calls[-1] for calls in self._calls.values()]

    def first_calls(self) -> list[ModuleCall]:
        """Each outermost module's first call (positional arguments only: a global pre-hook is not
        given the keyword ones; no output), in the order they started."""
        return list(self._first_calls.values())

    def so_far(self) -> StepRecord:
        """What the capture knew when the script was stopped before any step (`optimizer` None)."""
        return self._record(None)


def _forward_owner(frame: FrameType, module: nn.Module) -> nn.Module | None:
    """The module whose own `forward` `frame` runs, if it contains `module` (and is not it)."""
    code = frame.f_code
    owner = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None  # `self`, whatever its name
    if isinstance(owner, nn.Module) and owner is not module and _forward_code(owner) is code:
        return owner if any(m is module for m in owner.modules()) else None
    return None


def _forward_code(module: nn.Module) -> Any:
    forward = inspect.unwrap(type(module).forward)
    return getattr(forward, "__code__", None)


def _forward_arguments(frame: FrameType) -> tuple[tuple[Any, ...], dict[str, Any], bool]:
    """The arguments a running `forward` frame was called with, read from its locals by its
    parameter names (trailing ones still at their defaults left out), and whether they may have
    been reassigned already (then none are returned)."""
    code = frame.f_code
    positional = code.co_varnames[1 : code.co_argcount]  # without `self`
    keyword = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    index = code.co_argcount + code.co_kwonlyargcount
    star = code.co_varnames[index] if code.co_flags & inspect.CO_VARARGS else None
    index += 1 if star else 0
    double_star = code.co_varnames[index] if code.co_flags & inspect.CO_VARKEYWORDS else None
    names = {*positional, *keyword, *(n for n in (star, double_star) if n)}
    if _stored_before(code, frame.f_lasti, names):
        return (), {}, True
    local = frame.f_locals
    function = inspect.unwrap(type(local[code.co_varnames[0]]).forward)
    defaults = getattr(function, "__defaults__", None) or ()
    values = [local[name] for name in positional if name in local]
    first_default = len(positional) - len(defaults)
    while values and len(values) > first_default and values[-1] is defaults[len(values) - 1 - first_default]:
        values.pop()  # `mask=None` left at its default: the call did not pass it
    if star and isinstance(local.get(star), tuple):
        values += local[star]
    keyword_defaults = getattr(function, "__kwdefaults__", None) or {}
    kwargs = {name: local[name] for name in keyword if name in local and local[name] is not keyword_defaults.get(name, _UNSET)}
    if double_star and isinstance(local.get(double_star), dict):
        kwargs.update(local[double_star])
    return tuple(values), kwargs, False


def _stored_before(code: Any, offset: int, names: set[str]) -> bool:
    """Whether `code` assigns or deletes one of `names` before the instruction at `offset`. A store
    later in a loop around it is not counted: `for block in self.blocks: x = block(x)` reaches its
    first block before any store, and the arguments are taken at the first child's call. A store in
    a branch not taken counts: the input is then inferred, the side that cannot lint wrong data."""
    return any(at < offset and name in names for at, name in _stores(code))


@functools.lru_cache(maxsize=256)
def _stores(code: Any) -> tuple[tuple[int, str], ...]:
    """(offset, name) of each instruction of `code` that rebinds a local name (read once per code:
    a training loop calls the same `forward` at every step)."""
    return tuple((ins.offset, ins.argval) for ins in dis.get_instructions(code) if ins.opname in _STORES)
