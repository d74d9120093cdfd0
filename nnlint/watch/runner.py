"""Run a training script as `python train.py ARGS` would, in this process, and say how it ended.

The one function the watch needs from a script runner: `__main__` as the module name, `sys.argv`
and `sys.path[0]` as Python sets them, both put back afterwards, and the construction line of
every module the script builds remembered (for the findings' lines).
"""

from __future__ import annotations

import os
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path

from nnlint.sources import recording_construction_sites


@dataclass(frozen=True)
class ScriptExit:
    code: int  # what `python train.py` would have exited with
    error: BaseException | None = None  # the exception that ended it (not SystemExit)
    interrupted: bool = False  # Ctrl-C


def run_script(path: Path, args: list[str]) -> ScriptExit:
    """Run `path` with `args`; the script's exceptions are returned, never raised."""
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [str(path), *args]
    sys.path.insert(0, str(path.resolve().parent))
    try:
        with recording_construction_sites():
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as stop:
        return ScriptExit(_exit_code(stop.code))
    except KeyboardInterrupt as interrupt:
        return ScriptExit(130, interrupt, interrupted=True)
    except Exception as error:  # the script's own failure, reported in one line by the caller
        return ScriptExit(1, error)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return ScriptExit(0)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # `sys.exit("message")`: Python prints it and exits 1
    return 1


def script_exists(path: Path) -> str | None:
    """Why `path` cannot be run, or None."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir() or not os.access(path, os.R_OK):
        return f"{path}: not a readable Python file"
    return None
