"""`--probe-budget`: the probe fits its work to a time budget (fewer samples, steps or optional
checks, said in a note), and a model that is slow rather than broken is never NN002: running out
of budget or of `--probe-timeout` after a forward returned reports what was measured. The budget
counts the probe's compute (so slow forwards here compute; sleeping is what --probe-timeout sees)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from expectations import ROOT, found_findings, lint, rule_fixtures
from probe_helpers import lint_model
from torch import nn

from nnlint import audit
from nnlint.cli import main
from nnlint.config import Config, config_from_table
from nnlint.errors import ConfigError
from nnlint.measures import Measure
from nnlint.probe import budget

ALL_CHECKS = frozenset(Measure) - {Measure.OVERFIT}


# -- the plan: arithmetic only --------------------------------------------------------------------
def test_the_whole_batch_when_it_fits_else_the_most_samples_that_do():
    # 0.01 s a sample: 128 samples cost 1.28 s a step, about 3.4 s with the first step's statistics and the checks.
    assert budget.samples_to_train_on(10.0, 0.01, 128, 2, ALL_CHECKS, 128, 0) == 128
    fitted = budget.samples_to_train_on(1.0, 0.01, 128, 2, ALL_CHECKS, 128, 0)
    assert 2 < fitted < 128
    assert budget.samples_to_train_on(0.01, 0.01, 128, 2, ALL_CHECKS, 128, 0) == 2  # never fewer than the measurements need


def test_after_the_first_step_checks_are_kept_before_extra_steps():
    everything = budget.after_first_step(100.0, 1.3, 3, ALL_CHECKS, chunked=False, overfit_fraction=0)
    assert everything == (3, ALL_CHECKS)
    # Room for the checks but not for a third step: the train-eval gap still has its two steps.
    steps, kept = budget.after_first_step(2.5, 1.3, 3, ALL_CHECKS, chunked=False, overfit_fraction=0)
    assert steps == 2 and kept == ALL_CHECKS
    # No room at all: one step, the dearest checks left out first, and never a step less than one.
    steps, kept = budget.after_first_step(-1.0, 1.3, 3, ALL_CHECKS, chunked=False, overfit_fraction=0)
    assert steps == 1 and Measure.SAMPLE_MIXING not in kept and Measure.BATCHNORM_SPREAD in kept


# -- the setting ----------------------------------------------------------------------------------
def test_the_budget_is_a_setting_in_the_config_the_cli_and_the_api():
    assert Config().probe_budget == 10.0
    assert config_from_table({"probe-budget": 4}).probe_budget == 4.0
    assert config_from_table({"probe-budget": "none"}).probe_budget is None
    with pytest.raises(ConfigError, match="probe-budget"):
        config_from_table({"probe-budget": 0})
    result = CliRunner().invoke(main, ["nothing.py", "--probe-budget", "soon"])
    assert result.exit_code == 2 and "--probe-budget" in result.output
    with pytest.raises(ValueError, match="probe_budget"):
        audit(nn.Linear(4, 2), torch.randn(8, 4), probe_budget=-1)


# -- fewer samples on a big batch ------------------------------------------------------------------
class _CostsPerSample(nn.Module):
    """A forward whose cost grows with the batch (a per-sample loop, as in variable-length code)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = [self.fc2(torch.relu(self.fc1(row))) for row in x]
        if self.training:
            torch.randn(64, 64).matmul(torch.randn(64, 64))  # a little real work per call
        return torch.stack(rows)


def test_a_big_batch_is_probed_on_fewer_samples_and_the_note_says_so():
    model = _CostsPerSample()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    report = lint_model(model, Config(probe_budget=0.05), example_input=torch.randn(512, 16))
    notes = report.targets[0].notes
    # On a slow moment the probe also runs past its budget: the note then says where it stopped.
    fitted = [note for note in notes if "fitted to --probe-budget 0.05 s" in note or note.startswith("probe: stopped after")]
    assert fitted and " of 512 samples" in fitted[0], notes
    assert "NN002" not in {f.code for f in report.findings}
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def _fitted_note(report) -> str:
    return next(note for note in report.targets[0].notes if "--probe-budget" in note and "NN" not in note)


