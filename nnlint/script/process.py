"""The process state a training script may change, saved before it runs and put back afterwards.

A script runs in nnlint's own process (the CLI gives each file a child process; tests and the
API call it directly), so everything `python train.py` would leave to the end of the process is
undone here. The torch and process-wide state a forward may change is put back by the same guard
that surrounds every forward nnlint runs (`nnlint.runtime.state.preserved_process_state`: default
dtype and device, threads, grad mode, determinism, TF32, anomaly detection, global module and
optimizer hooks, random generators, the working directory, each set back only if it changed); a
whole script can also change `sys.argv`, `sys.path`, `__main__`, environment variables, warning
filters, SIGINT/SIGTERM handlers and `sys.stdout`/`sys.stderr`, and import modules from its
folder, which this module puts back. Libraries the script imported (torch.utils.tensorboard,
lightning, transformers) stay imported, as they would after `import` in the user's own session:
dropping them would leave their live objects orphaned.
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

from nnlint.runtime import state

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
        with state.preserved_process_state():
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
        "environ": dict(os.environ),
        "streams": (sys.stdout, sys.stderr),
        "warnings": list(warnings.filters),
        "signals": {number: signal.getsignal(number) for number in _SIGNALS},
    }


def _restore(saved: dict[str, Any]) -> None:
    sys.argv[:] = saved["argv"]
    sys.path[:] = saved["path"]
    if saved["main"] is not None:
        sys.modules["__main__"] = saved["main"]
    _restore_environ(saved["environ"])
    sys.stdout, sys.stderr = saved["streams"]
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
