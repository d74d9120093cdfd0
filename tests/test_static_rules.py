"""Static rules NN201–NN504 beyond their fixtures: the catalogue, how both graphs spell what the
rules read, their edges (default initializations, zero-init techniques, optimizer families), and
that they never touch the model they read."""

from __future__ import annotations

import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from good_models import GOOD, adamw_without_decay_on_norms_and_biases
from nnlint.rules.activations import loss_kind
from nnlint.rules.dropout import dropout_calls
from torch import nn

from nnlint.config import Config
from nnlint.engine import Linter
from nnlint.findings import Severity
from nnlint.graph import build_graph
from nnlint.loader import LoadedTarget
from nnlint.registry import DOC_SECTIONS, all_rules
from nnlint.report import TargetReport
from nnlint.sources import ModuleLocator
from nnlint.targets import Target

GRAPHS = ("fx", "recorded")
LINT_GRAPHS = ("auto", "recorded")  # "auto" is FX, falling back to the recorder for untraceable forwards
STATIC_CODES = [
    f"NN{n}" for n in (201, 202, 203, 204, 205, 206, 301, 302, 303, 304, 305, 306, 307, 401, 402, 403, 404, 405, 406, 501, 502, 503, 504)
]


def lint_model(
    model: nn.Module, example_input: object, graph: str = "auto", thresholds: dict | None = None, **extras: object
) -> TargetReport:
    """Lint one model object as the API would, with the given extras (loss_fn, optimizer, ...)."""
    linter = Linter(Config(graph=graph, thresholds=thresholds or {}))
    report = linter.lint(LoadedTarget(Target(model, example_input=example_input, **extras), "model", None, None))  # type: ignore[arg-type]
    assert linter.problems == [], linter.problems
    return report


def found(report: TargetReport, code: str) -> list:
    return [finding for finding in report.findings if finding.code == code]


# -- the catalogue -------------------------------------------------------------------------------
def test_catalogue_has_the_static_rules_of_families_2_to_5_in_code_order():
    codes = [rule.code for rule in all_rules()]
    assert [code for code in codes if "NN201" <= code <= "NN599"] == STATIC_CODES
    assert codes == sorted(codes)


@pytest.mark.parametrize("code", STATIC_CODES)
def test_each_static_rule_is_a_function_named_after_its_slug_with_full_docs(code):
    rule = next(rule for rule in all_rules() if rule.code == code)
    assert rule.check is not None and rule.check.__name__ == rule.slug.replace("-", "_")
    assert list(rule.sections) == list(DOC_SECTIONS)
    assert all(body.strip() for body in rule.sections.values())
    for name, default in rule.thresholds.items():
        assert isinstance(default, (int, float))
        assert f"`{name}`" in rule.doc, f"{code}: threshold {name} is not documented"


