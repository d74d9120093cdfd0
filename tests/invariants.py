"""What "nnlint left the model exactly as it was" means, as one snapshot to take before and after.

The model: every state_dict tensor (bit for bit, NaNs included, and the same tensor objects),
each submodule's `training` flag and attribute names, each parameter's `requires_grad` and
`.grad` (None stays None, and the same tensor object), and every kind of hook. Around it: the
optimizer's state and hyperparameters, the torch CPU, Python and NumPy random generators, and the process-wide torch state that a
tracer could leave behind (grad mode, default dtype, global module hooks, TorchFunctionModes).
"""

from __future__ import annotations

import random
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

    @classmethod
    def take(cls, model: nn.Module, optimizer: Any = None) -> Snapshot:
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
        found += [f"process state {key!r} changed" for key in self.process if not same_structure(self.process[key], after.process[key])]
        return found

    def assert_unchanged(self, model: nn.Module, optimizer: Any = None) -> None:
        changes = self.differences(Snapshot.take(model, optimizer))
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
    }


def _describe(grad: torch.Tensor | None) -> str:
    return "None" if grad is None else f"tensor{tuple(grad.shape)}"
