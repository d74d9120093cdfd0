"""`nnlint watch` on training scripts written as people write them: each fixture under tests/data/watch/
yields exactly the NN6 findings marked next to its lines (`# expect: NN601`); the careful run is silent."""

from __future__ import annotations

import functools
import math

import pytest
from expectations import expected_findings
from watch_helpers import WATCH_FIXTURES, found, watched

from nnlint.findings import Phase, Severity

SCRIPTS = sorted(WATCH_FIXTURES.glob("*.py"))


@functools.cache
def report_for(name: str):
    return watched(WATCH_FIXTURES / name)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_each_script_yields_exactly_the_marked_findings(script):
    report = report_for(script.name)
    assert found(report) == expected_findings(script)
    assert all(f.phase is Phase.WATCH and f.location is not None and f.location.file.endswith(script.name) for f in report.findings)


def test_the_careful_run_is_silent_and_its_series_are_right():
    report = report_for("clean_careful_run.py")
    assert report.findings == [] and report.exit_code == 0
    run = report.targets[0].training_run
    # 512 samples in batches of 32: 16 steps an epoch; the loop stopped early, and evaluated once per epoch.
    assert run.epoch_starts == tuple(range(0, run.steps, 16))
    assert len(run.evaluations) == run.epochs < 12
    assert all(e.loss is not None and e.batches == 4 and not e.train_mode_modules for e in run.evaluations)
    # ReduceLROnPlateau halved the rate at least once; the learning rate never went up.
    assert run.learning_rates[0] == 0.05 and run.learning_rates[-1] < 0.05
    assert all(b <= a for a, b in zip(run.learning_rates, run.learning_rates[1:], strict=False))
    assert all(math.isfinite(v) for v in run.losses + run.grad_norms)


def test_no_early_stopping_names_the_best_epoch_and_what_was_lost():
    (finding,) = report_for("nn601_no_early_stopping.py").findings
    evidence = finding.evidence
    losses = evidence["validation_loss"]
    assert len(losses) == 40
    assert evidence["best_loss"] == min(losses) and losses.index(min(losses)) + 1 == evidence["best_epoch"]
    assert evidence["last_loss"] == losses[-1] > evidence["best_loss"] * 1.05
    assert f"best at epoch {evidence['best_epoch']}" in finding.message


def test_scheduler_frequency_shows_the_curve_it_produced():
    (finding,) = report_for("nn603_scheduler_step_frequency.py").findings
    assert finding.evidence["calls"] == finding.evidence["steps"] == 96
    rates = finding.evidence["learning_rate"]
    assert rates[0] == 0.01 and rates[-1] < 1e-15  # divided by 10 every 5 batches
    assert "StepLR" in finding.message and "▁" in finding.message


def test_non_finite_loss_names_the_step_and_the_first_op():
    (finding,) = report_for("nn604_loss_divergence.py").findings
    assert finding.severity is Severity.ERROR
    assert finding.evidence["op"] == "log" and finding.module == "log_probs"
    assert not math.isfinite(finding.evidence["value"])


def test_training_in_eval_mode_starts_at_the_second_epoch():
    (finding,) = report_for("nn605_training_in_eval_mode.py").findings
    # 480 samples in batches of 32: 15 steps an epoch; model.eval() after the first one, never undone.
    assert finding.evidence["first_step"] == 15 and finding.evidence["steps"] == 45
    assert finding.module == "drop"


def test_a_metric_logged_as_val_loss_is_the_validation_loss(tmp_path):
    script = tmp_path / "logged.py"
    script.write_text(
        "import torch, nnlint\n"
        "model = torch.nn.Linear(2, 1)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step in range(30):\n"
        "    opt.zero_grad(); model(torch.ones(4, 2)).pow(2).mean().backward(); opt.step()\n"
        "    if step % 10 == 9:\n"
        "        nnlint.watch.log('val_loss', 1.0 / (step + 1))\n"
    )
    run = watched(script).targets[0].training_run
    assert run.validation_losses() == [(10, 1, 0.1), (20, 1, 0.05), (30, 1, 1.0 / 30)]
