"""A file's lint result as JSON, and back: how a child process hands its result to the CLI.

JSON rather than pickle: a child runs the user's code, and whatever it sends is only data to the
parent (decoding JSON cannot run code). Evidence values become what the JSON report would show
anyway (numbers, strings, lists, mappings); NaN and infinities travel as JSON's extensions.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from nnlint.file_result import FileResult
from nnlint.findings import Finding, GraphMethod, Location, Phase, Severity
from nnlint.report import GradientFlow, GradientFlowLayer, Problem, SkippedChecks, TargetReport
from nnlint.suppression import Suppression, SuppressionLedger


class WireError(ValueError):
    """A message that is not a file result (a child that wrote garbage into its result pipe)."""


def encode_file_result(result: FileResult) -> dict[str, Any]:
    ledger = result.ledger
    return {
        "path": result.path,
        "reports": [_encode_target(report) for report in result.reports],
        "problems": [[problem.file, problem.message] for problem in result.problems],
        "tracebacks": list(result.tracebacks),
        "ledger": {
            "used": [[_encode_suppression(suppression), code] for suppression, code in sorted(ledger.used, key=repr)],
            "consulted_by": dict(ledger.consulted_by),
            "comments": {file: [_encode_suppression(s) for s in comments] for file, comments in ledger.comments.items()},
        },
    }


def decode_file_result(data: Any) -> FileResult:
    """The result a child sent; WireError if it is not one."""
    try:
        ledger = data["ledger"]
        return FileResult(
            path=_text(data["path"]),
            reports=tuple(_decode_target(report) for report in data["reports"]),
            problems=tuple(Problem(_optional_text(file), _text(message)) for file, message in data["problems"]),
            tracebacks=tuple(_text(text) for text in data["tracebacks"]),
            ledger=SuppressionLedger(
                used={(_decode_suppression(s), _text(code)) for s, code in ledger["used"]},
                consulted_by={_text(file): _index(index) for file, index in ledger["consulted_by"].items()},
                comments={_text(file): tuple(_decode_suppression(s) for s in comments) for file, comments in ledger["comments"].items()},
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise WireError(f"not a file result: {error!r}"[:200]) from None


# -- pieces --------------------------------------------------------------------------------------


def _encode_target(report: TargetReport) -> dict[str, Any]:
    flow = report.gradient_flow
    return {
        "name": report.name,
        "file": report.file,
        "graph": report.graph.value if report.graph else None,
        "device": report.device,
        "findings": [_encode_finding(finding) for finding in report.findings],
        "skipped": [[list(skipped.codes), skipped.reason] for skipped in report.skipped],
        "notes": list(report.notes),
        "gradient_flow": None
        if flow is None
        else {
            "layers": [[layer.module, layer.grad_norm] for layer in flow.layers],
            "vanishing_below": flow.vanishing_below,
            "vanishing_floor": flow.vanishing_floor,
            "exploding_above": flow.exploding_above,
            "loss": flow.loss,
        },
    }


def _decode_target(data: Mapping[str, Any]) -> TargetReport:
    flow = data["gradient_flow"]
    return TargetReport(
        name=_text(data["name"]),
        file=_optional_text(data["file"]),
        graph=GraphMethod(data["graph"]) if data["graph"] is not None else None,
        device=_optional_text(data["device"]),
        findings=tuple(_decode_finding(finding) for finding in data["findings"]),
        skipped=tuple(SkippedChecks(tuple(_text(code) for code in codes), _text(reason)) for codes, reason in data["skipped"]),
        notes=tuple(_text(note) for note in data["notes"]),
        gradient_flow=None
        if flow is None
        else GradientFlow(
            layers=tuple(GradientFlowLayer(_text(module), _number(norm)) for module, norm in flow["layers"]),
            vanishing_below=_number(flow["vanishing_below"]),
            vanishing_floor=_number(flow["vanishing_floor"]),
            exploding_above=_number(flow["exploding_above"]),
            loss=_text(flow["loss"]),
        ),
    )


def _encode_finding(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.value,
        "phase": finding.phase.value,
        "message": finding.message,
        "module": finding.module,
        "location": _encode_location(finding.location),
        "evidence": _plain(dict(finding.evidence)),
        "fix": finding.fix,
    }


def _decode_finding(data: Mapping[str, Any]) -> Finding:
    evidence = data["evidence"]
    if not isinstance(evidence, dict):
        raise TypeError("evidence is not a mapping")
    return Finding(
        code=_text(data["code"]),
        name=_text(data["name"]),
        severity=Severity(data["severity"]),
        phase=Phase(data["phase"]),
        message=_text(data["message"]),
        module=_optional_text(data["module"]),
        location=_decode_location(data["location"]),
        evidence=evidence,
        fix=_text(data["fix"]),
    )


def _encode_location(location: Location | None) -> list[Any] | None:
    return None if location is None else [location.file, location.line]


def _decode_location(data: Any) -> Location | None:
    if data is None:
        return None
    file, line = data
    return Location(_text(file), _index(line))


def _encode_suppression(suppression: Suppression) -> list[Any]:
    return [_encode_location(suppression.location), list(suppression.codes), suppression.whole_file]


def _decode_suppression(data: Any) -> Suppression:
    location, codes, whole_file = data
    decoded = _decode_location(location)
    if decoded is None or not isinstance(whole_file, bool):
        raise TypeError("not a suppression")
    return Suppression(decoded, tuple(_text(code) for code in codes), whole_file)


def _plain(value: Any) -> Any:
    """Evidence as JSON data, the way the JSON report reads it (nnlint.render.plain_json), except
    that NaN and infinities stay numbers here: the renderers spell them out."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    return str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _index(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)
