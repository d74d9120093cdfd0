"""After the probe the user's model, optimizer and process are exactly as before (docs/architecture.md, "Safety rules")."""

from __future__ import annotations

import threading

import pytest
import torch
from invariants import Snapshot
from probe_helpers import lint_model
from torch import nn

from nnlint.config import Config
from nnlint.probe import ProbeSettings, run_probe
from nnlint.targets import Target


class MixedNet(nn.Module):
    """BatchNorm (one frozen in eval mode inside a model in training mode), dropout, an LSTM, a
    frozen parameter, tied weights, and user hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.conv = nn.Conv1d(16, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(16)
        self.frozen_bn = nn.BatchNorm1d(16)
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(16, 50)
        self.head.weight = self.embed.weight  # tied
        self.scale = nn.Parameter(torch.ones(1), requires_grad=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.embed(tokens))
        x = self.frozen_bn(self.bn(self.conv(x.transpose(1, 2)))).transpose(1, 2)
        return self.head(self.dropout(torch.relu(x)) * self.scale)


def _trained(model: nn.Module, inputs: torch.Tensor) -> torch.optim.Optimizer:
    """One real step, so that the optimizer has state, parameters have .grad, BatchNorm has statistics."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model(inputs).float().pow(2).mean().backward()
    optimizer.step()
    return optimizer


@pytest.fixture
def mixed() -> tuple[MixedNet, torch.Tensor, torch.optim.Optimizer]:
    model = MixedNet()
    tokens = torch.randint(0, 50, (8, 12))
    optimizer = _trained(model, tokens)
    model.frozen_bn.eval()  # mixed modes: restored one by one
    model.lstm.weight_hh_l0.grad = None  # some .grad None, some not
    model.dropout.register_forward_hook(lambda module, args, output: None)
    model.conv.register_forward_pre_hook(lambda module, args: None)
    return model, tokens, optimizer


def test_model_optimizer_and_rng_are_bit_identical_after_a_deep_probe(mixed):
    model, tokens, optimizer = mixed
    before = Snapshot.take(model, optimizer)
    report = lint_model(model, Config(deep=True), example_input=tokens, loss_fn=nn.CrossEntropyLoss(), optimizer=optimizer)
    assert report.targets[0].device == "cpu" and report.targets[0].gradient_flow is not None
    assert not [f for f in report.findings if f.code == "NN002"], report.findings
    before.assert_unchanged(model, optimizer)


def test_bn_statistics_are_untouched_although_the_probe_trains(mixed):
    model, tokens, optimizer = mixed
    running_mean = model.bn.running_mean.clone()
    batches = int(model.bn.num_batches_tracked)
    lint_model(model, example_input=tokens, optimizer=optimizer)
    assert torch.equal(model.bn.running_mean, running_mean)
    assert int(model.bn.num_batches_tracked) == batches


class _Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1  # in place, on whatever tensor `calls` is during the call
        self.last_input = x  # an attribute the forward sets
        return self.fc(x)


def test_a_buffer_the_forward_updates_in_place_and_attributes_it_sets_are_untouched():
    model, inputs = _Counting(), torch.randn(8, 4)
    before = Snapshot.take(model)
    run_probe(model, inputs, Target(model), ProbeSettings(deep=True))
    assert int(model.calls) == 0 and not hasattr(model, "last_input")
    before.assert_unchanged(model)


def test_a_model_in_eval_mode_is_probed_in_training_mode_and_left_in_eval_mode():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2)).eval()
    inputs = torch.randn(16, 4)
    before = Snapshot.take(model)
    result = run_probe(model, inputs, Target(model), ProbeSettings())
    assert len(set(result.losses)) > 1  # dropout was active: the steps differ
    before.assert_unchanged(model)


def test_state_is_restored_when_the_forward_fails_half_way(mixed):
    model, tokens, optimizer = mixed
    out_of_range = tokens.clamp(max=49) + 1  # index 50 is out of range
    before = Snapshot.take(model, optimizer)
    report = lint_model(model, example_input=out_of_range, optimizer=optimizer)
    assert any(f.code == "NN002" for f in report.findings)
    before.assert_unchanged(model, optimizer)


class _SlowInTraining(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.fc(x))
        while self.training:
            x = x + 0  # never returns in training mode
        return x


@pytest.mark.parametrize("thread", ["main", "worker"])
def test_state_is_restored_after_a_timeout(thread):
    model, inputs = _SlowInTraining(), torch.randn(8, 4)
    before = Snapshot.take(model)
    reports = []

    def probe() -> None:
        reports.append(lint_model(model, Config(probe_timeout=0.5), example_input=inputs))

    if thread == "main":
        probe()
    else:
        worker = threading.Thread(target=probe)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive()
    codes = [f.code for f in reports[0].findings]
    assert codes == ["NN002", "NN104", "NN105"]  # the static findings are still reported
    assert "--probe-timeout" in reports[0].findings[0].message
    before.assert_unchanged(model)


class _Aliased(nn.Module):
    """One BatchNorm registered under two names, and one weight shared by two layers."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(8)
        self.alias = self.norm
        self.encode = nn.Linear(8, 8)
        self.decode = nn.Linear(8, 8)
        self.decode.weight = self.encode.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(torch.relu(self.norm(self.encode(x))))


def test_an_aliased_module_and_tied_weights_are_left_untouched():
    model, inputs = _Aliased().eval(), torch.randn(16, 8)
    before, version = Snapshot.take(model), model.norm.running_mean._version
    result = run_probe(model, inputs, Target(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1)), ProbeSettings(deep=True))
    assert result.update_ratios and result.train_eval is not None
    before.assert_unchanged(model)
    assert model.norm.running_mean._version == version  # not even written and restored
