"""A library's model whose constructor needs arguments, with no script in the repository that
builds it, is built the way the project's README example does (sooftware/conformer: a package with
relative imports, the usage block in the README at the repository's root: `batch_size,
sequence_length, dim = 3, 12345, 80` then `Conformer(num_classes=10, input_dim=dim, ...)`), and its
input made up from the declared feature size with full lengths for `forward(inputs, input_lengths)`.
A README written for an older signature is not used: the one-line hint stays."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from click.testing import CliRunner

from nnlint.cli import main

MODEL = """\
    import torch
    from torch import nn

    from .encoder import ConvSubsampling


    class Conformer(nn.Module):
        def __init__(self, num_classes, input_dim=80, encoder_dim=32, num_encoder_layers=2):
            super().__init__()
            self.subsample = ConvSubsampling(1, encoder_dim)
            self.projection = nn.Linear(encoder_dim * (((input_dim - 1) // 2 - 1) // 2), encoder_dim)
            self.layers = nn.ModuleList(
                nn.Sequential(nn.LayerNorm(encoder_dim), nn.Linear(encoder_dim, encoder_dim), nn.SiLU())
                for _ in range(num_encoder_layers)
            )
            self.fc = nn.Linear(encoder_dim, num_classes)

        def forward(self, inputs, input_lengths):
            outputs = self.subsample(inputs.unsqueeze(1))
            batch, channels, time, features = outputs.size()
            outputs = self.projection(outputs.permute(0, 2, 1, 3).reshape(batch, time, channels * features))
            for layer in self.layers:
                outputs = outputs + layer(outputs)
            output_lengths = (input_lengths >> 2) - 1
            return self.fc(outputs).log_softmax(dim=-1), output_lengths
    """

ENCODER = """\
    from torch import nn


    class ConvSubsampling(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.sequential = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=2), nn.ReLU(),
            )

        def forward(self, x):
            return self.sequential(x)
    """

README = """\
    # Conformer

    ## Usage

    ```python
    import torch
    from conformer import Conformer

    batch_size, sequence_length, dim = 3, 12345, 80

    model = Conformer(num_classes=10,
                      input_dim=dim,
                      encoder_dim=32,
                      num_encoder_layers=3)
    ```
    """


def _project(tmp_path: Path, readme: str) -> Path:
    package = tmp_path / "conformer"
    package.mkdir()
    (package / "__init__.py").write_text("from .model import Conformer\n")
    (package / "model.py").write_text(textwrap.dedent(MODEL))
    (package / "encoder.py").write_text(textwrap.dedent(ENCODER))
    (tmp_path / "README.md").write_text(textwrap.dedent(readme))
    return package / "model.py"


def _lint(model_file: Path) -> tuple[int, dict, str]:
    result = CliRunner().invoke(main, [str(model_file), "--format", "json", "--no-isolation"])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_the_readme_example_builds_the_model_and_its_input_is_made_up(tmp_path):
    code, report, _ = _lint(_project(tmp_path, README))
    [target] = report["targets"]
    assert target["name"] == "Conformer"
    notes = " ".join(target["notes"])
    assert "built `Conformer(num_classes=10, input_dim=80, encoder_dim=32, num_encoder_layers=3)` (as README.md line 11 does)" in notes
    assert code == 0 and [f["code"] for f in target["findings"] if f["severity"] != "info"] == []


def test_a_readme_for_an_older_signature_is_not_used(tmp_path):
    stale = README.replace("num_encoder_layers=3)", "num_encoder_layers=3, num_attention_heads=4)")
    result = CliRunner().invoke(main, [str(_project(tmp_path, stale)), "--no-isolation", "--static", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    # Not the README's call: the one argument nothing else gives is made up, and the note says so.
    (target,) = json.loads(result.stdout)["targets"]
    notes = " ".join(target["notes"])
    assert "built Conformer with made-up arguments num_classes=10: no call in the project gives them" in notes
    assert '::Conformer(num_classes=...)"' in notes and "README" not in notes
