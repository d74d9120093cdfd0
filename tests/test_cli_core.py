"""`nnlint model.py` end to end: exit codes, one-line errors, JSON that matches its schema."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from expectations import FIXTURES, ROOT, rule_fixtures

from nnlint.cli import main

SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_buggy_fixture_exits_1_and_clean_fixture_exits_0():
    code, out, _ = run(str(FIXTURES / "nn104_bias_before_batchnorm.py"))
    assert code == 1
    assert "NN104" in out and "features.0" in out and "nn104_bias_before_batchnorm.py:12" in out
    code, out, _ = run(str(FIXTURES / "clean_resnet.py"))
    assert code == 0
    assert "Found 0 findings in 1 target." in out


@pytest.mark.parametrize("path", rule_fixtures(), ids=lambda p: p.stem)
def test_json_report_matches_the_documented_schema(path):
    _, out, _ = run("--format", "json", str(path))
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    assert report["targets"][0]["file"].endswith(path.name)


def test_json_findings_carry_module_location_evidence_and_fix():
    _, out, _ = run("--format", "json", str(FIXTURES / "nn105_small_batch.py"))
    (finding,) = json.loads(out)["targets"][0]["findings"]
    assert finding["code"] == "NN105" and finding["severity"] == "warning" and finding["phase"] == "static"
    assert finding["module"] == "1"
    assert finding["location"]["line"] == 16  # `batch_size = 4`
    assert finding["evidence"] == {"batch_size": 4, "source": "batch_size", "min_batch_size": 16, "batchnorm_layers": 1}
    assert "GroupNorm" in finding["fix"]


def test_select_and_ignore_take_codes_and_prefixes():
    path = str(FIXTURES / "nn103_bn_after_relu.py")  # NN103 and NN104
    assert _codes(run("--format", "json", "--select", "NN104", path)) == ["NN104"]
    assert _codes(run("--format", "json", "--ignore", "NN10", path)) == []
    assert _codes(run("--format", "json", "--select", "NN1", "--ignore", "NN103", path)) == ["NN104"]


def test_fail_on_sets_the_exit_threshold():
    path = str(FIXTURES / "nn106_large_batch.py")  # one info finding
    assert run(path)[0] == 0
    assert run("--fail-on", "info", path)[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.py"], "missing.py: no such file or directory"),
        (["--select", "NN999", "FILE"], "unknown rule code or prefix: 'NN999'"),
        (["--input-shape", "3,x,7", "FILE"], "expected comma-separated positive integers"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(args, message):
    args = [str(FIXTURES / "clean_resnet.py") if a == "FILE" else a for a in args]
    code, out, err = run(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import torch\ndef broken(:\n", "syntax error at line 2"),
        ("import torch\nraise ImportError('no cuda')\n", "raised ImportError: no cuda (line 2) while being imported"),
        ("import torch\nx = torch.ones(1)\n", "no model found"),
    ],
)
def test_bad_model_files_exit_2_naming_the_file(tmp_path, source, message):
    path = tmp_path / "bad_model.py"
    path.write_text(source)
    code, out, err = run(str(path))
    assert code == 2
    (line,) = err.splitlines()
    assert "bad_model.py: " in line and message in line
    assert "1 could not be linted" in out
    assert "Traceback" not in out + err


def test_a_forward_that_raises_is_nn002_and_other_targets_are_still_linted(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def forward(self, x):
                raise RuntimeError("not implemented for this input")

        broken = Broken()
        fine = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4))
        example_input = torch.randn(32, 4)
        """)
    )
    code, out, _ = run("--format", "json", str(path))
    targets = {t["name"]: t for t in json.loads(out)["targets"]}
    assert code == 2
    (unusable,) = targets["broken"]["findings"]
    assert unusable["code"] == "NN002"
    assert "RuntimeError: not implemented for this input" in unusable["message"]
    assert [f["code"] for f in targets["fine"]["findings"]] == ["NN103"]


def test_verbose_shows_the_traceback_of_the_users_error():
    code, _, err = run("--verbose", str(FIXTURES / "nn002_shape_mismatch.py"))
    assert code == 2
    assert "Traceback" in err and "mat1 and mat2 shapes cannot be multiplied" in err


def test_pyproject_config_is_found_and_validated(tmp_path):
    model = tmp_path / "model.py"
    model.write_text((FIXTURES / "nn105_small_batch.py").read_text())
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nthresholds.NN105 = { min-batch-size = 4 }\n")
    assert _codes(run("--format", "json", str(model))) == []  # 4 is no longer below the threshold
    (tmp_path / "pyproject.toml").write_text("[tool.nnlint]\nselct = ['NN1']\n")
    code, _, err = run(str(model))
    assert code == 2 and "unknown key 'selct'" in err and "pyproject.toml" in err


def test_folder_is_linted_in_one_run_and_a_broken_file_does_not_stop_it(tmp_path):
    (tmp_path / "a_broken.py").write_text("import torch\nraise RuntimeError('boom')\n")
    (tmp_path / "b_model.py").write_text((FIXTURES / "nn107_no_running_stats.py").read_text())
    (tmp_path / "helpers.py").write_text("import torch\n\ndef scale(x):\n    return x * 2\n")
    code, out, _ = run("--format", "json", str(tmp_path))
    report = json.loads(out)
    assert code == 2
    assert [t["name"] for t in report["targets"]] == ["Net"]
    assert [f["code"] for f in report["targets"][0]["findings"]] == ["NN107"]
    assert [Path(e["file"]).name for e in report["errors"]] == ["a_broken.py"]


def test_python_dash_m_nnlint_and_the_console_script_work():
    result = subprocess.run([sys.executable, "-m", "nnlint", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "nnlint, version 0.1.0" in result.stdout


def _codes(result: tuple[int, str, str]) -> list[str]:
    return [f["code"] for t in json.loads(result[1])["targets"] for f in t["findings"]]
