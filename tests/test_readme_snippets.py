"""Every README snippet that can run offline runs as written: the `@nnlint.target` example, the
pytest example, the TOML configuration (through nnlint's own config loader) and the pre-commit
`repo: local` hook's entry command on fixtures."""

from __future__ import annotations

import json
import re
import shlex
import sys
import textwrap

import pytest
from click.testing import CliRunner
from expectations import FIXTURES, ROOT

import nnlint
from nnlint.cli import main
from nnlint.config import load_config
from nnlint.findings import Severity
from nnlint.registry import rules_by_code

README = (ROOT / "README.md").read_text(encoding="utf-8")


def snippet(language: str, containing: str) -> str:
    """The README's fenced `language` block that contains `containing` (exactly one)."""
    blocks = [block for block in re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL) if containing in block]
    assert len(blocks) == 1, f"README has {len(blocks)} {language} blocks containing {containing!r}"
    return blocks[0]


def test_the_target_function_example_lints_the_model_it_builds(tmp_path, monkeypatch):
    # The snippet uses the user's own ResNet; a small one stands in for it.
    model_file = tmp_path / "resnets.py"
    model_file.write_text(
        textwrap.dedent(
            """
            from torch import nn


            class ResNet(nn.Module):
                def __init__(self, depth: int) -> None:
                    super().__init__()
                    self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU())
                    self.blocks = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(depth // 6)])
                    self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))

                def forward(self, x):
                    return self.head(self.blocks(self.stem(x)))
            """
        )
        + snippet("python", "@nnlint.target")
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [model_file.name, "--static", "--format", "json"])
    assert result.exit_code in (0, 1), result.output
    assert [target["name"] for target in json.loads(result.stdout)["targets"]] == ["resnet18"]


def test_the_pytest_example_passes_on_a_clean_model_and_fails_on_a_buggy_one(tmp_path, monkeypatch):
    example = snippet("python", "def test_model_is_clean")
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("models", "clean_resnet", "nn104_bias_before_batchnorm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    (tmp_path / "models.py").write_text("from clean_resnet import ResNet as Net\n")
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    namespace["test_model_is_clean"]()  # raises LintError if the model has a finding at warning or above

    monkeypatch.delitem(sys.modules, "models")
    (tmp_path / "models.py").write_text("from nn104_bias_before_batchnorm import Net\n")
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    with pytest.raises(nnlint.LintError, match="NN104"):
        namespace["test_model_is_clean"]()


def test_the_configuration_example_is_read_by_the_config_loader(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(snippet("toml", "[tool.nnlint.thresholds]"))  # the full example (the other names targets)
    config = load_config(pyproject)
    assert config.select == ("ALL",) and config.ignore == ("NN106",) and config.fail_on is Severity.WARNING
    assert not config.is_enabled("NN106") and config.is_enabled("NN105")
    assert config.ignored_for_module("NN103", "encoder.block") and not config.ignored_for_module("NN103", "decoder")
    assert config.thresholds_for(rules_by_code()["NN105"])["min-batch-size"] == 8


def test_the_local_pre_commit_hook_runs_its_entry_on_the_files_pre_commit_names(tmp_path, monkeypatch):
    hook = snippet("yaml", "repo: local")
    assert re.search(r"language: system", hook) and re.search(r"types: \[python\]", hook)
    command = shlex.split(re.search(r"entry: (.+)", hook).group(1))
    assert command[0] == "nnlint"
    helper = tmp_path / "helpers.py"  # pre-commit names every staged Python file, models or not
    helper.write_text("def scale(x):\n    return 2 * x\n")
    biased = FIXTURES / "nn104_bias_before_batchnorm.py"
    runner = CliRunner()
    blocked = runner.invoke(main, [*command[1:], str(biased), str(helper)])
    assert blocked.exit_code == 1 and "NN104" in blocked.stdout  # the commit is blocked, with the finding
    passed = runner.invoke(main, [*command[1:], str(helper)])
    assert passed.exit_code == 0, passed.output  # a commit without model code goes through
