"""The result of a lint: per-target findings, plus problems that stopped files from being linted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from nnlint.findings import Finding, GraphMethod, Severity

# Findings that mean a target could not be linted: like a load error, they make the exit code 2.
UNUSABLE_TARGET = "NN002"


@dataclass(frozen=True)
class SkippedChecks:
    codes: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Problem:
    """A file that could not be linted at all, or an internal error in nnlint."""

    file: str | None
    message: str


@dataclass(frozen=True)
class TargetReport:
    name: str
    file: str | None
    graph: GraphMethod | None
    device: str | None
    findings: tuple[Finding, ...]
    skipped: tuple[SkippedChecks, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    targets: tuple[TargetReport, ...]
    problems: tuple[Problem, ...] = ()
    fail_on: Severity = Severity.WARNING
    tracebacks: tuple[str, ...] = field(default=(), repr=False)  # shown with --verbose

    @property
    def findings(self) -> list[Finding]:
        return [finding for target in self.targets for finding in target.findings]

    def counts(self) -> Counter[Severity]:
        return Counter(finding.severity for finding in self.findings)

    @property
    def exit_code(self) -> int:
        """0: nothing at or above `fail_on`; 1: findings; 2: something could not be linted."""
        if self.problems or any(finding.code == UNUSABLE_TARGET for finding in self.findings):
            return 2
        return 1 if any(finding.severity.rank >= self.fail_on.rank for finding in self.findings) else 0
