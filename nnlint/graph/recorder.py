"""The second way to a graph: record one eager forward, by default on the meta device.

torch.fx cannot trace forwards with data-dependent Python control flow, `**kwargs`, or most
Hugging Face models. The recorder runs the forward for real — but with meta stand-ins for the
weights, so nothing is computed and nothing is allocated — and writes what happened into a
`torch.fx.Graph` of the same shape a trace would give:

- a global forward hook (`nnlint.runtime.module_calls`) turns each call of a leaf module (what FX
  would not trace into) into a `call_module` node; what runs inside a leaf is not recorded;
- a `TorchFunctionMode` turns every other torch function and tensor method into a
  `call_function`/`call_method` node;
- tensors are linked to the node that produced them by identity.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import operator
import types
from collections import Counter
from dataclasses import fields, is_dataclass
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.runtime.escapes import user_code
from nnlint.runtime.execution import to_meta
from nnlint.runtime.module_calls import ModuleCallTracker, ModuleFrame
from nnlint.runtime.torch_compat import TensorBase, tree_flatten, tree_map_only
from nnlint.sources import call_site

_DUNDER_OPERATORS = {
    f"__{name}__": getattr(operator, name)
    for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "getitem", "setitem", "neg", "and_", "or_", "xor")
    if hasattr(operator, name)
}
_FX_LEAF_CHECK = torch.fx.Tracer()


class RecordingError(RuntimeError):
    """The forward raised while recording; `module` is the innermost module that was running."""

    def __init__(self, cause: BaseException, module: str | None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.module = module


class GraphRecorder(ModuleCallTracker, TorchFunctionMode):
    def __init__(self, model: nn.Module, tensor_names: dict[int, str]) -> None:
        TorchFunctionMode.__init__(self)
        ModuleCallTracker.__init__(self, model, _FX_LEAF_CHECK.is_leaf_module)
        self.graph = torch.fx.Graph()
        self.calls: Counter[str] = Counter()
        self._tensor_names = tensor_names
        self._produced_by: dict[int, tuple[torch.fx.Node, tuple[Any, ...]]] = {}
        self._alive: list[Any] = []  # tensors stay referenced so their ids stay unique
        self._getitem_nodes: dict[tuple[torch.fx.Node, Any], torch.fx.Node] = {}
        self._attr_nodes: dict[str, torch.fx.Node] = {}
        self._constants = 0

    # -- the run -------------------------------------------------------------------------------
    def record(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._add_placeholders(model.forward, args, kwargs)
        self.start_tracking()
        try:
            with torch.no_grad(), self, user_code():
                output = model(*args, **kwargs)
        except Exception as error:
            raise RecordingError(error, self.running_module()) from error
        finally:
            self.stop_tracking()
        self._busy = True
        self.graph.output(self._as_argument(output))
        return output

    def _add_placeholders(self, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for name, value in _named_arguments(forward, args, kwargs):
            node = self.graph.placeholder(name)
            node.meta["val"] = to_meta(value)
            self._link(value, node, ())

    # -- module calls ----------------------------------------------------------------------------
    def _entered(self, module: nn.Module, frame: ModuleFrame, inside_leaf: bool, args: Any) -> None:
        if not inside_leaf:
            self.calls[frame.path] += 1

    def _exited(self, module: nn.Module, frame: ModuleFrame, args: Any, kwargs: Any, output: Any) -> Any:
        if frame.outermost_leaf:
            self._busy = True
            try:
                node = self.graph.call_module(frame.path, self._as_argument(tuple(args)), self._as_argument(dict(kwargs)))
                if getattr(module, "inplace", False) is not True:
                    output = _own_results(output, (args, kwargs))
                self._annotate(node, output, scope_extra=(frame.path,))
                self._link(output, node, ())
                return output  # a forward hook's result replaces the module's output
            finally:
                self._busy = False
        return None

    # -- torch functions -------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types_: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        output = func(*args, **kwargs)
        if self._busy or self._leaf_depth > 0:
            return output
        kind, target, fx_args = _fx_spelling(func, args)
        if not (_has_tensor(output) or kind == "call_function" and target is operator.setitem):
            return output  # `x.shape`, `x.size(0)`, `x.dim()`: Python values, not graph data
        self._busy = True
        try:
            node = self.graph.create_node(kind, target, self._as_argument(fx_args), self._as_argument(kwargs))
            written = _written_in_place(func, args)
            if written is None and "out" not in kwargs:
                output = _own_results(output, (args, kwargs))
            self._annotate(node, output if output is not None or written is None else written)
            self._link(output, node, ())
            if written is not None and written is not output:
                # `x[i] = y`, or an in-place op whose result a meta run had to put in a copy: from
                # here on, `x` holds what this node wrote.
                self._link(written, node, ())
        finally:
            self._busy = False
        return output

    # -- values <-> nodes ------------------------------------------------------------------------
    def _annotate(self, node: torch.fx.Node, output: Any, scope_extra: tuple[str | None, ...] = ()) -> None:
        node.meta["val"] = to_meta(output)
        node.meta["nnlint_source"] = call_site()
        scope = [frame.path for frame in self._stack if frame.path] + [p for p in scope_extra if p]
        node.meta["nnlint_scope"] = tuple(scope)

    def _link(self, value: Any, node: torch.fx.Node, path: tuple[Any, ...]) -> None:
        """Remember that each tensor inside `value` is `node`'s output at `path` (tuple indices)."""
        if isinstance(value, torch.Tensor):
            self._produced_by[id(value)] = (node, path)
            self._alive.append(value)
        elif isinstance(value, (tuple, list)):
            for index, item in enumerate(value):
                self._link(item, node, (*path, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                self._link(item, node, (*path, key))

    def _node_for(self, tensor: torch.Tensor) -> torch.fx.Node:
        produced = self._produced_by.get(id(tensor))
        if produced is None:
            return self._attribute_node(tensor)
        node, path = produced
        for key in path:
            node = self._getitem(node, key)
        return node

    def _getitem(self, node: torch.fx.Node, key: Any) -> torch.fx.Node:
        cache_key = (node, key)
        if cache_key not in self._getitem_nodes:
            item = self.graph.call_function(operator.getitem, (node, key))
            value = node.meta.get("val")
            with contextlib.suppress(TypeError, KeyError, IndexError):
                item.meta["val"] = value[key]  # type: ignore[index]
            item.meta["nnlint_scope"] = node.meta.get("nnlint_scope", ())
            self._getitem_nodes[cache_key] = item
        return self._getitem_nodes[cache_key]

    def _attribute_node(self, tensor: torch.Tensor) -> torch.fx.Node:
        """A parameter or buffer read directly in forward, or a constant from outside the graph."""
        name = self._tensor_names.get(id(tensor))
        if name is None:
            name = f"_tensor_constant{self._constants}"
            self._constants += 1
            self._tensor_names[id(tensor)] = name
            self._alive.append(tensor)
        if name not in self._attr_nodes:
            node = self.graph.get_attr(name)
            node.meta["val"] = to_meta(tensor)
            self._attr_nodes[name] = node
        return self._attr_nodes[name]

    def _as_argument(self, value: Any) -> Any:
        """`value` as an FX argument: tensors become nodes, containers keep their shape."""
        if isinstance(value, torch.Tensor):
            return self._node_for(value)
        if isinstance(value, (list, tuple)) and type(value) in (list, tuple, torch.Size):
            return type(value)(self._as_argument(item) for item in value)
        if isinstance(value, (list, tuple)):  # namedtuples and other sequences
            return tuple(self._as_argument(item) for item in value)
        if isinstance(value, dict):
            return {key: self._as_argument(item) for key, item in value.items()}
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: self._as_argument(getattr(value, f.name)) for f in fields(value)}
        if value is None or isinstance(value, (*torch.fx.node.base_types, slice, range, type(Ellipsis))):
            return value
        return repr(value)


def _named_arguments(forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """Forward's arguments by parameter name; `*args` and `**kwargs` contents by position and key."""
    try:
        signature = inspect.signature(forward)
        bound = signature.bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        return [(f"input_{i}", value) for i, value in enumerate(args)] + list(kwargs.items())
    named: list[tuple[str, Any]] = []
    for name, value in bound.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named += list(value.items())
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            named += [(f"{name}_{i}", item) for i, item in enumerate(value)]
        else:
            named.append((name, value))
    return named


def _fx_spelling(func: Any, args: tuple[Any, ...]) -> tuple[str, Any, tuple[Any, ...]]:
    """How torch.fx would have written this call: (op kind, target, args)."""
    name = getattr(func, "__name__", "")
    if isinstance(func, types.MethodWrapperType) and name == "__get__":
        # A tensor attribute that is itself a tensor: `x.T`, `x.mT`, `x.data`.
        return "call_function", builtins.getattr, (*args[:1], func.__self__.__name__)  # type: ignore[attr-defined]
    if getattr(torch.Tensor, name, None) is func or getattr(TensorBase, name, None) is func:
        if name in _DUNDER_OPERATORS:
            return "call_function", _DUNDER_OPERATORS[name], args
        return "call_method", name, args
    return "call_function", func, args


def _written_in_place(func: Any, args: tuple[Any, ...]) -> torch.Tensor | None:
    """The tensor an in-place call writes: `x.add_(y)`, `x += y`, `x[i] = y`, `torch.relu_(x)`."""
    if not args or not isinstance(args[0], torch.Tensor):
        return None
    name = getattr(func, "__name__", "")
    in_place = name == "__setitem__" or name in _IN_PLACE_DUNDERS or (name.endswith("_") and not name.startswith("_"))
    return args[0] if in_place else None


_IN_PLACE_DUNDERS = frozenset(
    f"__i{name}__" for name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor")
)


def _own_results(output: Any, inputs: Any) -> Any:
    """`output`, with an alias (a view of the same storage) for every tensor that is one of `inputs`.

    Dropout in evaluation, `nn.Identity` or a no-op `x.contiguous()` return their input object
    itself; linked by identity, the call would become the producer of its input, and every
    other use of that input would seem to read the call's result. In FX each call has a
    result of its own; the alias gives the recorded call one too.
    """
    given = {id(leaf) for leaf in tree_flatten(inputs)[0] if isinstance(leaf, torch.Tensor)}
    if not any(isinstance(leaf, torch.Tensor) and id(leaf) in given for leaf in tree_flatten(output)[0]):
        return output
    return tree_map_only(torch.Tensor, lambda t: _alias(t) if id(t) in given else t, output)


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    try:
        return tensor.view_as(tensor)
    except RuntimeError:  # layouts without views (sparse): keep the object
        return tensor


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list, dict)):
        leaves, _ = tree_flatten(value)
        return any(isinstance(leaf, torch.Tensor) for leaf in leaves)
    return False
