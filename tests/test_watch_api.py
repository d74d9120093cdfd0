"""`with nnlint.watch(model, optimizer) as run:` around a plain loop: the report at the end, the
crash recorded and re-raised, the user's objects and torch's functions as they were."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

import nnlint


def _loop(model, optimizer, epochs=3, leave_eval_on=False, fail_at=None):
    """The plain loop of the PyTorch tutorials, on a fixed synthetic batch stream."""
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.randn(16, 8, generator=generator), torch.randint(0, 2, (16,), generator=generator)) for _ in range(10)]
    model.train()
    for epoch in range(epochs):
        for index, (x, y) in enumerate(batches):
            if fail_at == (epoch, index):
                raise RuntimeError("CUDA error: device-side assert triggered")
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            nn.functional.cross_entropy(model(batches[0][0]), batches[0][1])
        if not leave_eval_on:
            model.train()


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def test_the_report_is_printed_when_the_block_ends_and_kept_on_the_run():
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    printed = io.StringIO()
    with nnlint.watch(model, optimizer, print_to=printed) as run:
        _loop(model, optimizer, leave_eval_on=True)
    assert [f.code for f in run.report.findings] == ["NN605"]
    assert run.record.steps == 30 and len(run.record.evaluations) == 3
    assert run.record.eval_mode_training.first_step == 10 and run.record.eval_mode_training.steps == 20
    assert "NN605" in printed.getvalue() and "training run: 30 steps" in printed.getvalue()


def test_a_crash_inside_the_block_is_recorded_and_raised():
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="device-side assert"), nnlint.watch(model, optimizer, print_to=None) as run:
        _loop(model, optimizer, fail_at=(1, 4))
    assert run.record.steps == 14
    assert run.record.crash.endswith("RuntimeError: CUDA error: device-side assert triggered")
    assert "test_watch_api.py:" in run.record.crash


def test_the_model_and_torch_are_as_they_were_afterwards():
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    backward, cross_entropy = torch.Tensor.backward, nn.functional.cross_entropy
    hooks = (dict(model._forward_pre_hooks), dict(model._forward_hooks))
    with nnlint.watch(model, optimizer, print_to=None, sample_every=1):
        _loop(model, optimizer, epochs=1)
    assert (torch.Tensor.backward, nn.functional.cross_entropy) == (backward, cross_entropy)
    assert (dict(model._forward_pre_hooks), dict(model._forward_hooks)) == hooks
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert "__call__" not in nn.modules.loss._Loss.__dict__


def test_log_outside_a_watch_does_nothing():
    nnlint.watch.log("val_loss", 1.0)  # a script keeps the call when it runs unwatched


def _batchnorm_run(watch: bool, validate=torch.no_grad, momentum=0.1):
    """Dropout and BatchNorm, an evaluation per epoch on batches of 64 (the gap replays 32 of them);
    the weights, running statistics and the next random draw after the run."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16, momentum=momentum), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(64, 8, generator=generator), torch.randint(0, 2, (64,), generator=generator)) for _ in range(6)]
    watched = nnlint.watch(model, optimizer, print_to=None) if watch else None
    if watched is not None:
        watched.start()
    for _ in range(4):
        model.train()
        for x, y in batches[:5]:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        model.eval()
        with validate():
            nn.functional.cross_entropy(model(batches[5][0]), batches[5][1])
    if watched is not None:
        watched.finish()
    return model.state_dict(), torch.rand(3), watched


@pytest.mark.parametrize("validate", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference_mode"])
def test_the_batchnorm_gap_replay_changes_nothing_the_script_sees(validate):
    plain_state, plain_draw, _ = _batchnorm_run(False, validate)
    state, draw, watched = _batchnorm_run(True, validate)
    assert all(torch.equal(plain_state[name], state[name]) for name in plain_state) and torch.equal(plain_draw, draw)
    evaluations = watched.record.evaluations
    # Every pass measured the first 32 samples of its batch both ways.
    assert len(evaluations) == 4 and len(watched.record.batchnorm_gaps()) == 4
    assert all(e.running_statistics_loss != e.batch_statistics_loss for e in evaluations)


def test_the_gap_is_the_loss_with_running_statistics_over_the_loss_with_batch_statistics():
    _, _, watched = _batchnorm_run(True)
    model = watched.recorder.model
    last = watched.record.evaluations[-1]
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(64, 8, generator=generator), torch.randint(0, 2, (64,), generator=generator)) for _ in range(6)]
    x, y = batches[5][0][:32], batches[5][1][:32]
    with torch.no_grad():
        running = nn.functional.cross_entropy(model.eval()(x), y).item()
        model[1].train()  # the BatchNorm alone: dropout stays off
        model[1].momentum = 0.0  # batch statistics, running statistics left as they are
        batch = nn.functional.cross_entropy(model(x), y).item()
    assert math.isclose(last.running_statistics_loss, running, rel_tol=1e-5)
    assert math.isclose(last.batch_statistics_loss, batch, rel_tol=1e-5)
