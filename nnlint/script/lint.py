"""Lint one training script: run it to its first optimizer step and lint what it trains, or lint
its definitions when it is not run (`--static`) or cannot get there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnlint.loader import LoadedTarget
from nnlint.report import Problem
from nnlint.runtime.lazy_dynamo import dynamo_import_deferred_for_training
from nnlint.runtime.torch_compat import LossBase
from nnlint.script.capture import Capture, ModuleCall
from nnlint.script.definitions import script_definitions
from nnlint.script.models import _detached, _example_input, _name, models_built_so_far, script_models
from nnlint.script.runner import DEFAULT_SCRIPT_TIMEOUT, Ending, ScriptOutcome, script_deadline, script_run
from nnlint.sources import recorded_site
from nnlint.targets import Target

if TYPE_CHECKING:
    from nnlint.engine import Linter


@dataclass(frozen=True)
class ScriptOptions:
    """What `nnlint train.py [-- ARGS]` passes on: the script's arguments and its time limit."""

    args: tuple[str, ...] = ()
    timeout: float | None = DEFAULT_SCRIPT_TIMEOUT


def lint_script(linter: Linter, path: Path, options: ScriptOptions, named: bool = True) -> None:
    """Lint `path`'s models into `linter` (reports, or one problem line when there is nothing).

    Only a script named on the command line runs; one found in a folder (or named by pre-commit,
    `named=False`) is linted from its definitions, and skipped quietly when they build no model.
    """
    if not named:
        _lint_definitions(linter, path, "a training script found in a folder is not run (name it to run it)", (), quiet=True)
        return
    if linter.config.static:
        _lint_definitions(linter, path, "--static: the training script was not run", options.args)
        return
    capture = Capture(path.resolve().parent)
    config = linter.config
    timeout = script_deadline(options.timeout, config.file_timeout, config.probe_timeout)
    # The script's optimizer would import torch._dynamo (about 2 s) for nothing unless it compiles.
    with dynamo_import_deferred_for_training(), script_run(path, options.args, capture, timeout) as outcome:
        if outcome.ending is Ending.STEPPED and outcome.record is not None:
            models = script_models(outcome.record, outcome.namespace, path)
            for model in models:
                linter.lint(model.loaded, model.notes)
            if models:
                return
            problem = "the script stepped an optimizer whose parameters belong to no module it called: nothing to lint"
            linter.problems.append(Problem(str(path), problem))
            return
        if outcome.ending is Ending.FINISHED:
            _lint_called_modules(linter, path, outcome, capture.called_modules())
            return
        if outcome.ending is Ending.TIMED_OUT and timeout is not None and _lint_built_so_far(linter, path, outcome, capture, timeout):
            return
        _keep_script_output(linter, outcome)
    _lint_definitions(linter, path, outcome.problem(timeout), options.args)


def _lint_built_so_far(linter: Linter, path: Path, outcome: ScriptOutcome, capture: Capture, limit: float) -> bool:
    """A slow script is not a broken one: stopped by its time limit before its first step, it is
    linted from the model and optimizer it had built (False: it had built no model yet)."""
    found = {**{k: v for k, v in outcome.namespace.items() if not k.startswith("_")}, **outcome.frame_modules}
    models = models_built_so_far(capture.so_far(), capture.first_calls(), found, found, path, limit)
    for model in models:
        linter.lint(model.loaded, model.notes)
    return bool(models)


def _lint_called_modules(linter: Linter, path: Path, outcome: ScriptOutcome, calls: list[ModuleCall]) -> None:
    """A script that ended without stepping: lint the outermost modules it called, as a model
    file's, with the arguments it called them with."""
    capture_calls = _outermost_models(calls)
    note = "the script ended without an optimizer step: linted the modules it called, with the inputs it gave them"
    for call in capture_calls:
        model = call.module
        inputs = None if call.arguments_changed else _detached(_example_input(call))  # None: nnlint infers one
        target = Target(model, example_input=inputs, name=_name(model, outcome.namespace))
        linter.lint(LoadedTarget(target, target.name or type(model).__name__, path, recorded_site(model)), [note])
    if not capture_calls:
        linter.problems.append(Problem(str(path), "the script ended without an optimizer step, and called no model: nothing to lint"))


def _outermost_models(calls: list[ModuleCall]) -> list[ModuleCall]:
    modules = [call.module for call in calls]
    return [
        call
        for call in calls
        if not isinstance(call.module, LossBase)
        and any(True for _ in call.module.parameters())
        and not any(other is not call.module and any(sub is call.module for sub in other.modules()) for other in modules)
    ]


def _keep_script_output(linter: Linter, outcome: ScriptOutcome) -> None:
    """The script's traceback and what it printed, for --verbose."""
    text = outcome.traceback or ""
    if outcome.output.strip():
        text += f"what {outcome.path} printed:\n{outcome.output}"
    if text:
        linter.tracebacks.append(text)


def _lint_definitions(linter: Linter, path: Path, why: str, args: tuple[str, ...], quiet: bool = False) -> None:
    """The fallback: lint the models the script's definitions build; one problem line if none
    (nothing when `quiet`)."""
    with script_definitions(path, args) as definitions:
        if (definitions.found is None or not definitions.found.targets) and quiet:
            return
        if definitions.found is None or not definitions.found.targets:
            detail = f"; its definitions build no model ({definitions.no_model})" if definitions.no_model else ""
            linter.problems.append(Problem(str(path), f"{why}{detail}"))
            return
        notes = [f"{why}; {definitions.note()}", *definitions.found.notes]
        for loaded in definitions.found.targets:
            loaded.problem = definitions.explained(loaded.problem) if loaded.problem else None
            linter.lint(loaded, notes)
            notes = []
