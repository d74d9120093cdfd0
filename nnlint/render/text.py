"""The default report: rich text, one section per target, worst findings first."""

from __future__ import annotations

import io
import textwrap
import unicodedata

from rich.console import Console
from rich.text import Text

from nnlint.findings import Finding, Severity
from nnlint.render import display_path
from nnlint.report import Report, TargetReport

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render(report: Report, *, color: bool = False, width: int | None = None) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=width or 100, highlight=False, soft_wrap=False)
    for target in report.targets:
        _target(console, target)
    console.print(_summary(report))
    return buffer.getvalue()


def _target(console: Console, target: TargetReport) -> None:
    header = Text.assemble((_printable(display_path(target.file) or "<model>"), "bold"), " :: ", (_printable(target.name), "bold"))
    details = [f"graph: {target.graph.value}" if target.graph else "graph: none"]
    if target.device:
        details.append(f"device: {target.device}")
    header.append(f"  ({', '.join(details)})", style="dim")
    console.print(header, soft_wrap=True)
    for finding in target.findings:
        _finding(console, finding)
    if not target.findings:
        console.print(Text("  no findings", style="green"))
    for note in target.notes:
        console.print(_indented(f"note: {note}", console.width, indent=2), style="dim")
    for skipped in target.skipped:
        console.print(_indented(f"skipped {', '.join(skipped.codes)}: {skipped.reason}", console.width, indent=2), style="dim")
    console.print()


def _finding(console: Console, finding: Finding) -> None:
    where = _printable(f"{display_path(finding.location.file)}:{finding.location.line}") if finding.location else "-"
    line = Text.assemble(
        "  ",
        (where, "bold"),
        "  ",
        (finding.code, _STYLE[finding.severity]),
        " ",
        (finding.severity.value, _STYLE[finding.severity]),
        "  ",
        finding.name,
    )
    if finding.module:
        line.append(f"  [{_printable(finding.module)}]", style="magenta")
    console.print(line, soft_wrap=True)  # one line: a long module name must not push text to column 0
    console.print(_indented(finding.message, console.width))
    if finding.fix:
        fix = _indented(f"fix: {finding.fix}", console.width)
        fix.stylize("green", 4, 8)
        console.print(fix)


def _indented(text: str, width: int, indent: int = 4) -> Text:
    # Wrapped here rather than by rich, which would pad every line with trailing spaces.
    first, rest = " " * indent, " " * (indent + 2 if indent < 4 else indent)
    return Text(textwrap.fill(_printable(text), width=max(width, 40), initial_indent=first, subsequent_indent=rest, break_on_hyphens=False))


def _printable(text: str) -> str:
    """Control characters spelled out: a module name with a newline must not start a line of its
    own (in CI, a line starting with `::error` is a workflow command), nor an escape recolour it."""
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in ("Cc", "Cs") else char for char in text)


def _summary(report: Report) -> Text:
    counts = report.counts()
    total = sum(counts.values())
    parts = [f"{counts[s]} {s.value}{'s' if counts[s] != 1 else ''}" for s in Severity if counts[s]]
    targets = len(report.targets)
    text = Text(f"Found {total} finding{'s' if total != 1 else ''}", style="bold")
    if parts:
        text.append(f" ({', '.join(parts)})")
    text.append(f" in {targets} target{'s' if targets != 1 else ''}")
    if report.problems:
        text.append(f"; {len(report.problems)} could not be linted", style="bold red")
    text.append(".")
    return text
