"""Reliability: the bugs the fuzzer (tests/test_fuzz.py) found, each pinned by a small test."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import warnings

import pytest
import torch
from expectations import FIXTURES
from torch import nn
from torch.utils._pytree import tree_flatten

from nnlint.config import Config
from nnlint.engine import Linter
from nnlint.graph import GraphError, build_graph
from nnlint.inputs import example_input_for
from nnlint.loader import LoadedTarget
from nnlint.runtime.execution import meta_stand_ins, run_with_tensors
from nnlint.sources import ModuleLocator
from nnlint.targets import Target


class DuckConfig:
    """What nnlint reads of a transformers config, without transformers."""

    model_type = "duck"
    vocab_size = 30
    image_size = 16
    num_channels = 3


class DuckTokens(nn.Module):
    main_input_name = "input_ids"

    def __init__(self) -> None:
        super().__init__()
        self.config = DuckConfig()
        self.embed = nn.Embedding(30, 8)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed(input_ids)


class DuckImages(nn.Module):
    main_input_name = "pixel_values"

    def __init__(self) -> None:
        super().__init__()
        self.config = DuckConfig()
        self.patches = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.patches(pixel_values)


class DropsItsInput(nn.Module):
    """`F.dropout(x, p)` is always on: in a meta run the input is real, so it draws random numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.dropout(x, 0.5))


@pytest.mark.parametrize(
    ("model", "input_shape"),
    [
        (nn.Sequential(nn.Linear(4, 2)), None),
        (DropsItsInput(), None),
        (nn.Sequential(nn.Embedding(10, 4)), None),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (2, 3, 8, 8)),
        (nn.Sequential(nn.Embedding(10, 4)), (2, 5)),
        (DuckTokens(), None),  # Hugging Face-shaped: inputs read from the config
        (DuckImages(), None),
    ],
    ids=["linear", "dropout-on-input", "embedding", "shape-conv", "shape-embedding", "hf-tokens", "hf-images"],
)
def test_made_up_inputs_leave_the_users_random_state_alone_and_repeat(model, input_shape):
    loaded = LoadedTarget(Target(model), "model", None, None)  # type: ignore[arg-type]
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    first, _ = example_input_for(loaded, input_shape)
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    torch.manual_seed(1234)  # whatever the user's generator says, the made-up input is the same
    second, _ = example_input_for(loaded, input_shape)
    assert all(torch.equal(a, b) for a, b in zip(tree_flatten(first)[0], tree_flatten(second)[0], strict=True))


class Aliased(nn.Module):
    """One submodule under two names, a tied weight, and a forward that needs real values."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.alias = self.fc
        self.head = nn.Linear(4, 4)
        self.head.weight = self.fc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc(x)
        if hidden.abs().max().item() > 1e6:  # a value of the weights: recorded on one real sample
            hidden = hidden / 1e6
        return self.head(hidden)


@pytest.mark.parametrize("fails", [False, True])
def test_running_on_stand_ins_puts_back_every_tensor_of_a_module_registered_twice(fails):
    model = Aliased()
    own = {name: id(t) for name, t in model.named_parameters(remove_duplicate=False)}

    def body(x: torch.Tensor) -> torch.Tensor:
        if fails:
            raise RuntimeError("the forward failed")
        return model.head(model.fc(x))

    with contextlib.suppress(RuntimeError):
        run_with_tensors(model, meta_stand_ins(model), body, (torch.empty(2, 4, device="meta"),), {})
    assert {name: id(t) for name, t in model.named_parameters(remove_duplicate=False)} == own


def test_a_module_registered_twice_does_not_stop_the_real_sample_recording():
    model = Aliased()
    graph = build_graph(model, torch.randn(3, 4), ModuleLocator(model))
    assert graph.recorded_on == "real"
    assert [str(n.target) for n in graph.nodes if n.op == "call_module"] == ["fc", "head"]


class Counting(nn.Module):
    """A forward that updates buffers in place: a call counter and a running maximum."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("peak", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        self.peak.copy_(torch.maximum(self.peak, x.detach().abs().amax()))
        return self.fc(x)


@pytest.mark.parametrize("method", ["fx", "recorded"])
def test_a_forward_that_updates_buffers_leaves_them_untouched_and_shows_in_the_graph(method):
    model = Counting()
    graph = build_graph(model, torch.randn(2, 4), ModuleLocator(model), method)
    assert (model.calls.item(), model.calls._version, model.peak.item(), model.peak._version) == (0, 0, 0.0, 0)
    updates = [(n.target, n.args[0].target) for n in graph.nodes if n.op == "call_method" and str(n.target).endswith("_")]
    assert updates == [("add_", "calls"), ("copy_", "peak")]


class CountingOnValues(Counting):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc(x).abs().max().item() > 1e6:  # a value of the weights: recorded on one real sample
            x = x / 1e6
        return super().forward(x)


def test_recording_on_a_real_sample_leaves_buffers_untouched():
    model = CountingOnValues()
    graph = build_graph(model, torch.randn(2, 4), ModuleLocator(model))
    assert graph.recorded_on == "real"
    assert (model.calls.item(), model.calls._version, model.peak.item(), model.peak._version) == (0, 0, 0.0, 0)
    assert [n.target for n in graph.nodes if n.op == "get_attr"] == ["calls", "peak"]  # named after the user's buffers


