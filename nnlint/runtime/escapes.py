"""BaseExceptions from the user's code that are not errors to Python but are to nnlint.

`sys.exit()` in a forward, a constructor or an `@nnlint.target` function raises SystemExit; a
forward can raise GeneratorExit. Neither is an `Exception`, so every `except Exception` that
turns the user's errors into NN002 would let them through and end nnlint (with exit code 0 for
`sys.exit(0)`: CI green, nothing linted). `user_code()` turns them into `UserExit`, an ordinary
`Exception` naming where it was raised. KeyboardInterrupt (Ctrl-C) and nnlint's own
`ProbeTimeout` pass unchanged: they must stop what is running.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from nnlint.runtime.timeout import ProbeTimeout

# Frames in these folders are not the user's: torch's own, nnlint's, the standard library's.
_NOT_USER_CODE = tuple(
    os.path.join(os.path.realpath(folder), "")
    for folder in (
        os.path.dirname(torch.__file__),
        os.path.dirname(os.path.dirname(__file__)),
        sysconfig.get_paths()["stdlib"],
    )
)


class UserExit(Exception):  # noqa: N818 - named for what the user's code did, not as an error of nnlint's
    """A BaseException other than KeyboardInterrupt raised by the user's code, as an Exception."""

    def __init__(self, original: BaseException) -> None:
        self.original = original
        self.where = raised_at(original)
        text = str(original).strip().splitlines()
        detail = f": {text[0]}" if text else ""
        where = f" at {self.where}" if self.where else ""
        super().__init__(f"{type(original).__name__}{detail} (raised{where})")


def escapes_nnlint(error: BaseException) -> bool:
    """Whether `error` must stop nnlint itself: Ctrl-C, and the probe's own deadline."""
    return isinstance(error, (KeyboardInterrupt, ProbeTimeout))


@contextmanager
def user_code() -> Iterator[None]:
    """Run the user's code; a SystemExit, GeneratorExit or other non-Exception BaseException it
    raises comes out as `UserExit`."""
    try:
        yield
    except Exception:
        raise
    except BaseException as error:
        if escapes_nnlint(error):
            raise
        raise UserExit(error).with_traceback(error.__traceback__) from error


def raised_at(error: BaseException) -> str | None:
    """`file.py:12`: the deepest frame of the traceback in the user's own code, if any."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if not os.path.realpath(frame.filename).startswith(_NOT_USER_CODE) and not frame.filename.startswith("<"):
            return f"{_shown(frame.filename)}:{frame.lineno}"
    return None


def _shown(path: str) -> str:
    """Relative to the working directory when inside it, as the report shows files."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative
