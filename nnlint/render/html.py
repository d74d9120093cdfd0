"""`--html report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) with
the findings and plots of the training run: loss (training and validation, best epoch marked),
learning rate, and gradient norm per layer over time."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from nnlint.findings import Finding
from nnlint.render.common import display_path
from nnlint.render.run_series import run_series
from nnlint.report import Report, TargetReport
from nnlint.version import __version__

_WIDTH, _HEIGHT, _PAD = 720, 240, 48
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_MOST_LAYERS = 10

Series = tuple[str, Sequence[tuple[float, float]], str]


def render_html(report: Report) -> str:
    body = "\n".join(_target(target) for target in report.targets)
    problems = "".join(f"<li>{_e(p.message)}</li>" for p in report.problems)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nnlint watch report</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; }}
.finding {{ border-left: 4px solid #999; padding: .3em .8em; margin: .6em 0; background: #fafafa; }}
.error {{ border-color: #c00; }} .warning {{ border-color: #e0a000; }} .info {{ border-color: #08c; }}
.code {{ font-weight: bold; }} .where {{ font-family: monospace; color: #555; }} .fix {{ color: #060; }}
svg.chart {{ background: #fff; border: 1px solid #ddd; }} .note {{ color: #666; }}
</style></head>
<body>
<h1>nnlint {__version__}: training run report</h1>
{body}
{f"<h2>Problems</h2><ul>{problems}</ul>" if problems else ""}
</body></html>
"""


def _target(target: TargetReport) -> str:
    parts = [f"<h2>{_e(display_path(target.file) or target.name)} :: {_e(target.name)}</h2>"]
    parts += [_finding(finding) for finding in target.findings] or ['<p class="note">No findings.</p>']
    parts += [f'<p class="note">{_e(note)}</p>' for note in target.notes]
    if target.training_run is not None:
        parts.append(_plots(run_series(target.training_run)))
    return "\n".join(parts)


def _finding(finding: Finding) -> str:
    where = f"{display_path(finding.location.file)}:{finding.location.line}" if finding.location else ""
    module = f" [{finding.module}]" if finding.module else ""
    return (
        f'<div class="finding {finding.severity.value}"><span class="where">{_e(where)}</span> '
        f'<span class="code">{finding.code}</span> {finding.severity.value} {_e(finding.name)}{_e(module)}'
        f"<div>{_e(finding.message)}</div>" + (f'<div class="fix">fix: {_e(finding.fix)}</div>' if finding.fix else "") + "</div>"
    )


def _plots(series: dict) -> str:
    loss = [(float(s), float(v)) for s, v in series["loss"]]
    validation = [(float(v["step"]), float(v["loss"])) for v in series["validation"]]
    best = series["best"]
    marks = [(float(best["step"]), float(best["loss"]), f"best: epoch {best['epoch']}")] if best else []
    charts = [
        _chart(
            "loss",
            "Loss (training per step, validation per evaluation)",
            [("training", loss, _COLORS[0]), ("validation", validation, _COLORS[1])],
            marks=marks,
        ),
        _chart(
            "learning-rate", "Learning rate", [("learning rate", [(float(s), float(v)) for s, v in series["learning_rate"]], _COLORS[2])]
        ),
    ]
    layers = list(series["layer_grad_norm"].items())[:_MOST_LAYERS]
    if layers:
        lines = [
            (name or "(model)", [(float(s), float(v)) for s, v in points], _COLORS[i % len(_COLORS)])
            for i, (name, points) in enumerate(layers)
        ]
        charts.append(_chart("grad-norm", "Gradient norm per layer (sampled steps, log scale)", lines, log=True))
    else:
        charts.append(
            _chart(
                "grad-norm",
                "Gradient norm (global, log scale)",
                [("global", [(float(s), float(v)) for s, v in series["grad_norm"]], _COLORS[3])],
                log=True,
            )
        )
    return "\n".join(charts)


def _chart(name: str, title: str, lines: Sequence[Series], *, log: bool = False, marks: Sequence[tuple[float, float, str]] = ()) -> str:
    def y_of(value: float) -> float | None:
        if not math.isfinite(value) or (log and value <= 0):
            return None
        return math.log10(value) if log else value

    points = [(x, y) for _, pts, _ in lines for x, v in pts if (y := y_of(v)) is not None]
    svg = [
        f'<figure><figcaption>{_e(title)}</figcaption><svg class="chart" id="{name}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}">'
    ]
    if not points:
        svg.append(f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" fill="#888">nothing recorded</text></svg></figure>')
        return "".join(svg)
    x_low, x_high = min(x for x, _ in points), max(x for x, _ in points)
    y_low, y_high = min(y for _, y in points), max(y for _, y in points)
    x_span, y_span = (x_high - x_low) or 1.0, (y_high - y_low) or 1.0

    def place(x: float, y: float) -> tuple[float, float]:
        return (_PAD + (x - x_low) / x_span * (_WIDTH - 2 * _PAD), _HEIGHT - _PAD + -(y - y_low) / y_span * (_HEIGHT - 2 * _PAD))

    svg.append(f'<line x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}" y2="{_HEIGHT - _PAD}" stroke="#999"/>')
    svg.append(f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_HEIGHT - _PAD}" stroke="#999"/>')
    for y, anchor in ((y_low, _HEIGHT - _PAD), (y_high, _PAD)):
        label = f"1e{y:.1f}" if log else f"{y:.3g}"
        svg.append(f'<text x="{_PAD - 4}" y="{anchor + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{label}</text>')
    svg.append(f'<text x="{_PAD}" y="{_HEIGHT - _PAD + 14}" font-size="10" fill="#555">step {x_low:g}</text>')
    svg.append(f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - _PAD + 14}" text-anchor="end" font-size="10" fill="#555">step {x_high:g}</text>')
    for index, (label, pts, color) in enumerate(lines):
        placed = [place(x, y) for x, v in pts if (y := y_of(v)) is not None]
        if not placed:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in placed)
        svg.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="1.5" points="{path}">'
            f"<title>{_e(label)}</title></polyline>"
        )
        if len(placed) <= 60:
            svg += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2" fill="{color}"/>' for px, py in placed]
        svg.append(f'<text x="{_WIDTH - _PAD + 4}" y="{_PAD + 12 * index}" font-size="10" fill="{color}">{_e(label[:14])}</text>')
    for x, v, label in marks:
        y = y_of(v)
        if y is None:
            continue
        px, py = place(x, y)
        svg.append(f'<circle class="best" cx="{px:.1f}" cy="{py:.1f}" r="5" fill="none" stroke="#000" stroke-width="2"/>')
        svg.append(f'<text x="{px:.1f}" y="{py - 9:.1f}" text-anchor="middle" font-size="11">{_e(label)}</text>')
    svg.append("</svg></figure>")
    return "".join(svg)


def _e(text: str | None) -> str:
    return html.escape(text or "")
