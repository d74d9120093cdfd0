"""Import a model file and discover what to lint in it (DESIGN.md, "How `nnlint model.py` finds…").

In the user's file, the first of these that finds anything wins:
1. functions decorated with `@nnlint.target`;
2. module-level `nn.Module` instances (not losses, not reserved names, not submodules of another);
3. `nn.Module` subclasses defined in the file whose constructor needs no arguments and that no
   other such class uses as a submodule.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import re
import stat
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from nnlint.errors import LoadError, NoModelError
from nnlint.findings import Location
from nnlint.runtime.randomness import seeded
from nnlint.sources import assignment_line, definition_line, recording_construction_sites
from nnlint.targets import RESERVED_NAMES, TARGET_MARK, Target

_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}
# A folder's files are imported only if they could define a model: importing `train.py` would run it.
_LOOKS_LIKE_MODEL_CODE = re.compile(r"\btorch\b|\bnnlint\b")


@dataclass
class LoadedTarget:
    target: Target
    name: str
    file: Path
    location: Location | None
    # Where the file set each optional name (`batch_size = 4` on line 30), for findings about it.
    context_locations: dict[str, Location] = field(default_factory=dict)
    problem: str | None = None  # the target could not be built: reported as NN002


@dataclass
class LoadedFile:
    path: Path
    targets: list[LoadedTarget]
    notes: list[str] = field(default_factory=list)


def collect_model_files(paths: list[Path], named_as_found: bool = False) -> tuple[list[tuple[Path, bool]], list[LoadError]]:
    """Files to lint, each with whether it was named explicitly; missing paths become errors.

    `named_as_found` treats named files as if found in a folder (pre-commit names every staged
    file): one that does not mention torch is not imported, one without a model is skipped quietly.
    """
    files: list[tuple[Path, bool]] = []
    errors: list[LoadError] = []
    for path in paths:
        if path.is_file() and named_as_found:
            if _looks_like_model_code(path):
                files.append((path, False))
        elif path.is_file():
            files.append((path, True))
        elif path.is_dir():
            found = [(f, False) for f in _python_files(path) if _looks_like_model_code(f)]
            if not found:
                errors.append(LoadError(str(path), "no Python files that import torch in this folder"))
            files.extend(found)
        elif path.exists():
            errors.append(LoadError(str(path), "not a regular file (a FIFO, device or socket): not read"))
        else:
            errors.append(LoadError(str(path), "no such file or directory"))
    return _each_file_once(files), errors


def _each_file_once(files: list[tuple[Path, bool]]) -> list[tuple[Path, bool]]:
    """The first of each file reached twice (a symlink to it, a folder and a file in it, a path
    given twice), named explicitly if any of its paths was."""
    first: dict[str, int] = {}
    unique: list[tuple[Path, bool]] = []
    for path, explicit in files:
        key = os.path.realpath(path)
        if key not in first:
            first[key] = len(unique)
            unique.append((path, explicit))
        elif explicit:
            unique[first[key]] = (unique[first[key]][0], True)
    return unique


def _python_files(folder: Path) -> Iterator[Path]:
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(
            f for f in folders if not f.startswith(".") and f not in _SKIPPED_FOLDERS and not (Path(root, f) / "pyvenv.cfg").exists()
        )
        yield from (Path(root, name) for name in sorted(names) if name.endswith(".py") and _is_regular_file(Path(root, name)))


def _is_regular_file(path: Path) -> bool:
    """A regular file, or a symlink to one: a FIFO named `x.py` would block the scan, and a symlink
    to /dev/zero would be read until memory runs out."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def _looks_like_model_code(path: Path) -> bool:
    try:
        return bool(_LOOKS_LIKE_MODEL_CODE.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


@contextlib.contextmanager
def loaded_model_file(path: Path) -> Iterator[LoadedFile]:
    """Import `path` and discover its targets; on exit, forget the file and its sibling modules.

    While the file runs, its folder is first on `sys.path`, whatever it prints goes to stderr,
    so that a report on stdout stays parseable, and the random generators are seeded, so that
    its models start from the same weights — and the probe measures the same — in every run.
    """
    path = path.resolve()
    folder = str(path.parent)
    modules_before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        with recording_construction_sites(), contextlib.redirect_stdout(sys.stderr), seeded(0):
            module = _import_file(path)
            yield _discover_targets(module, path)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        for name in set(sys.modules) - modules_before:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if name.startswith("_nnlint_model_") or os.path.realpath(module_file).startswith(os.path.join(folder, "")):
                del sys.modules[name]


def _import_file(path: Path) -> ModuleType:
    # The file's own name, as `python file.py` siblings would import it, unless that name is taken.
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else f"_nnlint_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(str(path), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise LoadError(str(path), f"syntax error at line {error.lineno}: {error.msg}") from error
    except SystemExit as error:
        raise LoadError(str(path), f"called sys.exit({error.code!r}) while being imported") from error
    except Exception as error:
        raise LoadError(str(path), f"raised {_error_with_line(error, path)} while being imported") from error
    return module


def _error_with_line(error: BaseException, path: Path) -> str:
    """`NameError: name 'x' is not defined (line 12)`: the deepest line in the user's file."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
    where = f" (line {lines[-1]})" if lines else ""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}{where}".replace(": (", " (")


def _discover_targets(module: ModuleType, path: Path) -> LoadedFile:
    context = {name: getattr(module, name) for name in RESERVED_NAMES if hasattr(module, name)}
    context_locations = {name: Location(str(path), line) for name in context if (line := assignment_line(str(path), name)) is not None}
    for discover in (_decorated_targets, _module_instances, _zero_argument_classes):
        loaded = discover(module, path)
        if loaded.targets:
            for item in loaded.targets:
                item.target = _with_file_context(item.target, context)
                item.context_locations = context_locations
            return loaded
        if loaded.notes:
            raise NoModelError(str(path), "no model to lint: " + "; ".join(loaded.notes))
    raise NoModelError(
        str(path),
        "no model found: define a module-level instance (`model = Net()`), an nn.Module subclass whose "
        "constructor needs no arguments, or an @nnlint.target function",
    )


def _with_file_context(target: Target, context: dict[str, Any]) -> Target:
    """Fill the target's unset optional fields from the file's module-level names."""
    for name, value in context.items():
        if getattr(target, name) is None:
            setattr(target, name, value)
    return target


def _defined_here(obj: Any, module: ModuleType) -> bool:
    return getattr(obj, "__module__", None) == module.__name__


def _decorated_targets(module: ModuleType, path: Path) -> LoadedFile:
    targets = []
    for name, function in vars(module).items():
        if not (callable(function) and getattr(function, TARGET_MARK, False) and _defined_here(function, module)):
            continue
        location = definition_line(function)
        try:
            result = function()
        except Exception as error:
            targets.append(_unbuildable(name, path, location, f"@nnlint.target function `{name}` raised {_error_with_line(error, path)}"))
            continue
        if isinstance(result, nn.Module):
            result = Target(result)
        if not isinstance(result, Target):
            problem = f"@nnlint.target function `{name}` returned {type(result).__name__}, not an nnlint.Target or nn.Module"
            targets.append(_unbuildable(name, path, location, problem))
            continue
        targets.append(LoadedTarget(result, result.name or name, path, location))
    return LoadedFile(path, targets)


def _unbuildable(name: str, path: Path, location: Location | None, problem: str) -> LoadedTarget:
    return LoadedTarget(Target(nn.Module()), name, path, location, problem=problem)


def _is_candidate_module(name: str, value: Any) -> bool:
    return isinstance(value, nn.Module) and not isinstance(value, nn.modules.loss._Loss) and name not in RESERVED_NAMES


def _module_instances(module: ModuleType, path: Path) -> LoadedFile:
    instances: dict[int, tuple[str, nn.Module]] = {}
    for name, value in vars(module).items():
        if _is_candidate_module(name, value) and id(value) not in instances:
            instances[id(value)] = (name, value)
    inside_another = {id(sub) for _, instance in instances.values() for sub in list(instance.modules())[1:]}
    targets = [
        LoadedTarget(Target(instance), name, path, _line_of(path, name))
        for key, (name, instance) in instances.items()
        if key not in inside_another
    ]
    return LoadedFile(path, targets)


def _line_of(path: Path, name: str) -> Location | None:
    line = assignment_line(str(path), name)
    return Location(str(path), line) if line is not None else None


def _zero_argument_classes(module: ModuleType, path: Path) -> LoadedFile:
    classes = [
        cls
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, nn.Module)
        and not issubclass(cls, nn.modules.loss._Loss)
        and _defined_here(cls, module)
        and not inspect.isabstract(cls)
    ]
    built: dict[type, nn.Module] = {}
    failed: dict[type, str] = {}
    needs_arguments: dict[type, list[str]] = {}
    for cls in classes:
        required = _required_arguments(cls)
        if required:
            needs_arguments[cls] = required
            continue
        try:
            built[cls] = cls()
        except Exception as error:
            failed[cls] = f"`{cls.__name__}()` raised {_error_with_line(error, path)}"
    # A class whose instances live inside another class's instance is a building block, not a model.
    used_inside = {type(sub) for instance in built.values() for sub in list(instance.modules())[1:]}
    targets = [
        LoadedTarget(Target(instance), cls.__name__, path, definition_line(cls))
        for cls, instance in built.items()
        if cls not in used_inside
    ]
    targets += [
        _unbuildable(cls.__name__, path, definition_line(cls), problem) for cls, problem in failed.items() if cls not in used_inside
    ]
    notes = [
        f"skipped `{cls.__name__}`: its constructor needs arguments ({', '.join(required)})"
        for cls, required in needs_arguments.items()
        if cls not in used_inside
    ]
    return LoadedFile(path, targets, notes)


def _required_arguments(cls: type) -> list[str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
