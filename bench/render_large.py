"""Rendering a large report: 1000 findings, as text (rich) and as JSON.

Two reports: 1000 distinct findings (nothing groups: the text renderer's worst case) and the same
mistake on 1000 modules `layers.0.fc` … `layers.999.fc` (one grouped entry in text, 1000 in JSON).

    python bench/render_large.py [--findings N] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from nnlint.findings import Finding, Location, Phase, Severity  # noqa: E402
from nnlint.render import OutputFormat, render  # noqa: E402
from nnlint.report import Report, TargetReport  # noqa: E402

MESSAGE = "has std {std:.3g}, 22.6× larger than the He scale √(2/1024) = 0.0442: activations and gradients grow at this layer"


def report(count: int, repeated: bool) -> Report:
    def finding(index: int) -> Finding:
        module = f"layers.{index}.fc" if repeated else f"block{index}_fc"
        std = 1.0 if repeated else 1 + index / 1000
        line = 12 if repeated else 12 + index
        message = f"`{module}.weight` " + MESSAGE.format(std=std)
        location = Location("model.py", line)
        return Finding("NN402", "initialization-scale", Severity.WARNING, Phase.STATIC, message, module, location, fix="fix it")

    return Report((TargetReport("model", "model.py", None, None, tuple(finding(i) for i in range(count))),))


def seconds(report_: Report, output_format: OutputFormat, repeat: int) -> tuple[float, int]:
    times, lines = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        lines = render(report_, output_format).count("\n")
        times.append(time.perf_counter() - start)
    return statistics.median(times), lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print(f"{'report':<28} {'format':<6} {'median s':>9} {'lines':>6}")
    for name, repeated in (("distinct findings", False), ("one mistake on every layer", True)):
        built = report(options.findings, repeated)
        for output_format in (OutputFormat.TEXT, OutputFormat.JSON):
            elapsed, lines = seconds(built, output_format, options.repeat)
            print(f"{name:<28} {output_format.value:<6} {elapsed:>9.3f} {lines:>6}")


if __name__ == "__main__":
    main()
