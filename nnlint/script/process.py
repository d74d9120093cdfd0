"""The process state a training script may change, saved before it runs and put back afterwards.

A script runs in nnlint's own process (the CLI gives each file a child process; tests and the
API call it directly), so everything `python train.py` would leave to the end of the process is
undone here: `sys.argv`, `sys.path`, `__main__`, the working directory, environment variables,
the modules imported from the script's folder, torch's global switches (default dtype, threads,
grad mode, determinism, TF32, anomaly detection), global module and optimizer hooks, random
generators, warning filters, SIGINT/SIGTERM handlers and `sys.stdout`/`sys.stderr`. Libraries the
script imported (torch.utils.tensorboard, lightning, transformers) stay imported, as they would
after `import` in the user's own session: dropping them would leave their live objects orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.nn.modules import module as module_globals
from torch.optim import optimizer as optimizer_globals

from nnlint.runtime.randomness import restore_rng, rng_states

_MODULE_HOOKS = (
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
_OPTIMIZER_HOOKS = ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


def script_modules(folder: Path, before: set[str]) -> list[str]:
    """Modules imported since `before` whose file lies in `folder`: the script's own code."""
    inside = os.path.join(os.path.realpath(folder), "")
    found = []
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules.get(name), "__file__", None) or ""
        if module_file and os.path.realpath(module_file).startswith(inside):
            found.append(name)
    return found


@contextmanager
def preserved_process_state(folder: Path) -> Iterator[None]:
    """Put back everything a script run may change in this process (see the module docstring)."""
    saved = _save()
    modules_before = set(sys.modules)
    try:
        yield
    finally:
        for name in script_modules(folder, modules_before):
            del sys.modules[name]
        _restore(saved)


def _save() -> dict[str, Any]:
    return {
        "argv": list(sys.argv),
        "path": list(sys.path),
        "main": sys.modules.get("__main__"),
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "streams": (sys.stdout, sys.stderr),
        "dtype": torch.get_default_dtype(),
        "threads": torch.get_num_threads(),
        "grad": torch.is_grad_enabled(),
        "anomaly": torch.is_anomaly_enabled(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn": (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32),
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "module_hooks": {name: dict(getattr(module_globals, name)) for name in _MODULE_HOOKS if hasattr(module_globals, name)},
        "optimizer_hooks": {name: dict(getattr(optimizer_globals, name)) for name in _OPTIMIZER_HOOKS if hasattr(optimizer_globals, name)},
        "rng": rng_states(),
        "warnings": list(warnings.filters),
        "signals": {number: signal.getsignal(number) for number in _SIGNALS},
    }


def _restore(saved: dict[str, Any]) -> None:
    sys.argv[:] = saved["argv"]
    sys.path[:] = saved["path"]
    if saved["main"] is not None:
        sys.modules["__main__"] = saved["main"]
    if os.getcwd() != saved["cwd"]:
        os.chdir(saved["cwd"])
    _restore_environ(saved["environ"])
    sys.stdout, sys.stderr = saved["streams"]
    torch.set_default_dtype(saved["dtype"])
    if torch.get_num_threads() != saved["threads"]:
        torch.set_num_threads(saved["threads"])
    torch.set_grad_enabled(saved["grad"])
    torch.autograd.set_detect_anomaly(saved["anomaly"])
    enabled, warn_only = saved["deterministic"]
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = saved["cudnn"]
    torch.backends.cuda.matmul.allow_tf32 = saved["matmul_tf32"]
    torch.set_float32_matmul_precision(saved["matmul_precision"])
    for group, owner in (("module_hooks", module_globals), ("optimizer_hooks", optimizer_globals)):
        for name, hooks in saved[group].items():
            current = getattr(owner, name)
            current.clear()
            current.update(hooks)
    restore_rng(saved["rng"])
    warnings.filters[:] = saved["warnings"]  # type: ignore[index]
    getattr(warnings, "_filters_mutated", lambda: None)()
    for number, handler in saved["signals"].items():
        if handler is not None and signal.getsignal(number) is not handler:
            with contextlib.suppress(ValueError):  # not on the main thread: the script could not have changed it
                signal.signal(number, handler)


def _restore_environ(saved: dict[str, str]) -> None:
    for name in [name for name in os.environ if name not in saved]:
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