def test_rules_that_need_a_loss_or_an_optimizer_are_listed_as_skipped_without_them():
    report = lint_model(nn.Sequential(nn.Linear(8, 4)), torch.randn(16, 8))
    skipped = {reason: set(entry.codes) for entry in report.skipped for reason in [entry.reason]}
    static = set(STATIC_CODES)
    assert {reason: codes & static for reason, codes in skipped.items() if codes & static} == {
        "need `loss_fn` (the training loss)": {"NN302", "NN306", "NN307"},
        "need `optimizer` (the optimizer the model is trained with)": {"NN205", "NN501", "NN502", "NN503", "NN504"},
    }
    model = nn.Sequential(nn.Linear(8, 4))
    given = lint_model(model, torch.randn(16, 8), loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert not {code for entry in given.skipped for code in entry.codes} & static  # what is left needs example_batch or --deep


# -- NN2: dropout --------------------------------------------------------------------------------
class DropoutSpellings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.module = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(x, 0.5)  # default training=True
        x = F.dropout(x, 0.4, True)
        x = F.dropout(x, p=0.3, training=self.training)
        x = torch.dropout(x, 0.2, True)
        x = torch.dropout(x, p=0.15, train=False)
        x = F.alpha_dropout(x, 0.1, self.training)
        return self.module(x)


@pytest.mark.parametrize("method", GRAPHS)
def test_both_graphs_spell_functional_dropout_so_rate_and_training_flag_read_the_same(method):
    model = DropoutSpellings()
    graph = build_graph(model, torch.randn(4, 8), ModuleLocator(model), method)
    calls = [(call.rate, call.training) for call in dropout_calls(graph)]
    # Traced in evaluation mode: `self.training` reads False; the default and literal True stay True.
    assert calls == [(0.5, True), (0.4, True), (0.3, False), (0.2, True), (0.15, False), (0.1, False), (0.25, None)]


@pytest.mark.parametrize("method", LINT_GRAPHS)
def test_dropout_always_on_flags_exactly_the_calls_that_ignore_eval(method):
    report = lint_model(DropoutSpellings(), torch.randn(16, 8), method)
    assert sorted(f.evidence["rate"] for f in found(report, "NN202")) == [0.2, 0.4, 0.5]


def test_no_regularization_is_silent_when_any_regularizer_exists():
    def mlp(*extra: nn.Module) -> nn.Sequential:
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), *extra, nn.Linear(16, 2))

    plain = mlp()
    assert found(lint_model(plain, torch.randn(16, 8), optimizer=torch.optim.SGD(plain.parameters(), lr=0.1)), "NN205")
    for model, optimizer in [
        (mlp(nn.Dropout(0.1)), torch.optim.SGD),
        (mlp(nn.LayerNorm(16)), torch.optim.SGD),
        (mlp(), functools.partial(torch.optim.AdamW, weight_decay=0.01)),
    ]:
        report = lint_model(model, torch.randn(16, 8), optimizer=optimizer(model.parameters(), lr=1e-3))
        assert not found(report, "NN205"), model


def test_dropout_configured_inside_leaf_modules_counts_as_regularization():
    model = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True))
    report = lint_model(model, torch.randn(16, 4, 8), optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert not found(report, "NN205")


# -- NN3: heads and losses -----------------------------------------------------------------------
def test_loss_kind_reads_modules_classes_functions_and_partials():
    assert loss_kind(nn.CrossEntropyLoss(label_smoothing=0.1)) == "cross_entropy"
    assert loss_kind(nn.CrossEntropyLoss) == "cross_entropy"
    assert loss_kind(F.cross_entropy) == "cross_entropy"
    assert loss_kind(functools.partial(F.nll_loss, ignore_index=0)) == "nll"
    assert loss_kind(nn.BCEWithLogitsLoss(pos_weight=torch.ones(3))) == "bce_with_logits"
    assert loss_kind(F.binary_cross_entropy) == "bce"
    assert loss_kind(nn.MSELoss()) is None
    assert loss_kind(lambda output, target: (output - target).abs().mean()) is None


class TupleOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.softmax(self.fc(x), dim=-1), x


class DictOutput(TupleOutput):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"hidden": x, "logits": F.softmax(self.fc(x), dim=-1)}


@pytest.mark.parametrize("method", LINT_GRAPHS)
@pytest.mark.parametrize("model_type", [TupleOutput, DictOutput])
def test_the_loss_reads_the_first_output_or_the_logits_entry(method, model_type):
    report = lint_model(model_type(), torch.randn(16, 8), method, loss_fn=nn.CrossEntropyLoss())
    assert len(found(report, "NN302")) == 1


def test_heads_are_not_judged_against_an_unknown_loss():
    model = nn.Sequential(nn.Linear(8, 4), nn.Softmax(dim=-1))
    report = lint_model(model, torch.randn(16, 8), loss_fn=lambda probabilities, target: (probabilities - target).pow(2).mean())
    assert not [f for f in report.findings if f.code in ("NN302", "NN303", "NN306")]


@pytest.mark.parametrize("method", LINT_GRAPHS)
def test_a_stack_shorter_than_the_threshold_passes_and_the_threshold_is_configurable(method):
    model = nn.Sequential(*[layer for _ in range(3) for layer in (nn.Linear(16, 16), nn.Tanh())])
    assert not found(lint_model(model, torch.randn(16, 16), method), "NN301")
    lowered = lint_model(model, torch.randn(16, 16), method, thresholds={"NN301": {"min-depth": 3}})
    assert [f.evidence["depth"] for f in found(lowered, "NN301")] == [3]


