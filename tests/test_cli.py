"""The command line: exit codes, stdout for the report and stderr for errors, many files in one
process, selection and suppression at scale, --statistics and --output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from expectations import FIXTURES, ROOT, expected_in_a_folder, rule_fixtures

from nnlint.cli import main

BIASED = FIXTURES / "nn104_bias_before_batchnorm.py"  # NN104 at lines 12 (features.0) and 18 (proj)
CLEAN = FIXTURES / "clean_resnet.py"


def nnlint(*args: object) -> tuple[int, str, str]:
    """Run the CLI in this process; (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def findings_of(stdout: str) -> list[tuple[str, str, int]]:
    document = json.loads(stdout)
    return [
        (f["code"], Path(f["location"]["file"]).name, f["location"]["line"]) for target in document["targets"] for f in target["findings"]
    ]


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)


# -- exit codes and streams ----------------------------------------------------------------------


def test_a_clean_model_exits_0():
    code, out, err = nnlint(CLEAN)
    assert (code, err) == (0, "")
    assert "Found 0 findings in 1 target." in out


def test_findings_exit_1_and_the_report_goes_to_stdout():
    code, out, err = nnlint(BIASED, "--format", "json")
    assert (code, err) == (1, "")
    assert findings_of(out) == [("NN104", BIASED.name, 12), ("NN104", BIASED.name, 18)]


def test_fail_on_error_lets_warnings_pass():
    assert nnlint(BIASED, "--fail-on", "error")[0] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["fixtures/does_not_exist.py"], "no such file or directory"),
        ([BIASED, "--select", "NN999"], "unknown rule code or prefix: 'NN999'"),
        ([BIASED, "--config", "missing.toml"], "config file not found"),
    ],
)
def test_usage_config_and_load_errors_exit_2(args, message):
    code, out, err = nnlint(*args, "--format", "json")
    assert code == 2
    assert message in err
    if out:  # a load error still prints the (parseable) report on stdout
        assert json.loads(out)["summary"]["exit_code"] == 2


def test_an_unknown_format_is_a_usage_error():
    code, out, err = nnlint(BIASED, "--format", "xml")
    assert code == 2 and out == "" and "'xml' is not one of" in err


# -- many files, one process ----------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder of model code: one model, files that fail to load, and files that hold no model."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(BIASED, models / "a_biased.py")
    (models / "b_broken.py").write_text("import torch\nraise RuntimeError('boom')\n")
    (models / "c_syntax.py").write_text("import torch\ndef broken(:\n")
    (models / "d_blocks.py").write_text(
        "import torch\nfrom torch import nn\n\nclass Block(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
    )
    (models / "e_helpers.py").write_text("raise SystemExit('a file that does not mention the framework is never imported')\n")
    shutil.copy(CLEAN, models / "f_clean.py")
    return models


def test_a_folder_is_linted_in_one_process_and_a_failing_file_does_not_stop_the_rest(project):
    code, out, err = nnlint(project, "--format", "json")
    document = json.loads(out)
    assert [(Path(t["file"]).name, t["name"]) for t in document["targets"]] == [("a_biased.py", "model"), ("f_clean.py", "ResNet")]
    assert findings_of(out) == [("NN104", "a_biased.py", 12), ("NN104", "a_biased.py", 18)]
    errors = {Path(e["file"]).name: e["message"] for e in document["errors"]}
    assert errors.keys() == {"b_broken.py", "c_syntax.py"}
    assert "RuntimeError: boom (line 2)" in errors["b_broken.py"]
    assert "syntax error at line 2" in errors["c_syntax.py"]
    assert code == 2
    assert err.count("nnlint: ") == 2  # each load error also on stderr


def test_named_files_are_all_linted_after_one_fails(project):
    code, out, _ = nnlint(project / "b_broken.py", project / "a_biased.py", "--format", "json")
    assert code == 2
    assert findings_of(out) == [("NN104", "a_biased.py", 12), ("NN104", "a_biased.py", 18)]


