"""Renderers: one module per output format behind one interface, `render(report, format) -> str`.

Renderers only format; everything they print was computed by the engine.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from pathlib import Path
from typing import Any, NoReturn

from nnlint.findings import StrEnum
from nnlint.report import Report


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    JUNIT = "junit"


def render(report: Report, output_format: OutputFormat, *, color: bool = False, width: int | None = None) -> str:
    from nnlint.render import github, json_format, junit, sarif, text

    match output_format:
        case OutputFormat.TEXT:
            return text.render(report, color=color, width=width)
        case OutputFormat.JSON:
            return json_format.render(report)
        case OutputFormat.SARIF:
            return sarif.render(report)
        case OutputFormat.GITHUB:
            return github.render(report)
        case OutputFormat.JUNIT:
            return junit.render(report)
        case _:
            assert_never(output_format)


def render_statistics(report: Report, output_format: OutputFormat) -> str:
    """`--statistics`: how many findings of each code, as text or json."""
    from nnlint.render import statistics

    match output_format:
        case OutputFormat.TEXT:
            return statistics.render_text(report)
        case OutputFormat.JSON:
            return statistics.render_json(report)
        case _:
            raise ValueError(f"--statistics prints text or json, not {output_format.value}")


def assert_never(value: NoReturn) -> NoReturn:
    """The type checker proves a `match` over an enum handles every member (typing.assert_never, 3.11+)."""
    raise AssertionError(f"unhandled value: {value!r}")


def display_path(path: str | None) -> str | None:
    """A path relative to the working directory when it lies inside it, as people type them."""
    if path is None:
        return None
    return _relative_to(path, os.getcwd())


@functools.lru_cache(maxsize=1024)
def _relative_to(path: str, folder: str) -> str:
    # Cached: a report names the same file on every finding, and resolving it reads the file system.
    try:
        relative = Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return path
    return relative.as_posix() if os.sep == "/" else str(relative)


def plain_json(value: Any) -> Any:
    """`value` as strict JSON data: NaN and infinities (which `json` would write bare) become strings."""
    if isinstance(value, bool):  # a bool is a numbers.Integral (and Real): keep it a bool
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
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
