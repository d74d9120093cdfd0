"""Linting a model object (not a file) through the engine, as the probe tests do."""

from __future__ import annotations

from typing import Any

from torch import nn

from nnlint.config import Config
from nnlint.engine import Linter
from nnlint.loader import LoadedTarget
from nnlint.report import Report
from nnlint.targets import Target


def lint_model(model: nn.Module, config: Config | None = None, **target: Any) -> Report:
    linter = Linter(config or Config())
    linter.lint(LoadedTarget(Target(model, **target), "model", None, None))  # type: ignore[arg-type]
    return linter.report()
