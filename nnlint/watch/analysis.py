"""From a recorded run to a report: the NN6 rules (phase "watch") over the `RunRecord`."""

from __future__ import annotations

import dataclasses

from torch import nn

from nnlint.config import Config
from nnlint.context import RuleContext
from nnlint.findings import Finding, Phase
from nnlint.registry import Rule, all_rules
from nnlint.report import Problem, Report, TargetReport
from nnlint.targets import Target
from nnlint.watch.series import RunRecord


def watch_rules(config: Config) -> list[Rule]:
    return [rule for rule in all_rules() if rule.phase is Phase.WATCH and rule.check is not None and config.is_enabled(rule.code)]


def run_findings(record: RunRecord, config: Config, model: nn.Module | None = None) -> tuple[list[Finding], list[Problem]]:
    """Every enabled NN6 rule over the record; a rule that fails is nnlint's problem, reported, never raised."""
    context = RuleContext(target=Target(model if model is not None else nn.Module()), run=record)
    findings: list[Finding] = []
    problems: list[Problem] = []
    for rule in watch_rules(config):
        assert rule.check is not None
        try:
            hits = list(rule.check(None, dataclasses.replace(context, thresholds=config.thresholds_for(rule))))  # type: ignore[arg-type]
        except Exception as error:
            problems.append(
                Problem(
                    record.script, f"internal error in rule {rule.code} ({rule.slug}): {type(error).__name__}: {error}; please report it"
                )
            )
            continue
        for hit in hits:
            if config.ignored_for_module(rule.code, hit.module):
                continue
            findings.append(
                Finding(
                    rule.code,
                    rule.slug,
                    hit.severity or rule.severity,
                    Phase.WATCH,
                    hit.message,
                    hit.module,
                    hit.location,
                    dict(hit.evidence),
                    hit.fix,
                )
            )
    return sorted(findings, key=Finding.sort_key), problems


def run_report(record: RunRecord, config: Config, model: nn.Module | None = None, name: str | None = None) -> Report:
    findings, problems = run_findings(record, config, model)
    target = TargetReport(
        name=name or (type(model).__name__ if model is not None else "training run"),
        file=record.script,
        graph=None,
        device=_device(model),
        findings=tuple(findings),
        notes=tuple(run_notes(record)),
        training_run=record,
    )
    return Report((target,), tuple(problems), config.fail_on)


def run_notes(record: RunRecord) -> list[str]:
    """What was watched, in a line or two: the scale of the run and how it ended."""
    evaluations = len(record.evaluations) or len(record.validation_losses())
    processes = f" on each of {record.world_size} processes" if record.world_size > 1 else ""
    notes = [
        f"watched {record.steps} optimizer steps over {record.epochs} epochs{processes}, {evaluations} validation passes; "
        f"per-layer statistics every {record.sample_every} steps"
    ]
    if record.crash:
        notes.append(f"the script crashed after {record.steps} steps: {record.crash}")
    if record.interrupted:
        notes.append(f"the run was interrupted (Ctrl-C) after {record.steps} steps: the report covers what ran")
    return notes


def _device(model: nn.Module | None) -> str | None:
    if model is None:
        return None
    parameter = next(model.parameters(), None)
    return str(parameter.device) if parameter is not None else None
