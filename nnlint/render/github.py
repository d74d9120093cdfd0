"""`--format github`: GitHub Actions workflow commands, shown as annotations on the pull request.

    ::warning file=models/net.py,line=12,title=NN104 bias-before-batchnorm::Conv2d `features.0` has a bias…

Escaping follows the workflow-command rules (actions/toolkit `command.ts`): in the message,
`%`, CR and LF; in a property value, also `:` and `,`.
"""

from __future__ import annotations

from nnlint.findings import Finding, Severity
from nnlint.render.common import display_path
from nnlint.report import Report

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render(report: Report) -> str:
    lines = [_finding(finding, target.file) for target in report.targets for finding in target.findings]
    lines += [
        _command("error", problem.message, file=display_path(problem.file), title="nnlint: not linted") for problem in report.problems
    ]
    return "".join(f"{line}\n" for line in lines)


def _finding(finding: Finding, target_file: str | None) -> str:
    message = finding.message + (f"\nfix: {finding.fix}" if finding.fix else "")
    location = finding.location
    return _command(
        COMMANDS[finding.severity],
        message,
        file=display_path(location.file if location else target_file),  # unplaced: on the target's file
        line=str(location.line) if location else None,
        title=f"{finding.code} {finding.name}",
    )


def _command(command: str, message: str, **properties: str | None) -> str:
    given = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items() if value is not None)
    return f"::{command}{' ' + given if given else ''}::{escape_data(message)}"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
