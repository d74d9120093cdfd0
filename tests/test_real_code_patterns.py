"""Issue 14's cases beyond the fixtures: severities, both graphs' spellings of written-out
activations, where findings point, and the edges each new rule must stay silent on."""

from __future__ import annotations

import os
import textwrap

import pytest
import torch
from torch import nn

from nnlint.config import Config
from nnlint.engine import Linter, lint_paths
from nnlint.findings import Severity
from nnlint.graph import build_graph
from nnlint.loader import LoadedTarget
from nnlint.sources import ModuleLocator
from nnlint.targets import Target

GRAPHS = ("fx", "recorded")


def findings(model: nn.Module, example_input: object, code: str, graph: str = "auto", **extras: object) -> list:
    linter = Linter(Config(graph=graph, static=True))
    report = linter.lint(LoadedTarget(Target(model, example_input=example_input, **extras), "model", None, None))  # type: ignore[arg-type]
    return [f for f in report.findings if f.code == code]


# -- NN105: batch of one -----------------------------------------------------------------------
def test_batch_of_one_is_an_error_for_batchnorm_on_features_and_a_warning_for_images():
    mlp = nn.Sequential(nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    (on_features,) = findings(mlp, torch.randn(1, 8), "NN105")
    (on_images,) = findings(cnn, torch.randn(1, 3, 8, 8), "NN105")
    assert on_features.severity is Severity.ERROR and "PyTorch raises" in on_features.message
    assert on_images.severity is Severity.WARNING and "spatial positions" in on_images.message


# -- activations written as arithmetic ---------------------------------------------------------
class WrittenOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.fc(x)
        sigmoid = 1 / (1 + torch.exp(-h))
        reciprocal = torch.reciprocal(1.0 + torch.exp(-1 * h))
        tanh = (torch.exp(h) - torch.exp(-h)) / (torch.exp(h) + torch.exp(-h))
        not_sigmoid = 1 / (2 + torch.exp(-h))
        return sigmoid, reciprocal, tanh, not_sigmoid


@pytest.mark.parametrize("method", GRAPHS)
def test_sigmoid_and_tanh_written_as_arithmetic_are_those_ops_in_both_graphs(method):
    model = WrittenOut()
    graph = build_graph(model, torch.randn(2, 4), ModuleLocator(model, None), method)
    returned = [graph.op(node) for node in graph.returned()]
    assert returned == ["sigmoid", "sigmoid", "tanh", "div"]


# -- NN110, NN108: their edges -----------------------------------------------------------------
def frozen_backbone(train: bool, head: bool = True) -> nn.Module:
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.requires_grad_(False)
    model = nn.Sequential(backbone, nn.Linear(8, 2)) if head else backbone
    if not head:
        model.requires_grad_(False)
    return model.train(train)


def test_frozen_batchnorm_is_reported_in_training_mode_only_and_not_when_nothing_trains():
    assert len(findings(frozen_backbone(train=True), torch.randn(16, 3, 8, 8), "NN110")) == 1
    assert findings(frozen_backbone(train=False), torch.randn(16, 3, 8, 8), "NN110") == []
    assert findings(frozen_backbone(train=True, head=False), torch.randn(16, 3, 8, 8), "NN110") == []


def test_cumulative_momentum_and_pytorch_defaults_are_not_the_tensorflow_convention():
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8, momentum=None), nn.BatchNorm1d(8, momentum=0.1))
    assert findings(model, torch.randn(16, 4), "NN108") == []
    (finding,) = findings(nn.Sequential(nn.BatchNorm1d(4, momentum=0.9)), torch.randn(16, 4), "NN108")
    assert "momentum=0.9" in finding.message and "0.1" in finding.fix


# -- NN206: Dropout2d on a sequence ------------------------------------------------------------
class SequenceDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.drop = nn.Dropout2d(0.2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.drop(self.embed(tokens))


@pytest.mark.parametrize("method", ("auto", "recorded"))
def test_dropout2d_on_a_sequence_names_what_it_drops(method):
    (finding,) = findings(SequenceDropout(), torch.randint(0, 50, (8, 10)), "NN206", graph=method)
    assert "time steps" in finding.message and "nn.Dropout1d" in finding.fix


# -- NN405, NN406: where they point ------------------------------------------------------------
def test_requires_grad_on_a_module_points_at_the_script_line_and_method_call_is_silent(tmp_path):
    path = tmp_path / "finetune.py"
    path.write_text(
        textwrap.dedent(
            """\
            import torch
            from torch import nn

            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
                    self.decoder = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
                    self.head = nn.Linear(8, 2)

                def forward(self, x):
                    return self.head(self.decoder(self.encoder(x)))

            model = Net()
            model.encoder.requires_grad = False
            model.decoder.requires_grad_(False)
            example_input = torch.randn(16, 8)
            """
        )
    )
    report = lint_paths([path], Config(static=True))
    assert [(f.code, f.location.line, f.module) for f in report.findings if f.code == "NN406"] == [("NN406", 15, "encoder")]


def test_a_private_list_and_references_to_registered_modules_are_not_unregistered_submodules():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.refs = [self.fc]
            self._hidden = [nn.Linear(4, 4)]
            self.names = ["fc"]
            self.shapes = {"fc": (4, 4)}

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    assert findings(Holder(), torch.randn(8, 4), "NN405") == []


# -- NN402: trained weights, nnlint's own entry script -----------------------------------------
def scaled_up_mlp() -> nn.Sequential:
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1))
    with torch.no_grad():
        model[0].weight.mul_(30)  # 30x PyTorch's default: far past He's scale
    return model


