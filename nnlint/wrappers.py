"""Models inside wrappers: what nnlint lints instead, and what it cannot lint at all.

`nn.DataParallel`, `DistributedDataParallel` and `torch.compile`'s `OptimizedModule` wrap the
user's module without changing it: its forward, parameters and buffers are the wrapped
module's, and the wrappers refuse `torch.func.functional_call`, on which every nnlint run
stands. So nnlint lints the wrapped module, and says so. A TorchScript module (the output of
`torch.jit.script` or `torch.jit.trace`) is compiled code with no Python forward to run on
copies or to record: it gets one line saying to lint the original `nn.Module`.
"""

from __future__ import annotations

import torch
from torch import nn

from nnlint.runtime.torch_compat import compiled_module_class


def unwrapped(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """The module that does the work, and a note for each wrapper taken off."""
    notes: list[str] = []
    while True:
        wrapper = _wrapper_name(model)
        if wrapper is None:
            return model, notes
        inner = model._orig_mod if _is_compiled(model) else model.module
        assert isinstance(inner, nn.Module)
        notes.append(f"the model is wrapped in {wrapper}: nnlint linted the module it wraps ({type(inner).__name__})")
        model = inner


def is_torchscript(model: nn.Module) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


TORCHSCRIPT_PROBLEM = (
    "it is a TorchScript module (the output of torch.jit.script or torch.jit.trace), which has no Python forward to check: "
    "lint the original nn.Module, before scripting or tracing"
)


def _wrapper_name(model: nn.Module) -> str | None:
    if isinstance(model, nn.DataParallel):
        return "nn.DataParallel"
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return "DistributedDataParallel"
    if _is_compiled(model):
        return "torch.compile"
    return None


def _is_compiled(model: nn.Module) -> bool:
    compiled = compiled_module_class()
    return compiled is not None and isinstance(model, compiled)
