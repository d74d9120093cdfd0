"""Everything the probe could change in the user's process, restored in `finally`.

The probe computes on copies of the weights and buffers (`functional_call`), so parameters,
buffers, `.grad` and the optimizer are never written. What it does touch — `training` flags,
module attributes a forward may set, global module hooks, torch-function modes, grad mode and
every random number generator — is snapshotted here and put back whatever happens, a timeout
interrupting the probe included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules import module as module_globals

from nnlint.graph.state import preserved_module_attributes, training_flags
from nnlint.randomness import restore_rng, rng_states
from nnlint.timeout import protect

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


@contextmanager
def preserved_user_state(model: nn.Module) -> Iterator[None]:
    """Leave `model` and the process's torch state exactly as they were when the block exits."""
    rng = rng_states()
    grad_enabled = torch.is_grad_enabled()
    mode_depth = torch._C._len_torch_function_stack()
    hooks = {name: dict(getattr(module_globals, name)) for name in _GLOBAL_HOOK_DICTS if hasattr(module_globals, name)}
    parameters = [(p, p.grad, p.requires_grad) for p in model.parameters()]
    with preserved_module_attributes(model):
        try:
            yield
        finally:
            while torch._C._len_torch_function_stack() > mode_depth:
                torch._C._pop_torch_function_stack()
            for name, saved in hooks.items():
                current = getattr(module_globals, name)
                current.clear()
                current.update(saved)
            for parameter, grad, requires_grad in parameters:
                if parameter.grad is not grad:
                    parameter.grad = grad
                if parameter.requires_grad != requires_grad:
                    parameter.requires_grad_(requires_grad)
            torch.set_grad_enabled(grad_enabled)
            restore_rng(rng)


protect(preserved_user_state, preserved_module_attributes, training_flags, restore_rng)
