"""Target discovery follows the README ("What nnlint lints in a file"); bad files become one clear error, never a traceback."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from nnlint.errors import LoadError, NoModelError
from nnlint.loader import collect_model_files, loaded_model_file

HEADER = "import torch\nfrom torch import nn\nimport nnlint\n"


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(source)
    return path


def model_file(folder: Path, body: str, name: str = "m.py") -> Path:
    """A model file: three header lines (imports), then `body`."""
    return write(folder, name, HEADER + textwrap.dedent(body))


def target_names(path: Path) -> list[str]:
    with loaded_model_file(path) as loaded:
        return [t.name for t in loaded.targets]


def test_decorated_functions_win_over_instances_and_classes(tmp_path):
    path = model_file(
        tmp_path,
        """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)
            def forward(self, x):
                return self.fc(x)
        model = Net()
        @nnlint.target
        def small():
            return nnlint.Target(Net(), example_input=torch.randn(2, 4), name="small-net")
        @nnlint.target
        def bare():
            return Net()
    """,
    )
    with loaded_model_file(path) as loaded:
        assert [t.name for t in loaded.targets] == ["small-net", "bare"]
        assert loaded.targets[0].target.example_input.shape == (2, 4)
        assert loaded.targets[0].location.line == 12  # the decorated function, from its decorator


def test_module_instances_skip_losses_reserved_names_and_submodules(tmp_path):
    path = model_file(
        tmp_path,
        """
        encoder = nn.Linear(8, 4)
        model = nn.Sequential(encoder, nn.ReLU(), nn.Linear(4, 2))
        other = nn.Linear(3, 3)
        alias = other
        loss_fn = nn.CrossEntropyLoss()
        criterion = nn.MSELoss()
        example_input = torch.randn(2, 8)
    """,
    )
    assert target_names(path) == ["model", "other"]


def test_classes_yield_roots_not_building_blocks(tmp_path):
    path = model_file(
        tmp_path,
        """
        class Block(nn.Module):
            def __init__(self, width=8):
                super().__init__()
                self.fc = nn.Linear(width, width)
            def forward(self, x):
                return self.fc(x)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.blocks = nn.Sequential(Block(), Block())
            def forward(self, x):
                return self.blocks(x)
    """,
    )
    assert target_names(path) == ["Net"]


def test_class_needing_arguments_is_skipped_with_a_note_when_others_exist(tmp_path):
    path = model_file(
        tmp_path,
        """
        class Configurable(nn.Module):
            def __init__(self, depth):
                super().__init__()
                self.fc = nn.Linear(4, 4)
        class Ready(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def forward(self, x):
                return self.fc(x)
    """,
    )
    with loaded_model_file(path) as loaded:
        assert [t.name for t in loaded.targets] == ["Ready"]
        hint = f'name them: nnlint "{path}::Configurable(depth=...)"'
        assert loaded.notes == [f"skipped `Configurable`: its constructor needs arguments (depth); {hint}"]


def test_a_required_config_argument_is_spelled_out_in_the_hint(tmp_path):
    """johnma2006/mamba-minimal: `Mamba(args: ModelArgs)`, whose dataclass needs three fields with no
    defaults (the real values come from a downloaded config): the hint writes the config's call."""
    path = model_file(
        tmp_path,
        """
        from dataclasses import dataclass
        @dataclass
        class ModelArgs:
            d_model: int
            n_layer: int
            vocab_size: int
            d_state: int = 16
        class Mamba(nn.Module):
            def __init__(self, args: ModelArgs):
                super().__init__()
                self.embedding = nn.Embedding(args.vocab_size, args.d_model)
        class Ready(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def forward(self, x):
                return self.fc(x)
    """,
    )
    with loaded_model_file(path) as loaded:
        hint = f'name them: nnlint "{path}::Mamba(args=ModelArgs(d_model=..., n_layer=..., vocab_size=...))"'
        assert loaded.notes == [f"skipped `Mamba`: its constructor needs arguments (args); {hint}"]


def test_only_classes_needing_arguments_is_an_error_naming_them(tmp_path):
    path = model_file(
        tmp_path,
        """
        class Net(nn.Module):
            def __init__(self, depth, width=4):
                super().__init__()
    """,
    )
    with pytest.raises(NoModelError, match=r"`Net`: its constructor needs arguments \(depth\)"):
        target_names(path)


def test_constructor_that_raises_becomes_an_unusable_target(tmp_path):
    path = model_file(
        tmp_path,
        """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                raise ValueError("no config file")
    """,
    )
    with loaded_model_file(path) as loaded:
        assert loaded.targets[0].problem == "`Net()` raised ValueError: no config file (line 8)"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import torch\ndef broken(:\n", "syntax error at line 2"),
        ("import torch\nraise RuntimeError('needs a GPU')\n", "raised RuntimeError: needs a GPU (line 2) while being imported"),
        ("import torch, sys\nsys.exit(3)\n", "called sys.exit(3) while being imported"),
        ("import torch\nfrom missing_package import thing\n", "raised ModuleNotFoundError: No module named 'missing_package' (line 2)"),
    ],
)
def test_files_that_do_not_import_are_one_line_errors(tmp_path, source, message):
    path = write(tmp_path, "m.py", source)
    with pytest.raises(LoadError) as caught:
        target_names(path)
    assert message in caught.value.message
    assert "\n" not in str(caught.value)