# -- NN4: parameters -----------------------------------------------------------------------------
def _two_layers(first: nn.Module, activation: nn.Module | None, width: int) -> nn.Sequential:
    return nn.Sequential(first, *([activation] if activation else []), nn.Linear(width, 3))


_DEFAULT_LAYERS = [
    (nn.Linear(4, 4096), 4096, (16, 4)),
    (nn.Linear(4096, 4), 4, (16, 4096)),
    (nn.Linear(1, 10), 10, (16, 1)),
    (nn.Linear(8192, 16), 16, (16, 8192)),
    (nn.Conv2d(3, 64, 7, stride=2), 64, (16, 3, 32, 32)),
    (nn.Conv2d(512, 512, 3), 512, (16, 512, 5, 5)),
    (nn.Conv1d(1, 64, 80, stride=4), 64, (16, 1, 400)),
    (nn.ConvTranspose2d(64, 32, 4, stride=2), 32, (16, 64, 4, 4)),
    (nn.Conv2d(64, 64, 3, groups=64), 64, (16, 64, 8, 8)),
]


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, None])
@pytest.mark.parametrize(("layer", "width", "shape"), _DEFAULT_LAYERS, ids=lambda v: str(v) if isinstance(v, nn.Module) else None)
def test_pytorch_default_initialization_is_never_flagged(layer, width, shape, activation):
    layer = copy.deepcopy(layer)
    layer.reset_parameters()
    head = nn.Sequential(nn.Flatten(), nn.LazyLinear(3)) if layer.weight.dim() > 2 else nn.Linear(width, 3)
    model = nn.Sequential(layer, *([activation()] if activation else []), head)
    with torch.no_grad():
        model(torch.randn(*shape))  # materialize the lazy head
    assert not found(lint_model(model, torch.randn(*shape)), "NN402")


_COMMON_INITS = {
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
    "kaiming_normal_fan_in": functools.partial(nn.init.kaiming_normal_, nonlinearity="relu"),
    "kaiming_uniform": functools.partial(nn.init.kaiming_uniform_, nonlinearity="relu"),
    "orthogonal": nn.init.orthogonal_,
    "trunc_normal_0.02": functools.partial(nn.init.trunc_normal_, std=0.02),
}


@pytest.mark.parametrize("shape", [(4, 2048), (2048, 4), (256, 256), (1024, 1024)])
@pytest.mark.parametrize("init", list(_COMMON_INITS))
def test_standard_initializations_are_not_flagged(init, shape):
    fan_in, fan_out = shape
    model = nn.Sequential(nn.Linear(fan_in, fan_out), nn.ReLU(), nn.Linear(fan_out, 3))
    _COMMON_INITS[init](model[0].weight)
    assert not found(lint_model(model, torch.randn(16, fan_in)), "NN402")


@pytest.mark.parametrize("conv", [nn.Conv2d(3, 64, 7, stride=2), nn.Conv2d(256, 64, 1), nn.Conv2d(64, 256, 1), nn.Conv2d(128, 128, 3)])
def test_kaiming_fan_out_on_convolutions_is_not_flagged(conv):
    """torchvision's ResNet/VGG initialization; on a Linear(2048, 4) it would blow up the forward pass, and is flagged."""
    conv = copy.deepcopy(conv)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    model = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(conv.out_channels, 3))
    assert not found(lint_model(model, torch.randn(16, conv.in_channels, 16, 16)), "NN402")


