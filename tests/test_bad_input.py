"""Bad input never crashes nnlint: each case gives one clear line naming the problem, the
documented exit code (2: usage, config and load errors, and targets that cannot be linted) and
no traceback unless --verbose.

Covered elsewhere, not repeated here: a missing file, a syntax error, an import error, an
unknown --select code, --input-shape "3,x,7", an unknown [tool.nnlint] key, a forward that
raises, --verbose tracebacks (test_cli_core.py); sys.exit and a missing package at import,
prints on import, constructors that need arguments or raise (test_loader.py, loader level);
invalid TOML (test_config.py, config level); a wrong input shape (fixtures/nn002_shape_mismatch.py).
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import torch
from invariants import Snapshot
from probe_helpers import lint_model
from test_cli_core import run
from torch import nn

from nnlint.config import Config

LINEAR_MODEL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        {body}

model = Net()
example_input = torch.randn(8, 4)
"""


def model_file(folder: Path, forward_body: str, name: str = "model.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(LINEAR_MODEL).replace("{body}", forward_body))
    return path


def assert_one_clean_line(code: int, out: str, err: str, expected_code: int = 2) -> None:
    assert code == expected_code, (code, out, err)
    assert "Traceback" not in out + err


def unusable_messages(out: str) -> list[str]:
    return [f["message"] for t in json.loads(out)["targets"] for f in t["findings"] if f["code"] == "NN002"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("self.fc(x)", "forward returned None, not a tensor: nothing to check or train (is a `return` missing?)"),
        ("return self.fc(x).size(0)", "forward returned int 8, not a tensor: nothing to check or train"),
        ("return float(self.fc(x).sum() > 0)", "forward returned float "),
    ],
    ids=["none", "int", "float-on-real-values"],
)
def test_a_forward_that_returns_no_tensor_is_nn002(tmp_path, body, message):
    code, out, err = run("--format", "json", str(model_file(tmp_path, body)))
    assert_one_clean_line(code, out, err)
    (unusable,) = unusable_messages(out)
    assert message in unusable


@pytest.mark.parametrize("shape", ["", "2,,3", "-1,4", "2.5,4", "0,4", "99999999999999999999,4", "2;4"])
def test_input_shape_garbage_is_a_usage_error(tmp_path, shape):
    code, out, err = run("--input-shape", shape, str(model_file(tmp_path, "return self.fc(x)")))
    assert_one_clean_line(code, out, err)
    assert "Invalid value for '--input-shape': expected comma-separated positive integers" in err


def test_an_input_shape_too_large_for_memory_is_nn002_naming_its_size(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("from torch import nn\nmodel = nn.Sequential(nn.Linear(4, 4))\n")
    code, out, err = run("--format", "json", "--input-shape", "99999999999,4", str(path))
    assert_one_clean_line(code, out, err)
    (unusable,) = unusable_messages(out)
    assert "cannot allocate an input of shape 99999999999x4 (1600.0 GB)" in unusable


@pytest.mark.parametrize(
    ("pyproject", "message"),
    [
        ("[tool.nnlint\nselect = ['NN1']\n", "pyproject.toml: invalid TOML: Expected ']' at the end of a table declaration"),
        ('[tool]\nnnlint = "strict"\n', "pyproject.toml: [tool.nnlint] must be a table of settings, got 'strict'"),
        ("[tool.nnlint]\nselect = 3\n", """[tool.nnlint] select: expected rule codes as a list such as ["NN1", "NN104"], got 3"""),
        ("[tool.nnlint]\nper-module-ignores = { 'head.*' = 3 }\n", "[tool.nnlint] per-module-ignores: expected rule codes as a list"),
        ("[tool.nnlint]\nignore = ['NN1', 104]\n", "[tool.nnlint] ignore: expected rule codes as strings"),
        (b"\xff\xfe[tool.nnlint]\n", "pyproject.toml: cannot read: 'utf-8' codec can't decode byte 0xff"),
    ],
    ids=["invalid-toml", "not-a-table", "select-not-a-list", "ignores-not-a-list", "code-not-a-string", "not-utf8"],
)
def test_a_malformed_tool_nnlint_is_one_line_naming_the_file(tmp_path, pyproject, message):
    model = model_file(tmp_path, "return self.fc(x)")
    config = tmp_path / "pyproject.toml"
    config.write_bytes(pyproject if isinstance(pyproject, bytes) else pyproject.encode())
    code, out, err = run(str(model))
    assert_one_clean_line(code, out, err)
    (line,) = err.splitlines()
    assert line.startswith(f"nnlint: {config}: ") and message in line


def test_a_config_file_that_does_not_exist_is_one_line(tmp_path):
    code, out, err = run("--config", str(tmp_path / "missing.toml"), str(model_file(tmp_path, "return self.fc(x)")))
    assert_one_clean_line(code, out, err)
    assert err.splitlines() == [f"nnlint: {tmp_path / 'missing.toml'}: config file not found"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import sys\nimport torch\nsys.exit('needs a GPU')\n", "called sys.exit('needs a GPU') while being imported (line 3)"),
        ("import sys\nimport torch\nsys.exit(0)\n", "called sys.exit(0) while being imported (line 3)"),
        (
            "from torch import nn\nclass Net(nn.Module):\n    def __init__(self, depth):\n        super().__init__()\n",
            'no model to lint: skipped `Net`: its constructor needs arguments (depth); name them: nnlint "{path}::Net(depth=...)"',
        ),
    ],
    ids=["sys-exit-message", "sys-exit-0", "constructor-needs-arguments"],
)
def test_a_file_that_cannot_give_a_model_keeps_the_json_report_parseable(tmp_path, source, message):
    path = tmp_path / "model.py"
    path.write_text(source)
    code, out, err = run("--format", "json", str(path))
    assert_one_clean_line(code, out, err)
    report = json.loads(out)
    message = message.format(path=path)
    assert report["targets"] == [] and [e["message"] for e in report["errors"]] == [message]
    assert err.splitlines() == [f"nnlint: {path}: {message}"]


