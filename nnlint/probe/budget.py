"""Fitting the probe to `--probe-budget`: how many samples, how many steps, which optional checks.

The probe's work is counted in training steps: one forward → loss → backward on the samples it
trains on. A step's cost is measured, never guessed from the model's size: first from one
training-mode forward on one sample (on the fewest allowed where the model trains BatchNorm,
rejects a single sample or runs on an accelerator; `Session._seconds_per_sample` runs it before
the first step, only when fewer samples than the batch are allowed at all), which chooses the
samples; then the first real step itself, which chooses how many more steps and which optional
checks fit in what is left. Each measurement keeps what its statistics need
(`Session._samples_needed`): BatchNorm's need the training batch, real data's input statistics
need all of it, gradient flow and the rest need two samples. The cost of the other work, relative
to one step, is a fixed table below (`_CHECK_COST`), measured on the bench models of bench/realworld/.

Two cuts come before this arithmetic and change no measurement: the session stops after the
first step when the next ones would repeat it (`Session._repeats_first_step`: no random number
drawn, no buffer but BatchNorm's written), and the engine probes a fully convolutional model
given no input on smaller made-up images (`nnlint.inputs.smaller_probe_image`).

Everything here is arithmetic; nothing runs the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnlint.measures import Measure

# The first step also takes every statistic (inputs, activations, module outputs): it costs more.
FIRST_STEP_COST = 1.3
# Optional work, in training steps at the same samples. The evaluation forward serves determinism,
# the train-eval gap and sample mixing at once; mixing adds a backward to the inputs.
_EVALUATION_FORWARD = 0.4
_CHECK_COST = {
    Measure.SAMPLE_MIXING: 0.45,
    Measure.UPDATE_RATIOS: 0.05,
}
_EVALUATION_MEASURES = frozenset({Measure.EVAL_DETERMINISM, Measure.TRAIN_EVAL_GAP, Measure.SAMPLE_MIXING})
# Checks left out first when they do not fit: the dearest and the least often decisive first.
DROP_ORDER = (Measure.OVERFIT, Measure.SAMPLE_MIXING, Measure.EVAL_DETERMINISM, Measure.TRAIN_EVAL_GAP, Measure.UPDATE_RATIOS)
OVERFIT_STEPS_COST = 50.0  # --deep's overfit run: 50 steps on a handful of samples


@dataclass(frozen=True)
class Plan:
    samples: int
    steps: int
    measures: frozenset[Measure]


def checks_cost(measures: frozenset[Measure], chunked: bool, overfit_fraction: float) -> float:
    """The optional work after the steps, in training steps."""
    cost = _EVALUATION_FORWARD if measures & _EVALUATION_MEASURES else 0.0
    cost += sum(_CHECK_COST.get(measure, 0.0) for measure in measures)
    if Measure.TRAIN_EVAL_GAP in measures and chunked:
        cost += 2 * _EVALUATION_FORWARD  # two training-mode forwards over the batch in pieces
    if Measure.OVERFIT in measures:
        cost += OVERFIT_STEPS_COST * overfit_fraction
    return cost


def minimum_steps(measures: frozenset[Measure], chunked: bool) -> int:
    """The train-eval gap compares the first two training steps (unless it runs its own, chunked)."""
    return 2 if Measure.TRAIN_EVAL_GAP in measures and not chunked else 1


def samples_to_train_on(
    seconds: float, per_sample: float, batch: int, fewest: int, measures: frozenset[Measure], chunk: int, overfit_samples: int
) -> int:
    """The most samples (between `fewest` and `batch`) whose steps and checks fit `seconds`, at
    `per_sample` seconds a sample for one step (an upper bound: a step's fixed cost is counted
    once per sample). `fewest` when even that does not fit: one step always runs."""
    for samples in range(batch, fewest - 1, -1):
        chunked = 1 < chunk < samples
        work = FIRST_STEP_COST + minimum_steps(measures, chunked) - 1
        work += checks_cost(measures, chunked, min(overfit_samples, samples) / samples)
        if work * per_sample * samples <= seconds:
            return samples
    return fewest


def after_first_step(
    seconds_left: float, step_seconds: float, steps: int, measures: frozenset[Measure], chunked: bool, overfit_fraction: float
) -> tuple[int, frozenset[Measure]]:
    """How many steps in all, and which checks, fit `seconds_left` after the first step took
    `step_seconds` (first-step statistics included). Checks are kept before extra steps: a left-out
    check loses a finding, a left-out step only averages one batch less."""
    step = step_seconds / FIRST_STEP_COST
    kept = set(measures)
    for measure in (None, *DROP_ORDER):
        if measure is not None:
            kept.discard(measure)
        chosen = frozenset(kept)
        fewest = minimum_steps(chosen, chunked)
        room = seconds_left - checks_cost(chosen, chunked, overfit_fraction) * step
        if room >= (fewest - 1) * step:
            more = math.floor(room / step) if step > 0 else steps
            return max(fewest, min(steps, 1 + more)), chosen
    return minimum_steps(frozenset(kept), chunked), frozenset(kept)
