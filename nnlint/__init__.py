"""nnlint: a linter and diagnostic analyzer for PyTorch models."""

from __future__ import annotations

import importlib
from typing import Any

from nnlint.findings import Finding, Location, Phase, Severity

__version__ = "0.1.0"

# Loaded on first use, so that `nnlint --help` and `nnlint rules` do not wait for torch.
_LAZY = {"Target": "nnlint.targets", "target": "nnlint.targets"}

__all__ = ["Finding", "Location", "Phase", "Severity", "Target", "__version__", "target"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nnlint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
