"""The probe never crashes nnlint: a failing forward, loss or backward, a forward that never
returns, out-of-memory, meta weights — each becomes a clear finding or note, and the static
findings are still reported."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from probe_helpers import lint_model
from torch import nn

from nnlint.config import Config
from nnlint.findings import Phase
from nnlint.probe import ProbeSettings, run_probe
from nnlint.probe import session as probe_session
from nnlint.targets import Target


class _TrainingOnly(nn.Module):
    """A model with a static finding (NN104: bias before BatchNorm) whose training-mode forward misbehaves."""

    def __init__(self, behaviour: str) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 2)
        self.behaviour = behaviour

    def forward(self, x: torch.Tensor):  # noqa: ANN201 - returns whatever the behaviour asks for
        x = self.head(self.bn(self.fc(x)))
        if not self.training:
            return x
        if self.behaviour == "raise":
            return self.head(x)  # 2 features into a Linear(8, 2)
        if self.behaviour == "none":
            return None
        if self.behaviour == "string":
            return "logits"
        if self.behaviour == "ints":
            return x.argmax(dim=1)
        if self.behaviour == "sleep":
            time.sleep(60)
        if self.behaviour == "swallow":
            while True:
                try:  # noqa: SIM105 - a forward that catches everything must still stop
                    time.sleep(0.01)
                except Exception:
                    pass
        return x


def _codes(report):
    return sorted(f.code for f in report.findings)


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [
        ("raise", "the forward raised in training mode in `head`: RuntimeError"),
        ("none", "the forward returned None in training mode"),
        ("string", "the forward returned str with no floating-point tensor"),
        ("ints", "the forward returned Tensor with no floating-point tensor"),
    ],
)
def test_a_broken_training_forward_is_nn002_beside_the_static_findings(behaviour, says):
    report = lint_model(_TrainingOnly(behaviour), example_input=torch.randn(16, 4))
    assert _codes(report) == ["NN002", "NN104"]
    unusable = next(f for f in report.findings if f.code == "NN002")
    assert says in unusable.message and "the probe could not run" in unusable.message
    assert report.exit_code == 2


@pytest.mark.parametrize("behaviour", ["sleep", "swallow"])
def test_a_forward_that_never_returns_is_stopped_by_the_timeout(behaviour):
    started = time.perf_counter()
    report = lint_model(_TrainingOnly(behaviour), Config(probe_timeout=1), example_input=torch.randn(16, 4))
    assert time.perf_counter() - started < 20
    assert _codes(report) == ["NN002", "NN104"]
    assert "did not finish within 1 s (--probe-timeout)" in report.findings[0].message


def test_the_timeout_also_works_off_the_main_thread():
    reports = []
    worker = threading.Thread(
        target=lambda: reports.append(lint_model(_TrainingOnly("swallow"), Config(probe_timeout=1), example_input=torch.randn(16, 4)))
    )
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and _codes(reports[0]) == ["NN002", "NN104"]


def test_a_loss_that_raises_gives_way_to_the_synthetic_loss_and_a_non_scalar_loss_is_averaged():
    model = nn.Sequential(nn.Linear(4, 3))
    broken = lint_model(model, example_batch=(torch.randn(8, 4), torch.randn(8, 5)), loss_fn=nn.MSELoss())
    assert not [f for f in broken.findings if f.code == "NN002"]
    assert any("loss_fn raised" in note and "the probe used the synthetic loss instead" in note for note in broken.targets[0].notes)
    averaged = lint_model(
        model, example_batch=(torch.randn(8, 4), torch.randint(0, 3, (8,))), loss_fn=nn.CrossEntropyLoss(reduction="none")
    )
    assert not [f for f in averaged.findings if f.code == "NN002"]
    assert "probe: loss_fn returned a non-scalar tensor; the probe averaged it" in averaged.targets[0].notes


class _WithAuxiliary(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.body(x))
        return self.head(features), features


def test_a_loss_for_the_main_output_is_applied_to_the_first_element_of_a_tuple():
    batch = (torch.randn(16, 4), torch.randint(0, 3, (16,)))
    report = lint_model(_WithAuxiliary(), example_batch=batch, loss_fn=nn.CrossEntropyLoss())
    assert "loss: loss_fn (CrossEntropyLoss) on example_batch, on the output's main tensor" in report.targets[0].notes[0]


def test_example_batch_runs_with_its_own_targets_even_beside_an_example_input():
    model = nn.Sequential(nn.Linear(3, 3))
    report = lint_model(
        model, example_input=torch.randn(1, 3), example_batch=(torch.randn(4, 3), torch.randint(0, 3, (4,))), loss_fn=nn.CrossEntropyLoss()
    )
    assert not [f for f in report.findings if f.code == "NN002"]
    assert "batch 4, loss: loss_fn (CrossEntropyLoss) on example_batch" in report.targets[0].notes[0]


class _LearnedPositions(nn.Module):
    """Position embeddings for sequences of up to 2 steps: fine on meta at any length, not on values."""

    def __init__(self) -> None:
        super().__init__()
        self.positions = nn.Embedding(2, 4)
        self.fc = nn.Linear(4, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + self.positions(torch.arange(x.size(1), device=x.device)))


def test_a_probe_failure_on_an_input_nnlint_inferred_is_a_note_not_the_users_error():
    guessed = lint_model(_LearnedPositions())  # nnlint infers a longer sequence from the first layer
    assert not [f for f in guessed.findings if f.code == "NN002"] and guessed.exit_code == 0
    says = "the probe did not run: on the input nnlint inferred, the forward raised"
    assert any(note.startswith(says) for note in guessed.targets[0].notes)
    given = lint_model(_LearnedPositions(), example_input=torch.randn(8, 3, 4))
    assert [f.code for f in given.findings] == ["NN002"] and "IndexError" in given.findings[0].message


def test_static_skips_the_probe():
    report = lint_model(_TrainingOnly("raise"), Config(static=True), example_input=torch.randn(16, 4))
    assert _codes(report) == ["NN104"]
    assert report.targets[0].device is None and report.targets[0].gradient_flow is None


def test_the_probe_never_runs_on_meta_weights():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    report = lint_model(model, example_input=torch.randn(16, 4))
    assert not [f for f in report.findings if f.phase is Phase.PROBE or f.code == "NN002"]
    assert any("the probe did not run: the model's weights are on the meta device" in note for note in report.targets[0].notes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_nn002():
    report = lint_model(nn.Linear(4, 2), Config(device="cuda"), example_input=torch.randn(16, 4))
    assert "CUDA is not available" in next(f for f in report.findings if f.code == "NN002").message


class _OutOfMemoryOnce(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.failures = [torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.failures:
            raise self.failures.pop()
        return self.fc(x)


def test_out_of_memory_falls_back_to_the_next_device_with_a_note(monkeypatch):
    # The fallback order is cuda -> the CPU; without a GPU, two CPU attempts stand in for it.
    monkeypatch.setattr(probe_session, "_devices", lambda requested, model: [torch.device("cpu"), torch.device("cpu")])
    model = _OutOfMemoryOnce()
    result = run_probe(model, torch.randn(8, 4), Target(model), ProbeSettings())
    assert result.device == "cpu" and result.losses
    assert result.notes == ("the probe ran out of memory on cpu; it ran on cpu instead",)


def test_someone_elses_alarm_is_left_alone():
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        report = lint_model(_TrainingOnly("swallow"), Config(probe_timeout=1), example_input=torch.randn(16, 4))
        assert "--probe-timeout" in report.findings[0].message
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_probe_settings_come_from_the_config_and_the_command_line(tmp_path):
    from click.testing import CliRunner

    from nnlint.cli import main
    from nnlint.config import config_from_table
    from nnlint.errors import ConfigError

    config = config_from_table({"probe-timeout": 5, "probe-steps": 2, "deep": True, "thresholds": {"NN801": {"max-first-norm": 1e-6}}})
    assert (config.probe_timeout, config.probe_steps, config.deep) == (5.0, 2, True)
    assert config.thresholds["NN801"] == {"max-first-norm": 1e-6}
    for bad in ({"probe-timeout": 0}, {"probe-timeout": "soon"}, {"probe-steps": 0}, {"deep": "yes"}):
        with pytest.raises(ConfigError):
            config_from_table(bad)
    model_file = tmp_path / "model.py"
    model_file.write_text("import torch\nfrom torch import nn\nmodel = nn.Linear(4, 2)\nexample_input = torch.randn(16, 4)\n")
    assert CliRunner().invoke(main, [str(model_file), "--probe-timeout", "-1"]).exit_code == 2
    result = CliRunner().invoke(main, [str(model_file), "--probe-steps", "1", "--probe-timeout", "30", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert '"device": "cpu"' in result.output and "probe: 1 training step on cpu" in result.output


def test_a_bug_in_nnlints_own_measuring_is_an_internal_error_not_the_users(monkeypatch):
    from nnlint.probe import instrument

    def broken(self, *args):  # noqa: ANN001, ANN202
        raise ZeroDivisionError("a bug in nnlint")

    monkeypatch.setattr(instrument.Instrument, "_record_module_output", broken)
    report = lint_model(nn.Sequential(nn.Linear(4, 2)), example_input=torch.randn(16, 4))
    assert not [f for f in report.findings if f.code == "NN002"]
    assert [p.message for p in report.problems] == [
        "internal error in the probe on `model`: ProbeInternalError: measuring the forward in training mode: "
        "ZeroDivisionError: a bug in nnlint; please report it"
    ]


def test_a_batch_of_one_with_batchnorm_skips_the_probe_with_a_note():
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU())
    report = lint_model(model, example_input=torch.randn(1, 4))
    assert [f.code for f in report.findings] == ["NN105"]
    assert any("a batch of one sample cannot train BatchNorm" in note for note in report.targets[0].notes)
