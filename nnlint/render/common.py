"""What the renderers share: paths as people read them, strict JSON values, exhaustive matches."""

from __future__ import annotations

import functools
import math
import numbers
import os
from pathlib import Path
from typing import Any, NoReturn


def assert_never(value: NoReturn) -> NoReturn:
    """The type checker proves a `match` over an enum handles every member (typing.assert_never, 3.11+)."""
    raise AssertionError(f"unhandled value: {value!r}")


def display_path(path: str | None) -> str | None:
    """A path relative to the working directory when it lies inside it, as people type them."""
    if path is None:
        return None
    relative = relative_to_cwd(path)
    if relative is None:
        return path
    return relative.as_posix() if os.sep == "/" else str(relative)


def relative_to_cwd(path: str) -> Path | None:
    """`path` (resolved) relative to the working directory, or None when it lies outside it."""
    return _relative_to(path, os.getcwd())


@functools.lru_cache(maxsize=1024)
def _relative_to(path: str, folder: str) -> Path | None:
    # Cached: a report names the same file on every finding, and resolving it reads the file system.
    try:
        return Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return None


def plain_json(value: Any) -> Any:
    """`value` as strict JSON data: NaN and infinities (which `json` would write bare) become strings."""
    if isinstance(value, bool):  # a bool is a numbers.Integral (and Real): keep it a bool
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
