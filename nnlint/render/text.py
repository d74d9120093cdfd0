"""The default report: rich text, one section per target, worst findings first."""

from __future__ import annotations

import io
import math
import textwrap
import unicodedata

from nnlint.findings import Severity
from nnlint.formatting import number
from nnlint.render.common import display_path
from nnlint.render.grouping import FindingGroup, compact_numbers, group_findings
from nnlint.render.rich_quietly import Console, Text
from nnlint.report import GradientFlow, GradientFlowLayer, Report, TargetReport

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
    details = [f"graph: {target.graph.value}" if target.graph else "graph: none"] if target.training_run is None else ["training run"]
    if target.device:
        details.append(f"device: {target.device}")
    header.append(f"  ({', '.join(details)})", style="dim")
    console.print(header, soft_wrap=True)
    # Repeated findings (the same mistake in each of 80 layers) are one entry; see render/grouping.py.
    for group in group_findings(target.findings):
        _finding(console, group)
    if not target.findings:
        console.print(Text("  no findings", style="green"))
    if target.gradient_flow is not None:
        _gradient_flow(console, target.gradient_flow)
    if target.training_run is not None:
        from nnlint.render.run_charts import training_run

        training_run(console, target.training_run)
    for note in target.notes:
        console.print(_indented(f"note: {note}", console.width, indent=2), style="dim")
    for skipped in target.skipped:
        console.print(_indented(f"skipped {', '.join(skipped.codes)}: {skipped.reason}", console.width, indent=2), style="dim")
    console.print()


def _finding(console: Console, group: FindingGroup) -> None:
    finding = group.first
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
    modules = group.modules
    if modules:
        line.append(f"  [{_printable(modules)}]", style="magenta")
    if len(group.members) > 1:
        lines = group.lines
        line.append(f"  ×{len(group.members)}" + (f" (lines {compact_numbers(lines)})" if len(lines) > 1 else ""), style="bold")
    console.print(line, soft_wrap=True)  # one line: a long module name must not push text to column 0
    body = _indented(group.message, console.width)
    fix = group.fix
    if fix:
        fix_text = _indented(f"fix: {fix}", console.width)
        fix_text.stylize("green", 4, 8)
        body.append("\n").append_text(fix_text)
    console.print(body)  # one print for both: each print costs rich about as much as its wrapping


def _indented(text: str, width: int, indent: int = 4) -> Text:
    # Wrapped here rather than by rich, which would pad every line with trailing spaces.
    first, rest = " " * indent, " " * (indent + 2 if indent < 4 else indent)
    return Text(textwrap.fill(_printable(text), width=max(width, 40), initial_indent=first, subsequent_indent=rest, break_on_hyphens=False))


def _printable(text: str) -> str:
    """Control characters spelled out: a module name with a newline must not start a line of its
    own (in CI, a line starting with `::error` is a workflow command), nor an escape recolour it."""
    return "".join(repr(char)[1:-1] if unicodedata.category(char) in ("Cc", "Cs") else char for char in text)


# -- the gradient-flow chart (the probe's per-layer gradient norms) ----------------------------------
_BAR_WIDTH = 40
_NAME_WIDTH = 28
_MOST_ROWS = 60  # deeper models show their first and last layers


def _gradient_flow(console: Console, flow: GradientFlow) -> None:
    """One bar per layer, input to output, on a log scale, with NN801/NN802's thresholds as columns."""
    norms = [layer.grad_norm for layer in flow.layers]
    vanishing = min(flow.vanishing_below, flow.vanishing_floor)
    marks = [v for v in (vanishing, flow.exploding_above) if v > 0 and math.isfinite(v)]
    positive = [v for v in norms if v > 0 and math.isfinite(v)] + marks
    if not positive:
        return
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    high = max(high, low + 1)

    def column(value: float) -> int:
        return round((math.log10(value) - low) / (high - low) * _BAR_WIDTH)

    vanish_col, explode_col = column(vanishing) if vanishing > 0 else -1, column(flow.exploding_above)
    console.print(Text("  gradient flow: weight-gradient norm per layer, input → output (log scale)", style="bold"))
    rows: list[tuple[int, GradientFlowLayer | None]] = list(enumerate(flow.layers))
    if len(rows) > _MOST_ROWS:
        rows = rows[: _MOST_ROWS // 2] + [(-1, None)] + rows[-_MOST_ROWS // 2 :]
    for index, layer in rows:
        if layer is None:
            console.print(Text(f"    {'…':<{_NAME_WIDTH}} ({len(flow.layers) - _MOST_ROWS} more layers)", style="dim"))
            continue
        value = layer.grad_norm
        length = column(value) if value > 0 and math.isfinite(value) else 0
        bar = Text("    " + _short(_printable(layer.module) or "(model)", _NAME_WIDTH).ljust(_NAME_WIDTH) + " ")
        style = _bar_style(index, value, vanishing, flow)
        for position in range(_BAR_WIDTH + 1):
            if position < length:
                bar.append("█", style=style)
            elif position in (vanish_col, explode_col):
                bar.append("┆", style="red")
            else:
                bar.append(" ")
        bar.append(f" {_number(value)}" if math.isfinite(value) else " non-finite", style="dim")
        console.print(bar)
    axis = [" "] * (_BAR_WIDTH + 12)
    for decade in range(low, high + 1, max(1, (high - low + 3) // 4)):
        label = f"1e{decade:+03d}"
        start = column(10.0**decade)
        axis[start : start + len(label)] = label
    console.print(Text("    " + " " * (_NAME_WIDTH + 1) + "".join(axis).rstrip(), style="dim"))
    legend = Text("    ")
    legend.append("┆", style="red")
    legend.append(
        f" the first layer's thresholds: vanishing below {_number(vanishing)}, exploding above {_number(flow.exploding_above)}", style="dim"
    )
    console.print(legend)


def _bar_style(index: int, value: float, vanishing: float, flow: GradientFlow) -> str:
    if index == 0 and (value < vanishing or value > flow.exploding_above):
        return "red"
    return "cyan"


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _number(value: float) -> str:
    return number(value, plain_from=1e-2, plain_below=1e3)  # the chart's axis labels: a narrower plain range


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