def test_skip_non_model_files_skips_named_files_without_a_model(project):
    named = [project / "d_blocks.py", project / "e_helpers.py", project / "a_biased.py"]
    code, out, err = nnlint(*named, "--format", "json", "--skip-non-model-files")
    assert (code, err) == (1, "")
    assert findings_of(out) == [("NN104", "a_biased.py", 12), ("NN104", "a_biased.py", 18)]
    code, out, err = nnlint(*named, "--format", "json")  # named without the flag: each is an error
    assert code == 2
    assert {Path(e["file"]).name for e in json.loads(out)["errors"]} == {"d_blocks.py", "e_helpers.py"}


def test_load_errors_go_to_stderr_and_the_text_summary_counts_them(project):
    code, out, err = nnlint(project)
    assert code == 2
    assert "b_broken.py: raised RuntimeError: boom (line 2) while being imported" in err
    assert "boom" not in out
    assert out.rstrip().endswith("Found 2 findings (2 warnings) in 2 targets; 2 could not be linted.")


# -- selection and suppression at scale -----------------------------------------------------------


def _biased_copy(folder: Path, first_line: str = "") -> Path:
    path = folder / "model.py"
    path.write_text(first_line + BIASED.read_text())
    return path


def test_select_all_is_every_rule(tmp_path):
    default = nnlint(BIASED, "--format", "json")[1]
    assert findings_of(nnlint(BIASED, "--format", "json", "--select", "ALL")[1]) == findings_of(default)
    assert findings_of(nnlint(BIASED, "--format", "json", "--select", "all")[1]) == findings_of(default)
    assert findings_of(nnlint(BIASED, "--format", "json", "--select", "ALL", "--ignore", "NN104")[1]) == []
    assert findings_of(nnlint(BIASED, "--format", "json", "--select", "NN103")[1]) == []
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.nnlint]\nselect = ["ALL"]\nignore = ["NN10"]\n')
    assert findings_of(nnlint(_biased_copy(tmp_path), "--format", "json")[1]) == []


def test_file_level_ignore_silences_a_code_in_the_whole_file(tmp_path):
    code, out, _ = nnlint(_biased_copy(tmp_path, "# nnlint: ignore-file[NN104]\n"), "--format", "json")
    assert (code, findings_of(out)) == (0, [])


def test_file_level_ignore_takes_prefixes_and_lists(tmp_path):
    assert findings_of(nnlint(_biased_copy(tmp_path, "# nnlint: ignore-file[NN1]\n"), "--format", "json")[1]) == []
    # NN107 never fires on this model: its half of the comment is unused (NN003), the NN104 half is not.
    out = nnlint(_biased_copy(tmp_path, "# nnlint: ignore-file[NN104, NN107]\n"), "--format", "json")[1]
    assert findings_of(out) == [("NN003", "model.py", 1)]
    assert "ignore-file[NN107]" in json.loads(out)["targets"][0]["findings"][0]["message"]


def test_an_unused_file_level_ignore_is_reported(tmp_path):
    out = nnlint(_biased_copy(tmp_path, "# nnlint: ignore-file[NN101]\n"), "--format", "json")[1]
    assert findings_of(out) == [("NN003", "model.py", 1), ("NN104", "model.py", 13), ("NN104", "model.py", 19)]


def test_a_suppression_inside_a_string_is_not_a_comment(tmp_path):
    out = nnlint(_biased_copy(tmp_path, 'NOTE = "# nnlint: ignore-file[NN104]"\n'), "--format", "json")[1]
    assert [code for code, _, _ in findings_of(out)] == ["NN104", "NN104"]


