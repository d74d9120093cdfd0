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
from typing import Any

import torch
import torch.fx
from torch import nn

from nnlint.findings import GraphMethod, Location
from nnlint.graph.ops import METADATA_QUERIES, SHAPE_OPS, node_op, written_out_activation
from nnlint.runtime.torch_compat import stored_tensors


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
    # "meta" (no compute, no weights), "real" (a one-sample slice of the example input) or "example"
    # (real values, the whole example input: the forward rejected a single sample).
    recorded_on: str = "meta"
    _ops: dict[torch.fx.Node, str] = field(default_factory=dict, repr=False)
    _called_paths: frozenset[str] = field(default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        by_path = {path: info.module for path, info in self.modules.items()}
        self._ops = {node: node_op(node, by_path) for node in self.fx_graph.nodes}
        # A sigmoid or tanh written as arithmetic is that activation (its last step carries the name).
        written_out = {node: written_out_activation(node, self._ops) for node in self.fx_graph.nodes}
        self._ops.update({node: op for node, op in written_out.items() if op is not None})
        self._called_paths = frozenset(str(node.target) for node in self.fx_graph.nodes if node.op == "call_module")

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

    def returned(self) -> list[torch.fx.Node]:
        """The nodes whose values forward returns (also inside tuples, lists and dicts), in order."""
        found: list[torch.fx.Node] = []
        pending: list[object] = [self.output_node().args[0] if self.output_node().args else None]
        while pending:
            value = pending.pop(0)
            if isinstance(value, torch.fx.Node):
                found.append(value)
            elif isinstance(value, (tuple, list)):
                pending[:0] = list(value)
            elif isinstance(value, dict):
                pending[:0] = list(value.values())
        return found

    # -- modules -----------------------------------------------------------------------------
    def module_info(self, node: torch.fx.Node) -> ModuleInfo | None:
        return self.modules.get(str(node.target)) if node.op == "call_module" else None

    def module(self, node: torch.fx.Node) -> nn.Module | None:
        info = self.module_info(node)
        return info.module if info else None

    def modules_of_type(self, *types: type[nn.Module]) -> Iterator[ModuleInfo]:
        return (info for info in self.modules.values() if isinstance(info.module, types))

    def runs(self, path: str) -> bool:
        """Whether forward runs module `path`: it was called, or it sits inside a module called as one node.

        The graph does not look inside leaf modules (`nn.TransformerEncoderLayer`, `nn.MultiheadAttention`),
        so their submodules have no calls of their own, yet they run.
        """
        info = self.modules.get(path)
        if info is not None and info.calls > 0:
            return True
        parts = path.split(".")
        return any(".".join(parts[:end]) in self._called_paths for end in range(1, len(parts)))

    def parameter_names(self) -> dict[int, str]:
        """The model's parameters by identity, each named by its first path (tied ones share it)."""
        names: dict[int, str] = {}
        for name, parameter in self.root.named_parameters(remove_duplicate=False):
            names.setdefault(id(parameter), name)
        return names

    # -- data flow ---------------------------------------------------------------------------
    def tensor_inputs(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        """Inputs that carry tensors (parameters read with `get_attr` are not data inputs)."""
        return [n for n in node.all_input_nodes if n.op != "get_attr"]

    def producer(self, node: torch.fx.Node, through: frozenset[str] = SHAPE_OPS) -> torch.fx.Node:
        """The node that really computed `node`'s value: `node` itself, or looking back through `through` ops."""
        current = node
        while self._ops[current] in through:
            inputs = self.tensor_inputs(current)
            if not inputs:
                break
            current = inputs[0]
        return current

    def source(self, node: torch.fx.Node, through: frozenset[str] = SHAPE_OPS) -> torch.fx.Node | None:
        """The node that really produced `node`'s first input, looking through `through` ops."""
        inputs = self.tensor_inputs(node)
        return self.producer(inputs[0], through) if inputs else None

    def consumers(self, node: torch.fx.Node, through: frozenset[str] = SHAPE_OPS) -> list[torch.fx.Node]:
        """Every node that really consumes `node`'s output, looking through `through` ops; shape
        and dtype queries read no values and are not consumers."""
        found: list[torch.fx.Node] = []
        pending = list(node.users)
        seen: set[torch.fx.Node] = set()
        while pending:
            user = pending.pop()
            if user in seen or self._ops[user] in METADATA_QUERIES:
                continue
            seen.add(user)
            if self._ops[user] in through:
                pending.extend(user.users)
            else:
                found.append(user)
        return found

    def is_residual_add(self, node: torch.fx.Node) -> bool:
        """An addition of two computed tensors (not of a parameter or a constant): a skip or residual path."""
        return self._ops[node] == "add" and len(self.tensor_inputs(node)) >= 2

    def reaches(self, start: torch.fx.Node, goal: torch.fx.Node) -> bool:
        """Whether data flows from `start` to `goal` (values, not just a shape read from them)."""
        pending, seen = [start], set()
        while pending:
            node = pending.pop()
            if node is goal:
                return True
            if node not in seen and self._ops[node] not in METADATA_QUERIES:
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

    def site(self, node: torch.fx.Node) -> object:
        """What one finding about `node` stands for: its module for module calls, its source line for
        functional ones (a loop calls one line many times, a shared module is one finding)."""
        return self.enclosing_module(node) if node.op == "call_module" else self.location(node)

    def describe(self, node: torch.fx.Node) -> str:
        """How a finding names a node: "BatchNorm2d `features.1`" or "functional relu (line 19)"."""
        info = self.module_info(node)
        if info is not None:
            return f"{info.type_name} `{info.path}`"
        source = node.meta.get("nnlint_source")
        return f"functional {self._ops[node]}" + (f" (line {source.line})" if source else "")

    def describe_module(self, path: str) -> str:
        """How a finding names a module by path: "Conv2d `features.0`" (the model itself: its class)."""
        info = self.modules.get(path)
        if info is None:
            return f"`{path}`"
        return f"{info.type_name} `{path}`" if path else f"the model ({info.type_name})"

    def shape(self, node: torch.fx.Node) -> tuple[int, ...] | None:
        value = node.meta.get("val")
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def call_argument(node: torch.fx.Node, position: int, names: str | tuple[str, ...], default: Any = None) -> Any:
    """An argument of a call node, whether the call passed it by keyword or by position."""
    for name in (names,) if isinstance(names, str) else names:
        if name in node.kwargs:
            return node.kwargs[name]
    return node.args[position] if len(node.args) > position else default


def module_tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor `module` stores as `name` (a weight, a bias), read without running any code.

    `getattr(module, "weight")` would compute a parametrized weight, and spectral_norm in
    training mode advances its power iteration in the model's buffers when read; a
    parametrized tensor is not stored under its name, so it is None here: not judged.
    """
    for stored in (*stored_tensors(module), module.__dict__):
        if name in stored:
            value = stored[name]
            return value if isinstance(value, torch.Tensor) else None
    return None
