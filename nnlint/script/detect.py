"""Whether a file is a training script, decided from its syntax tree without running it.

A file trains when it calls `.backward()`, steps an optimizer (`optimizer.step()`, on a name bound
to a `torch.optim` constructor or named like one), fits a Lightning `Trainer(...)`, calls
`trainer.train()` on a Hugging Face `Trainer(...)`, or has an `if __name__ == "__main__":` block.
A file written in nnlint's own convention (it defines `example_input`/`example_batch` or an
`@nnlint.target` function) stays a model file even if it runs one training step to set up state.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

# Names only nnlint's model-file convention uses; training scripts do not define them.
_MODEL_FILE_NAMES = frozenset({"example_input", "example_batch"})


@dataclass(frozen=True)
class ScriptShape:
    """What the syntax tree says about a file."""

    trains: bool  # it is a training script (see the module docstring)
    has_main_block: bool
    # Module-level statements that do work when the file is imported (calls, loops, `with`):
    # the first one's line, or None when importing the file only defines things.
    first_module_level_work: int | None


def script_shape(path: Path) -> ScriptShape | None:
    """The file's shape; None when it cannot be read or parsed (the loader reports that)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    main_block = any(is_main_block(statement) for statement in tree.body)
    trains = not _uses_model_file_convention(tree) and (main_block or _has_training_call(tree))
    work = next((s.lineno for s in tree.body if not is_definitional(s) and not is_main_block(s)), None)
    return ScriptShape(trains, main_block, work)


def is_training_script(path: Path) -> bool:
    shape = script_shape(path)
    return shape is not None and shape.trains


def is_main_block(statement: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (either operand order)."""
    if not isinstance(statement, ast.If) or not isinstance(statement.test, ast.Compare):
        return False
    test = statement.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    operands = [test.left, test.comparators[0]]
    return any(isinstance(o, ast.Name) and o.id == "__name__" for o in operands) and any(
        isinstance(o, ast.Constant) and o.value == "__main__" for o in operands
    )


def is_definitional(statement: ast.stmt) -> bool:
    """A statement that only defines: import, def, class, docstring, or an assignment of a
    literal-like value (no call anywhere in it)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return True
    if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
        return not any(isinstance(node, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)) for node in ast.walk(statement.value))
    return False


def _uses_model_file_convention(tree: ast.Module) -> bool:
    for statement in tree.body:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, ast.AnnAssign):
            targets = [statement.target]
        if any(isinstance(t, ast.Name) and t.id in _MODEL_FILE_NAMES for t in targets):
            return True
        if isinstance(statement, ast.FunctionDef) and any(_is_nnlint_target(d) for d in statement.decorator_list):
            return True
    return False


def _is_nnlint_target(decorator: ast.expr) -> bool:
    name = _dotted(decorator)
    return name.endswith("target") and "nnlint" in name


def _has_training_call(tree: ast.Module) -> bool:
    optimizers, trainers = _names_bound_to(tree, "optim"), _names_bound_to(tree, "Trainer")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, receiver = node.func.attr, node.func.value
        if method == "backward":
            return True
        if method == "step" and _names_optimizer(receiver, optimizers):
            return True
        if method in ("fit", "train") and _names_trainer(receiver, trainers) and (method == "fit" or not node.args):
            return True
    return False


def _names_bound_to(tree: ast.Module, word: str) -> set[str]:
    """Names assigned from a call whose callee's dotted name contains `word` (`optim.SGD(...)`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and word in _dotted(node.value.func):
            names.update(_target_names(node.targets))
    return names


def _target_names(targets: list[ast.expr]) -> set[str]:
    names = set()
    for target in targets:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)  # self.optimizer = optim.Adam(...)
    return names


def _names_optimizer(receiver: ast.expr, optimizers: set[str]) -> bool:
    name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
    return name in optimizers or "optim" in name.lower() or name.lower().startswith("opt")


def _names_trainer(receiver: ast.expr, trainers: set[str]) -> bool:
    if isinstance(receiver, ast.Call):
        return _dotted(receiver.func).endswith("Trainer")
    name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
    return name in trainers or name.lower() == "trainer"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""