def test_initialization_scale_judges_untrained_weights_only():
    untrained = scaled_up_mlp()
    assert len(findings(untrained, torch.randn(8, 16), "NN402")) == 1
    # Trained at import with Adam: the optimizer holds state for the weight.
    adam_trained = scaled_up_mlp()
    adam = torch.optim.Adam(adam_trained.parameters(), lr=1e-3)
    adam_trained(torch.randn(8, 16)).pow(2).mean().backward()
    adam.step()
    assert findings(adam_trained, torch.randn(8, 16), "NN402", optimizer=adam) == []
    # Trained with plain SGD (no optimizer state): the version counter shows the steps.
    sgd_trained = scaled_up_mlp()
    sgd = torch.optim.SGD(sgd_trained.parameters(), lr=1e-3)
    for _ in range(20):
        sgd.zero_grad()
        sgd_trained(torch.randn(8, 16)).pow(2).mean().backward()
        sgd.step()
    assert findings(sgd_trained, torch.randn(8, 16), "NN402") == []
    # A hand-written loop through .data (pytorch/examples' regression): only the gradient is left.
    by_hand = scaled_up_mlp()
    by_hand(torch.randn(8, 16)).pow(2).mean().backward()
    for parameter in by_hand.parameters():
        parameter.data.add_(-0.1 * parameter.grad)
    assert findings(by_hand, torch.randn(8, 16), "NN402") == []


def test_console_scripts_are_never_the_users_code():
    import sysconfig

    from nnlint.sources import _is_internal_file

    assert _is_internal_file(os.path.join(sysconfig.get_paths()["scripts"], "nnlint"))
    assert not _is_internal_file(__file__)


# -- NN101: pooled over time -------------------------------------------------------------------
class PooledLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True, bidirectional=True)
        self.bn = nn.BatchNorm1d(32)
        self.fc = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(self.bn(out.mean(dim=1)))


@pytest.mark.parametrize("method", ("auto", "recorded"))
def test_batchnorm_on_a_sequence_pooled_over_time_is_not_in_the_recurrent_path(method):
    assert findings(PooledLSTM(), torch.randn(16, 10, 8), "NN101", graph=method) == []


# -- functional-style models -------------------------------------------------------------------
class FunctionalLearner(nn.Module):
    """dragen1860/MAML-Pytorch's Learner style: weights in a ParameterList used through F.conv2d /
    F.linear, and parameters() overridden without its `recurse` argument."""

    def __init__(self) -> None:
        super().__init__()
        self.vars = nn.ParameterList([nn.Parameter(torch.zeros(8, 1, 3, 3)), nn.Parameter(torch.zeros(8))])
        nn.init.kaiming_normal_(self.vars[0])
        self.vars.append(nn.Parameter(torch.randn(5, 8 * 26 * 26) * 0.01))
        self.vars.append(nn.Parameter(torch.zeros(5)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.relu(torch.nn.functional.conv2d(x, self.vars[0], self.vars[1]))
        return torch.nn.functional.linear(x.flatten(1), self.vars[2], self.vars[3])

    def parameters(self):  # type: ignore[override]
        return self.vars


def test_a_functional_model_whose_parameters_takes_no_recurse_is_linted_and_its_first_call_is_the_first_layer():
    x = torch.rand(16, 1, 28, 28) * 255
    linter = Linter(Config())
    target = Target(FunctionalLearner(), example_batch=(x, torch.randint(0, 5, (16,))), loss_fn=nn.CrossEntropyLoss())
    report = linter.lint(LoadedTarget(target, "model", None, None))  # type: ignore[arg-type]
    assert linter.problems == []
    assert "NN701" in {f.code for f in report.findings} and "NN002" not in {f.code for f in report.findings}
