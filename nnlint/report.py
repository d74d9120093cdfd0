"""The result of a lint: per-target findings, plus problems that stopped files from being linted."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from nnlint.findings import Finding, GraphMethod, Severity

if TYPE_CHECKING:
    from nnlint.watch.series import RunRecord

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
class GradientFlowLayer:
    module: str
    grad_norm: float


@dataclass(frozen=True)
class GradientFlow:
    """The probe's per-layer weight-gradient norms, input to output, with NN801/NN802's thresholds
    placed on the same axis (the picture `plot_grad_flow` draws by hand)."""

    layers: tuple[GradientFlowLayer, ...]
    vanishing_below: float  # NN801: a first layer under last × max-first-to-last-ratio …
    vanishing_floor: float  # … and under max-first-norm is vanishing
    exploding_above: float  # NN802: a first layer over last × max-first-to-last-ratio is exploding
    loss: str  # which loss produced the gradients


@dataclass(frozen=True)
class TargetReport:
    name: str
    file: str | None
    graph: GraphMethod | None
    device: str | None
    findings: tuple[Finding, ...]
    skipped: tuple[SkippedChecks, ...] = ()
    notes: tuple[str, ...] = ()
    gradient_flow: GradientFlow | None = None  # when the probe ran
    training_run: RunRecord | None = None  # what `nnlint watch` recorded (the series its findings read)


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

    # -- for the Python API (`nnlint.audit(...)`) and --statistics ------------------------------
    @property
    def errors(self) -> list[Finding]:
        """Findings of severity error (files that could not be loaded are `problems`)."""
        return [finding for finding in self.findings if finding.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        """Nothing at or above `fail_on` and everything could be linted: the CLI would exit 0."""
        return self.exit_code == 0

    def at_or_above(self, severity: Severity | str) -> list[Finding]:
        rank = Severity(str(severity).lower()).rank
        return [finding for finding in self.findings if finding.severity.rank >= rank]

    def raise_for(self, severity: Severity | str = Severity.WARNING) -> Report:
        """Raise `LintError` listing every finding at or above `severity` (and anything not linted).

        Returns the report when there is none, so that it chains:
        `report = nnlint.audit(model, x).raise_for("error")`.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        failing = self.at_or_above(severity)
        if failing or self.problems:
            raise LintError(failing, self.problems)
        return self

    def statistics(self) -> list[CodeCount]:
        """How many findings of each code (with its worst severity), most frequent first (`--statistics`)."""
        by_code: dict[str, CodeCount] = {}
        for finding in self.findings:
            seen = by_code.get(finding.code)
            worst = finding.severity if seen is None or finding.severity.rank > seen.severity.rank else seen.severity
            by_code[finding.code] = CodeCount(finding.code, finding.name, worst, (seen.count if seen else 0) + 1)
        return sorted(by_code.values(), key=lambda row: (-row.count, row.code))

    def to_json(self) -> str:
        """The report as `nnlint --format json` prints it."""
        return _formatter()(self, "json", False)

    def print(self, file: TextIO | None = None) -> None:
        """Print the report as `nnlint` does in a terminal (in color when `file` is one)."""
        stream = file if file is not None else sys.stdout
        stream.write(_formatter()(self, "text", stream.isatty()))


# How `Report.to_json` and `Report.print` format: (report, format name, color) -> text. The data
# never imports its renderers: nnlint.render installs this when it loads, and `import nnlint` loads it.
ReportFormatter = Callable[[Report, str, bool], str]
_installed: list[ReportFormatter] = []


def install_formatter(formatter: ReportFormatter) -> None:
    _installed[:] = [formatter]


def _formatter() -> ReportFormatter:
    if not _installed:
        raise RuntimeError("no report formatter installed: import nnlint.render first")
    return _installed[0]


@dataclass(frozen=True)
class CodeCount:
    code: str
    name: str
    severity: Severity
    count: int


class LintError(AssertionError):
    """Raised by `Report.raise_for`: the findings that made the model fail, one per line.

    An AssertionError, so that test runners report a model that fails its lint as a failed
    test rather than as a crash.
    """

    def __init__(self, findings: list[Finding], problems: tuple[Problem, ...] = ()) -> None:
        self.findings = findings
        self.problems = problems
        super().__init__(self._message())

    def _message(self) -> str:
        lines = [
            f"nnlint: {_count(len(self.findings), 'finding')}" + (f", {_count(len(self.problems), 'problem')}" if self.problems else "")
        ]
        for finding in self.findings:
            where = f"{finding.location}: " if finding.location else ""
            module = f" [{finding.module}]" if finding.module else ""
            lines.append(f"  {where}{finding.code} {finding.severity.value} {finding.name}{module}: {finding.message}")
            if finding.fix:
                lines.append(f"    fix: {finding.fix}")
        lines += [f"  {problem.file + ': ' if problem.file else ''}{problem.message}" for problem in self.problems]
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
