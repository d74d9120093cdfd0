"""A recorded training run as plain data: the series the NN6 findings read, for JSON and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnlint.render.common import display_path
from nnlint.watch.series import RunRecord

MOST_POINTS = 500  # per series; longer runs are thinned evenly (the findings carry their own numbers)


def run_series(run: RunRecord) -> dict[str, Any]:
    best = run.best_validation()
    return {
        "steps": run.steps,
        "epochs": run.epochs,
        "world_size": run.world_size,
        "sample_every": run.sample_every,
        "epoch_starts": list(run.epoch_starts),
        "loss": _points(run.losses),
        "grad_norm": _points(run.grad_norms),
        "learning_rate": _points(run.learning_rates),
        "validation": [{"step": step, "epoch": epoch, "loss": loss} for step, epoch, loss in run.validation_losses()],
        "best": {"step": best[0], "epoch": best[1], "loss": best[2]} if best else None,
        "layer_grad_norm": {layer: [[step, norm] for step, norm in points] for layer, points in run.layer_grad_norms().items()},
        "logged": {name: [[step, value] for step, value in values] for name, values in run.logged.items()},
        "crash": run.crash,
        "interrupted": run.interrupted,
        "script": display_path(run.script),
    }


def _points(values: Sequence[float]) -> list[list[float]]:
    """[[step, value], …], at most MOST_POINTS of them."""
    stride = max(1, -(-len(values) // MOST_POINTS))
    return [[index + 1, values[index]] for index in range(0, len(values), stride)]
