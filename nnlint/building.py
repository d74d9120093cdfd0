"""Building a model class the way its author does, read from the project's own source.

A model file rarely has a zero-argument model class. Its author builds it one of these ways, and
nnlint does the same:

- a required `config`/`cfg` argument filled from a config class in the same file whose fields all
  have defaults (nanoGPT: `GPT(GPTConfig())`);
- the arguments a script beside the file passes (Pytorch-UNet's train.py:
  `UNet(n_channels=3, n_classes=args.classes)`), with `args.x` read from the script's argparse
  defaults (`parser.add_argument("--classes", type=int, default=2)`);
- a module-level factory function with no required arguments (pytorch-cifar:
  `def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])`).

Everything here reads source with `ast`: no script beside the file is ever run.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

CONFIG_PARAMETERS = ("config", "cfg")
# A size the script computes from its data (`ntokens = len(corpus.dictionary)`) is known only when it
# runs; this stands in for it, and the note says so. Sizes change no rule's verdict at this scale.
DATA_SIZE_STAND_IN = 1000
# Scripts beside a model file that are read (never run) for how they build its classes.
_SCRIPTS_READ = 40


@dataclass(frozen=True)
class Recipe:
    """How to build a class: the expression (for notes and `::`) and the values to call it with."""

    expression: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    origin: str  # "config class GPTConfig", "train.py line 12"


def required_arguments(function: Any) -> list[str]:
    """The parameters a call must give (no default), keyword-only ones included."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.default is p.empty and p.kind in kinds]


# -- a config argument ---------------------------------------------------------------------------
def config_recipe(cls: type, namespace: Mapping[str, Any], module_name: str | None) -> Recipe | None:
    """`GPT(GPTConfig())` when the only required argument is `config`/`cfg` and the file defines a
    config class that builds with no arguments: the one the parameter is annotated with, else the
    one named after the model (`GPTConfig` for `GPT`), else the file's only config class. An
    argument of another name counts when it is annotated with such a class (llama2.c's
    `Transformer(params: ModelArgs)`)."""
    required = required_arguments(cls)
    if len(required) != 1:
        return None
    candidates = [
        value
        for name, value in namespace.items()
        if inspect.isclass(value)
        and getattr(value, "__module__", None) == module_name
        and not issubclass(value, nn.Module)
        and _looks_like_config(name, value)
    ]
    annotation = _annotation_of(cls, required[0], namespace)
    if required[0] not in CONFIG_PARAMETERS and annotation not in candidates:
        return None
    preferred = [c for c in candidates if c is annotation] or [c for c in candidates if c.__name__.startswith(cls.__name__)]
    chosen = preferred or (candidates if len(candidates) == 1 else [])
    if not chosen:
        return None
    config_class = chosen[0]
    try:
        config = config_class()
    except Exception:
        return None
    name = required[0]
    return Recipe(f"{cls.__name__}({config_class.__name__}())", (), {name: config}, f"its {name} from {config_class.__name__}'s defaults")


