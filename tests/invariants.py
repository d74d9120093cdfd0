"""What "nnlint left the model exactly as it was" means, as one snapshot to take before and after.

The model: every state_dict tensor (bit for bit, NaNs included, and the same tensor objects),
each submodule's `training` flag and attribute names, each parameter's `requires_grad` and
`.grad` (None stays None, and the same tensor object), and every kind of hook. Around it: the
optimizer's state and hyperparameters; the loss function (its own model snapshot); every tensor
and `torch.Generator` reachable from the model, the loss and the inputs (plain attributes, lists,
dicts, closures, the inputs themselves) by value, object and version; and the process: the torch
CPU, Python and NumPy random generators, grad mode, default dtype and device, the working
directory, cuDNN/TF32/matmul-precision/deterministic flags, thread count, anomaly mode, recursion
limit, global module hooks and TorchFunctionModes.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy
import torch
from torch import nn
from torch.utils._pytree import tree_flatten

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
    "_global_module_registration_hooks",
    "_global_parameter_registration_hooks",
    "_global_buffer_registration_hooks",
)


@dataclass
class Snapshot:
    """Everything a lint must leave as it found it; `differences(other)` names what changed."""

    tensors: dict[str, torch.Tensor]
    tensor_ids: dict[str, int]
    versions: dict[str, int]
    training: dict[str, bool]
    attributes: dict[str, dict[str, int]]  # attribute name -> id of its value, per submodule
    requires_grad: dict[str, bool]
    grads: dict[str, torch.Tensor | None]
    grad_ids: dict[str, int | None]  # the .grad objects themselves: a replaced .grad is a change too
    hooks: dict[str, tuple[int, ...]]
    optimizer: Any
    process: dict[str, Any]
    loss: Snapshot | None = None
    reachable: dict[str, Any] = dataclasses.field(default_factory=dict)  # path -> a tensor (see _reachable_state) or generator state

    @classmethod
    def take(cls, model: nn.Module, optimizer: Any = None, *, loss_fn: Any = None, inputs: tuple[Any, ...] = ()) -> Snapshot:
        """`inputs`: example inputs and batches, compared by value, object and version."""
        snapshot = cls._of_module(model, optimizer)
        if isinstance(loss_fn, nn.Module):
            snapshot.loss = cls._of_module(loss_fn, None)
        snapshot.reachable = _reachable_state({"model": model, "loss_fn": loss_fn, "inputs": inputs})
        return snapshot

    @classmethod
    def _of_module(cls, model: nn.Module, optimizer: Any) -> Snapshot:
        state = model.state_dict(keep_vars=True)
        parameters = dict(model.named_parameters(remove_duplicate=False))
        return cls(
            tensors={name: tensor.detach().clone() for name, tensor in state.items()},
            tensor_ids={name: id(tensor) for name, tensor in state.items()},
            versions={name: tensor._version for name, tensor in state.items()},
            training={name: module.training for name, module in model.named_modules(remove_duplicate=False)},
            attributes={name: {k: id(v) for k, v in vars(module).items()} for name, module in model.named_modules(remove_duplicate=False)},
            requires_grad={name: p.requires_grad for name, p in parameters.items()},
            grads={name: None if p.grad is None else p.grad.detach().clone() for name, p in parameters.items()},
            grad_ids={name: None if p.grad is None else id(p.grad) for name, p in parameters.items()},
            hooks={
                name: tuple(len(getattr(module, hooks, {})) for hooks in _HOOK_DICTS)
                for name, module in model.named_modules(remove_duplicate=False)
            },
            optimizer=_optimizer_state(optimizer),
            process=_process_state(),
        )

    def differences(self, after: Snapshot) -> list[str]:
        found = []
        for name, tensor in self.tensors.items():
            if name not in after.tensors:
                found.append(f"state_dict lost {name}")
            elif not same_tensor(tensor, after.tensors[name]):
                found.append(f"state_dict[{name!r}] changed")
        found += [f"state_dict gained {name}" for name in after.tensors.keys() - self.tensors.keys()]
        found += [
            f"{name} was replaced by another tensor object"
            for name in self.tensor_ids
            if after.tensor_ids.get(name) != self.tensor_ids[name]
        ]
        found += [
            f"{name} was written in place (version {self.versions[name]} -> {v})"
            for name, v in after.versions.items()
            if self.versions.get(name, v) != v
        ]
        for name, grad in self.grads.items():
            other = after.grads.get(name)
            if (grad is None) != (other is None) or (grad is not None and not same_tensor(grad, other)):
                found.append(f"{name}.grad changed ({_describe(grad)} -> {_describe(other)})")
        found += [f"{name}.grad was replaced by another tensor" for name, grad in self.grad_ids.items() if after.grad_ids.get(name) != grad]
        for field in ("training", "attributes", "requires_grad", "hooks"):
            before, now = getattr(self, field), getattr(after, field)
            found += [
                f"{field} of {name!r}: {before.get(name)} -> {now.get(name)}"
                for name in before.keys() | now.keys()
                if before.get(name) != now.get(name)
            ]
        if not same_structure(self.optimizer, after.optimizer):
            found.append("the optimizer's state or hyperparameters changed")
        found += [
            f"process state {key!r} changed: {self.process[key]!r} -> {after.process[key]!r}"
            for key in self.process
            if not same_structure(self.process[key], after.process[key])
        ]
        if self.loss is not None and after.loss is not None:
            found += [f"loss_fn: {change}" for change in self.loss.differences(after.loss) if not change.startswith("process state")]
        for path, before in self.reachable.items():
            now = after.reachable.get(path)
            if now is None:
                found.append(f"{path} is no longer reachable")
            elif not same_structure(before, now):
                found.append(f"{path} changed (values, object or version)")
        return found

    def assert_unchanged(self, model: nn.Module, optimizer: Any = None, *, loss_fn: Any = None, inputs: tuple[Any, ...] = ()) -> None:
        changes = self.differences(Snapshot.take(model, optimizer, loss_fn=loss_fn, inputs=inputs))
        assert not changes, f"the model or the process changed: {changes}"


def same_tensor(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    """Bit for bit where it matters: dtype, shape, device, values (NaN equals NaN)."""
    if a is None or b is None:
        return a is b
    if (a.dtype, a.shape, a.device) != (b.dtype, b.shape, b.device):
        return False
    if a.is_meta:
        return True
    return bool(
        torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()))
    )


def same_structure(a: Any, b: Any) -> bool:
    """Nested containers of tensors and plain values, compared with `same_tensor` at the leaves."""
    leaves_a, spec_a = tree_flatten(a)
    leaves_b, spec_b = tree_flatten(b)
    if spec_a != spec_b:
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and same_tensor(x, y)):
                return False
        elif x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y):
            return False
    return True


def _optimizer_state(optimizer: Any) -> Any:
    if optimizer is None:
        return None
    state = optimizer.state_dict()
    return {"state": {k: {n: _copy(v) for n, v in s.items()} for k, s in state["state"].items()}, "param_groups": state["param_groups"]}


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _reachable_state(roots: dict[str, Any], depth: int = 6) -> dict[str, Any]:
    """Every tensor and generator reachable from `roots`, by path (`model.cache[0]`): a tensor as
    (copy, id, version, requires_grad, its .grad as (copy, id)), a generator as its state. Registered parameters and buffers are included
    too (non-persistent buffers are not in state_dict)."""
    found: dict[str, Any] = {}
    seen: set[int] = set()

    def visit(value: Any, path: str, left: int) -> None:
        if id(value) in seen or value is None or isinstance(value, (str, bytes, int, float, bool, type, types.ModuleType)):
            return
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            if not value.is_meta:
                own = value.grad if value.is_leaf else None
                grad = None if own is None else (own.detach().clone(), id(own))
                found[path] = (value.detach().clone(), id(value), value._version, value.requires_grad, grad)
            return
        if isinstance(value, torch.Generator):
            found[path] = value.get_state()
            return
        if left == 0:
            return
        for name, child in _named_children(value):
            visit(child, f"{path}{name}", left - 1)

    for name, root in roots.items():
        visit(root, name, depth)
    return found


def _named_children(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(f"[{key!r}]", item) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, types.MethodType):
        return [(".__self__", value.__self__)]
    if isinstance(value, types.FunctionType):
        return [(f".<closure {index}>", cell.cell_contents) for index, cell in enumerate(value.__closure__ or ()) if _filled(cell)]
    if isinstance(value, functools.partial):
        return [(".func", value.func), *((f".args[{i}]", a) for i, a in enumerate(value.args)), *value.keywords.items()]
    attributes = getattr(value, "__dict__", None)
    return [(f".{name}", item) for name, item in attributes.items()] if isinstance(attributes, dict) else []


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def process_state() -> dict[str, Any]:
    """The process-wide state alone (what a file's import may change)."""
    return _process_state()


def _process_state() -> dict[str, Any]:
    module_hooks = torch.nn.modules.module
    return {
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": numpy.random.get_state()[1].tobytes(),
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": str(torch.get_default_dtype()),
        "global_module_hooks": tuple(len(getattr(module_hooks, name, {})) for name in _GLOBAL_HOOKS),
        "module_init": nn.Module.__init__.__qualname__,
        "function_modes": torch._C._len_torch_function_stack(),
        "default_device": str(torch.get_default_device()),
        "cwd": os.getcwd(),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.enabled),
        "tf32": (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "deterministic_algorithms": (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()),
        "threads": torch.get_num_threads(),
        "anomaly_mode": (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
        "recursion_limit": sys.getrecursionlimit(),
    }


def _describe(grad: torch.Tensor | None) -> str:
    return "None" if grad is None else f"tensor{tuple(grad.shape)}"
