"""Where things were written in the user's code.

Every finding points at a line: the construction of the submodule it is about, or the call of the
functional op. Construction sites are recorded while nnlint builds the user's model (a temporary
wrapper around `nn.Module.__init__` that looks up the stack); for models built before nnlint got
control (the `audit` API) they are recovered from the source of the parent's `__init__`.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import os
import sys
import sysconfig
import textwrap
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import torch
from torch import nn

from nnlint.findings import Location

_construction_sites: weakref.WeakKeyDictionary[nn.Module, Location] = weakref.WeakKeyDictionary()

_INTERNAL_DIRS = tuple(
    os.path.join(os.path.realpath(d), "")
    for d in {
        os.path.dirname(torch.__file__),
        os.path.dirname(__file__),  # nnlint itself
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["platstdlib"],
        # Console scripts (the `nnlint` entry point in the environment's bin/): never the user's code.
        sysconfig.get_paths()["scripts"],
    }
)


@functools.lru_cache(maxsize=4096)
def _is_internal_file(filename: str) -> bool:
    """True for frames that are not the user's: torch, nnlint, the standard library, `<frozen …>`."""
    if filename.startswith("<"):
        return True
    return os.path.realpath(filename).startswith(_INTERNAL_DIRS)


def first_user_frame(frame: FrameType | None) -> FrameType | None:
    while frame is not None and _is_internal_file(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def call_site(skip: int = 1) -> Location | None:
    """The user's line that led to the current call (the nearest frame outside torch and nnlint)."""
    frame = first_user_frame(sys._getframe(skip))
    return Location(frame.f_code.co_filename, frame.f_lineno) if frame else None


def _is_own_init_frame(frame: FrameType, module: nn.Module) -> bool:
    code = frame.f_code
    return code.co_name == "__init__" and code.co_argcount > 0 and frame.f_locals.get(code.co_varnames[0]) is module


@contextmanager
def recording_construction_sites() -> Iterator[None]:
    """Remember where each module built inside the block was constructed."""
    original_init = nn.Module.__init__

    @functools.wraps(original_init)
    def init_remembering_site(self: nn.Module, *args: object, **kwargs: object) -> None:
        frame: FrameType | None = sys._getframe(1)
        # Skip the constructor chain of this very module (`super().__init__()` calls) to reach its caller.
        while frame is not None and _is_own_init_frame(frame, self):
            frame = frame.f_back
        frame = first_user_frame(frame)
        # A module whose __hash__ reads attributes its __init__ has not set yet (torchmetrics' Metric,
        # which Lightning's self.log builds mid-training) cannot be a dictionary key here: no line for it.
        with contextlib.suppress(Exception):
            if frame is not None and self not in _construction_sites:
                _construction_sites[self] = Location(frame.f_code.co_filename, frame.f_lineno)
        original_init(self, *args, **kwargs)

    nn.Module.__init__ = init_remembering_site  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.__init__ = original_init  # type: ignore[method-assign]


def recorded_site(module: nn.Module) -> Location | None:
    return _construction_sites.get(module)


def constructed_modules() -> list[nn.Module]:
    """The live modules whose construction was recorded (those a script built under the recording)."""
    return list(_construction_sites.keys())


class ModuleLocator:
    """Finds the construction line of every submodule of one model."""

    def __init__(self, root: nn.Module, root_location: Location | None = None) -> None:
        self._root = root
        self._root_location = root_location
        self._cache: dict[str, Location | None] = {}

    def locate(self, path: str) -> Location | None:
        if path not in self._cache:
            self._cache[path] = self._locate_uncached(path)
        return self._cache[path]

    def _locate_uncached(self, path: str) -> Location | None:
        module = self._root.get_submodule(path) if path else self._root
        site = recorded_site(module)
        if site is not None or not path:
            return site or self._root_location
        parent_path, _, child_name = path.rpartition(".")
        parent = self._root.get_submodule(parent_path) if parent_path else self._root
        parent_site = self.locate(parent_path)
        return _site_in_parent_source(parent, child_name, parent_site) or parent_site


def _site_in_parent_source(parent: nn.Module, child_name: str, parent_site: Location | None) -> Location | None:
    """The line where `parent` assigned `child_name`, read from its class's `__init__` source."""
    if child_name.isdigit() and parent_site is not None:
        # A child of Sequential/ModuleList: the n-th argument of the container's constructor call.
        return _nth_argument_line(parent_site, int(child_name))
    for cls in type(parent).__mro__:
        if cls is nn.Module:
            break
        line_and_file = _assignment_lines(cls).get(child_name)
        if line_and_file is not None:
            return Location(line_and_file[1], line_and_file[0])
    return None


@functools.lru_cache(maxsize=512)
def _assignment_lines(cls: type) -> dict[str, tuple[int, str]]:
    """`self.<name> = …` (and `add_module("name", …)`) lines in a class body, by name."""
    try:
        lines, first_line = inspect.getsourcelines(cls)
        filename = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return {}
    if filename is None:
        return {}
    try:
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except SyntaxError:
        return {}
    found: dict[str, tuple[int, str]] = {}
    for node in ast.walk(tree):
        line = node.lineno + first_line - 1 if hasattr(node, "lineno") else 0
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                    found.setdefault(target.attr, (line, filename))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("add_module", "register_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.setdefault(node.args[0].value, (line, filename))
    return found


@functools.lru_cache(maxsize=512)
def _parsed_file(filename: str) -> ast.Module | None:
    try:
        return ast.parse(Path(filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _nth_argument_line(site: Location, index: int) -> Location | None:
    tree = _parsed_file(site.file)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.lineno != site.line:
            continue
        elements = node.args
        if len(elements) == 1 and isinstance(elements[0], (ast.List, ast.Tuple)):
            elements = elements[0].elts  # ModuleList([...])
        if any(isinstance(e, ast.Starred) for e in elements) or index >= len(elements):
            return None
        return Location(site.file, elements[index].lineno)
    return None


NOT_LITERAL = object()


def literal_argument(site: Location, callee: str, position: int, keyword: str) -> object:
    """The value of an argument written as a literal in the call at `site` whose callee's name
    contains `callee` (`nn.Dropout(0.0)`, `F.dropout(x, p=0)`); `NOT_LITERAL` if it was computed
    (`nn.Dropout(config.rate)`), defaulted, or the call cannot be found."""
    tree = _parsed_file(site.file)
    if tree is None:
        return NOT_LITERAL
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.lineno == site.line and callee in ast.unparse(node.func).lower()):
            continue
        argument = next((k.value for k in node.keywords if k.arg == keyword), None)
        if argument is None and len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
            argument = node.args[position]
        try:
            return ast.literal_eval(argument) if argument is not None else NOT_LITERAL
        except ValueError:
            return NOT_LITERAL
    return NOT_LITERAL


def assignment_line(filename: str, name: str) -> int | None:
    """The line of the first module-level assignment to `name` in a file (e.g. `model = Net()`)."""
    tree = _parsed_file(filename)
    if tree is None:
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            if any(isinstance(n, ast.Name) and n.id == name for n in names):
                return node.lineno
    return None


def definition_line(obj: object) -> Location | None:
    """Where a class or function is defined."""
    try:
        filename = inspect.getsourcefile(obj)  # type: ignore[arg-type]
        _, line = inspect.getsourcelines(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return None
    return Location(filename, max(line, 1)) if filename else None


def user_definition_line(obj: object) -> Location | None:
    """Where a class or function is defined, when that is the user's code (not torch's or nnlint's)."""
    location = definition_line(obj)
    return location if location is not None and not _is_internal_file(location.file) else None


def attribute_assignments(filename: str, attribute: str) -> list[tuple[int, str]]:
    """Every `<owner>.<attribute> = …` statement in a file, as (line, owner written as code), in order."""
    tree = _parsed_file(filename)
    if tree is None:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for element in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(element, ast.Attribute) and element.attr == attribute:
                    found.append((node.lineno, ast.unparse(element.value)))
    return sorted(found)
