"""Recover a model's graph: torch.fx when it can trace, else an eager recording on meta."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
import torch.fx
from torch import nn

from nnlint.findings import GraphMethod
from nnlint.graph.fx_trace import propagate_shapes, symbolic_trace
from nnlint.graph.ir import ModelGraph, ModuleInfo
from nnlint.graph.recorder import GraphRecorder, RecordingError
from nnlint.runtime.escapes import UserExit, user_code
from nnlint.runtime.execution import (
    call_arguments,
    meta_parameter_stand_ins,
    meta_stand_ins,
    on_device,
    one_sample,
    real_copies,
    run_with_tensors,
)
from nnlint.runtime.state import evaluation_run, is_on_meta, model_device, preserved_module_attributes
from nnlint.sources import ModuleLocator

__all__ = ["GraphError", "ModelGraph", "ModuleInfo", "build_graph", "non_tensor_output", "one_line"]

AUTO = "auto"


class GraphError(Exception):
    """Neither way could produce a graph: the forward itself fails on this input."""

    def __init__(self, message: str, module: str | None = None) -> None:
        super().__init__(message)
        self.module = module


def build_graph(model: nn.Module, example_input: Any, locator: ModuleLocator, method: str = AUTO, batch_dim: int | None = 0) -> ModelGraph:
    """The model's graph, traced in evaluation mode; the model is left exactly as it was.

    `method` is "auto" (fx, then the recorder), "fx" or "recorded"; `batch_dim` is where the
    input's samples lie (1 for (time, batch, …) inputs, None for one sample), for a recording on
    one real sample.
    """
    args, kwargs = call_arguments(example_input)
    with evaluation_run(model):
        fx_error = None
        if method != GraphMethod.RECORDED:
            # Restored on its own: what a failed trace left in the model must not reach the recorder.
            with preserved_module_attributes(model):
                try:
                    graph = _traced_on_stand_ins(model, args, kwargs)
                except Exception as error:
                    fx_error = f"symbolic tracing failed: {one_line(error)}"
                else:
                    try:
                        with user_code():
                            propagate_shapes(model, graph, args, kwargs)
                        return _assemble(model, graph, GraphMethod.FX, locator, _fx_call_counts(graph))
                    except Exception as error:
                        fx_error = f"the traced graph did not run: {one_line(error)}"
            if method == GraphMethod.FX:
                raise GraphError(f"torch.fx: {fx_error}")
        recorder, recorded_on = _record(model, args, kwargs, batch_dim)
        graph_ = _assemble(model, recorder.graph, GraphMethod.RECORDED, locator, recorder.calls)
        graph_.fx_error = fx_error
        graph_.recorded_on = recorded_on
        return graph_


def _traced_on_stand_ins(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.fx.Graph:
    """Symbolic tracing runs forward's Python for real, with only the inputs as proxies: a forward
    that iterates its own parameters (WGAN's `for p in self.parameters(): p.data.clamp_(-c, c)`)
    would write the user's weights. So the model holds meta stand-ins while it is traced, as
    parameters (FX turns parameters it meets into graph nodes by identity)."""
    stand_ins = meta_parameter_stand_ins(model)
    return run_with_tensors(model, stand_ins, lambda: symbolic_trace(model, args, kwargs), (), {}, on_meta=False)


def _record(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], batch_dim: int | None = 0) -> tuple[GraphRecorder, str]:
    """Record on meta; if the forward needs real values (`.item()`, `if x.sum() > 0`), on one real
    sample ("real"), and if it rejects a sample alone, on the whole example input ("example")."""
    stand_ins = meta_stand_ins(model)
    meta_recorder = GraphRecorder(model, _names_by_identity(stand_ins))
    try:
        run_with_tensors(model, stand_ins, lambda *a, **k: meta_recorder.record(model, a, k), args, kwargs)
        return meta_recorder, "meta"
    except RecordingError as meta_error:
        if is_on_meta(model):
            raise GraphError(_forward_failure(meta_error), meta_error.module) from meta_error.cause
    device = model_device(model)
    try:
        return _record_real(model, *one_sample((args, kwargs), device, batch_dim)), "real"
    except RecordingError:
        pass  # a forward may reject a batch of one (BatchNorm without running statistics): try the example's batch
    try:
        return _record_real(model, *on_device((args, kwargs), device)), "example"
    except RecordingError as real_error:
        raise GraphError(_forward_failure(real_error), real_error.module) from real_error.cause


def _record_real(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> GraphRecorder:
    """Record on real values, with copies of the parameters and buffers: a forward that writes one
    in place (a counter, `nn.Embedding(max_norm=...)`) must not write the user's."""
    copies = real_copies(model)
    recorder = GraphRecorder(model, _names_by_identity(copies))
    run_with_tensors(model, copies, lambda *a, **k: recorder.record(model, a, k), args, kwargs, on_meta=False)
    return recorder


def _names_by_identity(tensors: dict[str, torch.Tensor]) -> dict[int, str]:
    names: dict[int, str] = {}
    for name, tensor in tensors.items():
        names.setdefault(id(tensor), name)
    return names


def _forward_failure(error: RecordingError) -> str:
    where = f" in `{error.module}`" if error.module else ""
    return f"forward raised{where}: {one_line(error.cause)}"


def _fx_call_counts(graph: torch.fx.Graph) -> Counter[str]:
    calls: Counter[str] = Counter(str(node.target) for node in graph.nodes if node.op == "call_module")
    for node in graph.nodes:
        for path in node.meta.get("nnlint_scope", ()):
            calls[path] = max(calls[path], 1)
    return calls


def _assemble(model: nn.Module, graph: torch.fx.Graph, method: GraphMethod, locator: ModuleLocator, calls: Counter[str]) -> ModelGraph:
    modules = {path: ModuleInfo(path, module, locator.locate(path), calls.get(path, 0)) for path, module in model.named_modules()}
    modules[""].calls = 1
    return ModelGraph(fx_graph=graph, method=method, root=model, modules=modules)


def non_tensor_output(graph: ModelGraph) -> str | None:
    """What forward returned, named, when it is plainly no tensor (None, a number); else None.

    Other objects are not judged: the recorder writes output types it does not know as text.
    """
    (value,) = graph.output_node().args
    if isinstance(value, torch.fx.Node):
        if "val" not in value.meta:
            return None
        value = value.meta["val"]
    if value is None:
        return "None"
    if isinstance(value, (bool, int, float)):
        return f"{type(value).__name__} {value!r}"
    return None


def one_line(error: BaseException, limit: int = 240) -> str:
    """An exception as one readable line: its type and the first line of its message."""
    if isinstance(error, UserExit):  # already says what was raised, and where
        return str(error) if len(str(error)) <= limit else str(error)[: limit - 1] + "…"
    text = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"