def argument_hint(function: Any, parameter: str) -> str:
    """What to write for a required argument in a `::` call: `ModelArgs(d_model=..., n_layer=...,
    vocab_size=...)` for one annotated with a class of the user's own whose constructor needs
    arguments (johnma2006/mamba-minimal's `Mamba(args: ModelArgs)`), else `...`."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    annotation = _annotation_of(function, parameter, vars(module) if module else {})
    if not inspect.isclass(annotation) or annotation.__module__ in ("builtins", "typing") or issubclass(annotation, nn.Module):
        return "..."
    fields = required_arguments(annotation)
    return f"{annotation.__name__}({', '.join(f'{field}=...' for field in fields)})" if fields else "..."


def _looks_like_config(name: str, cls: type) -> bool:
    """A dataclass or plain class named like a config, buildable without arguments."""
    named_like_one = name.lower().endswith(("config", "cfg", "configuration", "args", "params", "hparams"))
    return (dataclasses.is_dataclass(cls) or named_like_one) and not required_arguments(cls)


def _annotation_of(cls: type, parameter: str, namespace: Mapping[str, Any]) -> Any:
    try:
        annotation = inspect.signature(cls).parameters[parameter].annotation
    except (TypeError, ValueError, KeyError):
        return None
    return namespace.get(annotation) if isinstance(annotation, str) else annotation


# -- what the project's scripts pass -------------------------------------------------------------
class _Unresolved(Exception):
    """An argument whose value the source does not fix (`len(corpus.dictionary)`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class ScriptCall:
    """A call `Net(...)` found in a script: its arguments as source, and the values it could resolve."""

    script: Path
    line: int
    sources: tuple[str, ...]  # each argument as written: "3", "upscale_factor=opt.upscale_factor"
    values: tuple[tuple[str | None, Any], ...]  # (keyword or None, value), when all resolved
    missing: tuple[str, ...]  # arguments the script computes at run time
    # where a value did not come from the code: "ntokens = len(corpus.dictionary)" (DATA_SIZE_STAND_IN),
    # "--upscale_factor 3 from the README's example command"
    stand_ins: tuple[str, ...] = ()


@dataclass
class _Scope:
    """What a script's source fixes: argparse defaults, the names bound to `parse_args()`, and the
    names it assigns (with those of the sibling modules it star-imports: char-rnn's helpers.py)."""

    defaults: dict[str, Any]
    parsed: set[str]
    assigned: dict[str, ast.expr]
    documented: set[str]  # options whose value comes from the README's example command


def _scope_of(tree: ast.Module, script: Path) -> _Scope:
    folder = script.parent
    defaults, required = _argparse_defaults(tree)
    documented = _documented_values(script, required) if required else {}
    scope = _Scope({**documented, **defaults}, _parse_args_results(tree), _assignments(tree), set(documented))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (folder / f"{node.module}.py").is_file():
            try:
                sibling = ast.parse((folder / f"{node.module}.py").read_text(encoding="utf-8", errors="replace"))
            except (SyntaxError, ValueError, OSError):
                continue
            imported = {alias.asname or alias.name for alias in node.names}
            for name, value in _assignments(sibling).items():
                if "*" in imported or name in imported:
                    scope.assigned.setdefault(name, value)
    return scope


def script_calls(cls_name: str, model_file: Path, package_root: Path | None) -> Iterator[ScriptCall]:
    """Calls of `cls_name` in the scripts beside the model file (and at its package's root), then in
    the model file itself (pytorch-cifar's vgg.py: `def test(): net = VGG('VGG11')`)."""
    folders = [model_file.parent]
    if package_root is not None and package_root != model_file.parent:
        folders.append(package_root)
    scripts = [p for folder in folders for p in sorted(folder.glob("*.py")) if p.resolve() != model_file.resolve()]
    for script in [*scripts[:_SCRIPTS_READ], model_file]:
        try:
            tree = ast.parse(script.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError, OSError):
            continue
        yield from _calls_in(tree, script, cls_name)
    for readme, example in readme_examples(model_file, package_root):
        yield from _calls_in(example, readme, cls_name)


def _calls_in(tree: ast.Module, script: Path, cls_name: str) -> Iterator[ScriptCall]:
    scope = _scope_of(tree, script)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee_name(node.func) == cls_name:
            yield _resolve_call(script, node, scope)


_PYTHON_BLOCK = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_examples(model_file: Path, package_root: Path | None) -> Iterator[tuple[Path, ast.Module]]:
    """The Python examples of the project's README (its ```python blocks, each parsed with the
    README's line numbers), from the model's folder up to the folder above its package: how a
    library's author shows it is built (lucidrains/perceiver-pytorch's README: `model =
    Perceiver(num_freq_bands = 6, depth = 6, max_freq = 10., ...)`; sooftware/conformer's:
    `Conformer(num_classes=10, input_dim=dim, ...)` after `dim = 80`)."""
    folders = [model_file.parent, model_file.parent.parent]
    if package_root is not None:
        folders += [package_root, package_root.parent]
    for folder in dict.fromkeys(folders):
        for readme in sorted(folder.glob("README*"))[:2]:
            try:
                text = readme.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for block in _PYTHON_BLOCK.finditer(text):
                try:
                    example = ast.parse(block.group(1).expandtabs(4))
                except (SyntaxError, ValueError):
                    continue  # a fragment with `...` in it, or a console session
                ast.increment_lineno(example, text.count("\n", 0, block.start(1)))
                yield readme, example


def script_recipe(cls: Callable[..., Any], model_file: Path, package_root: Path | None) -> tuple[Recipe | None, ScriptCall | None]:
    """The first call of `cls` (a class or a factory function) in a sibling script whose arguments
    all resolve, else the first call seen."""
    first: ScriptCall | None = None
    for call in script_calls(cls.__name__, model_file, package_root):
        args = tuple(value for keyword, value in call.values if keyword is None)
        kwargs = {keyword: value for keyword, value in call.values if keyword is not None}
        if not call.missing and _accepts(cls, args, kwargs):
            shown = ", ".join([*(repr(a) for a in args), *(f"{k}={v!r}" for k, v in kwargs.items())])
            origin = f"as {call.script.name} line {call.line} does"
            sizes = [s for s in call.stand_ins if not s.startswith("--")]
            documented = [s for s in call.stand_ins if s.startswith("--")]
            if sizes:
                origin += f"; {DATA_SIZE_STAND_IN} stands in for {', '.join(sizes)}, known only when it runs"
            if documented:
                origin += f"; {', '.join(documented)}"
            return Recipe(f"{cls.__name__}({shown})", args, kwargs, origin), call
        first = first or call
    return None, first


def _accepts(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether the signature takes these arguments: a README written for an older version
    (perceiver-pytorch's once passed `num_fourier_features`) is not how the code is built now."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:  # no signature to check against
        return True
    return True


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):  # `model.RNNModel(...)`, `models.UNet(...)`
        return func.attr
    return None


def _resolve_call(script: Path, call: ast.Call, scope: _Scope) -> ScriptCall:
    values: list[tuple[str | None, Any]] = []
    missing: list[str] = []
    sources: list[str] = []
    stand_ins: list[str] = []
    for keyword, node in [(None, a) for a in call.args] + [(k.arg, k.value) for k in call.keywords]:
        text = ast.unparse(node)
        sources.append(f"{keyword}={text}" if keyword else text)
        if isinstance(node, ast.Starred) or (keyword is None and node not in call.args):  # `*args`, `**kwargs`
            missing.append(text)
            continue
        try:
            values.append((keyword, _value_of(node, scope, stand_ins)))
        except _Unresolved as unresolved:
            missing.append(unresolved.text)
    return ScriptCall(script, call.lineno, tuple(sources), tuple(values), tuple(missing), tuple(dict.fromkeys(stand_ins)))


_CONVERSIONS: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": bool}


def _value_of(node: ast.expr, scope: _Scope, stand_ins: list[str], depth: int = 0) -> Any:
    """A literal; `args.x` read from argparse defaults; a name the script assigns one of these to,
    through `int(...)`/`float(...)` (`nz = int(opt.nz)`); a length it computes from data, which
    DATA_SIZE_STAND_IN stands in for (`ntokens = len(corpus.dictionary)`)."""
    if depth > 8:
        raise _Unresolved(ast.unparse(node))
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in scope.parsed:
        if node.attr in scope.defaults:
            if node.attr in scope.documented:
                stand_ins.append(f"--{node.attr} {scope.defaults[node.attr]} from the README's example command")
            return scope.defaults[node.attr]
    elif isinstance(node, ast.Name) and node.id in scope.assigned:
        value = scope.assigned[node.id]
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "len":
            stand_ins.append(f"{node.id} = {ast.unparse(value)}")
            return DATA_SIZE_STAND_IN
        try:
            return _value_of(value, scope, stand_ins, depth + 1)
        except _Unresolved:
            raise _Unresolved(node.id) from None
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONVERSIONS and len(node.args) == 1:
        try:
            return _CONVERSIONS[node.func.id](_value_of(node.args[0], scope, stand_ins, depth + 1))
        except (TypeError, ValueError):
            pass
    raise _Unresolved(ast.unparse(node))


def _assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """`name = expression` anywhere in the file, the first one per name; `a, b = 3, 80` too (the
    README example of sooftware/conformer: `batch_size, sequence_length, dim = 3, 12345, 80`)."""
    assigned: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name):
            assigned.setdefault(target.id, value)
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for name, item in zip(target.elts, value.elts, strict=True):
                if isinstance(name, ast.Name):
                    assigned.setdefault(name.id, item)
    return assigned


def _parse_args_results(tree: ast.Module) -> set[str]:
    """Names bound to `parser.parse_args()` (`args`, `opt`), wherever they are assigned."""
    names = {"args", "opt", "opts", "config", "cfg", "hparams"}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _callee_name(node.value.func) in ("parse_args", "parse_known_args")
        ):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _argparse_defaults(tree: ast.Module) -> tuple[dict[str, Any], dict[str, tuple[str, str | None]]]:
    """`parser.add_argument("--classes", "-c", type=int, default=2)` -> {"classes": 2}, and the
    options with no default (`--upscale_factor`: its dest and type name)."""
    defaults: dict[str, Any] = {}
    required: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _callee_name(node.func) == "add_argument" and node.args):
            continue
        flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        options = {k.arg: k.value for k in node.keywords if k.arg}
        dest = _literal(options.get("dest")) or _dest_of(flags)
        if not dest:
            continue
        action = _literal(options.get("action"))
        if "default" in options:
            try:
                default = ast.literal_eval(options["default"])
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            converter = {"int": int, "float": float, "str": str}.get(_type_name(options.get("type")) or "")
            if isinstance(default, str) and converter is not None:  # argparse converts string defaults
                try:
                    default = converter(default)
                except ValueError:
                    continue
            defaults[dest] = default
        elif action in ("store_true", "store_false"):
            defaults[dest] = action == "store_false"
        elif long_flags := [f for f in flags if f.startswith("--")]:
            required[long_flags[0]] = (dest, _type_name(options.get("type")))
    return defaults, required


