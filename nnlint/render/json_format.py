"""`--format json`: the stable machine-readable report (schema: docs/report.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from nnlint.findings import Finding
from nnlint.render.common import display_path, plain_json
from nnlint.report import GradientFlow, Report, TargetReport
from nnlint.version import __version__


def render(report: Report) -> str:
    return json.dumps(plain_json(report_dict(report)), indent=2, ensure_ascii=False)


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "nnlint": __version__,
        "targets": [_target(target) for target in report.targets],
        "errors": [{"file": display_path(problem.file), "message": problem.message} for problem in report.problems],
        "summary": {severity.value: count for severity, count in sorted(report.counts().items())} | {"exit_code": report.exit_code},
    }


def _target(target: TargetReport) -> dict[str, Any]:
    fields = {
        "name": target.name,
        "file": display_path(target.file),
        "graph": target.graph.value if target.graph else None,
        "device": target.device,
        "findings": [finding_dict(finding) for finding in target.findings],
        "skipped": [{"codes": list(skipped.codes), "reason": skipped.reason} for skipped in target.skipped],
        "notes": list(target.notes),
        "gradient_flow": _gradient_flow(target.gradient_flow),
    }
    if target.training_run is not None:
        from nnlint.render.run_series import run_series

        fields["training_run"] = run_series(target.training_run)
    return fields


def _gradient_flow(flow: GradientFlow | None) -> dict[str, Any] | None:
    """The probe's per-layer weight-gradient norms (input → output) and NN801/NN802's thresholds."""
    if flow is None:
        return None
    return {
        "layers": [{"module": layer.module, "grad_norm": layer.grad_norm} for layer in flow.layers],
        "vanishing_below": flow.vanishing_below,
        "vanishing_floor": flow.vanishing_floor,
        "exploding_above": flow.exploding_above,
        "loss": flow.loss,
    }


def finding_dict(finding: Finding) -> dict[str, Any]:
    location = finding.location
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.value,
        "phase": finding.phase.value,
        "message": finding.message,
        "module": finding.module,
        "location": {"file": display_path(location.file), "line": location.line} if location else None,
        "evidence": dict(finding.evidence),
        "fix": finding.fix,
    }
