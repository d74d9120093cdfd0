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
