"""What linting one file produced: enough to build the run's report from files linted one by one,
in this process or in a child process (nnlint/wire.py carries it across as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nnlint.report import Problem, TargetReport
from nnlint.suppression import SuppressionLedger


@dataclass(frozen=True)
class FileResult:
    path: str
    reports: tuple[TargetReport, ...] = ()
    problems: tuple[Problem, ...] = ()
    tracebacks: tuple[str, ...] = ()  # shown with --verbose
    # Which suppression comments this file's targets consulted and used, numbered from its first
    # target: NN003 (a suppression that silenced nothing) is judged once the whole run is in.
    ledger: SuppressionLedger = field(default_factory=SuppressionLedger)
