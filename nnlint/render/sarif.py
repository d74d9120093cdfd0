"""`--format sarif`: SARIF 2.1.0, for GitHub code scanning and other static-analysis viewers.

One run; `tool.driver.rules` holds the whole catalogue with each rule's documentation; each
finding is a result located at the construction line of the submodule it is about. Paths
inside the working directory are relative URIs against `%SRCROOT%` (the working directory,
which is the repository root in CI); others are absolute `file:` URIs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nnlint.docs import rule_markdown
from nnlint.findings import Finding, Location, Severity
from nnlint.registry import Rule, all_rules
from nnlint.render.common import plain_json, relative_to_cwd
from nnlint.report import Problem, Report, TargetReport
from nnlint.version import __version__

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SOURCE_ROOT = "%SRCROOT%"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render(report: Report) -> str:
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"


def sarif_log(report: Report) -> dict[str, Any]:
    rules = all_rules()
    index = {rule.code: position for position, rule in enumerate(rules)}
    results = [_result(finding, target, index) for target in report.targets for finding in target.findings]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "nnlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_rule(rule) for rule in rules],
                    }
                },
                "originalUriBaseIds": {SOURCE_ROOT: {"uri": Path.cwd().resolve().as_uri().rstrip("/") + "/"}},
                "invocations": [_invocation(report)],
                "results": results,
            }
        ],
    }


def _rule(rule: Rule) -> dict[str, Any]:
    why = rule.sections.get("Why is this bad?", "")
    return {
        "id": rule.code,
        "name": rule.slug,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": "\n\n".join(part for part in (rule.sections.get("What it does", ""), why) if part) or rule.summary},
        "help": {"text": rule.doc, "markdown": rule_markdown(rule, level=2)},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["nnlint", rule.phase.value], "phase": rule.phase.value},
    }


def _result(finding: Finding, target: TargetReport, index: dict[str, int]) -> dict[str, Any]:
    message = finding.message + (f"\nFix: {finding.fix}" if finding.fix else "")
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "partialFingerprints": {"nnlint/v1": _fingerprint(finding, target)},
        "properties": plain_json(
            {
                "target": target.name,
                "module": finding.module,
                "phase": finding.phase.value,
                "fix": finding.fix,
                "evidence": finding.evidence,
            }
        ),
    }
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    location: dict[str, Any] = {}
    # Code scanning needs a line: a finding nnlint could not place goes on the target's file.
    physical = finding.location or (Location(target.file, 1) if target.file else None)
    if physical is not None:
        location["physicalLocation"] = _physical(physical)
    if finding.module:
        location["logicalLocations"] = [{"name": finding.module.rpartition(".")[2], "fullyQualifiedName": finding.module, "kind": "module"}]
    if location:
        result["locations"] = [location]
    return result


def _fingerprint(finding: Finding, target: TargetReport) -> str:
    """Stable while lines move: the rule, the target and the module, not the line number."""
    file = artifact_location(finding.location.file)["uri"] if finding.location else ""
    key = "\0".join((finding.code, target.name, finding.module or "", file))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _physical(location: Location) -> dict[str, Any]:
    return {"artifactLocation": artifact_location(location.file), "region": {"startLine": max(location.line, 1)}}


def artifact_location(file: str) -> dict[str, str]:
    """A relative URI against %SRCROOT% for files under the working directory, else a `file:` URI."""
    relative = relative_to_cwd(file)
    if relative is None:
        return {"uri": Path(file).resolve().as_uri()}
    return {"uri": quote(relative.as_posix()), "uriBaseId": SOURCE_ROOT}


def _invocation(report: Report) -> dict[str, Any]:
    """Files that could not be linted, as tool notifications: they are not findings about the code."""
    return {
        "executionSuccessful": not report.problems,
        "toolExecutionNotifications": [_notification(problem) for problem in report.problems],
    }


def _notification(problem: Problem) -> dict[str, Any]:
    notification: dict[str, Any] = {"level": "error", "message": {"text": problem.message}}
    if problem.file:
        notification["locations"] = [{"physicalLocation": {"artifactLocation": artifact_location(problem.file)}}]
    return notification