class CountingChannelsLast(nn.Module):
    """Counts its calls in a buffer and reads (N, L, C) where its first layer, a Conv1d, suggests
    (N, C, L): every inferred candidate fails on meta, so nnlint gives some a real try."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.conv = nn.Conv1d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


def test_real_tries_of_inferred_inputs_leave_buffers_untouched():
    model = CountingChannelsLast()
    with pytest.raises(Exception, match="cannot infer an input"):
        example_input_for(LoadedTarget(Target(model), "model", None, None), None)
    assert (model.calls.item(), model.calls._version) == (0, 0)


class Reassigning(nn.Module):
    """`self.steps += 1` reassigns the buffer: torch.fx would store a Proxy in the model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        return self.fc(x)


def test_a_forward_that_reassigns_a_buffer_falls_back_to_the_recorder_and_leaves_it_alone():
    model = Reassigning()
    steps = model.steps
    graph = build_graph(model, torch.randn(2, 4), ModuleLocator(model))
    assert graph.method == "recorded"
    assert graph.fx_error == "symbolic tracing failed: TypeError: forward assigns a new value to `steps`, which a graph cannot represent"
    assert model.steps is steps and (steps.item(), steps._version) == (0, 0)
    with pytest.raises(GraphError, match="forward assigns a new value to `steps`"):
        build_graph(model, torch.randn(2, 4), ModuleLocator(model), "fx")
    assert model.steps is steps


class BatchStatisticsOnValues(nn.Module):
    """BatchNorm without running statistics needs more than one sample even in evaluation."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.fc(x)
        if torch.isnan(hidden).any():  # a value of the weights: recorded on real values
            hidden = torch.nan_to_num(hidden)
        return self.bn(hidden)


def test_a_forward_that_rejects_one_sample_is_recorded_on_the_whole_example_input():
    model = BatchStatisticsOnValues()
    graph = build_graph(model, torch.randn(8, 4), ModuleLocator(model))
    assert graph.recorded_on == "example"
    assert graph.shape(next(n for n in graph.nodes if n.target == "bn")) == (8, 4)
    with pytest.raises(GraphError, match="Expected more than 1 value per channel"):  # a real batch of one still fails
        build_graph(model, torch.randn(1, 4), ModuleLocator(model))


def test_two_processes_with_different_hash_seeds_give_the_same_report():
    """Set and dict ordering must not leak into the findings: CI runs would flap."""
    # Several findings per file, suppressions, a recorded graph: where an ordering would show.
    files = [FIXTURES / f"{name}.py" for name in ("demo_mistakes", "nn003_suppressions", "nn101_cell_loop", "nn103_functional_activations")]
    command = [sys.executable, "-m", "nnlint", "--format", "json", *map(str, files)]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": seed})
        for seed in ("1", "2")
    ]
    (first, first_err), (second, _) = (run.communicate(timeout=300) for run in runs)
    assert len(json.loads(first)["targets"]) == len(files), first_err
    assert first == second


def test_a_lazy_module_is_nn002_naming_it_and_stays_uninitialized():
    model = nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.LazyLinear(8), nn.LazyBatchNorm1d())
    loaded = LoadedTarget(Target(model, example_input=torch.randn(4, 5)), "model", None, None)  # type: ignore[arg-type]
    linter = Linter(Config())
    (finding,) = linter.lint(loaded).findings
    assert (finding.code, finding.module) == ("NN002", "2")
    assert "LazyLinear `2` has no parameters yet (a lazy module): run one forward on a batch before linting" in finding.message
    assert type(model[2]) is nn.LazyLinear and torch.nn.parameter.is_lazy(model[2].weight)
    model(torch.randn(4, 5))  # initialized: now it is an ordinary model
    assert [f.code for f in Linter(Config()).lint(loaded).findings] == ["NN104", "NN105"]  # bias before BatchNorm, batch of 4


def test_rules_read_weights_without_running_a_parametrization():
    """Reading a spectral-normed weight in training mode would advance its power iteration."""
    model = nn.Sequential(torch.nn.utils.parametrizations.spectral_norm(nn.Linear(4, 4)), nn.BatchNorm1d(4))
    spectral = model[0].parametrizations.weight[0]
    loaded = LoadedTarget(Target(model, example_input=torch.randn(32, 4)), "model", None, None)  # type: ignore[arg-type]
    versions = (spectral._u._version, spectral._v._version)
    Linter(Config()).lint(loaded)
    assert (spectral._u._version, spectral._v._version) == versions


class ReturnsWhatDropoutWasGiven(nn.Module):
    """In evaluation `nn.Dropout` returns its input object itself; its result here is unused."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(x)
        self.drop(features)
        return features, nn.functional.dropout(features, 0.1, training=False).contiguous()


@pytest.mark.parametrize("method", ["fx", "recorded"])
def test_a_call_that_returns_its_input_does_not_become_that_inputs_producer(method):
    model = ReturnsWhatDropoutWasGiven()
    graph = build_graph(model, torch.randn(2, 4), ModuleLocator(model), method)
    first, second = graph.output_node().args[0]
    assert (graph.op(first), graph.op(second)) == ("linear", "identity")  # ops.py spells `.contiguous()` so
    assert graph.op(graph.source(second)) == "dropout"


def test_a_one_element_weight_is_linted_without_a_warning():
    model = nn.Sequential(nn.Linear(4, 1), nn.ReLU(), nn.Linear(1, 1))
    loaded = LoadedTarget(Target(model, example_input=torch.randn(8, 4)), "model", None, None)  # type: ignore[arg-type]
    linter = Linter(Config())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        linter.lint(loaded)
    assert [str(warning.message) for warning in caught] == [] and linter.problems == []
