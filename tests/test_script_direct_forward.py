"""Script mode on a model whose `forward` the script calls directly (`self.forward(x)` in a
LightningModule's `training_step`, `model.forward(x)` in a plain loop): its `__call__` never runs,
so its children are the outermost modules called; the lint target is still the model itself, with
the arguments its `forward` really got."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nnlint.cli import main
from nnlint.script.capture import Capture, ModuleCall, _forward_arguments
from nnlint.script.models import script_models
from nnlint.script.runner import Ending, script_run

SCRIPTS = Path(__file__).parent / "scripts"

# A plain loop in the style of pytorch/examples' mnist `train()`, calling `model.forward(data)` as
# some tutorials do (e.g. `out = self.model.forward(x)` in hand-written trainer classes).
PLAIN_LOOP = """\
import torch
from torch import nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(10, hidden)
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x):
{body}


def train(model, optimizer, batches):
    for data, target in batches:
        optimizer.zero_grad()
        output = model.forward(data)
        loss = F.cross_entropy(output, target)
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train(model, optimizer, [(torch.randn(8, 10), torch.randint(0, 3, (8,)))] * 3)
"""
DIRECT = "        return self.fc2(torch.relu(self.fc1(x)))"
REASSIGNED = "        x = x.flatten(1)\n        return self.fc2(torch.relu(self.fc1(x)))"


def written(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.py"
    path.write_text(PLAIN_LOOP.format(body=body))
    return path


def test_a_loop_calling_model_forward_lints_the_model_with_its_real_input_and_loss(tmp_path, process_state):
    script = written(tmp_path, DIRECT)
    with script_run(script) as outcome:
        assert outcome.ending is Ending.STEPPED
        (model,) = script_models(outcome.record, outcome.namespace, script)
        target = model.loaded.target
        assert target.model is outcome.namespace["model"]
        assert model.loaded.name == "model"
        assert target.example_input.shape == (8, 10)
        assert target.loss_fn is not None and target.loss_fn.__name__ == "cross_entropy"
        assert target.example_batch[1].shape == (8,)
        assert "loss F.cross_entropy at train.py:20" in model.notes[0]


def test_a_forward_that_reassigns_its_argument_first_is_linted_whole_without_its_input(tmp_path, process_state):
    script = written(tmp_path, REASSIGNED)
    with script_run(script) as outcome:
        (model,) = script_models(outcome.record, outcome.namespace, script)
        target = model.loaded.target
        assert target.model is outcome.namespace["model"]
        assert target.example_input is None  # nnlint infers one: `x` was rebound before fc1 ran
        assert target.example_batch is None
        assert any("called Net.forward directly and it reassigns its arguments" in note for note in model.notes)


def test_a_model_called_normally_keeps_its_call(tmp_path, process_state):
    script = tmp_path / "train.py"
    script.write_text(PLAIN_LOOP.format(body=DIRECT).replace("model.forward(data)", "model(data)"))
    with script_run(script) as outcome:
        (model,) = script_models(outcome.record, outcome.namespace, script)
        assert model.loaded.target.example_input.shape == (8, 10)
        assert not outcome.record.calls[-1].called_directly  # recorded by its own `__call__`


def test_the_arguments_of_a_running_forward_are_read_from_its_frame():
    """Trailing arguments left at their defaults are left out; keyword-only and `**kwargs` kept."""
    seen: list[tuple[tuple[object, ...], dict[str, object], bool]] = []

    class Block(torch.nn.Module):
        def forward(self, x, mask=None, *extra, scale=1.0, **options):
            seen.append(_forward_arguments(sys._getframe()))
            return x

    block = Block()
    x = torch.ones(2)
    block.forward(x)
    block.forward(x, "m", 3, scale=2.0, flag=True)
    assert seen[0][0] == (x,) and seen[0][1:] == ({}, False)
    assert seen[1][0][1:] == ("m", 3) and seen[1][1] == {"scale": 2.0, "flag": True}
    assert not ModuleCall(block, (), {}, None).called_directly


@pytest.fixture
def lightning():
    """Imported before `process_state` is taken: importing lightning sets environment variables."""
    return pytest.importorskip("lightning")


@pytest.mark.slow
def test_a_lightning_training_step_calling_self_forward_lints_one_model(tmp_path, lightning, process_state):
    shutil.copy(SCRIPTS / "lightning_direct_forward.py", tmp_path / "train.py")
    script = tmp_path / "train.py"
    with script_run(script) as outcome:
        assert outcome.ending is Ending.STEPPED
        models = script_models(outcome.record, outcome.namespace, script)
        assert [type(m.loaded.target.model).__name__ for m in models] == ["DecoderOnlyTransformer"]
        (model,) = models
        target = model.loaded.target
        assert target.model is outcome.namespace["model"]
        assert target.example_input.shape == (6,)  # `input_tokens[0]`: one sequence of six tokens
        assert torch.equal(target.example_input, torch.tensor([0, 1, 2, 3, 0, 1]))
        assert target.loss_fn is outcome.namespace["model"].loss  # the loss judged the model's output
        assert target.example_batch[1].shape == (6,)
        assert "loss CrossEntropyLoss at train.py:47" in model.notes[0]


def test_a_script_that_never_steps_lints_the_model_whose_forward_it_called(tmp_path):
    """An evaluation script calling `model.forward(x)` under `no_grad` (no optimizer): the model, not its two layers."""
    script = tmp_path / "evaluate.py"
    evaluation = "model = Net()\nwith torch.no_grad():\n    print(model.forward(torch.randn(4, 10)).argmax(1))\n"
    script.write_text(PLAIN_LOOP.format(body=DIRECT).split("\n\ndef train")[0] + "\n\n" + evaluation)
    result = CliRunner().invoke(main, [str(script), "--format", "json"], catch_exceptions=False)
    assert [t["name"] for t in json.loads(result.stdout)["targets"]] == ["model"]


def test_a_forward_looping_over_its_blocks_keeps_its_argument_and_one_reassigning_first_does_not(tmp_path):
    """`for block in self.blocks: x = block(x)` (the loop of most transformer and ResNet stages)
    rebinds `x` only after its first block ran: the arguments read when that block starts are the
    real ones. A `forward` that rebinds `x` before its first layer loses them."""

    class Stack(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(3))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    class ScaledStack(Stack):
        def forward(self, x):
            x = x * 2
            for block in self.blocks:
                x = block(x)
            return x

    x = torch.randn(2, 4)
    for model in (Stack(), ScaledStack()):
        capture = Capture(tmp_path, stop_at_first_step=False)
        with capture.installed():
            output = model.forward(x)
        (call,) = capture.called_modules()
        assert call.module is model and call.called_directly
        assert call.last_child_output is output  # the last block's output is what forward returned
        reassigned = isinstance(model, ScaledStack)
        assert call.arguments_changed is reassigned
        assert call.args == (() if reassigned else (x,))
