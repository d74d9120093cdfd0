"""The report says what nnlint did: on what the graph was recorded, and where a made-up input's
shape came from. Each model is written after a public project's pattern (named per class)."""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import dataclass

import torch
from click.testing import CliRunner
from probe_helpers import lint_model
from torch import nn

from nnlint.cli import main
from nnlint.config import Config
from nnlint.graph import ModuleLocator, build_graph


@dataclass
class TabularConfig:
    in_features: int = 12
    hidden: int = 32
    classes: int = 3


class RescalingTabularNet(nn.Module):
    """A tabular classifier that clamps its hidden activations when they overflowed (the guard
    huggingface/transformers modeling_t5.py puts in T5Block: `if torch.isinf(hidden_states).any():
    hidden_states = torch.clamp(...)`) and normalizes them with batch statistics only
    (`track_running_stats=False`, as learn2learn's vision models build their BatchNorm): the branch
    needs real values, and a sample alone has no batch statistics, so the graph is recorded on the
    whole example."""

    def __init__(self, config: TabularConfig) -> None:
        super().__init__()
        self.hidden = nn.Linear(config.in_features, config.hidden)
        self.norm = nn.BatchNorm1d(config.hidden, track_running_stats=False)
        self.head = nn.Linear(config.hidden, config.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(x)
        if torch.isinf(hidden).any():
            clamp = torch.finfo(hidden.dtype).max - 1000
            hidden = torch.clamp(hidden, min=-clamp, max=clamp)
        return self.head(torch.relu(self.norm(hidden)))


class RescalingTabularNetWithRunningStats(RescalingTabularNet):
    """The same network with ordinary BatchNorm: in evaluation mode a sample alone runs."""

    def __init__(self, config: TabularConfig) -> None:
        super().__init__(config)
        self.norm = nn.BatchNorm1d(config.hidden)


def _parsed() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=16)
    return parser.parse_args([])


def _notes_and_nn001(model: nn.Module, example: torch.Tensor) -> tuple[tuple[str, ...], list[str]]:
    report = lint_model(model, Config(static=True), example_input=example)
    target = report.targets[0]
    return target.notes, [f.message for f in target.findings if f.code == "NN001"]


def test_a_graph_recorded_on_the_whole_example_says_so():
    args = _parsed()
    model = RescalingTabularNet(TabularConfig())
    example = torch.rand(args.batch_size, 12) * 10
    graph = build_graph(model, example, ModuleLocator(model))
    assert graph.recorded_on == "example" and graph.shape(next(n for n in graph.nodes if n.target == "norm")) == (16, 32)
    notes, nn001 = _notes_and_nn001(model, example)
    assert (
        "the forward needs real values (e.g. `.item()`) and rejects a single sample, so the graph was recorded on the whole example input"
        in notes
    )
    assert not any("one real sample" in note for note in notes)
    assert len(nn001) == 1 and nn001[0].endswith(
        "the graph was recorded from an eager run on the whole example input (real values: the forward rejects a single sample)"
    )


def test_a_graph_recorded_on_one_sample_still_says_one_real_sample():
    model = RescalingTabularNetWithRunningStats(TabularConfig())
    example = torch.rand(_parsed().batch_size, 12) * 10
    graph = build_graph(model, example, ModuleLocator(model))
    assert graph.recorded_on == "real" and graph.shape(next(n for n in graph.nodes if n.target == "norm")) == (1, 32)
    notes, nn001 = _notes_and_nn001(model, example)
    assert "the forward needs real values (e.g. `.item()`), so the graph was recorded on one real sample" in notes
    assert len(nn001) == 1 and nn001[0].endswith("the graph was recorded from an eager run on one real sample")


SPEECH_MODEL = """\
    import torch
    from torch import nn


    class SpeechEncoder(nn.Module):
        def __init__(self, input_dim, encoder_dim, num_classes):
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(1, encoder_dim, 3, stride=2), nn.ReLU(),
                nn.Conv2d(encoder_dim, encoder_dim, 3, stride=2), nn.ReLU(),
            )
            self.out = nn.Linear(encoder_dim * (((input_dim - 1) // 2 - 1) // 2), encoder_dim)
            self.fc = nn.Linear(encoder_dim, num_classes)

        def forward(self, inputs):
            x = self.conv(inputs.unsqueeze(1))
            b, c, t, f = x.size()
            x = torch.relu(self.out(x.transpose(1, 2).contiguous().view(b, t, c * f)))
            return self.fc(x).log_softmax(-1)
    """

SPEECH_TRAIN = """\
    import argparse

    import torch
    from model import SpeechEncoder

    parser = argparse.ArgumentParser()
    parser.add_argument("--n_mels", type=int, default=80)
    parser.add_argument("--encoder_dim", type=int, default=64)
    parser.add_argument("--num_classes", type=int, default=30)
    args = parser.parse_args()

    model = SpeechEncoder(input_dim=args.n_mels, encoder_dim=args.encoder_dim, num_classes=args.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    """


def test_an_input_made_up_from_a_declared_input_dim_says_so(tmp_path):
    """An ASR encoder as sooftware/conformer and espnet's Conv2dSubsampling write it: (batch, time,
    input_dim) filterbank features, unsqueezed to one channel for a strided Conv2d front end; built
    by an argparse training script beside it. The input's shape comes from `input_dim`, not from
    the first layer (a Conv2d of one channel, whose images the forward rejects)."""
    (tmp_path / "model.py").write_text(textwrap.dedent(SPEECH_MODEL))
    (tmp_path / "train.py").write_text(textwrap.dedent(SPEECH_TRAIN))
    result = CliRunner().invoke(main, [str(tmp_path / "model.py"), "--static", "--format", "json", "--no-isolation"])
    [target] = json.loads(result.stdout)["targets"]
    assert "built `SpeechEncoder(input_dim=80, encoder_dim=64, num_classes=30)` (as train.py line 12 does)" in target["notes"]
    assert "no example input given: inferred an input of shape 4x16x80 from the declared feature size `input_dim=80`" in target["notes"]
    assert result.exit_code == 0 and target["findings"] == []


def test_an_input_read_off_the_first_layer_still_says_the_first_layer():
    model = RescalingTabularNetWithRunningStats(TabularConfig())
    notes = lint_model(model, Config(static=True)).targets[0].notes
    assert "no example input given: inferred an input of shape 4x12 from the first layer" in notes
