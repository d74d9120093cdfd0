"""The training run in the text report: loss, validation loss (best epoch marked), learning rate and
gradient norm as one-line charts."""

from __future__ import annotations

import math

from rich.console import Console
from rich.text import Text

from nnlint.watch.charts import resample, sparkline
from nnlint.watch.series import RunRecord

_WIDTH = 48
_LABEL = 17


def training_run(console: Console, run: RunRecord) -> None:
    console.print(Text(f"  training run: {run.steps} steps, {run.epochs} epochs", style="bold"))
    _row(console, "training loss", run.losses, f"{_ends(run.losses)}", "cyan")
    validation = run.validation_losses()
    if validation:
        losses = [loss for _, _, loss in validation]
        best = run.best_validation()
        where = f"epoch {best[1]}" if best and run.epochs else f"step {best[0]}" if best else ""
        label = f"{_ends(losses)}" + (f", best {_number(best[2])} at {where}" if best else "")
        _row(console, "validation loss", losses, label, "magenta")
        if best is not None:
            index = next(i for i, v in enumerate(validation) if v == best)
            column = index * min(len(losses), _WIDTH) // len(losses)
            console.print(Text(" " * (4 + _LABEL) + " " * column + "▲ best", style="magenta"))
    _row(console, "learning rate", run.learning_rates, _ends(run.learning_rates), "green")
    _row(console, "gradient norm", run.grad_norms, _ends(run.grad_norms), "yellow", log=True)


def _row(console: Console, label: str, values: tuple[float, ...] | list[float], summary: str, style: str, log: bool = False) -> None:
    if not values:
        return
    line = Text("    " + label.ljust(_LABEL))
    line.append(sparkline(values, _WIDTH, log=log), style=style)
    line.append(f"  {summary}", style="dim")
    console.print(line, soft_wrap=True)


def _ends(values: tuple[float, ...] | list[float]) -> str:
    points = resample(values, _WIDTH)
    return f"{_number(points[0])} → {_number(points[-1])}" if points else ""


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2e}" if value and not 1e-2 <= abs(value) < 1e3 else f"{value:.3g}"
