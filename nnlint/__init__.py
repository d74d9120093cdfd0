"""nnlint: a linter and diagnostic analyzer for PyTorch models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nnlint.render  # noqa: F401 - installs the formatter Report.to_json() and Report.print() use (cheap: no torch, no rich)
from nnlint.findings import Finding, Location, Phase, Severity
from nnlint.lazy import lazy_attributes
from nnlint.version import __version__

if TYPE_CHECKING:  # what type checkers see; at run time these load lazily (below)
    from nnlint import watch  # a callable module: `nnlint.watch(model, optimizer)` opens a Watch
    from nnlint.api import audit
    from nnlint.report import LintError, Report
    from nnlint.targets import Target, target

# Loaded on first use, so that `nnlint --help` and `nnlint rules` do not wait for torch.
_LAZY = {
    "Target": "nnlint.targets",
    "target": "nnlint.targets",
    "audit": "nnlint.api",
    "Report": "nnlint.report",
    "LintError": "nnlint.report",
}

__all__ = ["Finding", "LintError", "Location", "Phase", "Report", "Severity", "Target", "__version__", "audit", "target", "watch"]


_lazy_attribute = lazy_attributes(__name__, globals(), _LAZY)


def __getattr__(name: str) -> object:
    # `nnlint.watch` is a subpackage (callable, see nnlint/watch/__init__.py): importing it binds it here.
    if name == "watch":
        import importlib

        return importlib.import_module("nnlint.watch")
    return _lazy_attribute(name)
