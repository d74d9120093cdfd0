"""A training script's definitions, without its training: what `--static` lints, and the fallback
when a script fails before its first optimizer step.

Only these module-level statements run, each on its own (one that raises is skipped):
- imports (`import torch`, `from model import Net`: the project's own modules import as usual);
- `def` and `class` statements (default arguments and decorators are evaluated, as Python does);
- docstrings and `pass`;
- simple assignments: a value with no call in it (constants, literal containers, arithmetic on
  names assigned before, attribute access such as `torch.float32`), or whose only calls are to
  pure builtins (`nz = int(opt.nz)`, `max`, `len`, `tuple`, ...);
- the construction of a model: `name = Cls(...)` where `Cls` turns out to be an `nn.Module`
  subclass and no argument contains a call, also with `.to(device)`, `.cuda()`, `.float()`...
  after it (the construction runs, the move does not);
- a module-level argparse parser (PyTorch-GAN's `opt = parser.parse_args()`, read by the model
  classes): `parser = argparse.ArgumentParser(...)`, `parser.add_argument(...)` (not one whose
  `type` is an `argparse.FileType`, which opens its default file while parsing) and
  `opt = parser.parse_args()`, parsed from the script's own arguments (those after `--`, else
  none, so its defaults); a parse that fails (a required argument) is skipped, silently;
- `try:` blocks made only of the above (`try: import wandb / except ImportError: wandb = None`);
- the device choice `device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')`: a
  forward that puts its initial state on the global `device` (yunjey/pytorch-tutorial's RNN)
  cannot run without it;
- `if`/`elif` chains whose conditions call nothing (`if opt.dataset == 'fake':`): the branch
  the condition picks, statement by statement by the rules above (pytorch/examples dcgan sets its
  image channels `nc = 3` beside the dataset it builds there; the dataset is not built). A module
  run this way is not `__main__`, so `if __name__ == "__main__":` picks nothing.

Everything else is skipped: the `if __name__ == "__main__":` block, loops, `with` blocks, bare
calls and any other assignment whose value calls something: dataset constructors, downloads.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import io
import re
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from nnlint.errors import NoModelError
from nnlint.loader import LoadedFile, discover_targets
from nnlint.runtime.randomness import seeded
from nnlint.script.detect import is_definitional
from nnlint.script.process import preserved_process_state
from nnlint.sources import recording_construction_sites


@dataclass
class Definitions:
    module: types.ModuleType
    skipped_lines: list[int] = field(default_factory=list)  # statements not run
    failed: list[str] = field(default_factory=list)  # statements that raised: "line 12: NameError: ..."
    found: LoadedFile | None = None  # the models, found as model-file mode finds them
    no_model: str | None = None  # why none was found
    # Names an import that raised would have bound: `torchvision` -> (line, "ModuleNotFoundError: ...").
    unimported: dict[str, tuple[int, str]] = field(default_factory=dict)

    def explained(self, problem: str) -> str:
        """A target's problem, with the reason when it is a name a failed import would have bound
        (`SiameseNetwork()` raised NameError: name 'torchvision' is not defined)."""
        missing = _UNDEFINED_NAME.search(problem)
        if missing is None or missing.group(1) not in self.unimported:
            return problem
        line, error = self.unimported[missing.group(1)]
        return f"{problem}: `{missing.group(1)}` is imported at line {line}, which failed here ({error}); install it where nnlint runs"

    def note(self) -> str:
        failed = f"; {len(self.failed)} raised and were left out ({self.failed[0]})" if self.failed else ""
        return (
            "linted the script's definitions (imports, functions, classes, simple assignments), "
            f"not its training: {len(self.skipped_lines)} other statement(s) not run{failed}"
        )


@contextlib.contextmanager
def script_definitions(path: Path, args: Sequence[str] = ()) -> Iterator[Definitions]:
    """Run the script's definitions in a fresh module (see the module docstring) and find its
    models; the process is put back when the block exits."""
    resolved = path.resolve()
    with preserved_process_state(resolved.parent):
        name = f"_nnlint_script_{resolved.stem}" if resolved.stem.isidentifier() else "_nnlint_script"
        module = types.ModuleType(name)
        module.__dict__.update(__file__=str(path), __builtins__=builtins)
        definitions = Definitions(module)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        sys.argv[:] = [str(path), *args]
        sys.path.insert(0, str(resolved.parent))
        tree = ast.parse(resolved.read_bytes(), filename=str(path))
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                recording_construction_sites(),
                seeded(0),
            ):
                for statement in tree.body:
                    _run_if_definitional(statement, definitions, str(path))
                try:
                    definitions.found = discover_models(definitions, path)
                except NoModelError as error:
                    definitions.no_model = error.message
            yield definitions
        finally:
            sys.modules.pop(name, None)


def _run_if_definitional(statement: ast.stmt, definitions: Definitions, filename: str) -> None:
    namespace = definitions.module.__dict__
    if isinstance(statement, ast.If):
        branch = _branch_taken(statement, namespace, filename)
        if branch is None:
            definitions.skipped_lines.append(statement.lineno)
        for inner in branch or ():
            _run_if_definitional(inner, definitions, filename)
        return
    if not (_is_definitional_block(statement) or _is_argparse_setup(statement, namespace) or _is_device_choice(statement, namespace)):
        model = _model_construction(statement, namespace)
        if model is None:
            definitions.skipped_lines.append(statement.lineno)
            return
        statement = model
    code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
    try:
        exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # an import that exits or raises: skip it, as a statement not run
        said = str(error).strip().splitlines()
        definitions.failed.append(f"line {statement.lineno}: {type(error).__name__}{': ' + said[0] if said else ''}")
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                bound = alias.asname or alias.name.split(".")[0]
                definitions.unimported[bound] = (statement.lineno, f"{type(error).__name__}{': ' + said[0] if said else ''}")


_UNDEFINED_NAME = re.compile(r"NameError: name '(\w+)' is not defined")
_PURE_BUILTINS = frozenset(
    {"int", "float", "str", "bool", "tuple", "list", "dict", "set", "len", "min", "max", "abs", "round", "range", "sorted", "sum"}
)


def _is_definitional_block(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Try):
        parts = [*statement.body, *statement.orelse, *statement.finalbody, *(s for h in statement.handlers for s in h.body)]
        return all(_is_definitional_block(part) for part in parts)
    return is_definitional(statement) or _assigns_with_pure_builtins(statement)


def _assigns_with_pure_builtins(statement: ast.stmt) -> bool:
    """`ngpu = int(opt.ngpu)`: an assignment whose every call is to a pure builtin by its name."""
    if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is None:
        return False
    calls = [node for node in ast.walk(statement.value) if isinstance(node, ast.Call)]
    return all(isinstance(call.func, ast.Name) and call.func.id in _PURE_BUILTINS for call in calls)


_MOVES = frozenset({"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train", "eval"})
_PARSER_SETUP = frozenset({"add_argument", "add_argument_group", "add_mutually_exclusive_group", "set_defaults"})


def _model_construction(statement: ast.stmt, namespace: dict[str, object]) -> ast.Assign | None:
    """`model = Net(...)` (also `Net(...).to(device)`) with call-free arguments, where `Net` is an
    nn.Module subclass: the assignment of the construction alone; None for anything else."""
    if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Call):
        return None
    call = statement.value
    while isinstance(call.func, ast.Attribute) and call.func.attr in _MOVES and isinstance(call.func.value, ast.Call):
        call = call.func.value  # `.to(device)` is not run: `device` is usually a call's result
    arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
    if any(isinstance(node, ast.Call) for argument in arguments for node in ast.walk(argument)):
        return None
    callee = _resolve(call.func, namespace)
    if not (isinstance(callee, type) and issubclass(callee, nn.Module)):
        return None
    return ast.copy_location(ast.Assign(targets=statement.targets, value=call), statement)


def _is_argparse_setup(statement: ast.stmt, namespace: dict[str, object]) -> bool:
    """Building and parsing a module-level argparse parser (see the module docstring)."""
    value = statement.value if isinstance(statement, (ast.Assign, ast.Expr)) else None
    if not isinstance(value, ast.Call):
        return False
    if isinstance(statement, ast.Assign):
        callee = _resolve(value.func, namespace)
        if isinstance(callee, type) and issubclass(callee, argparse.ArgumentParser):
            return True
    if not isinstance(value.func, ast.Attribute) or not isinstance(value.func.value, ast.Name):
        return False
    receiver, method = namespace.get(value.func.value.id), value.func.attr
    if not isinstance(receiver, argparse._ActionsContainer):
        return False
    if method in ("parse_args", "parse_known_args"):
        return isinstance(statement, ast.Assign) and not value.args and not value.keywords
    opens_files = any(keyword.arg == "type" and "FileType" in ast.unparse(keyword.value) for keyword in value.keywords)
    return method in _PARSER_SETUP and not opens_files


def _branch_taken(statement: ast.If, namespace: dict[str, object], filename: str) -> list[ast.stmt] | None:
    """The statements an `if` whose condition calls nothing would run; None when its condition
    calls something or cannot be evaluated here (a name the skipped statements would have set)."""
    if any(isinstance(node, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)) for node in ast.walk(statement.test)):
        return None
    try:
        chosen = bool(eval(compile(ast.Expression(statement.test), filename, "eval"), namespace))  # noqa: S307 - call-free
    except Exception:
        return None
    return statement.body if chosen else statement.orelse


def _is_device_choice(statement: ast.stmt, namespace: dict[str, object]) -> bool:
    """`device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')`: a `torch.device`
    whose other calls only ask what is available (or are pure builtins)."""
    import torch

    if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Call):
        return False
    if _resolve(statement.value.func, namespace) is not torch.device:
        return False
    asks = (torch.cuda.is_available, torch.backends.mps.is_available, torch.cuda.device_count)
    inner = [node for node in ast.walk(statement.value) if isinstance(node, ast.Call) and node is not statement.value]
    return all(
        _resolve(call.func, namespace) in asks or (isinstance(call.func, ast.Name) and call.func.id in _PURE_BUILTINS) for call in inner
    )


def _resolve(node: ast.expr, namespace: dict[str, object]) -> object:
    """A dotted name's value in `namespace`, without calling anything; None if it is not one."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if isinstance(owner, (types.ModuleType, type)) else None
    return None


def discover_models(definitions: Definitions, path: Path) -> LoadedFile:
    """The lint targets among the definitions, found the way model-file mode finds them.

    The one seam to the loader's discovery: extending that discovery (constructor arguments,
    config classes, factories) extends what a script's definitions yield.
    """
    return discover_targets(vars(definitions.module), path)