def _documented_values(script: Path, required: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """Values for required options without a default, from the command the project's README shows
    (pytorch/examples super_resolution: `python main.py --upscale_factor 3 --batchSize 4 ...`)."""
    found: dict[str, Any] = {}
    for readme in sorted(script.parent.glob("README*"))[:2]:
        try:
            text = readme.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            words = line.replace("=", " ").split()
            if script.name not in words:
                continue
            for flag, (dest, type_name) in required.items():
                if flag in words[:-1] and dest not in found:
                    value = words[words.index(flag) + 1]
                    converter = {"int": int, "float": float}.get(type_name or "", str)
                    with contextlib.suppress(ValueError):
                        found[dest] = converter(value)
    return found


def _dest_of(flags: list[str]) -> str | None:
    long = [f for f in flags if f.startswith("--")]
    chosen = long[0] if long else (flags[0] if flags else None)
    return chosen.lstrip("-").replace("-", "_") if chosen else None


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _type_name(node: ast.expr | None) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


# -- the file's own structure --------------------------------------------------------------------
def building_blocks(source: str, model_classes: set[str]) -> set[str]:
    """Names used inside the body of another of the file's model classes: building blocks, not roots.

    `self.act = NewGELU()` in minGPT's MLP, `Block(config)` in GPT: neither is a model on its own.
    A class that only a plain class uses (`self.model = Net()` in a `Trainer`) is still a model.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    used: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in model_classes:
            used.update(_names_loaded(node) - {node.name})
    return used


def factory_names(source: str) -> dict[str, set[str]]:
    """Module-level functions that look like model factories, each with the names its returns call.

    A function is a candidate when it has a `return` of a call (`return ResNet(BasicBlock, ...)`);
    the caller keeps those whose callee is a model class or another factory. Functions that only
    print, train or test (`def test(): net = ResNet18(); ...`) return nothing and are never called.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    factories: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            returned = {
                name
                for child in ast.walk(node)
                if isinstance(child, ast.Return) and isinstance(child.value, ast.Call)
                for name in [_callee_root(child.value.func)]
                if name
            }
            if returned:
                factories[node.name] = returned
    return factories


def names_in_function(source: str, function: str) -> set[str]:
    """Every name a module-level function reads."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return _names_loaded(node)
    return set()


def _callee_root(func: ast.expr) -> str | None:
    """`ResNet(...)` -> ResNet; `Net(...).to(device)` -> Net; `nn.Sequential(...)` -> nn.Sequential."""
    while isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
        func = func.value.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return func.id if isinstance(func, ast.Name) else None


def _names_loaded(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)}


def loss_calls(source: str) -> dict[str, set[str]]:
    """`criterion(netD(x), label)` -> {"criterion": {"netD"}}: which model's output each name is called on."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    calls: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Call) and isinstance(first.func, ast.Name):
                calls.setdefault(node.func.id, set()).add(first.func.id)
    return calls
