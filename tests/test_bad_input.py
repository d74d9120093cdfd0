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
from pathlib import Path

import pytest
from test_cli_core import run

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
