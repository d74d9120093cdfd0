"""Graph recovery: FX and the recorder give the same IR, the recorder reads what FX cannot,
and neither changes the user's model nor allocates its weights."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from expectations import FIXTURES
from invariants import Snapshot
from torch import nn

from nnlint.findings import GraphMethod
from nnlint.graph import GraphError, ModelGraph, build_graph
from nnlint.sources import ModuleLocator


def graph_of(model: nn.Module, example_input, method: str = "auto") -> ModelGraph:
    return build_graph(model, example_input, ModuleLocator(model), method)


def module_calls(graph: ModelGraph) -> list[tuple[str, str]]:
    return [(str(node.target), graph.op(node)) for node in graph.nodes if node.op == "call_module"]


def functional_ops(graph: ModelGraph) -> list[str]:
    return [graph.op(node) for node in graph.nodes if node.op in ("call_function", "call_method") and graph.op(node) != "getitem"]


class Mixed(nn.Module):
    """Module calls, F.*, torch.* and tensor methods, a tuple-returning LSTM and a dict output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        states, (hidden, _) = self.lstm(x)
        y = F.gelu(self.norm(states))
        y = torch.sigmoid(self.head(y)).relu()
        return {"logits": y, "hidden": hidden.squeeze(0)}


def test_fx_and_recorder_give_the_same_graph():
    model, x = Mixed(), torch.randn(2, 5, 8)
    traced, recorded = graph_of(model, x, "fx"), graph_of(model, x, "recorded")
    assert traced.method is GraphMethod.FX and recorded.method is GraphMethod.RECORDED
    assert module_calls(traced) == module_calls(recorded) == [
        ("lstm", "lstm"), ("norm", "layer_norm"), ("head.0", "linear"), ("head.1", "relu"), ("head.2", "linear"),
    ]  # fmt: skip
    assert functional_ops(traced) == functional_ops(recorded) == ["gelu", "sigmoid", "relu", "squeeze"]
    for graph in (traced, recorded):
        head = next(node for node in graph.nodes if node.target == "head.2")
        assert graph.shape(head) == (2, 5, 4)
        assert graph.op(graph.source(next(n for n in graph.nodes if n.target == "norm"))) == "lstm"
        assert {p: i.calls for p, i in graph.modules.items() if p.startswith("head.")} == {"head.0": 1, "head.1": 1, "head.2": 1}


class ShapeBranching(nn.Module):
    """FX cannot trace a loop over a tensor's size or `**kwargs`; the recorder reads both."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(4, 8)
        self.wide = nn.Linear(8, 2)
        self.narrow = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor, **options: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.size(0), 8)
        for t in range(x.size(1)):
            h = self.cell(x[:, t], h)
        out = self.wide(h) if x.size(1) > 3 else self.narrow(h)
        return out * options["scale"]


def test_recorder_reads_loops_shape_branches_and_dict_inputs():
    model = ShapeBranching()
    graph = graph_of(model, {"x": torch.randn(2, 6, 4), "scale": torch.ones(1)})
    assert graph.method is GraphMethod.RECORDED and graph.recorded_on == "meta"
    assert "symbolic tracing failed" in graph.fx_error
    assert graph.modules["cell"].calls == 6 and graph.modules["wide"].calls == 1 and graph.modules["narrow"].calls == 0
    assert [n.target for n in graph.nodes if n.op == "placeholder"] == ["x", "scale"]


class ValueBranching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc.weight.abs().max().item() > 100:  # a weight's value: meta cannot answer
            return x
        return self.fc(x)


def test_data_dependent_forward_is_recorded_on_one_real_sample():
    model = ValueBranching()
    graph = graph_of(model, torch.randn(8, 4))
    assert graph.recorded_on == "real"
    assert module_calls(graph) == [("fc", "linear")]
    assert graph.shape(next(n for n in graph.nodes if n.op == "call_module")) == (1, 4)


def test_a_forward_that_fails_names_the_module():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(GraphError, match=r"forward raised in `2`: RuntimeError: mat1 and mat2 shapes") as caught:
        graph_of(model, torch.randn(3, 4))
    assert caught.value.module == "2"


class Stateful(nn.Module):
    """BatchNorm stats, a mixed-mode submodule, a hook, frozen and gradient-holding parameters,
    and a forward that caches a tensor on itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.cache = x.detach()
        y = self.bn(self.conv(x)).mean(dim=(2, 3))
        return self.dropout(self.frozen(y))


@pytest.mark.parametrize("method", ["fx", "recorded", "auto"])
def test_graph_recovery_leaves_the_model_exactly_as_it_was(method):
    model = Stateful()
    model(torch.randn(2, 3, 8, 8)).sum().backward()  # give some parameters a .grad
    model.bn.eval()  # mixed modes: a frozen BatchNorm inside a training model
    model.conv.register_forward_hook(lambda *args: None)
    del model.cache
    example = torch.randn(4, 3, 8, 8)
    before = Snapshot.take(model)  # tensors, flags, .grad, hooks, attributes, the RNG state
    graph_of(model, example, method)
    assert before.differences(Snapshot.take(model)) == []


def test_recording_real_sample_also_leaves_the_model_unchanged():
    model = ValueBranching()
    model.train()
    example = torch.randn(8, 4)
    before = Snapshot.take(model)
    graph_of(copy.deepcopy(model), example)  # warm-up on a copy
    graph_of(model, example)
    assert before.differences(Snapshot.take(model)) == []


def test_models_on_meta_are_linted_without_allocating_weights():
    with torch.device("meta"):
        model = nn.Sequential(nn.Embedding(50000, 4096), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 50000))
    graph = graph_of(model, torch.randint(0, 50000, (2, 16)))
    assert graph.method is GraphMethod.FX
    assert all(p.is_meta for p in model.parameters())
    assert graph.shape(next(n for n in graph.nodes if n.target == "3")) == (2, 16, 50000)


LLAMA_SCRIPT = """
import json, resource, sys
from pathlib import Path
from nnlint.config import Config
from nnlint.engine import lint_paths
report = lint_paths([Path(sys.argv[1])], Config(static=True))
print(json.dumps({
    "graph": report.targets[0].graph.value,
    "codes": [f.code for f in report.findings],
    "problems": [p.message for p in report.problems],
    "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def test_llama_7b_is_linted_with_peak_memory_far_below_its_weights():
    """7B parameters are 28 GB in fp32; linting must stay under 1.5 GiB peak RSS."""
    command = [sys.executable, "-c", LLAMA_SCRIPT, str(FIXTURES / "scale" / "llama.py")]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "LLAMA_SIZE": "7b"}, check=False)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome == {"graph": "fx", "codes": [], "problems": [], "peak_kib": outcome["peak_kib"]}
    assert outcome["peak_kib"] < 1.5 * 1024 * 1024
