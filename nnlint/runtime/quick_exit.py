"""Ending the `nnlint` process once its report is out, without the interpreter's teardown.

A process that imported torch spends about half a second of CPU on its own way out (a last
garbage collection over the objects torch made, then each module's teardown), after nnlint has
nothing left to do: measured in bench/RESULTS.md ("Script mode"). When the process ran none of
the user's code (every file was linted in a child process, nnlint/isolation.py), nothing of
theirs waits for that teardown: the streams are flushed and the exit handlers registered with
`atexit` run (logging's, torch's, `weakref.finalize`), as in a normal exit, then the process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn


def exit_without_teardown(code: object) -> NoReturn:
    """End the process as `sys.exit(code)` would, less the interpreter's teardown."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed to stderr, status 1
        with contextlib.suppress(Exception):
            print(code, file=sys.stderr)
        status = 1
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is not None:
        with contextlib.suppress(BaseException):
            run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`nnlint ... | head`) loses nothing more than it would
            stream.flush()
    os._exit(status)
