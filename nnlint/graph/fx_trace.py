"""The first way to a graph: `torch.fx` symbolic tracing, then shape propagation on meta tensors."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.fx
from torch import nn

from nnlint.runtime.execution import meta_stand_ins, run_with_tensors, to_meta
from nnlint.runtime.timeout import protect
from nnlint.runtime.torch_compat import fx_patcher_exit, stored_tensors
from nnlint.sources import call_site

# torch.fx patches torch functions while it traces; undoing that must finish even when --probe-timeout fires.
protect(fx_patcher_exit())


class _SourceTracer(torch.fx.Tracer):
    """A tracer that notes the user's line for each call and the module scope it happened in."""

    # Buffers become graph nodes like parameters: otherwise `self.steps.add_(1)` in forward runs
    # eagerly on the user's real buffer while tracing, and is missing from the graph.
    proxy_buffer_attributes = True

    def create_node(self, kind: str, target: Any, args: Any, kwargs: Any, name: str | None = None, type_expr: Any = None) -> torch.fx.Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind in ("call_function", "call_method", "call_module"):
            node.meta["nnlint_source"] = call_site()
            node.meta["nnlint_scope"] = tuple(path for path, _ in node.meta.get("nn_module_stack", {}).values() if path)
        return node


def symbolic_trace(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.fx.Graph:
    """Trace `model.forward`, fixing the arguments the example input leaves at their defaults."""
    tracer = _SourceTracer()
    graph = tracer.trace(model, concrete_args=_defaults_not_given(model, args, kwargs))
    assigned = _state_assigned_while_tracing(model)
    if assigned is not None:
        raise TypeError(f"forward assigns a new value to `{assigned}`, which a graph cannot represent")
    return graph


def _state_assigned_while_tracing(model: nn.Module) -> str | None:
    """A buffer or parameter that forward replaced (`self.steps += 1` reassigns the buffer)."""
    for path, module in model.named_modules():
        parameters, buffers = stored_tensors(module)
        for name, value in [*parameters.items(), *buffers.items()]:
            if isinstance(value, torch.fx.Proxy):
                return f"{path}.{name}" if path else name
    return None


def _defaults_not_given(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    parameters = list(inspect.signature(model.forward).parameters.values())
    concrete = {
        p.name: p.default
        for p in parameters[len(args) :]
        if p.name not in kwargs and p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
    }
    return concrete or None


class _ShapeRecorder(torch.fx.Interpreter):
    """Runs a traced graph and stores each node's output as meta tensor(s) in `node.meta["val"]`."""

    def __init__(self, model: nn.Module, graph: torch.fx.Graph) -> None:
        super().__init__(model, garbage_collect_values=True, graph=graph)
        self.current: torch.fx.Node | None = None

    def fetch_attr(self, target: str) -> Any:
        # Tensor constants the tracer lifted out of forward (`_tensor_constant0`) live on the CPU.
        return to_meta(super().fetch_attr(target))

    def run_node(self, n: torch.fx.Node) -> Any:
        self.current = n
        result = super().run_node(n)
        n.meta["val"] = to_meta(result)
        return result


def propagate_shapes(model: nn.Module, graph: torch.fx.Graph, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Annotate every node with its output's shape by running the graph on meta tensors.

    Raises what the run raised, with `failed_node` set on the exception.
    """
    # FX makes one placeholder per forward parameter, in order (renaming some: `mask` -> `mask_1`).
    bound = inspect.signature(model.forward).bind_partial(*args, **kwargs)
    bound.apply_defaults()
    values = list(bound.arguments.values())
    interpreter = _ShapeRecorder(model, graph)
    try:
        with torch.no_grad():
            run_with_tensors(
                model, meta_stand_ins(model), lambda *xs: interpreter.run(*xs, enable_io_processing=False), tuple(to_meta(values)), {}
            )
    except Exception as error:
        error.failed_node = interpreter.current  # type: ignore[attr-defined]
        raise
