"""Renderers: one module per output format behind one interface, `render(report, format) -> str`.

Renderers only format; everything they print was computed by the engine.
"""

from __future__ import annotations

import os
from pathlib import Path

from nnlint.findings import StrEnum
from nnlint.report import Report


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def render(report: Report, output_format: OutputFormat, *, color: bool = False, width: int | None = None) -> str:
    from nnlint.render import json_format, text

    match output_format:
        case OutputFormat.TEXT:
            return text.render(report, color=color, width=width)
        case OutputFormat.JSON:
            return json_format.render(report)


def display_path(path: str | None) -> str | None:
    """A path relative to the working directory when it lies inside it, as people type them."""
    if path is None:
        return None
    try:
        relative = Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
    return relative.as_posix() if os.sep == "/" else str(relative)
