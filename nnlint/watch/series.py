"""What a watched training run recorded, read back to the host: plain frozen data the NN6 rules read.

The recorder (nnlint/watch/recorder.py) keeps its per-step scalars on the device while the run goes
on; `Recorder.record()` turns them into a `RunRecord` once, at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from nnlint.findings import Location


@dataclass(frozen=True)
class Evaluation:
    """One validation pass: forwards under no_grad/inference_mode, or on a loader other than training's."""

    step: int  # optimizer steps taken before it
    epoch: int  # training epochs begun before it (1 = during or after the first)
    loss: float | None  # mean of what the loss function returned there; None when no loss was computed
    batches: int
    train_mode_modules: tuple[str, ...] = ()  # dropout/BatchNorm modules left in training mode (NN610)
    # NN609's train/eval gap: the pass's first batch (at most 32 samples) as evaluated, BatchNorm using its running
    # statistics, and the same samples with BatchNorm normalizing by their own statistics as in training
    running_statistics_loss: float | None = None
    batch_statistics_loss: float | None = None


@dataclass(frozen=True)
class LayerSample:
    """Per-layer statistics measured on one sampled training step."""

    step: int
    grad_norms: Mapping[str, float] = field(default_factory=dict)  # module path -> norm of its own parameters' gradients
    dead_fractions: Mapping[str, float] = field(default_factory=dict)  # ReLU path -> share of units never active on the batch
    batchnorm_shifts: Mapping[str, float] = field(default_factory=dict)  # BatchNorm path -> |batch mean - running mean| / running std


@dataclass(frozen=True)
class SchedulerRecord:
    name: str  # the class: StepLR, OneCycleLR, ...
    location: Location | None  # where it was constructed (or first stepped)
    calls: tuple[int, ...]  # optimizer steps taken before each of its `step()` calls
    period: float | None  # its schedule length in its own units: step_size, last milestone, T_max, total_steps


@dataclass(frozen=True)
class EvalModeTraining:
    """Optimizer steps taken while the model was in evaluation mode (NN605)."""

    first_step: int
    steps: int
    modules: tuple[str, ...]  # the dropout/BatchNorm modules whose behaviour that changed


@dataclass(frozen=True)
class NonFiniteLoss:
    step: int
    rank: int | None  # the process that saw it first, under torch.distributed
    value: float
    op: str | None = None  # what produced the first non-finite value in the replayed forward
    module: str | None = None
    location: Location | None = None
    replayed: bool = False  # the forward was replayed on that step's input (op None then: the model's outputs were finite)


@dataclass(frozen=True)
class RunRecord:
    losses: tuple[float, ...]  # training loss at each optimizer step (nan where no backward was seen)
    grad_norms: tuple[float, ...]  # global gradient norm before each optimizer step
    learning_rates: tuple[float, ...]  # first parameter group's learning rate at each step
    epoch_starts: tuple[int, ...]  # optimizer steps taken when each training epoch began
    evaluations: tuple[Evaluation, ...] = ()
    layers: tuple[LayerSample, ...] = ()
    schedulers: tuple[SchedulerRecord, ...] = ()
    eval_mode_training: EvalModeTraining | None = None
    non_finite: NonFiniteLoss | None = None
    logged: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)  # nnlint.watch.log(name, value, step)
    save_steps: tuple[int, ...] = ()  # optimizer steps taken when `torch.save` was called
    restore_steps: tuple[int, ...] = ()  # ... when the model's `load_state_dict` was called
    module_locations: Mapping[str, Location] = field(default_factory=dict)
    optimizer_location: Location | None = None
    loop_location: Location | None = None  # the line that iterates the training DataLoader
    epoch_loop_location: Location | None = None  # the loop around it (one pass per epoch)
    script: str | None = None
    crash: str | None = None  # the exception that ended the run, in one line
    interrupted: bool = False
    world_size: int = 1
    sample_every: int = 0

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def epochs(self) -> int:
        return len(self.epoch_starts)

    def epoch_of(self, step: int) -> int:
        """The 1-based training epoch during (or after) which `step` optimizer steps had been taken."""
        return sum(1 for start in self.epoch_starts if start <= step) or 1

    def epoch_ended_by(self, step: int) -> int:
        """The epoch a measurement after `step` optimizer steps closes: the last one begun before it."""
        return max(1, sum(1 for start in self.epoch_starts if start < step))

    def epoch_losses(self) -> list[float]:
        """Mean finite training loss of each epoch (nan for an epoch without one)."""
        bounds = [*self.epoch_starts, self.steps] if self.epoch_starts else [0, self.steps]
        means = []
        for start, end in zip(bounds, bounds[1:], strict=False):
            values = [v for v in self.losses[start:end] if math.isfinite(v)]
            means.append(sum(values) / len(values) if values else math.nan)
        return means

    def validation_losses(self) -> list[tuple[int, int, float]]:
        """(step, epoch, loss) per evaluation that measured a loss; a logged `val_loss` wins over the heuristic."""
        for name in VALIDATION_LOSS_NAMES:
            if name in self.logged:
                return [(step, self.epoch_ended_by(step), value) for step, value in self.logged[name]]
        return [(e.step, e.epoch, e.loss) for e in self.evaluations if e.loss is not None]

    def best_validation(self) -> tuple[int, int, float] | None:
        """(step, epoch, loss) of the lowest validation loss."""
        finite = [v for v in self.validation_losses() if math.isfinite(v[2])]
        return min(finite, key=lambda v: v[2]) if finite else None

    def batchnorm_gaps(self) -> list[tuple[int, int, float]]:
        """(step, epoch, gap) per evaluation that measured it: how much higher the loss was with BatchNorm's running
        statistics than with the batch's own, relative to the latter (0.5: half as high again)."""
        return [
            (e.step, e.epoch, e.running_statistics_loss / e.batch_statistics_loss - 1)
            for e in self.evaluations
            if e.running_statistics_loss is not None
            and e.batch_statistics_loss is not None
            and math.isfinite(e.running_statistics_loss)
            and math.isfinite(e.batch_statistics_loss)
            and e.batch_statistics_loss > 0
        ]

    def layer_grad_norms(self) -> dict[str, list[tuple[int, float]]]:
        """Per layer, its sampled gradient norms as (step, norm), in model order."""
        series: dict[str, list[tuple[int, float]]] = {}
        for sample in self.layers:
            for layer, norm in sample.grad_norms.items():
                series.setdefault(layer, []).append((sample.step, norm))
        return series

    def location_of(self, module: str) -> Location | None:
        return self.module_locations.get(module)


# Metric names that mean "the validation loss" when a script or a framework logs them itself.
VALIDATION_LOSS_NAMES = ("val_loss", "val/loss", "valid_loss", "validation_loss", "eval_loss", "eval/loss")
