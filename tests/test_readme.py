"""The README's excerpt of real output is real: it is what nnlint prints on the demo fixture."""

from __future__ import annotations

import re

from click.testing import CliRunner
from expectations import ROOT

from nnlint.cli import main


def test_readme_demo_output_matches_the_real_report(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    excerpt = re.search(r"```\n(fixtures/demo_mistakes\.py :: .*?\nFound .*?\n)```", readme, re.DOTALL)
    assert excerpt, "README lost its excerpt of the demo output"
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["fixtures/demo_mistakes.py"])
    assert result.exit_code == 1
    assert result.stdout == excerpt.group(1)