@pytest.mark.parametrize("method", LINT_GRAPHS)
def test_initialization_scale_reports_the_measured_ratio_both_ways(method):
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 3))
    nn.init.normal_(model[0].weight, std=1.0)  # He scale √(2/512) = 0.0625: 16× too large
    nn.init.normal_(model[2].weight, std=1e-4)  # Glorot scale √(1/512) ≈ 0.0442: ~442× too small
    nn.init.normal_(model[4].weight, std=1e-4)  # a small last layer is a choice, not a mistake
    findings = {f.module: f for f in found(lint_model(model, torch.randn(16, 512), method), "NN402")}
    assert set(findings) == {"0", "2"}
    assert findings["0"].evidence["ratio"] == pytest.approx(16, rel=0.03)
    assert findings["0"].evidence["scheme"] == "He"
    assert f"{findings['0'].evidence['ratio']:.1f}×" in findings["0"].message
    assert findings["2"].evidence["ratio"] == pytest.approx(math.sqrt(1 / 512) / 1e-4, rel=0.03)
    assert findings["2"].evidence["scheme"] == "Glorot"


def test_layers_followed_by_normalization_are_not_judged_on_their_scale():
    model = nn.Sequential(nn.Linear(512, 512, bias=False), nn.LayerNorm(512), nn.ReLU(), nn.Linear(512, 3))
    nn.init.normal_(model[0].weight, std=5.0)
    assert not found(lint_model(model, torch.randn(16, 512)), "NN402")


def test_a_gradient_means_trained_unless_it_is_the_first_steps_of_a_stopped_script():
    """A weight with a gradient was trained (NN402 judges initializations only); script mode stops
    before the first update, and says so on the target: that step's gradient is no training."""
    model = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 3))
    nn.init.normal_(model[0].weight, std=1.0)  # 16× the He scale
    model(torch.randn(16, 512)).square().mean().backward()
    assert not found(lint_model(model, torch.randn(16, 512)), "NN402")
    assert [f.module for f in found(lint_model(model, torch.randn(16, 512), grads_from_first_step=True), "NN402")] == ["0"]
    assert model[0].weight.grad is not None  # the user's gradient is still there


def test_weights_on_the_meta_device_are_skipped_silently():
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    report = lint_model(model, torch.randn(16, 64, device="meta"))
    assert not [f for f in report.findings if f.code in ("NN401", "NN402")]


def test_frozen_weights_are_not_judged_on_their_initialization():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    nn.init.constant_(model[0].weight, 0.5)
    model[0].requires_grad_(False)
    report = lint_model(model, torch.randn(16, 64))
    assert not [f for f in report.findings if f.code in ("NN401", "NN402")]


@pytest.mark.parametrize("method", LINT_GRAPHS)
def test_zero_weights_are_flagged_only_where_nothing_breaks_the_symmetry(method):
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    for index in (0, 2):  # an init loop that zeroes weights and biases of two consecutive layers
        nn.init.zeros_(model[index].weight)
        nn.init.zeros_(model[index].bias)
    nn.init.zeros_(model[4].weight)  # the head: the loss tells its units apart
    flagged = [f.module for f in found(lint_model(model, torch.randn(16, 16), method), "NN401")]
    # model[0] and model[2] each feed a constant layer that cannot tell their units apart; tanh(0) = 0 keeps
    # model[4]'s gradient at 0 too, so nothing ever moves. The head alone would be fine.
    assert flagged == ["0", "2"]


def test_zero_weights_with_random_biases_are_accepted():
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    nn.init.zeros_(model[0].weight)
    nn.init.zeros_(model[2].weight)
    assert not found(lint_model(model, torch.randn(16, 16)), "NN401")


class Forgetful(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(8, 8)
        self.forgotten = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


class ReadsWeight(Forgetful):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.used(x), self.forgotten.weight)


class TrainingOnly(Forgetful):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forgotten(self.used(x)) if self.training else self.used(x)


class Tied(Forgetful):
    def __init__(self) -> None:
        super().__init__()
        self.forgotten.weight = self.used.weight
        self.forgotten.bias = self.used.bias


class FrozenSpare(Forgetful):
    def __init__(self) -> None:
        super().__init__()
        self.forgotten.requires_grad_(False)


@pytest.mark.parametrize("method", LINT_GRAPHS)
@pytest.mark.parametrize(
    ("model_type", "flagged"), [(Forgetful, ["forgotten"]), (ReadsWeight, []), (TrainingOnly, []), (Tied, []), (FrozenSpare, [])]
)
def test_unused_module(method, model_type, flagged):
    report = lint_model(model_type(), torch.randn(16, 8), method)
    assert [f.module for f in found(report, "NN403")] == flagged