def test_per_module_ignores_match_module_path_globs(tmp_path):
    model = _biased_copy(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint.per-module-ignores]\n"features.*" = ["NN104"]\n')
    assert findings_of(nnlint(model, "--format", "json")[1]) == [("NN104", "model.py", 18)]  # proj is kept
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint.per-module-ignores]\n"*" = ["NN1"]\n')
    assert findings_of(nnlint(model, "--format", "json")[1]) == []
    (tmp_path / "pyproject.toml").write_text('[tool.nnlint.per-module-ignores]\n"proj" = "NN104"\n')
    assert findings_of(nnlint(model, "--format", "json")[1]) == [("NN104", "model.py", 12)]


def test_per_module_ignores_from_an_explicit_config_and_bad_codes(tmp_path):
    config = tmp_path / "nnlint.toml"
    config.write_text('[per-module-ignores]\n"proj" = ["NN104"]\n')
    assert findings_of(nnlint(BIASED, "--format", "json", "--config", config)[1]) == [("NN104", BIASED.name, 12)]
    config.write_text('[per-module-ignores]\n"proj" = ["NN9999"]\n')
    code, out, err = nnlint(BIASED, "--config", config)
    assert code == 2 and out == "" and "NN9999" in err


# -- --statistics ---------------------------------------------------------------------------------


def _marked_counts() -> Counter[str]:
    return Counter(code for path in rule_fixtures() for (code, _), n in expected_in_a_folder(path).items() for _ in range(n))


def test_statistics_count_findings_per_code_across_files():
    code, out, err = nnlint(FIXTURES, "--statistics")
    assert (code, err) == (2, "")  # fixtures/nn002 cannot be linted (an NN002 finding): exit code 2
    rows = [line.split() for line in out.splitlines()]
    assert Counter({row[1]: int(row[0]) for row in rows}) == _marked_counts()
    assert [int(row[0]) for row in rows] == sorted((int(row[0]) for row in rows), reverse=True)
    assert all(row[2] in ("error", "warning", "info") for row in rows)


def test_statistics_as_json():
    _, out, _ = nnlint(FIXTURES, "--statistics", "--format", "json")
    rows = json.loads(out)
    assert Counter({row["code"]: row["count"] for row in rows}) == _marked_counts()
    assert {row["code"]: row["name"] for row in rows}["NN104"] == "bias-before-batchnorm"
    assert {row["code"]: row["severity"] for row in rows}["NN105"] == "error"  # the worst of its findings


def test_statistics_need_text_or_json():
    code, out, err = nnlint(BIASED, "--statistics", "--format", "sarif")
    assert (code, out) == (2, "") and "--statistics prints text or json" in err


def test_statistics_without_findings():
    assert nnlint(CLEAN, "--statistics")[:2] == (0, "No findings.\n")


# -- --output -------------------------------------------------------------------------------------


def _parses(output_format: str, text: str) -> bool:
    if output_format in ("json", "sarif"):
        return bool(json.loads(text))
    if output_format == "junit":
        return ET.fromstring(text).tag == "testsuites"
    if output_format == "github":
        return all(line.startswith("::warning ") for line in text.splitlines())
    return "NN104" in text


@pytest.mark.parametrize("output_format", ["text", "json", "sarif", "github", "junit"])
def test_output_writes_any_format_to_a_file(tmp_path, output_format):
    target = tmp_path / f"report.{output_format}"
    code, out, err = nnlint(BIASED, "--format", output_format, "--output", target)
    assert (code, out, err) == (1, "", "")
    text = target.read_text(encoding="utf-8")
    assert _parses(output_format, text)
    assert "\x1b[" not in text  # no color codes in a file


def test_output_to_an_unwritable_place_is_an_error(tmp_path):
    code, _, err = nnlint(BIASED, "--output", tmp_path / "missing" / "report.txt")
    assert code == 2 and "cannot write the report" in err


# -- startup --------------------------------------------------------------------------------------


def test_help_does_not_import_torch():
    script = (
        "import sys\nfrom nnlint.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "nnlint rules" in result.stdout
    assert result.stdout.strip().endswith("False")
