"""Run a training script the way `python train.py ARGS` would, in this process, up to its first
optimizer step.

The script runs as `__main__` from its own source, with `sys.argv = [train.py, *ARGS]`, its folder
first on `sys.path` and the working directory unchanged. What it prints is kept (and returned with
the outcome) rather than shown, so a report on stdout stays parseable and nothing the script says
(its own `usage:` line) reads as nnlint's. A `Capture` records what it builds; the run ends at the
first optimizer step (`FirstStep`), when the script ends, raises or exits, or at the timeout.
Everything the run changed in the process is put back when the `script_run` block exits
(`nnlint.script.process`), so callers lint what was captured inside the block.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import io
import os
import re
import sys
import time
import traceback
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlint.findings import Location
from nnlint.runtime.randomness import seeded
from nnlint.runtime.timeout import ProbeTimeout, deadline
from nnlint.script.capture import Capture, FirstStep, StepRecord
from nnlint.script.process import preserved_process_state
from nnlint.sources import recording_construction_sites

# A script may download a dataset or build a large model before it steps: ten minutes.
DEFAULT_SCRIPT_TIMEOUT = 600.0
# A script stopped by its time limit is linted from what it had built: that lint (the graph, the
# probe) must still fit in the file's own limit (--file-timeout), or nothing would be reported.
_LINT_AFTER_TIMEOUT = 30.0  # seconds kept for it beside --probe-timeout
_ARGPARSE_ERROR = re.compile(r"^\S+: error: (.+)$", re.MULTILINE)
_INSTALLED_AT = re.compile(r" \((?:/|[A-Za-z]:\\)[^)]*\)")  # `cannot import name 'X' from 'pkg' (/path/to/pkg/__init__.py)`


class Ending(enum.Enum):
    STEPPED = "stepped"  # stopped at its first optimizer step, before the weights changed
    FINISHED = "finished"  # ran to its end without an optimizer step
    RAISED = "raised"
    EXITED = "exited"  # sys.exit(), argparse's error exit
    TIMED_OUT = "timed out"


@dataclass
class ScriptOutcome:
    path: Path
    ending: Ending
    namespace: dict[str, Any]  # the script's globals as they were when it stopped
    record: StepRecord | None  # at the first step
    seconds: float  # from the first line of the script to the step (or the end)
    output: str = ""  # what it printed (stdout and stderr), unless it was shown
    error: str | None = None  # `FileNotFoundError: [Errno 2] No such file or directory: 'data.npz'`
    error_line: Location | None = None  # the script's deepest line in the traceback
    traceback: str | None = None  # for --verbose
    exit_code: object = None
    # When it timed out: the modules in the script's own frames at that moment, by name (a
    # `main()`'s locals are in no global namespace).
    frame_modules: dict[str, Any] = field(default_factory=dict)

    def problem(self, timeout: float | None = None) -> str:
        """One line saying why the script did not reach its first optimizer step."""
        where = f" at line {self.error_line.line}" if self.error_line and Path(self.error_line.file) == self.path else ""
        if self.error_line and not where:
            where = f" at {self.error_line.file}:{self.error_line.line}"
        if self.ending is Ending.RAISED:
            if self.error and self.error.startswith(("ImportError", "ModuleNotFoundError")):
                # transformers 5 removed `TextDataset`: the script's own bug, whatever nnlint does.
                error = _INSTALLED_AT.sub("", self.error)
                fix = f"`python {self.path.name}` fails the same way: fix the import or install what it needs"
                return f"the script raised {error}{where} before its first optimizer step ({fix})"
            return f"the script raised {self.error}{where} before its first optimizer step"
        if self.ending is Ending.EXITED:
            said = _ARGPARSE_ERROR.findall(self.output)
            if said:
                return f"the script's arguments were rejected ({said[-1]}) before its first optimizer step: pass them after `--`"
            return f"the script exited (sys.exit({self.exit_code!r})){where} before its first optimizer step"
        if self.ending is Ending.TIMED_OUT:
            limit = f" within {timeout:g} s" if timeout else ""
            return f"the script did not reach its first optimizer step{limit} (--script-timeout)"
        if self.ending is Ending.FINISHED:
            return "the script ended without an optimizer step"
        return "the script reached its first optimizer step"


@contextlib.contextmanager
def script_run(
    path: Path,
    args: Sequence[str] = (),
    capture: Capture | None = None,
    timeout: float | None = DEFAULT_SCRIPT_TIMEOUT,
    show_output: bool = False,
) -> Iterator[ScriptOutcome]:
    """Run `path` as `python path *args` would, up to its first optimizer step (see the module
    docstring); the outcome stays valid inside the block, and the process is restored after it."""
    capture = capture if capture is not None else Capture(path.resolve().parent)
    with preserved_process_state(path.resolve().parent):
        yield _execute(path, list(args), capture, timeout, show_output)


def _execute(path: Path, args: list[str], capture: Capture, timeout: float | None, show_output: bool) -> ScriptOutcome:
    resolved = path.resolve()
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=str(path), __builtins__=builtins, __spec__=None, __cached__=None, __package__=None)
    output = io.StringIO()
    start = time.perf_counter()
    outcome = ScriptOutcome(path, Ending.FINISHED, module.__dict__, None, 0.0)
    try:
        code = compile(resolved.read_bytes(), str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        outcome.ending, outcome.error = Ending.RAISED, f"SyntaxError: {error.msg}"
        outcome.error_line = Location(str(path), error.lineno or 1)
        return outcome
    sys.modules["__main__"] = module
    sys.argv[:] = [str(path), *args]
    sys.path.insert(0, str(resolved.parent))
    shown = sys.stderr if show_output else output
    try:
        with (
            contextlib.redirect_stdout(shown),
            contextlib.redirect_stderr(shown),
            recording_construction_sites(),
            seeded(0),
            capture.installed(),
            deadline(timeout),
        ):
            exec(code, module.__dict__)
    except FirstStep as stop:
        outcome.ending, outcome.record = Ending.STEPPED, stop.record
        _release_frames(stop)
    except ProbeTimeout as error:
        outcome.ending = Ending.TIMED_OUT
        outcome.frame_modules = _modules_in_frames(error, resolved.parent)
        _release_frames(error)
    except SystemExit as error:
        outcome.ending, outcome.exit_code = Ending.EXITED, error.code
        outcome.error_line = _script_line(error, resolved)
        _release_frames(error)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # the script's own error, whatever it derives from
        outcome.ending, outcome.error = Ending.RAISED, _one_line(error)
        outcome.error_line = _script_line(error, resolved)
        outcome.traceback = "".join(traceback.format_exception(error))
        _release_frames(error)
    outcome.seconds = time.perf_counter() - start
    outcome.output = output.getvalue()
    return outcome


def script_deadline(script_timeout: float | None, file_timeout: float | None, probe_timeout: float | None) -> float | None:
    """How long the script may run before its first step: --script-timeout, shortened so that
    linting what it built (up to --probe-timeout, and a margin) still ends within --file-timeout."""
    if not file_timeout or file_timeout <= 0:
        return script_timeout
    kept = min((probe_timeout or 0.0) + _LINT_AFTER_TIMEOUT, file_timeout * 0.6)
    limit = file_timeout - kept
    return limit if script_timeout is None or script_timeout <= 0 else min(script_timeout, limit)


def _modules_in_frames(error: BaseException, folder: Path) -> dict[str, Any]:
    """The modules the script's own frames (files in its folder) held when it was stopped."""
    from torch import nn

    inside = os.path.join(os.path.realpath(folder), "")
    found: dict[str, Any] = {}
    for frame, _ in traceback.walk_tb(error.__traceback__):
        if not os.path.realpath(frame.f_code.co_filename).startswith(inside):
            continue
        for name, value in frame.f_locals.items():
            if isinstance(value, nn.Module) and not name.startswith("_"):
                found.setdefault(name, value)
    return found


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _script_line(error: BaseException, script: Path) -> Location | None:
    """The deepest traceback line in the script itself, else in a file of its folder."""
    frames = traceback.extract_tb(error.__traceback__)
    folder = os.path.join(str(script.parent), "")
    for wanted in (lambda f: Path(f).resolve() == script, lambda f: os.path.realpath(f).startswith(folder)):
        lines = [frame for frame in frames if wanted(frame.filename)]
        if lines:
            return Location(lines[-1].filename, lines[-1].lineno or 1)
    return None


def _release_frames(error: BaseException) -> None:
    """Drop the frames the traceback holds (the script's `main()` locals, a DataLoader iterator
    with worker processes), keeping only what the capture recorded."""
    traceback.clear_frames(error.__traceback__)
    error.__traceback__ = None
