"""The output formats and the one interface in front of them: `render(report, format) -> str`."""

from __future__ import annotations

from nnlint.findings import StrEnum
from nnlint.render.common import assert_never
from nnlint.report import Report, install_formatter


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    JUNIT = "junit"


def render(report: Report, output_format: OutputFormat, *, color: bool = False, width: int | None = None) -> str:
    # Each format imported when asked for: a run renders one (junit's XML modules alone cost ~50 ms).
    match output_format:
        case OutputFormat.TEXT:
            from nnlint.render import text

            return text.render(report, color=color, width=width)
        case OutputFormat.JSON:
            from nnlint.render import json_format

            return json_format.render(report)
        case OutputFormat.SARIF:
            from nnlint.render import sarif

            return sarif.render(report)
        case OutputFormat.GITHUB:
            from nnlint.render import github

            return github.render(report)
        case OutputFormat.JUNIT:
            from nnlint.render import junit

            return junit.render(report)
        case _:
            assert_never(output_format)


def render_statistics(report: Report, output_format: OutputFormat) -> str:
    """`--statistics`: how many findings of each code, as text or json."""
    from nnlint.render import statistics

    match output_format:
        case OutputFormat.TEXT:
            return statistics.render_text(report)
        case OutputFormat.JSON:
            return statistics.render_json(report)
        case _:
            raise ValueError(f"--statistics prints text or json, not {output_format.value}")


def _format_for_report_methods(report: Report, output_format: str, color: bool) -> str:
    return render(report, OutputFormat(output_format), color=color)


install_formatter(_format_for_report_methods)  # Report.to_json() and Report.print() format through it
