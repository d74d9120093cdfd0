"""Large reports stay readable: the text report groups a mistake repeated in every layer; JSON keeps each one."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from click.testing import CliRunner

from nnlint.cli import main
from nnlint.findings import Finding, Location, Phase, Severity
from nnlint.render import OutputFormat, render
from nnlint.render.grouping import compact_numbers, group_findings
from nnlint.report import Report, TargetReport

# 80 layers, each with the same mistake: a Linear bias that the BatchNorm after it cancels (NN104).
DEEP_MODEL = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.bn = nn.BatchNorm1d(16)

        def forward(self, x):
            return torch.relu(self.bn(self.fc(x)))


    class Deep(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Linear(16, 16)
            self.stem_bn = nn.BatchNorm1d(16)
            self.layers = nn.ModuleList(Layer() for _ in range(80))

        def forward(self, x):
            x = self.stem_bn(self.stem(x))
            for layer in self.layers:
                x = layer(x)
            return x


    model = Deep()
    example_input = torch.randn(32, 16)
    """
)
FC_LINE, STEM_LINE = 8, 18


@pytest.fixture
def deep_model(tmp_path, monkeypatch):
    (tmp_path / "deep.py").write_text(DEEP_MODEL)
    monkeypatch.chdir(tmp_path)
    return "deep.py"


def test_text_groups_a_mistake_repeated_in_80_layers_into_one_entry(deep_model):
    result = CliRunner().invoke(main, ["--static", deep_model])
    assert result.exit_code == 1
    out = result.stdout
    # One grouped entry names all 80 modules and the line; the stem's own finding stays as it was.
    assert out.count("NN104") == 2
    assert f"deep.py:{FC_LINE}  NN104 warning  bias-before-batchnorm  [layers.{{0..79}}.fc]  ×80\n" in out
    assert "Linear `layers.{0..79}.fc` has a bias (16 parameters) but its output goes only to BatchNorm1d" in out
    assert f"deep.py:{STEM_LINE}  NN104 warning  bias-before-batchnorm  [stem]\n" in out
    assert "Linear `stem` has a bias (16 parameters)" in out
    assert "layers.0.fc" not in out and "layers.79.fc" not in out
    assert "Found 81 findings (81 warnings) in 1 target." in out


def test_json_keeps_every_one_of_the_80_findings(deep_model):
    result = CliRunner().invoke(main, ["--static", "--format", "json", deep_model])
    findings = json.loads(result.stdout)["targets"][0]["findings"]
    modules = sorted(f["module"] for f in findings if f["code"] == "NN104" and f["module"].startswith("layers."))
    assert modules == sorted(f"layers.{i}.fc" for i in range(80))
    assert {f["location"]["line"] for f in findings if f["module"].startswith("layers.")} == {FC_LINE}


def _finding(module: str, message: str, line: int = 10, code: str = "NN104", fix: str = "fix it") -> Finding:
    return Finding(code, "some-rule", Severity.WARNING, Phase.STATIC, message, module, Location("m.py", line), fix=fix)


def test_only_module_numbers_are_blanked_so_different_facts_stay_apart():
    findings = [
        _finding("layers.0.fc", "`layers.0.fc` has std 0.5"),
        _finding("layers.1.fc", "`layers.1.fc` has std 0.5"),
        _finding("layers.2.fc", "`layers.2.fc` has std 0.7"),  # another value: its own entry
        _finding("layers.3.fc", "`layers.3.fc` has std 0.5", code="NN402"),  # another rule
        _finding("layers.4.fc", "`layers.4.fc` has std 0.5", fix="other fix"),  # another fix
        _finding("blocks.5.fc", "`blocks.5.fc` has std 0.5"),  # another module name
    ]
    groups = group_findings(findings)
    assert [len(group.members) for group in groups] == [2, 1, 1, 1, 1]
    assert groups[0].modules == "layers.{0,1}.fc" and groups[0].message == "`layers.{0,1}.fc` has std 0.5"
    assert [group.message for group in groups[1:]] == [f.message for f in findings[2:]]


def test_a_group_lists_its_lines_and_names_modules_that_differ_in_several_numbers():
    findings = [
        _finding(f"stages.{s}.blocks.{b}.conv", f"`stages.{s}.blocks.{b}.conv` is off", line=20 + s) for s in range(2) for b in range(3)
    ]
    (group,) = group_findings(findings)
    assert group.lines == [20, 21]
    assert group.modules == "stages.0.blocks.0.conv, stages.0.blocks.1.conv, stages.0.blocks.2.conv, … (6 modules)"
    text = render(Report((TargetReport("model", "m.py", None, None, tuple(findings)),)), OutputFormat.TEXT)
    assert "  ×6 (lines 20,21)\n" in text


def test_compact_numbers():
    assert compact_numbers(list(range(80))) == "0..79"
    assert compact_numbers([9, 0, 1, 2, 3, 5, 7, 8]) == "0..3,5,7..9"
    assert compact_numbers([4]) == "4"
    assert compact_numbers(list(range(0, 40, 2))) == "0,2,4,6,8,10,…"


def test_rendering_1000_findings_is_fast():
    """Rendering grows linearly with the findings: 1000 cost about 10 times 100, measured in the
    same test as CPU time (which a loaded machine changes least), best of three; a renderer that
    compares every finding with every other would cost about 100 times."""

    def report_of(count: int) -> Report:
        # Distinct messages, so nothing groups: the worst case for the renderer.
        findings = tuple(
            _finding(f"block{i}.fc", f"`block{i}.fc` has std {i / 1000:.3f}, far from the He scale", line=i + 1) for i in range(count)
        )
        return Report((TargetReport("model", "m.py", None, None, findings),))

    def cpu_seconds(report: Report) -> float:
        start = time.process_time()
        render(report, OutputFormat.TEXT)
        return time.process_time() - start

    small, large = report_of(100), report_of(1000)
    render(small, OutputFormat.TEXT)  # first use imports and warms the renderer
    ratio = min(cpu_seconds(large) for _ in range(3)) / min(cpu_seconds(small) for _ in range(3))
    assert ratio < 30, f"1000 findings took {ratio:.0f} times as long as 100"
    text = render(large, OutputFormat.TEXT)
    assert text.count("NN104") == 1000