def test_file_without_models_is_an_error(tmp_path):
    path = write(tmp_path, "m.py", "import torch\nx = torch.ones(2)\n")
    with pytest.raises(NoModelError, match="no model found"):
        target_names(path)


def test_sibling_modules_and_sys_path_are_forgotten_between_files(tmp_path):
    for variant, width in (("a", 3), ("b", 5)):
        folder = tmp_path / variant
        folder.mkdir()
        write(folder, "blocks.py", f"from torch import nn\nWIDTH = {width}\n")
        write(folder, "model.py", HEADER + "from blocks import WIDTH\nmodel = nn.Linear(WIDTH, 1)\n")
    path_before, modules_before = list(sys.path), set(sys.modules)
    widths = []
    for variant in ("a", "b"):
        with loaded_model_file(tmp_path / variant / "model.py") as loaded:
            widths.append(loaded.targets[0].target.model.in_features)
    assert widths == [3, 5]
    assert sys.path == path_before
    assert not {"blocks", "model"} & (set(sys.modules) - modules_before)


def test_output_printed_on_import_goes_to_stderr(tmp_path, capsys):
    path = write(tmp_path, "m.py", HEADER + "print('loading weights...')\nmodel = nn.Linear(2, 2)\n")
    target_names(path)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "loading weights..." in captured.err


def test_construction_lines_are_recorded_for_every_submodule(tmp_path):
    path = model_file(
        tmp_path,
        """
        def make_head():
            return nn.Linear(8, 2)
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Linear(4, 8),
                    nn.ReLU(),
                )
                self.head = make_head()
    """,
    )
    from nnlint.sources import ModuleLocator

    with loaded_model_file(path) as loaded:
        model = loaded.targets[0].target.model
        locator = ModuleLocator(model)
        lines = {name: locator.locate(name).line for name, _ in model.named_modules() if name}
    assert lines == {"body": 10, "body.0": 11, "body.1": 12, "head": 6}  # head: where make_head built it


def test_folders_are_searched_for_model_files_only(tmp_path):
    write(tmp_path, "model.py", HEADER + "model = nn.Linear(2, 2)\n")
    write(tmp_path, "notes.py", "print('not a model')\n")
    (tmp_path / ".venv").mkdir()
    write(tmp_path / ".venv", "hidden.py", "import torch\n")
    files, errors = collect_model_files([tmp_path, tmp_path / "missing.py"])
    assert [(p.name, explicit) for p, explicit in files] == [("model.py", False)]
    assert [(Path(e.path).name, e.message) for e in errors] == [("missing.py", "no such file or directory")]
