"""`--statistics`: how many findings of each code across every file, most frequent first."""

from __future__ import annotations

import json

from nnlint.report import Report


def render_text(report: Report) -> str:
    rows = [(str(row.count), row.code, row.severity.value, row.name) for row in report.statistics()]
    if not rows:
        return "No findings.\n"
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [f"{count:>{widths[0]}}  {code:<{widths[1]}}  {severity:<{widths[2]}}  {name}" for count, code, severity, name in rows]
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    rows = [{"code": row.code, "name": row.name, "severity": row.severity.value, "count": row.count} for row in report.statistics()]
    return json.dumps(rows, indent=2) + "\n"
