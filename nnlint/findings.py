"""The data a lint produces: frozen, plain, and free of any formatting."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

try:
    from enum import StrEnum
except ImportError:  # Python 3.10

    class StrEnum(str, enum.Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; used to sort findings and to apply `--fail-on`."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Phase(StrEnum):
    STATIC = "static"
    PROBE = "probe"
    WATCH = "watch"  # `nnlint watch`: findings about a whole training run


class GraphMethod(StrEnum):
    FX = "fx"
    RECORDED = "recorded"


@dataclass(frozen=True, order=True)
class Location:
    """A line in the user's code: where a submodule was constructed, or where a call was made."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: Severity
    phase: Phase
    message: str
    module: str | None = None
    location: Location | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fix: str = ""

    def sort_key(self) -> tuple:
        """Worst first, then by position in the file, then by code."""
        loc = self.location
        return (-self.severity.rank, loc.file if loc else "", loc.line if loc else 0, self.code, self.module or "")
