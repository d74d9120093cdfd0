"""nnlint: a linter and diagnostic analyzer for PyTorch models."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nnlint.findings import Finding, Location, Phase, Severity

if TYPE_CHECKING:  # what type checkers see; at run time these load lazily (below)
    from nnlint.api import audit
    from nnlint.report import LintError, Report
    from nnlint.targets import Target, target

__version__ = "0.1.0"

# Loaded on first use, so that `nnlint --help` and `nnlint rules` do not wait for torch.
_LAZY = {
    "Target": "nnlint.targets",
    "target": "nnlint.targets",
    "audit": "nnlint.api",
    "Report": "nnlint.report",
    "LintError": "nnlint.report",
}

__all__ = ["Finding", "LintError", "Location", "Phase", "Report", "Severity", "Target", "__version__", "audit", "target"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nnlint' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
