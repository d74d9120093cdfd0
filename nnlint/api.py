"""The Python API: `nnlint.audit(model, example_input)` lints a model object, e.g. inside a test.

    def test_model_is_clean():
        nnlint.audit(MyNet(), torch.randn(8, 3, 32, 32)).raise_for("warning")

It runs the same pipeline as `nnlint model.py` (the engine's `Linter`), on a model built
outside nnlint: construction lines come from the source of each parent's `__init__`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from nnlint.config import Config, parse_budget, parse_codes, parse_timeout
from nnlint.engine import Linter
from nnlint.errors import ConfigError
from nnlint.loader import LoadedTarget
from nnlint.report import Report
from nnlint.sources import user_definition_line
from nnlint.targets import Target


def audit(
    model: nn.Module,
    example_input: Any = None,
    *,
    example_batch: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    batch_size: int | None = None,
    probe: bool = True,
    device: str = "auto",
    probe_timeout: float | None = None,
    probe_budget: float | None = 10.0,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
) -> Report:
    """Lint `model` and return the report; the model is left exactly as it was.

    `example_input` is a tensor, a tuple of tensors (positional arguments) or a dict (keyword
    arguments); without one nnlint infers an input from the first layer. `example_batch`
    (`(inputs, targets)` of real data), `loss_fn`, `optimizer` and `batch_size` enable the checks
    that need them. `probe=False` runs only the static checks; `device` picks where the probe
    runs ("auto": CUDA when available); `probe_timeout` stops a probe that runs longer than that
    many seconds (default 60) with NN002; `probe_budget` is the time the probe plans its work to fit
    (seconds, default 10; fewer steps, samples or optional checks, said in a note; None: no budget,
    the full fixed workload). `select` and `ignore` take codes or prefixes
    ("NN1,NN104", ["NN1"], "ALL"). Settings in pyproject.toml are not read: pass what you need.

    Raises TypeError when `model` is not an `nn.Module`, ValueError for an unknown rule code or a
    `probe_timeout` or `probe_budget` that is not a positive number.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"nnlint.audit() needs a torch.nn.Module, got {type(model).__name__}")
    config = _config(select, ignore, probe, device, probe_timeout)
    config = _with_budget(config, probe_budget)
    target = Target(model, example_input, example_batch, loss_fn, optimizer, batch_size, name=type(model).__name__)
    # A class of the user's anchors the root; its children are found in its `__init__` source.
    location = user_definition_line(type(model))
    loaded = LoadedTarget(target, type(model).__name__, Path(location.file) if location else None, location)
    linter = Linter(config)
    linter.lint(loaded)
    return linter.report()


def _config(
    select: str | Iterable[str] | None, ignore: str | Iterable[str] | None, probe: bool, device: str, probe_timeout: float | None
) -> Config:
    try:
        config = Config(
            select=parse_codes(select) if select is not None else ("ALL",),
            ignore=parse_codes(ignore) if ignore is not None else (),
            static=not probe,
            device=device,
        )
    except (ConfigError, TypeError) as error:
        raise ValueError(f"nnlint.audit(): {error}") from None
    if probe_timeout is None:
        return config
    try:
        return config.with_overrides(probe_timeout=parse_timeout(probe_timeout))
    except ValueError as error:
        raise ValueError(f"nnlint.audit(): probe_timeout: {error}") from None


def _with_budget(config: Config, probe_budget: float | None) -> Config:
    if probe_budget is None:
        return dataclasses.replace(config, probe_budget=None)
    try:
        return dataclasses.replace(config, probe_budget=parse_budget(probe_budget))
    except ValueError as error:
        raise ValueError(f"nnlint.audit(): probe_budget: {error}") from None