def test_batchnorm_keeps_the_batch_unless_it_is_made_up_and_over_images():
    """A made-up input (no example input, no batch size) has no training batch to keep: BatchNorm2d
    is trained on two of its samples; BatchNorm1d, whose statistics are over the samples alone,
    and a user's own example input keep every sample."""
    images = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert " on 2 of 4 samples" in _fitted_note(lint_model(images, Config(probe_budget=1e-6)))
    given = lint_model(images, Config(probe_budget=1e-6), example_input=torch.randn(16, 3, 32, 32))
    assert " on 16 samples" in _fitted_note(given)
    features = nn.Sequential(nn.Linear(10, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    assert " on 4 samples" in _fitted_note(lint_model(features, Config(probe_budget=1e-6)))


def test_without_a_budget_the_probe_does_its_full_fixed_work():
    report = lint_model(_CostsPerSample(), Config(probe_budget=None), example_input=torch.randn(64, 16))
    notes = report.targets[0].notes
    assert any(note.startswith("probe: 3 training steps on cpu, batch 64") for note in notes), notes
    assert not any("--probe-budget" in note for note in notes)


# -- the timing forward: one sample where the model allows it ------------------------------------
class _Clips(nn.Module):
    """A small C3D (bench/realworld/conv3d.py: Conv3d, MaxPool3d, `x.view(-1, n)` into a Linear,
    dropout) that records the batch of every forward it runs on real tensors (in a list outside
    the model: the probe runs copies)."""

    def __init__(self, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.norm = norm or nn.Identity()
        self.pool = nn.MaxPool3d(2)
        self.fc = nn.Linear(4 * 2 * 4 * 4, 5)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.device.type != "meta":  # not the graph's symbolic trace
            _BATCHES.append(int(x.shape[0]))
        x = self.pool(torch.relu(self.norm(self.conv(x))))
        return self.fc(self.dropout(x.view(-1, 4 * 2 * 4 * 4)))


class _FlatBatchStatistics(_Clips):
    """Batch statistics of flat features through the functional API (no BatchNorm module): a single
    sample raises in training mode, as `F.batch_norm` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return torch.nn.functional.batch_norm(out, None, None, training=True) if isinstance(out, torch.Tensor) else out


_BATCHES: list[int] = []


def _clips() -> torch.Tensor:
    _BATCHES.clear()
    return torch.randn(4, 3, 4, 8, 8)


def test_the_plan_is_timed_on_one_sample_and_trains_on_the_fewest_allowed():
    """The timing forward's work is repeated by the first step: it runs on one sample, not two."""
    model = _Clips()
    report = lint_model(model, Config(probe_budget=1e-6), example_input=_clips())
    assert _BATCHES == [1, 2], _BATCHES  # the timing forward, then one step on 2 of 4
    assert " on 2 of 4 samples" in _fitted_note(report)


def test_a_model_training_batchnorm_is_timed_on_the_fewest_samples():
    model = _Clips(nn.BatchNorm3d(4))
    _clips()  # clears the record
    report = lint_model(model, Config(probe_budget=1e-6))  # made-up volumes: BatchNorm3d trains on two
    assert _BATCHES[-2:] == [2, 2] and 1 not in _BATCHES, _BATCHES  # (before them: inferring the input, on 4)
    assert " on 2 of 4 samples" in _fitted_note(report)


def test_a_forward_that_rejects_one_sample_is_timed_on_the_fewest_and_is_no_finding():
    model = _FlatBatchStatistics()
    report = lint_model(model, Config(probe_budget=1e-6), example_input=_clips())
    assert _BATCHES == [1, 2, 2], _BATCHES  # one sample raised; timed on two; one step on two
    assert " on 2 of 4 samples" in _fitted_note(report)
    assert "NN002" not in {finding.code for finding in report.findings}


def test_timing_on_one_sample_changes_no_finding():
    budgeted = lint_model(_Clips(), example_input=_clips())
    unlimited = lint_model(_Clips(), Config(probe_budget=None), example_input=_clips())
    assert found_findings(budgeted) == found_findings(unlimited)
    assert budgeted.exit_code == unlimited.exit_code


# -- slow is not broken --------------------------------------------------------------------------
def _model_file(folder: Path, training_forward: str) -> Path:
    """A small classifier file whose training-mode forward is slow or hangs (evaluation mode, which
    builds the graph, is quick)."""
    path = folder / "model.py"
    source = """\
        import time

        import torch
        from torch import nn


        def spin(seconds):
            # compute for this long: the budget counts compute, not waiting
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                pass


        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 3)

            def forward(self, x):
                if self.training:
                    {training_forward}
                return self.fc(x)


        model = Classifier()
        example_input = torch.randn(64, 8)
        """
    path.write_text(textwrap.dedent(source).replace("{training_forward}", training_forward))
    return path


def _lint(path: Path, *options: str) -> tuple[int, dict]:
    result = CliRunner().invoke(main, [str(path), "--format", "json", *options], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


ISOLATION = pytest.mark.parametrize("isolation", [(), ("--no-isolation",)], ids=["isolated", "in-process"])


@ISOLATION
def test_a_slow_forward_past_the_budget_is_a_note_not_nn002(tmp_path, isolation):
    path = _model_file(tmp_path, "spin(0.3)  # a slow data-dependent step")
    code, report = _lint(path, "--probe-budget", "0.2", *isolation)
    target = report["targets"][0]
    assert code in (0, 1) and "NN002" not in {f["code"] for f in target["findings"]}
    assert any("--probe-budget 0.2 s" in note for note in target["notes"]), target["notes"]


@ISOLATION
def test_a_slow_forward_past_the_probe_timeout_reports_what_it_measured(tmp_path, isolation):
    path = _model_file(tmp_path, "time.sleep(0.4)")
    code, report = _lint(path, "--probe-budget", "none", "--probe-timeout", "1", *isolation)
    target = report["targets"][0]
    assert code in (0, 1) and "NN002" not in {f["code"] for f in target["findings"]}
    stopped = [note for note in target["notes"] if note.startswith("probe: stopped after")]
    assert stopped and stopped[0].endswith("measured what fit (--probe-timeout 1 s)"), target["notes"]


@ISOLATION
def test_a_forward_that_never_returns_is_still_nn002(tmp_path, isolation):
    path = _model_file(tmp_path, "while True:\n                        time.sleep(0.05)")
    code, report = _lint(path, "--probe-timeout", "1", *isolation)
    findings = report["targets"][0]["findings"]
    assert code == 2 and [f["code"] for f in findings] == ["NN002"]
    assert "did not finish within 1 s (--probe-timeout)" in findings[0]["message"]


# -- the budget changes no finding on the fixtures and the held-out set -----------------------------
CORPUS = [*rule_fixtures(), *sorted((ROOT / "bench" / "heldout").glob("*.py"))]


@pytest.mark.slow
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_budget_changes_no_finding(path):
    """The same codes at the same lines with the default budget as with none (the full fixed work):
    these models fit it, so nothing is reduced, and the planning itself (the timed slice) leaves
    no trace in what the probe measures."""
    budgeted = lint(path)
    unlimited = lint(path, probe_budget=None)
    assert found_findings(budgeted) == found_findings(unlimited)
    assert budgeted.exit_code == unlimited.exit_code
