"""Run a training script to its end under the script runner (nnlint/script/), and say how it ended.

`nnlint.script.runner.script_run` runs the file as `python train.py ARGS` would (`__main__`,
`sys.argv`, its folder on `sys.path`, construction lines recorded) and puts the process back
afterwards. The watch's recorder finds what it needs itself, so the script runner's capture is
replaced by one that installs nothing (its global module hooks and per-step records would cost every
step of a long run for nothing), and there is no time limit: a whole training run is what the watch
wants to see.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nnlint.script.capture import Capture
from nnlint.script.runner import Ending, script_run


class _NothingCaptured(Capture):
    """The script runner's capture, installing no hook: the recorder watches the run."""

    @contextlib.contextmanager
    def installed(self) -> Iterator[Capture]:
        yield self


@dataclass(frozen=True)
class ScriptExit:
    code: int  # what `python train.py` would have exited with
    crash: str | None = None  # `train.py:41: ValueError: message` when the script raised
    interrupted: bool = False  # Ctrl-C
    traceback: str | None = None  # for --verbose


def run_script(path: Path, args: list[str]) -> ScriptExit:
    """Run `path` with `args` to its end; what it prints goes to stderr; its exceptions are returned, never raised."""
    capture = _NothingCaptured(path.resolve().parent, stop_at_first_step=False)
    try:
        with script_run(path, args, capture, timeout=None, show_output=True) as outcome:
            ending, error, line, code, trace = outcome.ending, outcome.error, outcome.error_line, outcome.exit_code, outcome.traceback
    except KeyboardInterrupt:
        return ScriptExit(130, interrupted=True)
    if ending is Ending.RAISED:
        return ScriptExit(1, f"{line.file}:{line.line}: {error}" if line else error, traceback=trace)
    if ending is Ending.EXITED:
        return ScriptExit(_exit_code(code))
    return ScriptExit(0)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # `sys.exit("message")`: Python prints it and exits 1
    return 1


def script_problem(path: Path) -> str | None:
    """Why `path` cannot be run, or None."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir() or not os.access(path, os.R_OK):
        return f"{path}: not a readable Python file"
    return None
