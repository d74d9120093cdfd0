"""Inline suppressions silence exactly their line (or the next), and unused ones are NN003."""

from __future__ import annotations

import json
import textwrap

from click.testing import CliRunner
from expectations import lint

from nnlint.cli import main
from nnlint.config import Config
from nnlint.engine import lint_paths

MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3){conv_comment}
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


example_input = torch.randn(16, 3, 8, 8)
"""


def codes(tmp_path, conv_comment="", header="", **settings):
    path = tmp_path / "model.py"
    path.write_text(header + textwrap.dedent(MODEL.format(conv_comment=conv_comment)))
    return sorted((f.code, f.location.line) for f in lint(path, **settings).findings)


def test_without_suppression_the_finding_is_reported(tmp_path):
    assert codes(tmp_path) == [("NN104", 9)]


def test_same_line_suppression_by_code_or_prefix(tmp_path):
    assert codes(tmp_path, "  # nnlint: ignore[NN104]") == []
    assert codes(tmp_path, "  # nnlint: ignore[NN1]") == []
    assert codes(tmp_path, "  # nnlint: ignore[NN103, NN104]") == [("NN003", 9)]  # NN103 matched nothing


def test_file_level_suppression(tmp_path):
    assert codes(tmp_path, header="# nnlint: ignore-file[NN104]\n") == []
    assert codes(tmp_path, header="# nnlint: ignore-file[NN107]\n") == [("NN003", 1), ("NN104", 10)]


def test_unknown_code_in_a_suppression_is_reported(tmp_path):
    assert codes(tmp_path, "  # nnlint: ignore[NN104, NN9Q]") == [("NN003", 9)]


def test_suppressions_of_unselected_rules_are_not_judged(tmp_path):
    assert codes(tmp_path, "  # nnlint: ignore[NN104]", select=("NN103",)) == []


def test_text_inside_strings_is_not_a_suppression(tmp_path):
    assert codes(tmp_path, '; note = "# nnlint: ignore[NN104]"') == [("NN104", 9)]


def test_a_latin1_file_is_read_in_its_declared_encoding(tmp_path):
    """PEP 263: `# -*- coding: latin-1 -*-` heads files of older European codebases; their
    comments (`# réglé`) are not UTF-8, and the suppression on that line must still count."""
    path = tmp_path / "model.py"
    source = "# -*- coding: latin-1 -*-\n# Modèle de référence\n" + textwrap.dedent(
        MODEL.format(conv_comment="  # nnlint: ignore[NN104]  (réglé)")
    )
    path.write_bytes(source.encode("latin-1"))
    report = lint_paths([path], Config())
    assert not report.problems, report.problems
    assert [f.code for f in report.findings] == []  # NN104 silenced; the suppression used, so no NN003
    result = CliRunner().invoke(main, ["--format", "json", str(path)])  # the same through the command line
    assert result.exit_code == 0 and json.loads(result.stdout)["summary"]["exit_code"] == 0
