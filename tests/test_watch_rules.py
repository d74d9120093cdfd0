"""The NN6 rules as pure functions of a recorded run: the edges the training-script fixtures do not
reach (spikes against noise, schedules written in iterations, checkpoints that keep the best
weights, gradients that start at zero)."""

from __future__ import annotations

import math
import random

from nnlint.config import Config
from nnlint.watch.analysis import run_findings
from nnlint.watch.series import Evaluation, LayerSample, RunRecord, SchedulerRecord


def codes(record: RunRecord) -> list[str]:
    findings, problems = run_findings(record, Config())
    assert problems == []
    return [finding.code for finding in findings]


def noisy(n: int, level: float, seed: int = 0, spread: float = 0.3) -> list[float]:
    generator = random.Random(seed)
    return [level * (1 + spread * (generator.random() - 0.5)) for _ in range(n)]


def run(losses: list[float], **fields) -> RunRecord:
    steps = len(losses)
    defaults = dict(
        grad_norms=tuple([1.0] * steps),
        learning_rates=tuple(fields.pop("learning_rates", [0.1] * steps)),
        epoch_starts=tuple(range(0, steps, 10)),
        schedulers=(SchedulerRecord("StepLR", None, tuple(range(10, steps, 10)), 30.0),),  # a schedule: NN602 stays out
    )
    defaults.update(fields)
    return RunRecord(losses=tuple(losses), **defaults)


def test_a_sustained_spike_is_divergence_and_a_noisy_loss_is_not():
    calm = noisy(200, 1.0)
    assert "NN604" not in codes(run(calm))
    spiked = calm[:120] + [5.0] * 6 + calm[126:]
    (finding,) = [f for f in run_findings(run(spiked), Config())[0] if f.code == "NN604"]
    assert finding.evidence["step"] == 120 and math.isclose(finding.evidence["window_mean"], sum(calm[20:120]) / 100)
    # A spike shorter than patience + 1 (5) steps is a bad batch, not divergence (KillLossSpike's rule).
    assert "NN604" not in codes(run(calm[:120] + [5.0] * 4 + calm[124:]))


def test_a_schedule_written_in_iterations_may_step_every_batch():
    # MultiStepLR(milestones=[600, 800]) stepped per batch over 10 epochs of 100 steps: intended (detectron style).
    losses = noisy(1000, 1.0)
    iterations = SchedulerRecord("MultiStepLR", None, tuple(range(1000)), 800.0)
    assert "NN603" not in codes(run(losses, schedulers=(iterations,), epoch_starts=tuple(range(0, 1000, 100))))
    epochs = SchedulerRecord("MultiStepLR", None, tuple(range(1000)), 8.0)  # milestones in epochs, stepped per batch
    assert "NN603" in codes(run(losses, schedulers=(epochs,), epoch_starts=tuple(range(0, 1000, 100))))


def test_a_one_cycle_schedule_stepped_once_per_epoch_is_flagged():
    losses = noisy(500, 1.0)
    per_epoch = SchedulerRecord("OneCycleLR", None, tuple(range(0, 500, 100)), 500.0)  # total_steps = epochs x batches
    assert "NN603" in codes(run(losses, schedulers=(per_epoch,), epoch_starts=tuple(range(0, 500, 100))))
    per_step = SchedulerRecord("OneCycleLR", None, tuple(range(500)), 500.0)
    assert "NN603" not in codes(run(losses, schedulers=(per_step,), epoch_starts=tuple(range(0, 500, 100))))


def _overfitting(**fields) -> RunRecord:
    train = [1.0 / (1 + step / 20) for step in range(200)]
    validation = [0.9 - 0.05 * e for e in range(6)] + [0.65 + 0.05 * e for e in range(14)]
    logged = {"val_loss": tuple(((e + 1) * 10, v) for e, v in enumerate(validation))}
    return run(train, logged=logged, **fields)