@pytest.mark.parametrize("method", LINT_GRAPHS)
def test_layers_inside_a_called_leaf_module_are_used(method):
    model = nn.Sequential(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), nn.MultiheadAttention(16, 2, batch_first=True))
    model = nn.ModuleDict({"encoder": model[0], "attention": model[1]})

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.layers["encoder"](x)
            return self.layers["attention"](x, x, x)[0]

    assert not found(lint_model(Wrapper(), torch.randn(16, 4, 16), method), "NN403")


def test_a_frozen_model_has_nothing_to_train_but_a_parameterless_one_is_not_reported():
    frozen = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).requires_grad_(False)
    assert len(found(lint_model(frozen, torch.randn(16, 8)), "NN404")) == 1
    assert not found(lint_model(nn.Sequential(nn.ReLU(), nn.Flatten()), torch.randn(16, 8)), "NN404")


# -- NN5: optimizer ------------------------------------------------------------------------------
def _classifier() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16, bias=False), nn.LayerNorm(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))


def _lint_with_optimizer(make_optimizer, thresholds: dict | None = None) -> TargetReport:
    model = _classifier()
    return lint_model(model, torch.randn(16, 8), thresholds=thresholds, optimizer=make_optimizer(model))


@pytest.mark.parametrize(
    ("make_optimizer", "flagged"),
    [
        (lambda m: torch.optim.Adam(m.parameters(), weight_decay=1e-4), True),
        (lambda m: torch.optim.RMSprop(m.parameters(), lr=1e-3, weight_decay=1e-4), True),
        (lambda m: torch.optim.Adagrad(m.parameters(), weight_decay=1e-4), True),
        (lambda m: torch.optim.NAdam(m.parameters(), weight_decay=1e-4), True),
        (lambda m: torch.optim.AdamW(m.parameters(), weight_decay=1e-2), False),
        (lambda m: torch.optim.Adam(m.parameters(), weight_decay=1e-2, decoupled_weight_decay=True), False),
        (lambda m: torch.optim.Adam(m.parameters()), False),
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=5e-4), False),
    ],
)
def test_adam_with_l2_weight_decay(make_optimizer, flagged):
    assert bool(found(_lint_with_optimizer(make_optimizer), "NN501")) is flagged


def test_weight_decay_on_norm_or_bias_names_the_parameters_and_the_group():
    report = _lint_with_optimizer(lambda m: torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=5e-4))
    (finding,) = found(report, "NN502")
    assert finding.evidence == {"group": 0, "weight_decay": 5e-4, "parameters": ["1.weight", "1.bias", "4.bias"]}
    assert "`1.weight`, `1.bias`, `4.bias`" in finding.message

    def split(model: nn.Module) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}], lr=0.1)

    assert not found(_lint_with_optimizer(split), "NN502")


@pytest.mark.parametrize(
    ("make_optimizer", "side"),
    [
        (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), None),
        (lambda m: torch.optim.SGD(m.parameters(), lr=5.0), "above"),
        (lambda m: torch.optim.SGD(m.parameters(), lr=1e-8), "below"),
        (lambda m: torch.optim.Adam(m.parameters(), lr=3e-4), None),
        (lambda m: torch.optim.AdamW(m.parameters(), lr=1e-2), None),
        (lambda m: torch.optim.AdamW(m.parameters(), lr=0.1), "above"),
        (lambda m: torch.optim.Adam(m.parameters(), lr=1e-8), "below"),
        (lambda m: torch.optim.RMSprop(m.parameters(), lr=1e-3), None),
        (lambda m: torch.optim.RMSprop(m.parameters(), lr=0.5), "above"),
        (lambda m: torch.optim.Adagrad(m.parameters(), lr=0.05), None),
        (lambda m: torch.optim.Adadelta(m.parameters()), None),
        (lambda m: torch.optim.LBFGS(m.parameters(), lr=100.0), None),  # no usual range: not checked
        (lambda m: torch.optim.Adam(m.parameters(), lr=torch.tensor(0.5)), "above"),
    ],
)
def test_learning_rate_ranges_per_optimizer_family(make_optimizer, side):
    findings = found(_lint_with_optimizer(make_optimizer), "NN503")
    sides = ["above" if f.evidence["lr"] > f.evidence["max_lr"] else "below" for f in findings]
    assert sides == ([side] if side else [])
    assert all(f"is {side} the usual range" in f.message for f in findings)


