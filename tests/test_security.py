"""nnlint executes the model file it is given (like pytest executes tests), but nothing else: any
tensor file nnlint itself loads must go through `torch.load(..., weights_only=True)`, which
refuses pickled code, and the package never unpickles on its own."""

from __future__ import annotations

import ast
import shutil

import pytest
from expectations import ROOT

from nnlint.config import Config
from nnlint.engine import lint_paths
from nnlint.render import OutputFormat, render

PACKAGE_SOURCES = sorted([*(ROOT / "nnlint").rglob("*.py"), *(ROOT / "rules").rglob("*.py")])
_UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("dill", "load"), ("dill", "loads")}


def unsafe_loads(source: str) -> list[str]:
    """Calls that could run code from a data file: torch.load without weights_only=True, pickle."""
    tree = ast.parse(source)
    aliases = {
        alias.asname or alias.name: f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        name = aliases.get(name, name)
        if name == "torch.load" and not _weights_only(node):
            found.append(f"line {node.lineno}: torch.load without weights_only=True")
        if tuple(name.rsplit(".", 1)) in _UNPICKLERS:
            found.append(f"line {node.lineno}: {name}")
    return found


def _dotted(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return f"{_dotted(func.value)}.{func.attr}"
    return ""


def _weights_only(call: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)


def test_the_package_loads_no_tensor_file_unsafely():
    assert len(PACKAGE_SOURCES) > 10  # the scan sees the engine and the rules
    unsafe = {str(path.relative_to(ROOT)): found for path in PACKAGE_SOURCES if (found := unsafe_loads(path.read_text(encoding="utf-8")))}
    assert unsafe == {}


@pytest.mark.parametrize(
    ("source", "unsafe"),
    [
        ("import torch\nstate = torch.load(path)\n", ["line 2: torch.load without weights_only=True"]),
        ("import torch\nstate = torch.load(path, weights_only=False)\n", ["line 2: torch.load without weights_only=True"]),
        ("from torch import load\nstate = load(path, map_location='cpu')\n", ["line 2: torch.load without weights_only=True"]),
        ("import pickle\nbatch = pickle.loads(blob)\n", ["line 2: pickle.loads"]),
        ("import torch\nstate = torch.load(path, map_location='cpu', weights_only=True)\n", []),
    ],
)
def test_the_check_finds_unsafe_loads(source, unsafe):
    assert unsafe_loads(source) == unsafe


def test_the_text_report_keeps_a_hostile_module_name_on_its_own_line(tmp_path):
    """Control characters in a module name are spelled out, and no wrapped text starts a line."""
    path = tmp_path / "model.py"
    shutil.copy(ROOT / "tests" / "data" / "hostile_model.py", path)
    text = render(lint_paths([path], Config()), OutputFormat.TEXT, width=60)
    header, *rest = text.splitlines()
    assert not any(char in text for char in "\r\x1b\x00")
    assert header.endswith(":: model  (graph: fx, device: cpu)") and all(line == "" or line.startswith(("  ", "Found ")) for line in rest)
    assert any(line.startswith("  ") and "NN104" in line and r"title=a:b\r\n<tag" in line for line in rest)