def test_no_early_stopping_is_silent_when_the_best_weights_were_kept():
    assert "NN601" in codes(_overfitting())
    assert "NN601" not in codes(_overfitting(save_steps=(60,)))  # torch.save right after the best evaluation (epoch 6)
    assert "NN601" not in codes(_overfitting(restore_steps=(200,)))  # the best weights loaded at the end
    assert "NN601" in codes(_overfitting(save_steps=(200,)))  # saving the last weights keeps nothing


def test_a_layer_that_starts_near_zero_and_grows_is_not_exploding():
    # A zero-initialized residual branch: its gradient grows from ~0 while the model's does not.
    samples = tuple(LayerSample(step, {"branch": 1e-8 * 10 ** min(step / 20, 6), "head": 1.0}) for step in range(0, 200, 10))
    assert "NN607" not in codes(run(noisy(200, 1.0), layers=samples))
    # The same growth in a model whose whole gradient grew: exploding.
    exploding = run(noisy(200, 1.0), layers=samples, grad_norms=tuple(10 ** (step / 40) for step in range(200)))
    assert "NN607" in codes(exploding)


def test_a_constant_learning_rate_through_a_plateau_needs_no_schedule_to_be_flagged():
    plateau = [1.0 / (1 + step) + 0.5 for step in range(100)]
    assert "NN602" in codes(run(plateau, schedulers=()))
    assert "NN602" not in codes(run(plateau, schedulers=(), learning_rates=[0.1] * 50 + [0.01] * 50))
    converged = [1.0 / (1 + step) ** 2 for step in range(100)]  # reached ~0: nothing left to gain
    assert "NN602" not in codes(run(converged, schedulers=()))


def _evaluations(gaps: list[float]) -> tuple[Evaluation, ...]:
    """Passes whose first batch lost `1 + gap` with BatchNorm's running statistics, 1 with batch statistics."""
    return tuple(
        Evaluation(10 * (e + 1), e + 1, 1.0 + gap, 4, running_statistics_loss=1.0 + gap, batch_statistics_loss=1.0)
        for e, gap in enumerate(gaps)
    )


def _shifts(shift: float) -> tuple[LayerSample, ...]:
    return tuple(LayerSample(step, batchnorm_shifts={"body.0.norm": shift, "body.1.norm": 0.1}) for step in range(0, 120, 20))


def test_a_train_eval_gap_that_grows_is_batchnorm_drift_and_one_that_does_not_is_not():
    assert "NN609" in codes(run(noisy(120, 1.0), evaluations=_evaluations([0.1, 0.8, 1.5, 2.0, 2.4, 2.1])))
    # Large from the first evaluation and shrinking (the running statistics catching up): not growing.
    assert "NN609" not in codes(run(noisy(120, 1.0), evaluations=_evaluations([2.5, 1.8, 1.4, 1.3, 1.2, 1.1])))
    # Healthy: running statistics do as well or better than a 32-sample batch's own, with noise.
    assert "NN609" not in codes(run(noisy(120, 1.0), evaluations=_evaluations([-0.1, -0.5, 0.4, -0.7, 0.3, -0.6])))
    # Two evaluations are not a trend.
    assert "NN609" not in codes(run(noisy(120, 1.0), evaluations=_evaluations([0.0, 3.0])))


def test_the_gap_and_the_drifting_means_of_one_model_are_one_finding():
    findings, _ = run_findings(run(noisy(120, 1.0), layers=_shifts(3.0), evaluations=_evaluations([0.0, 1.2, 2.0, 2.5])), Config())
    (finding,) = [f for f in findings if f.code == "NN609"]
    assert finding.module == "body.0.norm" and finding.evidence["late_shift"] == 3.0
    assert finding.evidence["eval_gap_late"] == 2.5 and "3.5× the loss of the same samples" in finding.message
    # The gap alone names the model's BatchNorm layers.
    findings, _ = run_findings(run(noisy(120, 1.0), layers=_shifts(0.2), evaluations=_evaluations([0.0, 1.2, 2.0, 2.5])), Config())
    (finding,) = [f for f in findings if f.code == "NN609"]
    assert finding.module == "body.0.norm" and "`body.0.norm` and 1 more normalize" in finding.message