def test_prints_on_import_and_in_forward_go_to_stderr_and_the_json_stays_parseable(tmp_path):
    path = model_file(tmp_path, "print('forward got', tuple(x.shape)); return self.fc(x)")
    path.write_text("print('loading weights...')\n" + path.read_text())
    code, out, err = run("--format", "json", str(path))
    assert_one_clean_line(code, out, err, expected_code=0)
    assert json.loads(out)["targets"][0]["name"] == "model"
    assert "loading weights..." in err and "forward got" in err


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("raise RuntimeError('no checkpoint')", "@nnlint.target function `build` raised RuntimeError: no checkpoint (line 7)"),
        ("return 'resnet'", "@nnlint.target function `build` returned str, not an nnlint.Target or nn.Module"),
    ],
    ids=["raises", "returns-a-string"],
)
def test_a_target_function_that_fails_is_nn002_and_exit_2(tmp_path, function, message):
    path = tmp_path / "model.py"
    path.write_text(f"import nnlint\nimport torch\n\n\n@nnlint.target\ndef build():\n    {function}\n")
    code, out, err = run("--format", "json", str(path))
    assert_one_clean_line(code, out, err)
    assert unusable_messages(out) == [f"`build` cannot be linted: {message}"]


def test_a_folder_without_model_files_is_one_line_and_exit_2(tmp_path):
    code, out, err = run(str(tmp_path))
    assert_one_clean_line(code, out, err)
    assert err.splitlines() == [f"nnlint: {tmp_path}: no Python files that import torch in this folder"]
    (tmp_path / "helpers.py").write_text("import torch\n\ndef scale(x):\n    return x * 2\n")
    code, out, err = run(str(tmp_path))
    assert_one_clean_line(code, out, err)
    assert err.splitlines() == [f"nnlint: {tmp_path}: no model found in any of its Python files"]


def test_nan_inputs_do_not_stop_the_static_checks(tmp_path):
    """All-NaN example input and batch, with a forward that branches on values (real-sample recording)."""
    path = model_file(tmp_path, "if torch.isnan(x).any():\n            x = torch.nan_to_num(x)\n        return self.fc(x)")
    path.write_text(
        path.read_text().replace("torch.randn(8, 4)", "torch.full((8, 4), float('nan'))")
        + "example_batch = (torch.full((8, 4), float('nan')), torch.randn(8, 4))\nloss_fn = torch.nn.MSELoss()\n"
    )
    code, out, err = run("--format", "json", str(path))
    assert_one_clean_line(code, out, err, expected_code=0)
    assert json.loads(out)["targets"][0]["graph"] == "recorded" and unusable_messages(out) == []


def test_an_unknown_code_in_ignore_is_a_usage_error(tmp_path):
    code, out, err = run("--ignore", "NN1,NN99X", str(model_file(tmp_path, "return self.fc(x)")))
    assert_one_clean_line(code, out, err)
    assert err.splitlines() == ["nnlint: unknown rule code or prefix: 'NN99X'"]


class _NeverReturns(nn.Module):
    """A forward that hangs in every mode, swallowing ordinary exceptions on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.fc(x))
        while True:
            try:  # noqa: SIM105 - a forward that catches everything must still stop
                time.sleep(0.01)
            except Exception:
                pass


@pytest.mark.parametrize("method", ["fx", "recorded"])
def test_a_forward_that_never_returns_while_the_graph_is_built_is_stopped_by_the_timeout(method):
    model, example_input = _NeverReturns(), torch.randn(8, 4)
    before = Snapshot.take(model)
    started = time.perf_counter()
    report = lint_model(model, Config(probe_timeout=1, graph=method), example_input=example_input)
    assert time.perf_counter() - started < 20
    assert [f.code for f in report.findings] == ["NN002"] and report.exit_code == 2
    assert "did not finish within 1 s while nnlint built the graph (--probe-timeout)" in report.findings[0].message
    # The interrupted trace or recording left nothing behind: no patched torch functions, global
    # hooks or torch-function modes (Snapshot's process state), and the model as it was.
    assert not before.differences(Snapshot.take(model))
    assert torch.relu(torch.ones(1)).item() == 1.0


def test_a_model_file_whose_forward_never_returns_reports_nn002_and_exit_2(tmp_path):
    path = model_file(tmp_path, "import time\n        time.sleep(3600)")
    code, out, err = run("--probe-timeout", "1", "--format", "json", str(path))
    assert_one_clean_line(code, out, err)
    [message] = unusable_messages(out)
    assert message == "`model` cannot be linted: its forward did not finish within 1 s while nnlint built the graph (--probe-timeout)"
