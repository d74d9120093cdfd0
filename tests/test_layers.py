"""Layers only look down: every `nnlint` import in the package and in rules/ is checked against the
layer order written in docs/architecture.md (the list between its `layers` markers)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the checkout: its docs/ and rules/ (an installed nnlint has no docs/)
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def written_layers() -> list[tuple[str, list[str]]]:
    """(layer name, module names) from docs/architecture.md, top layer first."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("<!-- layers:", 1)[1].split("<!-- end of layers -->", 1)[0]
    layers = []
    for line in block.splitlines():
        match = re.match(r"\d+\. (\w+): (.+)", line.strip())
        if match:
            layers.append((match.group(1), re.findall(r"`([\w.]+)`", match.group(2))))
    return layers


def _rank() -> dict[str, int]:
    """Module name -> its layer's height (0: the bottom layer)."""
    layers = written_layers()
    return {name: len(layers) - 1 - index for index, (_, names) in enumerate(layers) for name in names}


def layer_of(module: str, rank: dict[str, int]) -> int:
    """The layer of the longest written name that is `module` or a package above it."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        name = ".".join(parts[:length])
        if name in rank:
            return rank[name]
    raise AssertionError(f"{module} is in no layer of docs/architecture.md")


def source_modules() -> dict[str, Path]:
    """Every module of the package, with rules/ under the name it ships as (nnlint.rules)."""
    modules = {}
    for path in sorted((ROOT / "nnlint").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    for path in sorted((ROOT / "rules").glob("*.py")):
        modules["nnlint.rules" if path.stem == "__init__" else f"nnlint.rules.{path.stem}"] = path
    return modules


def imported_modules(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """(line, module) for every nnlint module `module` imports, anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((node.lineno, submodule if submodule in known else base))
    return [(line, name) for line, name in found if name == "nnlint" or name.startswith("nnlint.")]


def test_the_written_layer_order_names_real_modules():
    modules = source_modules()
    for _, names in written_layers():
        for name in names:
            assert any(m == name or m.startswith(name + ".") for m in modules), f"docs/architecture.md names {name}, which does not exist"


def test_every_module_has_a_layer():
    rank = _rank()
    for module in source_modules():
        layer_of(module, rank)


@pytest.mark.parametrize("module", sorted(source_modules()))
def test_imports_only_look_down(module):
    rank, modules = _rank(), source_modules()
    own = layer_of(module, rank)
    upward = [
        f"{modules[module].relative_to(ROOT)}:{line} imports {imported}"
        for line, imported in imported_modules(module, modules[module], set(modules))
        if layer_of(imported, rank) > own
    ]
    assert upward == []


def test_the_check_catches_an_upward_import(tmp_path):
    report_like = tmp_path / "report.py"
    report_like.write_text("def to_json(self):\n    from nnlint.render import render\n")
    rank = _rank()
    imported = imported_modules("nnlint.report", report_like, set(source_modules()))
    assert [layer_of(name, rank) > layer_of("nnlint.report", rank) for _, name in imported] == [True]