def test_learning_rate_is_the_schedulers_base_rate_and_the_range_is_configurable():
    def warmed_up(model: nn.Module) -> torch.optim.Optimizer:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-5, total_iters=100)  # lr starts at 1e-8
        return optimizer

    assert not found(_lint_with_optimizer(warmed_up), "NN503")
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=3.2)  # noqa: E731 - Goyal et al.'s batch-8k rate
    assert found(_lint_with_optimizer(sgd), "NN503")
    assert not found(_lint_with_optimizer(sgd, thresholds={"NN503": {"sgd-max-lr": 4}}), "NN503")


def test_parameters_not_in_optimizer_names_missing_modules_and_parameters():
    model = _classifier()
    report = lint_model(model, torch.randn(16, 8), optimizer=torch.optim.SGD([model[0].weight, model[1].weight], lr=0.1))
    findings = {f.module: f.evidence["parameters"] for f in found(report, "NN504")}
    assert findings == {"4": ["4.weight", "4.bias"], "1": ["1.bias"]}


def test_an_optimizer_over_another_model_is_reported_once():
    model = _classifier()
    report = lint_model(model, torch.randn(16, 8), optimizer=torch.optim.SGD(_classifier().parameters(), lr=0.1))
    (finding,) = found(report, "NN504")
    assert "none of the model's 5 trainable parameter tensors" in finding.message


def test_optimizer_rules_ignore_something_that_is_not_an_optimizer():
    report = lint_model(_classifier(), torch.randn(16, 8), optimizer="adam")
    assert not [f for f in report.findings if f.code.startswith("NN5")]


# -- all of them ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", LINT_GRAPHS)
@pytest.mark.parametrize("name", list(GOOD))
def test_well_known_architectures_get_no_warning(name, method):
    model_type, example_input, loss_fn = GOOD[name]
    model = model_type()
    report = lint_model(model, example_input(), method, loss_fn=loss_fn, optimizer=adamw_without_decay_on_norms_and_biases(model))
    assert [(f.code, f.module, f.message) for f in report.findings if f.severity is not Severity.INFO] == []


def test_the_rules_leave_the_model_and_the_optimizer_exactly_as_they_were():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2), nn.Softmax(dim=-1))
    model[0].requires_grad_(False)
    model.train()
    model[1].eval()  # mixed modes must survive
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-3)
    state = copy.deepcopy(model.state_dict())
    flags = [(m.training, [p.requires_grad for p in m.parameters(recurse=False)]) for m in model.modules()]
    groups = copy.deepcopy([{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups])
    report = lint_model(model, torch.randn(16, 8), loss_fn=nn.CrossEntropyLoss(), optimizer=optimizer)
    assert {f.code for f in report.findings} >= {"NN302", "NN501", "NN502", "NN503"}
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    assert flags == [(m.training, [p.requires_grad for p in m.parameters(recurse=False)]) for m in model.modules()]
    assert groups == [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    assert optimizer.state == {} or all(not s for s in optimizer.state.values())


def test_large_weights_are_read_through_a_sample_but_constancy_is_confirmed_in_full():
    from nnlint.rules.parameters import _SAMPLE_SIZE, _constant_value, _sample

    weight = torch.zeros(2048, 2048)
    assert _sample(weight).numel() <= _SAMPLE_SIZE
    assert _constant_value(weight) == 0.0
    weight[0, 1] = 1.0  # outside the strided sample
    assert _constant_value(weight) is None
    weight = torch.randn(4096, 1024) * 0.05
    assert float(_sample(weight).std()) == pytest.approx(float(weight.std()), rel=0.01)
