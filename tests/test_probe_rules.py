"""The probe rules judge measured numbers against documented thresholds; what they report is
deterministic, carries its numbers, and combines with the static findings."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from expectations import FIXTURES, lint
from probe_helpers import lint_model
from torch import nn

from nnlint.config import Config
from nnlint.context import RuleContext
from nnlint.graph import build_graph
from nnlint.probe import ProbeResult, ProbeSettings, run_probe
from nnlint.probe.result import LayerGradient
from nnlint.registry import rules_by_code
from nnlint.render import OutputFormat, render
from nnlint.sources import ModuleLocator
from nnlint.targets import Target


def _judge(code: str, model: nn.Module, probe: ProbeResult, example_input: torch.Tensor, **thresholds: float) -> list:
    rule = rules_by_code()[code]
    graph = build_graph(model, example_input, ModuleLocator(model))
    context = RuleContext(Target(model), probe=probe, thresholds={**rule.thresholds, **thresholds})
    return list(rule.check(graph, context))  # type: ignore[misc]


def _profile(*norms: float, loss: float = 1.0) -> ProbeResult:
    layers = tuple(LayerGradient(str(2 * i), (f"{2 * i}.weight",), norm, 1.0, math.isfinite(norm)) for i, norm in enumerate(norms))
    return ProbeResult("cpu", 3, 8, "synthetic", (loss,), None, (), (), layers, math.sqrt(sum(n * n for n in norms)), (), None)


_CHAIN = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 4))


@pytest.mark.parametrize("first", [5e-5, 2e-4, 5e-3])
def test_vanishing_without_a_steady_collapse_needs_both_autotrainer_conditions(first):
    # The last layer's norm is 1: every first norm here is under 1e-3 of it; only 5e-5 is also under
    # the floor 1e-4. The middle layer's 2.0 breaks the fall through depth.
    hits = _judge("NN801", _CHAIN, _profile(first, 2.0, 1.0), torch.randn(8, 4))
    assert bool(hits) is (first < 1e-4)


def test_a_steady_collapse_through_depth_vanishes_even_above_the_absolute_floor():
    # A 5-layer sigmoid MLP's profile: 5,000x from first to last, shrinking at every layer, first norm 2e-4.
    hits = _judge("NN801", _CHAIN, _profile(2e-4, 0.1, 1.0), torch.randn(8, 4))
    assert hits and "2.00e-04 times the last layer's" in hits[0].message and hits[0].evidence["ratio"] == pytest.approx(2e-4)
    assert not _judge("NN801", _CHAIN, _profile(2e-3, 0.1, 1.0), torch.randn(8, 4))  # 500x: not vanishing


def test_the_absolute_floor_scales_with_the_loss():
    # Gradients scale with the loss: 5e-4 is under 1e-4 x a loss of 10, not under 1e-4 x a loss of 1.
    assert _judge("NN801", _CHAIN, _profile(5e-4, 2.0, 1.0, loss=10.0), torch.randn(8, 4))
    assert not _judge("NN801", _CHAIN, _profile(5e-4, 2.0, 1.0, loss=1.0), torch.randn(8, 4))


def test_all_zero_gradients_are_named_with_their_cause_not_a_learning_rate():
    class ConstantHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.out = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.out(torch.relu(self.fc(x))), dim=1)

    (hit,) = _judge("NN801", ConstantHead(), _profile(0.0, 0.0), torch.randn(8, 4))
    assert "exactly zero" in hit.message and "dimension 1, of size 1" in hit.message and "learning rate" not in hit.fix


def test_vanishing_and_exploding_boundaries():
    x = torch.randn(8, 4)
    assert _judge("NN801", _CHAIN, _profile(9e-5, 0.5, 0.1), x)  # first/last 9e-4 < 1e-3 and first < 1e-4
    assert not _judge("NN801", _CHAIN, _profile(9e-5, 0.5, 0.05), x)  # first/last 1.8e-3
    exploding = _judge("NN802", _CHAIN, _profile(71.0, 5.0, 1.0), x)
    assert exploding and "71 times the last layer's" in exploding[0].message and exploding[0].module == "0"
    assert not _judge("NN802", _CHAIN, _profile(69.0, 5.0, 1.0), x)
    assert not _judge("NN802", _CHAIN, _profile(9e-5, 1.0), x)  # two layers are not a profile
    total = _judge("NN802", _CHAIN, _profile(600.0, 600.0, 600.0), x)  # ratio 1, total norm 1039
    assert total and "total gradient norm is 1.04e+03" in total[0].message


_CHAIN4 = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))


def test_exploding_needs_the_growth_to_be_steady_through_depth():
    x = torch.randn(8, 4)
    # 100x first to last, falling toward the output at every step: an explosion through depth.
    steady = _judge("NN802", _CHAIN4, _profile(100.0, 20.0, 5.0, 1.0), x)
    assert steady and steady[0].evidence["steady_share"] == 1.0
    # The same 100x from layers of different gradient scale side by side (a large embedding
    # gradient, tiny query/key gradients): it falls in 2 of 3 steps, under the 3/4 asked.
    assert not _judge("NN802", _CHAIN4, _profile(100.0, 0.01, 5.0, 1.0), x)
    assert _judge("NN802", _CHAIN4, _profile(100.0, 0.01, 5.0, 1.0), x, **{"min-steady-share": 0.5})


def test_thresholds_are_overridden_from_the_config():
    path = FIXTURES / "nn804_dead_relu.py"
    assert [f.code for f in lint(path).findings] == ["NN804"]
    assert lint(path, thresholds={"NN804": {"max-dead-fraction": 0.8}}).findings == []


def test_the_same_model_gives_the_same_numbers_every_run():
    model = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))
    batch = (torch.randn(32, 8) * 50, torch.randint(0, 3, (32,)))
    runs = [lint_model(model, example_batch=batch, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), 10.0))]
    torch.manual_seed(1234)  # the caller's random state does not matter: the probe seeds its own
    runs.append(lint_model(model, example_batch=batch, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), 10.0)))
    first, second = ([dataclasses.asdict(f) for f in run.findings] for run in runs)
    assert first == second and {f["code"] for f in first} >= {"NN701", "NN905"}
    assert runs[0].targets[0].gradient_flow == runs[1].targets[0].gradient_flow


def test_batch_too_small_carries_the_measured_spread_of_batch_statistics():
    # BatchNorm1d over (N, C) inputs: a batch mean of b samples spreads by 1/sqrt(b) channel deviations.
    model = nn.Sequential(nn.Linear(8, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 1))
    report = lint_model(model, example_batch=(torch.randn(64, 8), torch.randn(64, 1)), batch_size=4)
    small = next(f for f in report.findings if f.code == "NN105")
    spread = small.evidence["measured_batch_mean_spread"]["1"]
    assert abs(spread - 0.5) < 0.05
    assert "measured by the probe on example_batch: at batch 4 a channel's batch mean moves by" in small.message
    for random_input in ({"example_input": torch.randn(64, 8)}, {}):  # the user's random input, or one nnlint made up
        unmeasured = lint_model(model, batch_size=4, **random_input)
        assert "measured_batch_mean_spread" not in next(f for f in unmeasured.findings if f.code == "NN105").evidence
    static = lint_model(model, Config(static=True), example_input=torch.randn(64, 8), batch_size=4)
    assert "measured_batch_mean_spread" not in next(f for f in static.findings if f.code == "NN105").evidence


def test_nan_in_the_batch_is_nn803_and_adds_no_nan_measurement_to_batch_too_small():
    model = nn.Sequential(nn.Linear(8, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 1))
    inputs = torch.randn(64, 8)
    inputs[0, 0] = float("nan")
    report = lint_model(model, example_batch=(inputs, torch.randn(64, 1)), batch_size=4)
    assert "NN803" in {f.code for f in report.findings}
    small = next(f for f in report.findings if f.code == "NN105")
    assert "measured_batch_mean_spread" not in small.evidence and "nan" not in small.message


def test_the_synthetic_loss_reaches_every_layer_even_through_a_softmax():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4), nn.Softmax(dim=1))
    result = run_probe(model, torch.randn(16, 6), Target(model), ProbeSettings())
    assert [layer.module for layer in result.layers] == ["0", "2"]
    assert all(layer.grad_norm > 1e-4 for layer in result.layers)  # `output.sum()` would give exactly 0 here
    assert result.loss_source.startswith("synthetic")


def test_the_gradient_profile_runs_input_to_output_with_attention_and_without_the_models_own_tensors():
    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(30, 16)
            self.position = nn.Parameter(torch.randn(1, 10, 16) * 0.02)
            self.attention = nn.MultiheadAttention(16, 2, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            x = self.embed(tokens) + self.position
            return self.head(self.attention(x, x, x)[0].mean(1))

    model = Encoder()
    result = run_probe(model, torch.randint(0, 30, (8, 10)), Target(model), ProbeSettings())
    assert [layer.module for layer in result.layers] == ["embed", "attention", "head"]
    assert set(result.layers[1].parameters) == {"attention.in_proj_weight", "attention.out_proj.weight"}
    assert result.without_grad == () and result.mixing is not None and result.mixing.dependence == 0


def test_attention_across_the_batch_is_reported_where_it_happens():
    class Wrong(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 16)
            self.attention = nn.MultiheadAttention(16, 2)  # expects (time, batch, features)
            self.head = nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.proj(x)  # (batch, time, 16)
            return self.head(self.attention(h, h, h)[0])

    model = Wrong()
    report = lint_model(model, example_input=torch.randn(6, 5, 8))
    mixed = next(f for f in report.findings if f.code == "NN906")
    assert mixed.module == "attention" and "MultiheadAttention `attention`" in mixed.message


def test_selected_rules_decide_which_checks_the_probe_runs():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    bare = run_probe(model, torch.randn(16, 4), Target(model), ProbeSettings(measures=frozenset()))
    assert bare.determinism is None and bare.mixing is None and bare.train_eval is None and bare.layers
    only_nn8 = lint(FIXTURES / "nn901_noise_in_eval.py", select=("NN8",))
    assert only_nn8.findings == []


def test_text_report_draws_one_bar_per_layer_with_the_thresholds():
    report = lint(FIXTURES / "nn801_deep_sigmoid.py")
    text = render(report, OutputFormat.TEXT, width=120)
    chart = text[text.index("gradient flow") :].splitlines()
    rows = [line for line in chart if "█" in line]
    assert len(rows) == 13 and rows[0].split()[0] == "0" and rows[-1].split()[0] == "24"
    assert sum(line.count("█") for line in rows[:1]) < sum(line.count("█") for line in rows[-1:])  # input side: shorter bars
    assert "┆ the first layer's thresholds: vanishing below 1.00e-04, exploding above" in text


def test_json_report_carries_the_gradient_flow_and_the_evidence():
    report = lint(FIXTURES / "nn801_deep_sigmoid.py")
    data = json.loads(render(report, OutputFormat.JSON))
    target = data["targets"][0]
    flow = target["gradient_flow"]
    assert len(flow["layers"]) == 13 and flow["vanishing_floor"] == 1e-4
    assert flow["exploding_above"] == pytest.approx(70 * flow["layers"][-1]["grad_norm"])
    finding = next(f for f in target["findings"] if f["code"] == "NN801")
    assert finding["phase"] == "probe"
    assert finding["evidence"]["ratio"] == pytest.approx(flow["layers"][0]["grad_norm"] / flow["layers"][-1]["grad_norm"])


def test_train_eval_gap_uses_the_training_batch_size_and_works_with_one_step():
    model = nn.Sequential(nn.Linear(8, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    inputs = torch.randn(64, 8)
    whole = run_probe(model, inputs, Target(model), ProbeSettings(steps=1)).train_eval
    assert whole is not None and whole.chunk_size == 64 and whole.dropout_difference == 0
    assert whole.relative_difference < 1e-5  # calibrated to the batch's own statistics, evaluation reproduces training
    pieces = run_probe(model, inputs, Target(model), ProbeSettings(training_batch_size=4)).train_eval
    assert pieces is not None and pieces.chunk_size == 4
    assert pieces.relative_difference > 5 * whole.relative_difference  # batch-of-4 statistics are noisy
    assert [gap.module for gap in pieces.modules][:2] == ["0", "1"] and pieces.modules[1].difference > pieces.modules[0].difference


def test_non_finite_gradients_give_nn803_and_no_chart():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    inputs = torch.randn(8, 3)
    inputs[0, 0] = float("nan")
    report = lint_model(model, example_batch=(inputs, torch.rand(8, 1)))
    assert [f.code for f in report.findings] == ["NN803"] and report.targets[0].gradient_flow is None
    again = lint_model(model, example_batch=(inputs, torch.rand(8, 1)))
    assert again.targets[0].findings == report.targets[0].findings  # no NaN anywhere to break equality


def test_the_chart_spells_out_control_characters_in_module_names():
    model = nn.Sequential()
    model.add_module("a\rb\x1bc", nn.Linear(4, 8))
    model.add_module("relu", nn.ReLU())
    model.add_module("head", nn.Linear(8, 2))
    text = render(lint_model(model, example_input=torch.randn(16, 4)), OutputFormat.TEXT, width=100)
    chart = text[text.index("gradient flow") :]
    assert "\r" not in chart and "\x1b" not in chart and "a\\rb\\x1bc" in chart
