"""`with nnlint.watch(model, optimizer) as run:` around a plain loop: the report at the end, the
crash recorded and re-raised, the user's objects and torch's functions as they were."""

from __future__ import annotations

import io

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
