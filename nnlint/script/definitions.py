"""A training script's definitions, without its training: what `--static` lints, and the fallback
when a script fails before its first optimizer step.

Only these module-level statements run, each on its own (one that raises is skipped):
- imports (`import torch`, `from model import Net`: the project's own modules import as usual);
- `def` and `class` statements (default arguments and decorators are evaluated, as Python does);
- docstrings and `pass`;
- simple assignments: a value with no call in it (constants, literal containers, arithmetic on
  names assigned before, attribute access such as `torch.float32`);
- the construction of a model: `name = Cls(...)` where `Cls` turns out to be an `nn.Module`
  subclass and no argument contains a call;
- `try:` blocks made only of the above (`try: import wandb / except ImportError: wandb = None`).

Everything else is skipped: the `if __name__ == "__main__":` block, loops, `with` blocks, bare
calls and any assignment whose value calls something — argparse included. Building a parser is
harmless, but `parser.parse_args()` reads `sys.argv` and exits on a missing required argument,
and a parser without `parse_args()` gives nothing to build a model from; dataset constructors,
downloads and `torch.device(...)` are calls too. So are the CUDA checks a script does at the top.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from nnlint.errors import NoModelError
from nnlint.loader import LoadedFile, _discover_targets
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

    def note(self) -> str:
        failed = f"; {len(self.failed)} of those raised and were skipped ({self.failed[0]})" if self.failed else ""
        return (
            "linted the script's definitions (imports, functions, classes, simple assignments), "
            f"not its training: {len(self.skipped_lines)} statement(s) not run{failed}"
        )


@contextlib.contextmanager
def script_definitions(path: Path) -> Iterator[Definitions]:
    """Run the script's definitions in a fresh module (see the module docstring) and find its
    models; the process is put back when the block exits."""
    resolved = path.resolve()
    with preserved_process_state(resolved.parent):
        name = f"_nnlint_script_{resolved.stem}" if resolved.stem.isidentifier() else "_nnlint_script"
        module = types.ModuleType(name)
        module.__dict__.update(__file__=str(path), __builtins__=builtins)
        definitions = Definitions(module)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        sys.argv[:] = [str(path)]
        sys.path.insert(0, str(resolved.parent))
        tree = ast.parse(resolved.read_bytes(), filename=str(path))
        try:
            with contextlib.redirect_stdout(sys.stderr), recording_construction_sites(), seeded(0):
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
    if not (_is_definitional_block(statement) or _builds_a_model(statement, namespace)):
        definitions.skipped_lines.append(statement.lineno)
        return
    code = compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec")
    try:
        exec(code, namespace)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # an import that exits or raises: skip it, as a statement not run
        said = str(error).strip().splitlines()
        definitions.failed.append(f"line {statement.lineno}: {type(error).__name__}{': ' + said[0] if said else ''}")


def _is_definitional_block(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Try):
        parts = [*statement.body, *statement.orelse, *statement.finalbody, *(s for h in statement.handlers for s in h.body)]
        return all(_is_definitional_block(part) for part in parts)
    return is_definitional(statement)


def _builds_a_model(statement: ast.stmt, namespace: dict[str, object]) -> bool:
    """`model = Net(...)` with call-free arguments, where `Net` is an nn.Module subclass."""
    if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Call):
        return False
    call = statement.value
    arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
    if any(isinstance(node, ast.Call) for argument in arguments for node in ast.walk(argument)):
        return False
    callee = _resolve(call.func, namespace)
    return isinstance(callee, type) and issubclass(callee, nn.Module)


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
    return _discover_targets(definitions.module, path)
