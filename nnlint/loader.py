"""Import a model file and discover what to lint in it.

`nnlint model.py::GPT` or `nnlint "model.py::GPT(GPTConfig(n_layer=2))"` names the targets.
Otherwise, in the user's file, the first of these that finds anything wins:
1. functions decorated with `@nnlint.target`;
2. module-level `nn.Module` instances (not losses, not reserved names, not submodules of another);
3. `nn.Module` subclasses defined in the file, built the way the project builds them (`nnlint.building`:
   defaults, a config class, the arguments a script beside the file passes), and module-level
   factory functions with no required arguments (`ResNet18()`); a class another class or a
   factory uses (`NewGELU`, `Block`, `BasicBlock`) is a building block, never a target.

The file's loss, optimizer(s) and DataLoader are then found by name or type (`nnlint.companions`).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import importlib.util
import inspect
import os
import re
import stat
import sys
import traceback
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from nnlint.building import (
    Recipe,
    ScriptCall,
    argument_hint,
    building_blocks,
    config_recipe,
    factory_names,
    names_in_function,
    required_arguments,
    script_recipe,
)
from nnlint.companions import CompanionError, fill_from_file
from nnlint.context import DataLoaderFacts
from nnlint.errors import LoadError, NoModelError
from nnlint.findings import Location
from nnlint.made_up import candidate_arguments
from nnlint.runtime.escapes import UserExit, escapes_nnlint, user_code
from nnlint.runtime.memory import built_within_memory
from nnlint.runtime.nesting import submodules
from nnlint.runtime.randomness import seeded
from nnlint.runtime.state import preserved_process_state
from nnlint.runtime.torch_compat import LossBase
from nnlint.sources import assignment_line, definition_line, recording_construction_sites
from nnlint.targets import RESERVED_NAMES, TARGET_MARK, Target

TARGET_SEPARATOR = "::"

_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}
# A folder's files are imported only if they could define a model: importing `train.py` would run it.
_LOOKS_LIKE_MODEL_CODE = re.compile(r"\btorch\b|\bnnlint\b")
_forgets_imports = True  # see imports_outlive_files


@dataclass
class LoadedTarget:
    target: Target
    name: str
    file: Path | None  # None: a model handed to the Python API whose class has no source file
    location: Location | None
    # Where the file set each optional name (`batch_size = 4` on line 30), for findings about it.
    context_locations: dict[str, Location] = field(default_factory=dict)
    problem: str | None = None  # the target could not be built: reported as NN002
    notes: list[str] = field(default_factory=list)  # how nnlint built it ("built GPT(GPTConfig())")
    construction: dict[str, Any] = field(default_factory=dict)  # the constructor's keyword arguments, if known
    captured_input: Any = None  # script mode: the input the model received at the script's first step
    data_loader: DataLoaderFacts | None = None  # the training DataLoader (script mode)


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


def split_target_argument(argument: Path | str) -> tuple[Path, str | None]:
    """`model.py::GPT(GPTConfig())` -> (model.py, "GPT(GPTConfig())"); a plain path -> (path, None)."""
    text = str(argument)
    file, separator, expression = text.partition(TARGET_SEPARATOR)
    if not separator or not file.endswith(".py"):
        return Path(text), None
    return Path(file), expression.strip()


def imports_outlive_files() -> None:
    """For a process that ends once its file is linted (a child of nnlint's fork server): the
    modules a file imported are not taken out of sys.modules afterwards, which spares the two
    snapshots of sys.modules that finding them takes. Each touches every module's name, and in
    a forked child that is 500-1,000 copy-on-write page faults (~5 ms) for nothing to put back."""
    global _forgets_imports
    _forgets_imports = False


@contextlib.contextmanager
def loaded_model_file(path: Path, chosen: Sequence[str] = (), forward_check: ForwardCheck | None = None) -> Iterator[LoadedFile]:
    """Import `path` and discover its targets (or build the `chosen` expressions); on exit, forget
    the file and its sibling modules.

    While the file runs, its folder is first on `sys.path` (and, for a file inside a package, the
    package's parent, so that it imports as `package.module` and its relative imports work),
    `sys.argv` is `[path]` (a module-level `parse_args()` sees its defaults, not nnlint's options),
    whatever it prints goes to stderr, so that a report on stdout stays parseable, and the random
    generators are seeded, so that its models start from the same weights — and the probe measures
    the same — in every run. Process-wide state the file sets (default dtype or device, working
    directory, cuDNN flags) holds while its targets are linted, and is put back when the block exits.
    `forward_check` lets discovery build a class from made-up arguments (`nnlint.made_up`).
    """
    path = path.resolve()
    package_root = _package_root(path)
    # The package's parent first: `import neural_style` must find the package, not neural_style/neural_style.py.
    folders = ([str(package_root)] if package_root is not None else []) + [str(path.parent)]
    modules_before = set(sys.modules) if _forgets_imports else None
    for folder in reversed(folders):
        sys.path.insert(0, folder)
    try:
        with recording_construction_sites(), contextlib.redirect_stdout(sys.stderr), seeded(0), preserved_process_state():
            with _argv_of(path):
                module = _import_file(path, package_root)
                loaded = discover_targets(vars(module), path, chosen=chosen, package_root=package_root, forward_check=forward_check)
            yield loaded
    finally:
        for folder in folders:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        for name in set(sys.modules) - modules_before if modules_before is not None else ():
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if name.startswith("_nnlint_model_") or any(os.path.realpath(module_file).startswith(os.path.join(f, "")) for f in folders):
                del sys.modules[name]


@contextlib.contextmanager
def _argv_of(path: Path) -> Iterator[None]:
    saved = sys.argv
    sys.argv = [str(path)]
    try:
        yield
    finally:
        sys.argv = saved


def _package_root(path: Path) -> Path | None:
    """The folder above the outermost package holding `path` (mingpt/model.py -> the repository), or None."""
    folder = path.parent
    if not (folder / "__init__.py").is_file():
        return None
    while (folder.parent / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder.parent


def _dotted_name(path: Path, package_root: Path) -> str | None:
    parts = path.relative_to(package_root).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts) if all(part.isidentifier() for part in parts) else None


def _import_file(path: Path, package_root: Path | None = None) -> ModuleType:
    dotted = _dotted_name(path, package_root) if package_root is not None else None
    top = dotted.split(".")[0] if dotted else None
    if dotted and package_root is not None and top not in sys.modules:  # a package of that name already imported is not this one
        return _imported_as_package_member(path, dotted, package_root)
    # The file's own name, as `python file.py` siblings would import it, unless that name is taken.
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else f"_nnlint_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(str(path), "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader = spec.loader
    _imported(path, lambda: loader.exec_module(module))
    return module


def _imported_as_package_member(path: Path, dotted: str, package_root: Path) -> ModuleType:
    """`package.module`, so that its relative imports work. When the package's `__init__.py` fails
    (vit-pytorch's imports every model, one of which needs a library that is not installed), the
    file is imported again under stand-in packages that do not run their `__init__.py`."""
    modules_before = set(sys.modules)
    try:
        return _imported(path, lambda: importlib.import_module(dotted))
    except LoadError as first_error:
        for name in set(sys.modules) - modules_before:
            del sys.modules[name]
        packages = dotted.split(".")[:-1] if path.name != "__init__.py" else []
        for depth in range(1, len(packages) + 1):
            name = ".".join(packages[:depth])
            folder = package_root.joinpath(*packages[:depth])
            stand_in = ModuleType(name)
            stand_in.__path__ = [str(folder)]
            stand_in.__file__ = str(folder / "__init__.py")
            sys.modules[name] = stand_in
        try:
            return _imported(path, lambda: importlib.import_module(dotted))
        except LoadError:  # the file itself fails: its first error says why
            raise first_error from None


def _imported(path: Path, run: Any) -> Any:
    try:
        return run()
    except SyntaxError as error:
        raise LoadError(str(path), f"syntax error at line {error.lineno}: {error.msg}") from error
    except SystemExit as error:
        raise LoadError(str(path), f"called sys.exit({error.code!r}) while being imported{_line_in(error, path)}") from error
    except Exception as error:
        raise LoadError(str(path), f"raised {_error_with_line(error, path)} while being imported") from error
    except BaseException as error:  # GeneratorExit and the like; Ctrl-C still stops nnlint
        if escapes_nnlint(error):
            raise
        raise LoadError(str(path), f"raised {_error_with_line(error, path)} while being imported") from error


def _error_with_line(error: BaseException, path: Path) -> str:
    """`NameError: name 'x' is not defined (line 12)`: the deepest line in the user's file."""
    error = error.original if isinstance(error, UserExit) else error
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}{': ' + message[0] if message else ''}{_line_in(error, path)}"


def _line_in(error: BaseException, path: Path) -> str:
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
    return f" (line {lines[-1]})" if lines else ""


def discover_targets(
    namespace: Mapping[str, Any],
    path: Path,
    *,
    chosen: Sequence[str] = (),
    package_root: Path | None = None,
    forward_check: ForwardCheck | None = None,
) -> LoadedFile:
    """The targets in a module's namespace (an imported model file, or a script's definitions), each
    with the file's loss, optimizer and batch size; `chosen` expressions (`GPT`, `GPT(GPTConfig())`)
    replace discovery. Raises NoModelError when there is nothing to lint, LoadError for bad input."""
    source = _source_of(path)
    if chosen:
        loaded = LoadedFile(path, [_picked(expression, namespace, path, package_root) for expression in chosen])
    else:
        loaded = _discovered(namespace, path, package_root, source, forward_check)
    try:
        loaded.notes += fill_from_file([(t.name, t.target) for t in loaded.targets if t.problem is None], namespace, source)
    except CompanionError as error:
        raise LoadError(str(path), str(error)) from None
    context_locations = {name: location for name in RESERVED_NAMES if name in namespace and (location := _line_of(path, name))}
    for item in loaded.targets:
        item.context_locations = context_locations
    return loaded


def _source_of(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _discovered(
    namespace: Mapping[str, Any], path: Path, package_root: Path | None, source: str, forward_check: ForwardCheck | None = None
) -> LoadedFile:
    notes: list[str] = []
    for discover in (_decorated_targets, _module_instances, functools.partial(_classes_and_factories, forward_check=forward_check)):
        loaded = discover(namespace, path, package_root, source)
        if loaded.targets:
            loaded.notes = notes + loaded.notes
            return loaded
        notes += loaded.notes
    if notes:
        raise NoModelError(str(path), "no model to lint: " + "; ".join(notes))
    raise NoModelError(
        str(path),
        "no model found: define a module-level instance (`model = Net()`), an nn.Module subclass whose "
        "constructor needs no arguments, or an @nnlint.target function; or name one: "
        f'nnlint "{_shown_path(path)}::Net(...)"',
    )


def _defined_here(obj: Any, namespace: Mapping[str, Any]) -> bool:
    return getattr(obj, "__module__", None) == namespace.get("__name__")


def _decorated_targets(namespace: Mapping[str, Any], path: Path, package_root: Path | None, source: str) -> LoadedFile:
    targets = []
    for name, function in list(namespace.items()):
        if not (callable(function) and _is_marked(function) and _defined_here(function, namespace)):
            continue
        location = definition_line(function)
        try:
            with user_code():
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


def _is_marked(function: Any) -> bool:
    try:  # an object whose __getattr__ raises something other than AttributeError is not a target
        return getattr(function, TARGET_MARK, False) is True
    except Exception:
        return False


def _unbuildable(name: str, path: Path, location: Location | None, problem: str) -> LoadedTarget:
    return LoadedTarget(Target(nn.Module()), name, path, location, problem=problem)


def _is_candidate_module(name: str, value: Any) -> bool:
    return isinstance(value, nn.Module) and not isinstance(value, LossBase) and name not in RESERVED_NAMES


def _module_instances(namespace: Mapping[str, Any], path: Path, package_root: Path | None, source: str) -> LoadedFile:
    instances: dict[int, tuple[str, nn.Module]] = {}
    for name, value in namespace.items():
        if _is_candidate_module(name, value) and id(value) not in instances:
            instances[id(value)] = (name, value)
    inside_another = {id(sub) for _, instance in instances.values() for sub in list(submodules(instance))[1:]}
    targets = [
        LoadedTarget(Target(instance), name, path, _line_of(path, name))
        for key, (name, instance) in instances.items()
        if key not in inside_another
    ]
    return LoadedFile(path, targets)


def _line_of(path: Path, name: str) -> Location | None:
    line = assignment_line(str(path), name)
    return Location(str(path), line) if line is not None else None


def _model_classes(namespace: Mapping[str, Any]) -> list[type]:
    return [
        value
        for value in namespace.values()
        if inspect.isclass(value)
        and issubclass(value, nn.Module)
        and not issubclass(value, LossBase)
        and _defined_here(value, namespace)
        and not inspect.isabstract(value)
    ]


def _factories(namespace: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Module-level functions defined here that return a model: a call of a model class or of
    another such function (`def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])`)."""
    returns = {name: callees for name, callees in factory_names(source).items() if inspect.isfunction(namespace.get(name))}
    returning_model: set[str] = set()
    changed = True
    while changed:  # `def resnet18(): return _resnet(...)`, `def _resnet(...): return ResNet(...)`
        changed = False
        for name, callees in returns.items():
            if name not in returning_model and any(_is_model_class(_returned_class(namespace, c)) or c in returning_model for c in callees):
                returning_model.add(name)
                changed = True
    return {name: namespace[name] for name in returns if name in returning_model and _defined_here(namespace[name], namespace)}


def _returned_class(namespace: Mapping[str, Any], callee: str) -> Any:
    """A class defined or imported here by name; of dotted names only `nn.Sequential` (lucidrains'
    `def MLPMixer(...): return nn.Sequential(...)`): a helper returning one `nn.Conv2d` is a layer."""
    if "." not in callee:
        return namespace.get(callee)
    root, _, attribute = callee.partition(".")
    value = getattr(namespace.get(root), attribute, None)
    return value if inspect.isclass(value) and issubclass(value, nn.Sequential) else None


def _is_model_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, nn.Module) and not issubclass(value, LossBase)


def _classes_and_factories(
    namespace: Mapping[str, Any], path: Path, package_root: Path | None, source: str, forward_check: ForwardCheck | None = None
) -> LoadedFile:
    factories = _factories(namespace, source)
    blocks = building_blocks(source, {cls.__name__ for cls in _model_classes(namespace)})
    used_by = {name: names_in_function(source, name) - {name} for name in factories}
    called_by_factories = {used for names in used_by.values() for used in names}
    roots = {name: f for name, f in factories.items() if not name.startswith("_") and name not in blocks | called_by_factories}
    built: dict[str, tuple[nn.Module, Location | None, list[str]]] = {}
    failed: dict[str, tuple[str, Location | None]] = {}
    construction: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for name, factory in roots.items():
        recipe, needs = _factory_recipe(factory, name, path, package_root)
        if recipe is None and (made_up := _built_from_made_up(factory, name, namespace, path, forward_check)) is not None:
            built[name] = (made_up.model, definition_line(factory), made_up.notes)
            construction[name] = made_up.construction
            continue
        if recipe is None:  # a root factory is what the user would call: say how (lucidrains' MLPMixer(*, image_size, ...))
            notes.append(needs)
            continue
        try:
            with user_code():
                result, on_meta = built_within_memory(_call(factory, recipe), recipe.expression, _shown_path(path))
        except Exception as error:
            failed[name] = (f"`{recipe.expression}` raised {_error_with_line(error, path)}", definition_line(factory))
            continue
        if isinstance(result, nn.Module):
            made = [f"built `{recipe.expression}` ({recipe.origin})"] if recipe.origin else []
            built[name] = (result, definition_line(factory), [*made, *([on_meta] if on_meta else [])])
            construction[name] = _arguments_by_name(factory, recipe.args, recipe.kwargs)
        else:
            notes.append(f"skipped `{name}()`: it returned {type(result).__name__}, not an nn.Module")
    # What a factory builds is reached through it: ResNet and BasicBlock through ResNet18.
    built_by_factories = {used for name in built for used in used_by[name]}
    from_classes: dict[str, tuple[nn.Module, Location | None, list[str]]] = {}
    for cls in _model_classes(namespace):
        if cls.__name__ in blocks | built_by_factories:
            continue
        recipe, needs = _recipe(cls, namespace, path, package_root)
        if recipe is None and (made_up := _built_from_made_up(cls, cls.__name__, namespace, path, forward_check)) is not None:
            from_classes[cls.__name__] = (made_up.model, definition_line(cls), made_up.notes)
            construction[cls.__name__] = made_up.construction
            continue
        if recipe is None:
            notes.append(needs)
            continue
        try:
            with user_code():
                instance, on_meta = built_within_memory(_call(cls, recipe), recipe.expression, _shown_path(path))
        except Exception as error:
            problem = f"`{recipe.expression}` raised {_error_with_line(error, path)}{_own_constructors_hint(cls, path)}"
            failed[cls.__name__] = (problem, definition_line(cls))
            continue
        made = [f"built `{recipe.expression}` ({recipe.origin})"] if recipe.origin else []  # how, so the user can check it
        made += [on_meta] if on_meta else []
        from_classes[cls.__name__] = (instance, definition_line(cls), made)
        construction[cls.__name__] = _arguments_by_name(cls, recipe.args, recipe.kwargs)
    built = {**from_classes, **built}  # classes first, then factories, each in file order
    # A class whose instances live inside another built model is a building block, not a model.
    used_inside = {type(sub) for instance, _, _ in built.values() for sub in list(submodules(instance))[1:]}
    targets = [
        LoadedTarget(Target(instance), name, path, location, notes=made, construction=construction.get(name, {}))
        for name, (instance, location, made) in built.items()
        if type(instance) not in used_inside or name in roots
    ]
    targets += [_unbuildable(name, path, location, problem) for name, (problem, location) in failed.items()]
    return LoadedFile(path, targets, notes)


# Whether a model built from made-up arguments runs a forward on an input nnlint can make up for
# it (given by the engine, which owns input inference): (model, its arguments by name) -> bool.
ForwardCheck = Callable[[nn.Module, dict[str, Any]], bool]


@dataclass
class _MadeUpBuild:
    model: nn.Module
    construction: dict[str, Any]
    notes: list[str]


def _built_from_made_up(
    function: Callable[..., Any], name: str, namespace: Mapping[str, Any], path: Path, forward_check: ForwardCheck | None
) -> _MadeUpBuild | None:
    """`function` built from made-up arguments (`nnlint.made_up`): the first candidate assignment
    whose constructor succeeds and whose model runs a forward on a made-up input; None when an
    argument cannot be classified, no candidate works, or there is no forward check (script
    mode's definitions: a model nnlint cannot run is not worth a finding)."""
    required = required_arguments(function)
    if forward_check is None or not required:
        return None
    try:
        with user_code():  # a class's own `get_default_config()` runs here
            candidates, _unknown = candidate_arguments(function, required, namespace)
    except Exception:
        return None
    for made in candidates:
        try:
            with user_code():
                model, on_meta = built_within_memory(functools.partial(function, *made.args, **made.kwargs), name, _shown_path(path))
        except Exception:
            continue
        if not isinstance(model, nn.Module):
            return None
        construction = _arguments_with_defaults(function, made.args, made.kwargs)
        try:
            accepted = forward_check(model, construction)
        except Exception:
            accepted = False
        if accepted:
            shown = ", ".join(made.shown)
            note = (
                f"built {name} with made-up arguments {shown}: no call in the project gives them; "
                f"give yours: {_name_them(function, name, required, path).removeprefix('name them: ')}"
            )
            return _MadeUpBuild(model, construction, [note, *([on_meta] if on_meta else [])])
    return None


def _arguments_with_defaults(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every constructor argument by name, defaults included: a made-up build's input is inferred
    from what it was built with (sooftware/conformer's default `input_dim=80`, perceiver's `input_axis=2`)."""
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    return {key: value for key, value in bound.arguments.items() if key not in ("args", "kwargs")}


def _own_constructors_hint(cls: type, path: Path) -> str:
    """`EfficientNet()` fails; `EfficientNet.from_name('efficientnet-b0')` is how its project builds it
    (lukemelas/EfficientNet-PyTorch): name the class's own `from_*` constructors."""
    own = [name for name, value in vars(cls).items() if name.startswith("from_") and isinstance(value, classmethod)]
    if not own:
        return ""
    shown = ", ".join(f"{cls.__name__}.{name}(...)" for name in own)
    return f'; it has its own constructors ({shown}): name one, e.g. nnlint "{_shown_path(path)}::{cls.__name__}.{own[0]}(...)"'


def _factory_recipe(factory: Callable[..., Any], name: str, path: Path, package_root: Path | None) -> tuple[Recipe | None, str]:
    """How to call a factory: with no arguments, else as a script beside it (or the file itself)
    calls it (a train.py's `MLPMixer(image_size=32, ...)`), else why not and how the user can say it."""
    required = required_arguments(factory)
    if not required:
        return Recipe(f"{name}()", (), {}, ""), ""
    recipe, seen = script_recipe(factory, path, package_root)
    if recipe is not None:
        return recipe, ""
    where = ""
    if seen is not None:
        where = f"; {seen.script.name} line {seen.line} calls it as {name}({', '.join(seen.sources)}) from values known only when it runs"
    return None, f"skipped `{name}()`: it needs arguments ({', '.join(required)}){where}; {_name_them(factory, name, required, path)}"


def _call(cls: Callable[..., Any], recipe: Recipe) -> Callable[[], Any]:
    return lambda: cls(*recipe.args, **recipe.kwargs)


def _arguments_by_name(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """`ViT(image_size=256, ...)` -> {"image_size": 256, ...}: what input inference may read."""
    try:
        return dict(inspect.signature(function).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):
        return dict(kwargs)


def _recipe(cls: type, namespace: Mapping[str, Any], path: Path, package_root: Path | None) -> tuple[Recipe | None, str]:
    """How to build `cls` (no arguments, a config class, a sibling script's call), else why not
    and how the user can say it."""
    required = required_arguments(cls)
    if not required:
        return Recipe(f"{cls.__name__}()", (), {}, ""), ""
    recipe = config_recipe(cls, namespace, namespace.get("__name__"))
    if recipe is not None:
        return recipe, ""
    recipe, seen = script_recipe(cls, path, package_root)
    if recipe is not None:
        return recipe, ""
    return None, _needs_arguments(cls, required, path, seen)


def _needs_arguments(cls: type, required: list[str], path: Path, seen: ScriptCall | None) -> str:
    """`Net` needs arguments (upscale_factor): ... give them as nnlint "model.py::Net(upscale_factor=...)"."""
    where = ""
    if seen is not None:
        where = (
            f"; {seen.script.name} line {seen.line} builds it as {cls.__name__}({', '.join(seen.sources)}) "
            f"from values known only when it runs ({', '.join(seen.missing)})"
        )
    return f"skipped `{cls.__name__}`: its constructor needs arguments ({', '.join(required)}){where}; " + _name_them(
        cls, cls.__name__, required, path
    )


def _name_them(function: Any, name: str, required: list[str], path: Path) -> str:
    """The `::` call that gives a class's or factory's required arguments."""
    arguments = ", ".join(f"{argument}={argument_hint(function, argument)}" for argument in required)
    return f'name them: nnlint "{_shown_path(path)}::{name}({arguments})"'


def _shown_path(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


# -- targets named with `file.py::expression` ------------------------------------------------------
def _picked(expression: str, namespace: Mapping[str, Any], path: Path, package_root: Path | None) -> LoadedTarget:
    """The target `expression` names (`GPT`, `ResNet18`, `model`) or builds (`GPT(GPTConfig(n_layer=2))`)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise LoadError(str(path), f"`::{expression}` is not a Python expression ({error.msg})") from None
    root = _root_name(tree.body)
    if root is not None and root not in namespace and root not in dir(builtins):
        raise LoadError(str(path), f"`::{expression}`: no `{root}` in {path.name}; it defines {_what_it_defines(namespace)}")
    location = definition_line(namespace[root]) if root is not None and root in namespace else None
    location = location if location is not None and Path(location.file) == path else _line_of(path, root or "")
    notes: list[str] = []
    construction: dict[str, Any] = {}
    if isinstance(tree.body, ast.Name):
        value, notes, construction = _built_from_name(root or expression, namespace[expression], namespace, path, package_root)
    else:
        try:
            value = eval(compile(tree, f"{path.name}::", "eval"), dict(namespace))  # noqa: S307 - the user's own expression
        except Exception as error:
            raise LoadError(str(path), f"`::{expression}` raised {type(error).__name__}: {_first_line(error)}") from None
    if isinstance(value, nn.Module):
        value = Target(value)
    if not isinstance(value, Target):
        raise LoadError(str(path), f"`::{expression}` gave {type(value).__name__}, not an nn.Module")
    return LoadedTarget(
        value, value.name or expression, path, location, notes=notes, construction=construction or _literal_keywords(tree.body)
    )


def _built_from_name(
    name: str, value: Any, namespace: Mapping[str, Any], path: Path, package_root: Path | None
) -> tuple[Any, list[str], dict[str, Any]]:
    """A class is built the way discovery would; a function is called; an instance is itself."""
    if isinstance(value, (nn.Module, Target)):
        return value, [], {}
    if inspect.isclass(value) and issubclass(value, nn.Module):
        recipe, needs = _recipe(value, namespace, path, package_root)
        if recipe is None:
            raise LoadError(str(path), needs.replace(f"skipped `{name}`: ", f"`::{name}`: ", 1))
        try:
            built, on_meta = built_within_memory(_call(value, recipe), recipe.expression, _shown_path(path))
        except Exception as error:
            raise LoadError(str(path), f"`::{name}`: `{recipe.expression}` raised {_error_with_line(error, path)}") from None
        made = [f"built `{recipe.expression}` ({recipe.origin})"] if recipe.origin else []
        made += [on_meta] if on_meta else []
        return built, made, _arguments_by_name(value, recipe.args, recipe.kwargs)
    if callable(value):
        required = required_arguments(value)
        if required:
            raise LoadError(str(path), f"`::{name}` needs arguments ({', '.join(required)}): name them, e.g. `::{name}({required[0]}=...)`")
        try:
            return value(), [], {}
        except Exception as error:
            raise LoadError(str(path), f"`::{name}()` raised {_error_with_line(error, path)}") from None
    raise LoadError(str(path), f"`::{name}` is a {type(value).__name__}, not a model class, factory or instance")


def _literal_keywords(node: ast.expr) -> dict[str, Any]:
    """`ViT(image_size=256, patch_size=32, ...)` -> the keywords written as literals."""
    if not isinstance(node, ast.Call):
        return {}
    found: dict[str, Any] = {}
    for keyword in node.keywords:
        with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            if keyword.arg is not None:
                found[keyword.arg] = _literal_or_namespace(keyword.value)
    return found


def _literal_or_namespace(node: ast.expr) -> Any:
    """A literal, or a config written inline with literal keywords (`configs=Namespace(seq_len=336,
    enc_in=7)`, cure-lab/LTSF-Linear's argparse configs) as a namespace of them, for input inference."""
    if isinstance(node, ast.Call) and not node.args and node.keywords and all(k.arg for k in node.keywords):
        return types.SimpleNamespace(**{str(k.arg): ast.literal_eval(k.value) for k in node.keywords})
    return ast.literal_eval(node)


def _root_name(node: ast.expr) -> str | None:
    """`GPT(GPTConfig())` -> GPT; `models.UNet(3)` -> models; `GPT` -> GPT."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _what_it_defines(namespace: Mapping[str, Any]) -> str:
    classes = [cls.__name__ for cls in _model_classes(namespace)]
    functions = [
        name
        for name, value in namespace.items()
        if inspect.isfunction(value) and _defined_here(value, namespace) and not name.startswith("_")
    ]
    instances = [name for name, value in namespace.items() if _is_candidate_module(name, value) and not name.startswith("_")]
    parts = [
        f"{label} {', '.join(names[:_NAMES_LISTED])}{', …' if len(names) > _NAMES_LISTED else ''}"
        for label, names in (("model classes", classes), ("functions", functions), ("modules", instances))
        if names
    ]
    return "; ".join(parts) if parts else "no model class, function or module"


_NAMES_LISTED = 12  # per kind, in the one-line error for a `::` name that does not exist


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
