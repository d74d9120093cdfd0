"""Rules: plain functions registered with their code, slug, severity, phase and documentation.

A rule's docstring is its documentation, in fixed sections (`nnlint explain`, `nnlint rules`,
SARIF and docs/rules.md all print it):

    One-line summary.

    ## What it does
    ## Why is this bad?
    ## Example
    ## Fix
    ## References
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any

from nnlint.findings import Finding, Location, Phase, Severity
from nnlint.measures import Measure

if TYPE_CHECKING:
    from nnlint.context import RuleContext
    from nnlint.graph import ModelGraph
    from nnlint.probe.result import ProbeResult

DOC_SECTIONS = ("What it does", "Why is this bad?", "Example", "Fix", "References")


@dataclass(frozen=True)
class Hit:
    """What a rule reports; the engine turns it into a `Finding` with the rule's code and name."""

    message: str
    fix: str = ""
    module: str | None = None
    location: Location | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None  # overrides the rule's default, e.g. NN105 at batch size 1


RuleFunction = Callable[["ModelGraph", "RuleContext"], Iterable[Hit]]
# A static finding's measurement by the probe: the finding with the numbers added to its evidence.
ProbeEvidence = Callable[[Finding, "ProbeResult"], Finding]
# Where the gradient-flow chart draws a rule's limits: the rule's thresholds and the last layer's
# gradient norm -> values of `GradientFlow` fields.
ChartLines = Callable[[Mapping[str, float], float], Mapping[str, float]]
# What each phase needs from the target before any rule of it can run.
_PHASE_REQUIRES = {Phase.STATIC: "graph", Phase.PROBE: "probe", Phase.WATCH: "run"}


@dataclass(frozen=True)
class Rule:
    code: str
    slug: str
    severity: Severity
    phase: Phase
    check: RuleFunction | None  # None: the engine itself emits this rule's findings (NN002, NN003)
    summary: str
    sections: Mapping[str, str]
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # What the target must provide for the rule to run: "graph", "probe", "loss_fn", "optimizer", ...
    requires: frozenset[str] = frozenset({"graph"})
    # What the probe must measure for the rule: its input (a probe rule) or its evidence (a static one).
    needs: frozenset[Measure] = frozenset()
    probe_evidence: ProbeEvidence | None = None  # a static rule's finding, with what the probe measured
    chart_lines: ChartLines | None = None

    @property
    def doc(self) -> str:
        return "\n\n".join([self.summary, *(f"## {title}\n{body}" for title, body in self.sections.items())])


def rule(
    code: str,
    slug: str,
    severity: Severity,
    *,
    phase: Phase = Phase.STATIC,
    thresholds: Mapping[str, float] | None = None,
    requires: Iterable[str] = (),
    needs: Iterable[Measure] = (),
    probe_evidence: ProbeEvidence | None = None,
    chart_lines: ChartLines | None = None,
) -> Callable[[RuleFunction], Rule]:
    """Register a check function as a rule; its docstring is the rule's documentation.

    `requires` lists what the target must provide beyond what the phase implies (a static rule
    needs the graph, a probe rule the probe's result). `needs` lists the probe measurements the
    rule reads; a static rule with a `probe_evidence` hook names those the hook reads, and the
    probe takes them only when the rule fired.
    """
    if probe_evidence is not None and phase is not Phase.STATIC:
        raise ValueError(f"rule {code}: only a static rule's findings get probe evidence")

    def register(check: RuleFunction) -> Rule:
        summary, sections = parse_doc(inspect.getdoc(check) or "", code)
        return Rule(
            code=code,
            slug=slug,
            severity=severity,
            phase=phase,
            check=check,
            summary=summary,
            sections=MappingProxyType(sections),
            thresholds=MappingProxyType(dict(thresholds or {})),
            requires=frozenset({_PHASE_REQUIRES[phase], *requires}),
            needs=frozenset(Measure(measure) for measure in needs),
            probe_evidence=probe_evidence,
            chart_lines=chart_lines,
        )

    return register


def engine_rule(code: str, slug: str, severity: Severity, doc: str) -> Rule:
    """A rule whose findings the engine emits itself; registered for its code and documentation."""
    summary, sections = parse_doc(inspect.cleandoc(doc), code)
    return Rule(code, slug, severity, Phase.STATIC, None, summary, MappingProxyType(sections), requires=frozenset())


def parse_doc(doc: str, code: str) -> tuple[str, dict[str, str]]:
    summary, _, rest = doc.partition("\n## ")
    sections: dict[str, str] = {}
    for chunk in ("## " + rest).split("\n## ") if rest else []:
        title, _, body = chunk.removeprefix("## ").partition("\n")
        sections[title.strip()] = body.strip()
    if not summary.strip():
        raise ValueError(f"rule {code} has no documentation")
    return " ".join(summary.split()), sections


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every registered rule, sorted by code (the catalogue in `nnlint.rules`)."""
    rules: tuple[Rule, ...] = _rules_package().ALL_RULES
    codes = [r.code for r in rules]
    if codes != sorted(codes) or len(set(codes)) != len(codes):
        raise RuntimeError("nnlint.rules.ALL_RULES must be sorted by code, without duplicates")
    return rules


def rules_by_code() -> dict[str, Rule]:
    return {r.code: r for r in all_rules()}


def _rules_package() -> ModuleType:
    try:
        return importlib.import_module("nnlint.rules")
    except ModuleNotFoundError as error:
        if error.name != "nnlint.rules":
            raise
    # A source checkout keeps the rules at the top level (rules/, beside nnlint/); the wheel maps them
    # to nnlint.rules. Load them under that name so a checkout works without installing.
    source = Path(__file__).resolve().parent.parent / "rules" / "__init__.py"
    spec = importlib.util.spec_from_file_location("nnlint.rules", source, submodule_search_locations=[str(source.parent)])
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError("nnlint.rules is not installed and no rules/ folder is beside nnlint/")
    package = importlib.util.module_from_spec(spec)
    sys.modules["nnlint.rules"] = package
    spec.loader.exec_module(package)
    return package


def expand_codes(patterns: Iterable[str]) -> set[str]:
    """Codes matched by codes or prefixes (`NN1`, `NN104`, `ALL`); unknown ones raise ValueError."""
    known = [r.code for r in all_rules()]
    matched: set[str] = set()
    for pattern in patterns:
        pattern = pattern.strip().upper()
        if not pattern:
            continue
        hits = known if pattern == "ALL" else [code for code in known if code.startswith(pattern)]
        if not hits:
            raise ValueError(f"unknown rule code or prefix: {pattern!r}")
        matched.update(hits)
    return matched
