"""`ModelGraph`: one intermediate representation, whichever way the graph was recovered.

It is a real `torch.fx.Graph` — module calls are `call_module` nodes, functional ops are
`call_function`/`call_method` nodes — plus what rules need alongside it:

- `node.meta["val"]`: the output as meta tensor(s), for shapes and dtypes;
- `node.meta["nnlint_source"]`: the user's line that made a functional call;
- `node.meta["nnlint_scope"]`: the module paths the call happened in, outermost first;
- `ModelGraph.modules`: every submodule's path, type, construction line and call count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.fx
from torch import nn

from nnlint.findings import GraphMethod, Location
from nnlint.graph.ops import SHAPE_OPS, node_op


@dataclass
class ModuleInfo:
    path: str
    module: nn.Module
    location: Location | None
    calls: int = 0

    @property
    def type_name(self) -> str:
        return type(self.module).__name__


@dataclass
class ModelGraph:
    fx_graph: torch.fx.Graph
    method: GraphMethod
    root: nn.Module
    modules: dict[str, ModuleInfo]
    # Why torch.fx could not be used, when the graph was recorded instead.
    fx_error: str | None = None
    # "meta" (no compute, no weights) or "real" (a one-sample slice of the example input).
    recorded_on: str = "meta"
    _ops: dict[torch.fx.Node, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_path = {path: info.module for path, info in self.modules.items()}
        self._ops = {node: node_op(node, by_path) for node in self.fx_graph.nodes}

    # -- nodes -------------------------------------------------------------------------------
    @property
    def nodes(self) -> Iterable[torch.fx.Node]:
        return self.fx_graph.nodes

    def op(self, node: torch.fx.Node) -> str:
        return self._ops[node]

    def nodes_with_op(self, ops: str | Iterable[str]) -> Iterator[torch.fx.Node]:
        wanted = {ops} if isinstance(ops, str) else set(ops)
        return (node for node in self.fx_graph.nodes if self._ops[node] in wanted)

    def output_node(self) -> torch.fx.Node:
        return next(node for node in reversed(self.fx_graph.nodes) if node.op == "output")

    # -- modules -----------------------------------------------------------------------------
    def module_info(self, node: torch.fx.Node) -> ModuleInfo | None:
        return self.modules.get(str(node.target)) if node.op == "call_module" else None

    def module(self, node: torch.fx.Node) -> nn.Module | None:
        info = self.module_info(node)
        return info.module if info else None

    def modules_of_type(self, *types: type[nn.Module]) -> Iterator[ModuleInfo]:
        return (info for info in self.modules.values() if isinstance(info.module, types))

    # -- data flow ---------------------------------------------------------------------------
    def tensor_inputs(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        """Inputs that carry tensors (parameters read with `get_attr` are not data inputs)."""
        return [n for n in node.all_input_nodes if n.op != "get_attr"]

    def source(self, node: torch.fx.Node, through: frozenset[str] = SHAPE_OPS) -> torch.fx.Node | None:
        """The node that really produced `node`'s first input, looking through `through` ops."""
        inputs = self.tensor_inputs(node)
        current = inputs[0] if inputs else None
        while current is not None and self._ops[current] in through:
            inputs = self.tensor_inputs(current)
            current = inputs[0] if inputs else None
        return current

    def consumers(self, node: torch.fx.Node, through: frozenset[str] = SHAPE_OPS) -> list[torch.fx.Node]:
        """Every node that really consumes `node`'s output, looking through `through` ops."""
        found: list[torch.fx.Node] = []
        pending = list(node.users)
        seen: set[torch.fx.Node] = set()
        while pending:
            user = pending.pop()
            if user in seen:
                continue
            seen.add(user)
            if self._ops[user] in through:
                pending.extend(user.users)
            else:
                found.append(user)
        return found

    def reaches(self, start: torch.fx.Node, goal: torch.fx.Node) -> bool:
        """Whether data flows from `start` to `goal`."""
        pending, seen = [start], set()
        while pending:
            node = pending.pop()
            if node is goal:
                return True
            if node not in seen:
                seen.add(node)
                pending.extend(node.users)
        return False

    # -- positions ---------------------------------------------------------------------------
    def location(self, node: torch.fx.Node) -> Location | None:
        """Construction line for module calls; call line for functions; else the enclosing module's."""
        info = self.module_info(node)
        if info is not None and info.location is not None:
            return info.location
        source = node.meta.get("nnlint_source")
        if source is not None:
            return source
        for path in reversed(node.meta.get("nnlint_scope", ())):
            if path in self.modules and self.modules[path].location is not None:
                return self.modules[path].location
        return self.modules[""].location if "" in self.modules else None

    def enclosing_module(self, node: torch.fx.Node) -> str | None:
        """The module path a node belongs to: its own for module calls, else the innermost scope."""
        if node.op == "call_module":
            return str(node.target)
        scope = node.meta.get("nnlint_scope", ())
        return scope[-1] if scope else None

    def describe(self, node: torch.fx.Node) -> str:
        """How a finding names a node: "BatchNorm2d `features.1`" or "functional relu (line 19)"."""
        info = self.module_info(node)
        if info is not None:
            return f"{info.type_name} `{info.path}`"
        source = node.meta.get("nnlint_source")
        return f"functional {self._ops[node]}" + (f" (line {source.line})" if source else "")

    def shape(self, node: torch.fx.Node) -> tuple[int, ...] | None:
        value = node.meta.get("val")
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None
