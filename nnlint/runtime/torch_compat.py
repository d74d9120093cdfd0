"""The one place nnlint touches torch's private API.

Everything here is an underscore name of torch (a private base class, a `torch._C` function, a
module attribute, a cache an internal decorator keeps). Such names can move between torch
releases; keeping them in one module means one file to fix, and tests/test_torch_compat.py
exercises every shim against the installed torch so a move fails there, by name.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.nn.modules import module as _module_globals
from torch.optim import optimizer as _optimizer_globals
from torch.utils._pytree import tree_flatten, tree_map, tree_map_only

__all__ = [
    "BatchNormBase",
    "ConvBase",
    "DataLoaderIterBase",
    "DisableTorchFunction",
    "DispatchMode",
    "DropoutBase",
    "InstanceNormBase",
    "LossBase",
    "TensorBase",
    "children_of",
    "compiled_module_class",
    "default_device_context",
    "dynamo_imported",
    "is_dynamo_package",
    "disable_dynamo_cache_attribute",
    "disable_dynamo_wrapper_code",
    "fx_patcher_exit",
    "foreach_norm",
    "foreach_sub",
    "global_module_hooks",
    "global_optimizer_hooks",
    "meta_kernel_roots",
    "training_roots",
    "meta_nonzero_assumed",
    "parse_to",
    "pop_torch_function_modes",
    "remove_global_module_hook",
    "set_version_counters",
    "step_without_dynamo_import",
    "stored_tensors",
    "torch_function_mode_depth",
    "tree_flatten",
    "tree_map",
    "tree_map_only",
]

# -- private base classes: isinstance checks that cover every variant of a layer family ---------------
BatchNormBase = nn.modules.batchnorm._BatchNorm  # BatchNorm1d/2d/3d, SyncBatchNorm, LazyBatchNorm*
InstanceNormBase = nn.modules.instancenorm._InstanceNorm
ConvBase = nn.modules.conv._ConvNd
DropoutBase = nn.modules.dropout._DropoutNd
LossBase = nn.modules.loss._Loss
TensorBase = torch._C.TensorBase  # where tensor methods are defined in C (x.add is TensorBase.add)
# Every DataLoader iterator (single- and multi-process) steps through this base's __next__.
DataLoaderIterBase = torch.utils.data.dataloader._BaseDataLoaderIter

# -- torch function modes --------------------------------------------------------------------------------
DisableTorchFunction = torch._C.DisableTorchFunction  # run our own tensor code past an active mode


class DispatchMode(torch.utils._python_dispatch.TorchDispatchMode):
    """The base of a mode that sees every aten op (nnlint.runtime.shape_formulas).

    torch wraps a subclass's `__torch_dispatch__` in `torch._disable_dynamo`, which imports
    `torch._dynamo` (0.8 s) on the first op; torch's documented opt-out is this classmethod.
    nnlint's modes never run inside `torch.compile`, where alone the wrapper matters."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


def torch_function_mode_depth() -> int:
    """How many `TorchFunctionMode`s are active."""
    return int(torch._C._len_torch_function_stack())


def pop_torch_function_modes(depth: int) -> None:
    """Pop the modes above `depth` (ones an interrupted forward left entered)."""
    while torch._C._len_torch_function_stack() > depth:
        torch._C._pop_torch_function_stack()


# -- module hooks and module storage ---------------------------------------------------------------------
_GLOBAL_HOOK_DICTS = (
    "_global_forward_pre_hooks",
    "_global_forward_hooks",
    "_global_forward_hooks_always_called",
    "_global_forward_hooks_with_kwargs",
    "_global_backward_pre_hooks",
    "_global_backward_hooks",
    "_global_module_registration_hooks",
    "_global_parameter_registration_hooks",
    "_global_buffer_registration_hooks",
)


def global_module_hooks() -> dict[str, dict[Any, Any]]:
    """torch's process-wide module hook tables, by name (the live dicts: clear and update to restore)."""
    return {name: getattr(_module_globals, name) for name in _GLOBAL_HOOK_DICTS if hasattr(_module_globals, name)}


def global_optimizer_hooks() -> dict[str, dict[Any, Any]]:
    """torch's process-wide optimizer step hook tables (`register_optimizer_step_pre_hook`), by name."""
    tables = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
    return {name: getattr(_optimizer_globals, name) for name in tables if hasattr(_optimizer_globals, name)}


def remove_global_module_hook(handle: Any) -> None:
    """Remove a hook from `register_module_forward_hook(..., with_kwargs=True)` completely: torch's
    handle forgets the hook's entry in `_global_forward_hooks_with_kwargs`, which would stay behind."""
    handle.remove()
    getattr(_module_globals, "_global_forward_hooks_with_kwargs", {}).pop(handle.id, None)


def stored_tensors(module: nn.Module) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """A module's own parameter and buffer slots, as stored (None entries included; read without
    running parametrizations or properties)."""
    return module._parameters, module._buffers


def children_of(module: nn.Module) -> Mapping[str, Any]:
    """A module's registered children, as stored (a cheap emptiness test in hot hooks)."""
    return module._modules


# -- tensor operations -----------------------------------------------------------------------------------
def parse_to(*args: Any, **kwargs: Any) -> tuple[torch.dtype | None, torch.memory_format | None]:
    """The dtype and memory format a `tensor.to(...)` call asks for (None: unchanged)."""
    _, dtype, _, memory_format = torch._C._nn._parse_to(*args, **kwargs)
    return dtype, memory_format


