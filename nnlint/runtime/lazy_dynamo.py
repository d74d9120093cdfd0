"""Meta runs without importing `torch._dynamo`: about 0.8 s, more than building most models.

Many meta kernels are Python decompositions (batch_norm, layer_norm, relu, gelu, mean, sdpa …)
built from `torch._prims_common.wrappers.elementwise_type_promotion_wrapper`, which wraps each
reference in `torch._disable_dynamo`. That wrapper imports `torch._dynamo` on its first call to
build `torch._dynamo.disable(fn)`, and caches the result on the function as `__dynamo_disable`.

Outside a `torch.compile` region — and nnlint's graph runs are never inside one — `disable(fn)`
behaves exactly as `fn`. So for the length of a meta run, while `torch._dynamo` is not imported
yet, each such function's cache is filled with the function itself; afterwards the entries
nnlint wrote are removed, so a later `torch.compile` in the same process gets the real wrapper.
A function this search misses simply imports `torch._dynamo` as before: slower, never wrong.

A training script pays the same import, about 2 s, for nothing when it never compiles: building
an optimizer calls `Optimizer.add_param_group`, wrapped the same way (so are `zero_grad`,
`state_dict` and the functional optimizers). Script mode runs the script and the probe under
`dynamo_import_deferred_for_training`. Whatever imports `torch._dynamo` meanwhile (a script that
calls `torch.compile`, a library that imports it) finds the real wrappers back at that moment: an
import hook removes nnlint's entries before the module loads, so a compiled region never calls
through.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.machinery
import sys
import types
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from nnlint.runtime.torch_compat import (
    disable_dynamo_cache_attribute,
    disable_dynamo_wrapper_code,
    dynamo_imported,
    is_dynamo_package,
    meta_kernel_roots,
    training_roots,
)

_CACHE = disable_dynamo_cache_attribute()


@contextmanager
def dynamo_import_deferred() -> Iterator[None]:
    """Run the block with torch's `_disable_dynamo` wrappers on meta's paths calling straight through."""
    with _calling_through(_wrapped_by_disable_dynamo()):
        yield


@contextmanager
def dynamo_import_deferred_for_training() -> Iterator[None]:
    """Run the block with torch.optim's `_disable_dynamo` wrappers calling straight through, until
    something imports `torch._dynamo` (see the module docstring)."""
    with _calling_through(_wrapped_for_training()):
        yield


@contextmanager
def _calling_through(functions: Sequence[types.FunctionType]) -> Iterator[None]:
    if dynamo_imported():
        yield  # already paid for (or compiling): nothing to save
        return
    filled = [fn for fn in functions if _CACHE not in fn.__dict__]
    for fn in filled:
        setattr(fn, _CACHE, fn)
    hook = _PutBackOnDynamoImport(filled)
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(hook)
        hook.put_back()


class _PutBackOnDynamoImport:
    """An import hook that only watches: when `torch._dynamo` starts to import, the entries nnlint
    wrote are removed first, so every wrapper from then on builds torch's real `disable(fn)`."""

    def __init__(self, filled: list[types.FunctionType]) -> None:
        self.filled = filled

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if is_dynamo_package(name):
            self.put_back()
        return None  # the import itself goes on as usual

    def put_back(self) -> None:
        for fn in self.filled:
            if fn.__dict__.get(_CACHE) is fn:
                delattr(fn, _CACHE)
        self.filled = []


def find_wrapped_functions() -> None:
    """Search now rather than in the first meta run (a fork server, before forking: each child
    inherits the result instead of searching again, 50-150 ms)."""
    _wrapped_by_disable_dynamo()
    _wrapped_for_training()


@functools.cache
def _wrapped_by_disable_dynamo() -> tuple[types.FunctionType, ...]:
    """The functions torch wrapped with `_disable_dynamo` that meta kernels can reach (a few ms to find)."""
    return _wrapped_from(meta_kernel_roots())


@functools.cache
def _wrapped_for_training() -> tuple[types.FunctionType, ...]:
    """The functions torch wrapped with `_disable_dynamo` in torch.optim (about 15, a few ms to find)."""
    return _wrapped_from(training_roots())


def _wrapped_from(roots: Iterable[object]) -> tuple[types.FunctionType, ...]:
    inner = disable_dynamo_wrapper_code()
    if inner is None or "fn" not in inner.co_freevars:
        return ()  # another torch: nothing found, nothing changed
    found: dict[int, types.FunctionType] = {}
    seen: set[int] = set()
    pending = [value for value in roots if isinstance(value, types.FunctionType)]
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        cells = function.__closure__ or ()
        if function.__code__ is inner:
            wrapped = cells[inner.co_freevars.index("fn")].cell_contents
            if isinstance(wrapped, types.FunctionType):
                found[id(wrapped)] = wrapped
        # Decorators nest: follow `functools.wraps` links and the functions closures hold.
        pending.extend(_functions_in([getattr(function, "__wrapped__", None), *(_cell_value(cell) for cell in cells)]))
    return tuple(found.values())


def _cell_value(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _functions_in(values: list[object]) -> list[types.FunctionType]:
    return [value for value in values if isinstance(value, types.FunctionType)]