def foreach_norm(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The 2-norm of each tensor, in one fused kernel per device and dtype (no sync per tensor)."""
    return list(torch._foreach_norm(tensors))


def foreach_sub(left: list[torch.Tensor], right: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch._foreach_sub(left, right))


# -- torch.fx and meta kernels ---------------------------------------------------------------------------
def fx_patcher_exit() -> Any:
    """The function that undoes torch.fx's patching of torch functions after a trace."""
    return torch.fx._symbolic_trace._Patcher.__exit__


def meta_nonzero_assumed() -> contextlib.AbstractContextManager[Any]:
    """Meta `nonzero` assumes every element is non-zero (torch's documented upper bound), where supported."""
    try:
        from torch.fx.experimental import _config
    except ImportError:  # pragma: no cover - older torch
        return contextlib.nullcontext()
    if not hasattr(_config, "meta_nonzero_assume_all_nonzero"):
        return contextlib.nullcontext()
    return _config.patch(meta_nonzero_assume_all_nonzero=True)  # type: ignore[attr-defined]


# -- torch._dynamo's lazy import (see nnlint.runtime.lazy_dynamo) ------------------------------------------
# Where the decompositions and references that meta kernels call live.
_META_KERNEL_MODULES = ("torch._refs", "torch._decomp", "torch._prims", "torch._meta_registrations")


def disable_dynamo_cache_attribute() -> str:
    """The attribute `torch._compile._disable_dynamo` caches its wrapper in, on the wrapped function."""
    return "__dynamo_disable"


def dynamo_imported() -> bool:
    return "torch._dynamo" in sys.modules


def is_dynamo_package(name: str) -> bool:
    """Whether an import of `name` is the one that loads torch._dynamo itself (its submodules come after it)."""
    return name == "torch._dynamo"


def disable_dynamo_wrapper_code() -> types.CodeType | None:
    """The code of the `inner` wrapper `torch._compile._disable_dynamo` builds (None: another torch)."""
    disable = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    code = getattr(disable, "__code__", None)
    constants = code.co_consts if code is not None else ()
    return next((c for c in constants if isinstance(c, types.CodeType) and c.co_name == "inner"), None)


def meta_kernel_roots() -> Iterator[object]:
    """The functions meta kernels start from: decomposition tables and the reference modules' globals."""
    decomp = sys.modules.get("torch._decomp")
    for table in getattr(decomp, "global_decomposition_table", {}).values():
        yield from table.values()
    for name, module in list(sys.modules.items()):
        if name.startswith(_META_KERNEL_MODULES) and module is not None:
            yield from list(vars(module).values())


def training_roots() -> Iterator[object]:
    """The functions a training step starts from in torch.optim: its modules' globals (the functional
    optimizers) and their classes' methods (`Optimizer.add_param_group`, `zero_grad`, `state_dict`)."""
    for name, module in list(sys.modules.items()):
        if (name == "torch.optim" or name.startswith("torch.optim.")) and module is not None:
            for value in list(vars(module).values()):
                yield value
                if isinstance(value, type) and value.__module__.startswith("torch.optim"):
                    yield from (getattr(member, "__func__", member) for member in list(vars(value).values()))


def _use_grad_code() -> types.CodeType | None:
    """The code of the `_use_grad` wrapper torch.optim's `_use_grad_for_differentiable` puts on `step`."""
    decorator = getattr(sys.modules.get("torch.optim.optimizer"), "_use_grad_for_differentiable", None)
    constants = decorator.__code__.co_consts if isinstance(decorator, types.FunctionType) else ()
    return next((c for c in constants if isinstance(c, types.CodeType) and c.co_name == "_use_grad"), None)


def step_without_dynamo_import(optimizer: torch.optim.Optimizer) -> None:
    """`optimizer.step()` as torch runs it outside torch.compile, without the `import torch._dynamo`
    its `_use_grad` wrapper makes first (about 2 s, for a `graph_break()` that does nothing outside
    compile): the step hooks and the grad mode the wrapper sets are kept. Any step of another shape
    (a subclass that wraps `step`, LBFGS, another torch) is called as it is."""
    step = type(optimizer).step
    hooked = bool(getattr(step, "hooked", False))  # Optimizer.profile_hook_step's wrapper: the step hooks
    use_grad = getattr(step, "__wrapped__", None) if hooked else step
    inner = getattr(use_grad, "__wrapped__", None)
    code = _use_grad_code()
    if dynamo_imported() or code is None or getattr(use_grad, "__code__", None) is not code or not isinstance(inner, types.FunctionType):
        optimizer.step()
        return

    def plain_step(self: torch.optim.Optimizer) -> object:
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return inner(self)
        finally:
            torch.set_grad_enabled(previous)

    (torch.optim.Optimizer.profile_hook_step(plain_step) if hooked else plain_step)(optimizer)


# -- process state the API path puts back (nnlint/runtime/state.py) ----------------------------------------
def default_device_context() -> Any:
    """The DeviceContext mode `torch.set_default_device` installed, or None."""
    holder = getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None)
    return getattr(holder, "device_context", None)


def set_version_counters(tensors: list[torch.Tensor], versions: list[int]) -> None:
    """Give tensors back the version counters they had (where this torch can)."""
    setter = getattr(torch._C._autograd, "_unsafe_set_version_counter", None)
    if setter is not None:
        setter(tuple(tensors), tuple(versions))


def compiled_module_class() -> type | None:
    """`torch.compile`'s wrapper class (OptimizedModule), if torch._dynamo was imported: looked up
    in sys.modules, so that linting a plain model never pays for importing dynamo (seconds)."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return getattr(eval_frame, "OptimizedModule", None)
