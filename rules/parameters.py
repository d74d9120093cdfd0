"""NN4 — parameters and structure: initialization, unused submodules, frozen models.

Initialization checks read the real weights of the user's model (`graph.root`), read-only;
tensors on the meta device have no values and are skipped.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import math
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Location, Severity
from nnlint.graph import ModelGraph
from nnlint.graph.ir import call_argument, module_tensor
from nnlint.graph.ops import (
    ACTIVATIONS,
    CONVOLUTIONS,
    DROPOUTS,
    LINEAR_MAPS,
    METADATA_QUERIES,
    NORMALIZATIONS,
    POOLING,
    RECTIFIERS,
    RECURRENT,
    RECURRENT_CELLS,
    SHAPE_OPS,
)
from nnlint.registry import Hit, rule
from nnlint.runtime.state import user_grad
from nnlint.sources import attribute_assignments

# Layers whose weights multiply their input: the ones whose units can be symmetric.
_WEIGHTED_OPS = LINEAR_MAPS | RECURRENT | RECURRENT_CELLS | {"multi_head_attention"}
# Layers whose fan-in sets their output scale (He / Glorot apply to them).
_SCALED_OPS = CONVOLUTIONS | {"linear"}


@dataclass(frozen=True)
class LayerWeight:
    """A weight matrix the forward multiplies by, with the call that uses it first."""

    node: torch.fx.Node
    name: str  # the parameter's path in the model, e.g. "encoder.0.weight"
    module: str | None  # the module it belongs to, for the finding
    tensor: torch.Tensor
    fan_in: int
    fan_out: int


def layer_weights(graph: ModelGraph, ops: frozenset[str]) -> list[LayerWeight]:
    """Trainable weights (2-D or more) of the layers with op in `ops` that the forward runs.

    Module weights (`nn.Linear`, `nn.Conv2d`, `nn.LSTM`, …) and parameters passed to functional
    calls (`F.linear(x, self.w)`, `x @ self.w`) alike, each once, on first use.
    """
    names = graph.parameter_names()
    found: dict[int, LayerWeight] = {}

    def add(node: torch.fx.Node, tensor: object, module: str | None, transposed: bool = False) -> None:
        if not isinstance(tensor, torch.Tensor) or id(tensor) in found or not _has_values(tensor) or tensor.dim() < 2:
            return
        fan_in, fan_out = _fans(tensor)
        if transposed:  # `x @ W` stores W as (in, out)
            if tensor.dim() != 2:
                return
            fan_in, fan_out = tensor.shape[0], tensor.shape[1]
        found[id(tensor)] = LayerWeight(node, names.get(id(tensor), "?"), module, tensor, fan_in, fan_out)

    for node in graph.nodes:
        op = graph.op(node)
        module = graph.module(node)
        if module is not None and op in ops:
            if op in _SCALED_OPS:
                add(node, module_tensor(module, "weight"), str(node.target))
            else:
                for _, parameter in module.named_parameters():
                    add(node, parameter, str(node.target))
        elif module is None and op in ops & (_SCALED_OPS | {"matmul", "mm"}):
            weight = call_argument(node, 1, ("weight", "other", "mat2"))
            if isinstance(weight, torch.fx.Node) and weight.op == "get_attr":
                name = str(weight.target)
                add(node, _parameter(graph, name), name.rpartition(".")[0] or None, transposed=op in ("matmul", "mm"))
    return list(found.values())


def _parameter(graph: ModelGraph, name: str) -> torch.Tensor | None:
    try:
        return graph.root.get_parameter(name)
    except (AttributeError, TypeError):
        return None


def _has_values(tensor: torch.Tensor) -> bool:
    """A trainable tensor with real values (not on meta, not a lazy module's placeholder)."""
    return tensor.requires_grad and not tensor.is_meta and not isinstance(tensor, nn.parameter.UninitializedParameter)


# Elements read to estimate a weight's spread: the std of a 2**20-element sample is within about
# 0.1% of the whole tensor's, and a 7B-parameter model is not read in full.
_SAMPLE_SIZE = 1 << 20


def _sample(tensor: torch.Tensor) -> torch.Tensor:
    """An evenly strided view of at most `_SAMPLE_SIZE` entries (no copy for contiguous tensors)."""
    flat = tensor.detach().reshape(-1)
    return flat[:: max(1, flat.numel() // _SAMPLE_SIZE)]


def _sample_values(tensor: torch.Tensor) -> np.ndarray:
    """The sample as float32 values for NumPy, which reduces them on one thread (a view, on the CPU).

    torch splits a reduction of this size across threads, each waiting for a free core: on a
    loaded 2-core machine that took 20-25 ms per weight instead of 1 ms, for the same result.
    """
    return _sample(tensor).float().cpu().numpy()


def _spread(tensor: torch.Tensor) -> float:
    """The standard deviation of the sample (Bessel-corrected, as `torch.std`)."""
    return float(_sample_values(tensor).std(ddof=1))


def _constant_value(tensor: torch.Tensor) -> float | None:
    """The single value of a tensor whose entries are all equal, else None."""
    values = _sample_values(tensor)
    if values.min() != values.max():
        return None  # the usual case, decided from the sample alone (NaN compares unequal, as before)
    low, high = torch.aminmax(tensor.detach())
    return float(low) if bool(low == high) else None


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    """Fan-in and fan-out as `torch.nn.init` computes them: (out, in, *kernel) → in·k, out·k."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _feeds_next_layer(graph: ModelGraph, node: torch.fx.Node) -> bool:
    """Whether `node`'s output is, through per-unit ops only, the whole input of another weighted layer.

    Not for the last layer, a residual branch's output projection, or attention's projections:
    their output is added to a stream, compared or returned, so a small scale there is a choice.
    """
    consumers = graph.consumers(node, through=SHAPE_OPS | DROPOUTS | POOLING | ACTIVATIONS)
    return any(_is_weighted_layer(graph, user) for user in consumers)


_BRANCH_HOPS = 24


def _in_residual_branch(graph: ModelGraph, node: torch.fx.Node) -> bool:
    """Whether `node`'s output, before any normalization, is added to a stream that bypasses it.

    Small weights in a residual branch only shrink what the branch adds; the skip path carries
    the signal (SkipInit, Fixup, ConvNeXt's layer scale, GPT-2's scaled projections).
    """
    downstream: set[torch.fx.Node] = {node}
    frontier = list(node.users)
    while frontier and len(downstream) < _BRANCH_HOPS:
        current = frontier.pop(0)
        if current in downstream or graph.op(current) in NORMALIZATIONS | METADATA_QUERIES or current.op == "output":
            continue
        if graph.is_residual_add(current) and not all(graph.reaches(node, source) for source in graph.tensor_inputs(current)):
            return True  # one side of the sum does not come through `node`: a skip around it
        downstream.add(current)
        frontier.extend(current.users)
    return False


def _is_weighted_layer(graph: ModelGraph, node: torch.fx.Node) -> bool:
    """A layer call, or `x @ w` with a parameter `w` (not an attention product of two activations)."""
    if graph.op(node) in _WEIGHTED_OPS:
        return True
    weight = call_argument(node, 1, ("other", "mat2"))
    return graph.op(node) in ("matmul", "mm") and isinstance(weight, torch.fx.Node) and weight.op == "get_attr"


# -- NN401 ----------------------------------------------------------------------------------------
@rule("NN401", "symmetric-initialization", Severity.WARNING)
def symmetric_initialization(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """A weight tensor that is constant (all zeros, all equal): every unit learns the same thing.

    ## What it does
    Reads the real weights of every Linear, convolution, recurrent and attention layer the
    forward runs (and of parameters used with `F.linear`/`x @ w`) and flags trainable weight
    matrices whose entries are all equal. A nonzero constant is always flagged. All zeros is
    also a deliberate technique — zero-initialized classifiers and residual branches (Fixup),
    LoRA's B matrix, DiT's adaLN modulation, ControlNet's zero convolutions: the layer starts
    as a no-op and the gradient, which differs per unit, breaks the symmetry at the first step.
    So an all-zero weight is flagged only where nothing can break it: its bias is constant (or
    absent) and either a ReLU follows (zero gradient at 0: the layer is dead) or the next
    weighted layer, reached through per-unit ops only (activations, normalization, reshapes,
    dropout, pooling), is constant too. Frozen weights and weights on the meta device are
    skipped.

    ## Why is this bad?
    Units with identical incoming weights compute the same output; when the layers around them
    treat them alike too, they receive the same gradient, stay identical forever, and the layer
    behaves like a single unit — "symmetry breaking" is why weights are initialized randomly.
    With all-zero weights and biases before a ReLU, the layer's gradient is exactly zero: it
    never trains.

    ## Example
    ```python
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.01)
    ```
    Use instead:
    ```python
    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")   # or keep PyTorch's default init
    ```

    ## Fix
    Initialize weights randomly (PyTorch's default, `kaiming_*` for ReLU networks, `xavier_*`
    for tanh/sigmoid); constants are for biases and normalization scales.

    ## References
    - Goodfellow, Bengio & Courville (2016), "Deep Learning", section 8.4 ("the need to break symmetry")
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Parameter Initialization
    - Zhang, Dauphin & Ma (2019), "Fixup Initialization", ICLR (zero-initialized residual branches and classifier)
    """
    weights = layer_weights(graph, _WEIGHTED_OPS | {"matmul", "mm"})
    values = {weight.node: _constant_value(weight.tensor) for weight in weights}  # each weight read once
    constant = {node for node, value in values.items() if value is not None}
    for weight in weights:
        value = values[weight.node]
        if weight.tensor.shape[0] < 2 or value is None:
            continue
        stuck = _zero_layer_stuck(graph, weight.node, constant) if value == 0 else "symmetric"
        if stuck is None:
            continue  # zero-initialized to start as a no-op: the per-unit gradient breaks the symmetry
        effect = (
            "with a zero bias before a ReLU its output and its gradient are 0, so it never trains"
            if stuck == "dead"
            else "its units compute the same output and get the same gradient, so they never become different"
        )
        yield Hit(
            message=f"`{weight.name}` ({'x'.join(map(str, weight.tensor.shape))}) has every entry equal to {value:g}: {effect}",
            fix="initialize it randomly (PyTorch's default, nn.init.kaiming_normal_ for ReLU, nn.init.xavier_uniform_ for tanh)",
            module=weight.module,
            location=None if weight.node.op == "call_module" else graph.location(weight.node),
            evidence={"parameter": weight.name, "value": value, "shape": list(weight.tensor.shape)},
        )


# Activations whose gradient at 0 is 0: after an all-zero layer with zero bias, nothing flows back.
_FLAT_AT_ZERO = frozenset({"relu", "relu6", "threshold"})
# Ops that treat each unit on its own: they cannot make identical units different.
_PER_UNIT_OPS = SHAPE_OPS | DROPOUTS | POOLING | ACTIVATIONS | NORMALIZATIONS


def _zero_layer_stuck(graph: ModelGraph, node: torch.fx.Node, constant_layers: set[torch.fx.Node]) -> str | None:
    """Why an all-zero layer's units can never become different ("dead", "symmetric"), or None if they can.

    Unit i is defined by its weight row, its bias and the next layer's column i. With equal
    rows and biases, the units differ only if the next layer tells them apart: not when a ReLU
    blocks every gradient at 0, and not when the next layer (reached without mixing in another
    tensor) is constant too.
    """
    module = graph.module(node)
    bias = module_tensor(module, "bias") if module is not None else call_argument(node, 2, "bias")
    if isinstance(bias, torch.fx.Node):
        bias = _parameter(graph, str(bias.target)) if bias.op == "get_attr" else None
    if isinstance(bias, torch.Tensor) and (not _has_values(bias) or _constant_value(bias) is None):
        return None  # random biases tell the units apart
    direct = graph.consumers(node, through=SHAPE_OPS | DROPOUTS)
    if direct and all(graph.op(user) in _FLAT_AT_ZERO for user in direct) and (bias is None or _constant_value(bias) == 0):
        return "dead"
    return "symmetric" if any(user in constant_layers for user in graph.consumers(node, through=_PER_UNIT_OPS)) else None


# -- NN402 ----------------------------------------------------------------------------------------
@rule("NN402", "initialization-scale", Severity.WARNING, thresholds={"max-ratio": 10})
def initialization_scale(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Weight standard deviation far from the He/Glorot scale for its fan-in and activation.

    ## What it does
    For every Linear and convolution the forward runs (and parameters used with `F.linear`,
    `F.conv*d` or `x @ w`), reads the real weights, measures their standard deviation and
    compares it with the scale that keeps activations stable: He, √(2/fan_in), when a
    ReLU-family activation follows the layer; Glorot's forward condition, √(1/fan_in), when
    tanh, sigmoid or nothing follows. Flags a weight more than `max-ratio` (default 10) times
    larger than that, or more than `max-ratio` times smaller than the smallest usual scale
    (computed with the larger of fan-in and fan-out, as `mode="fan_out"` and Glorot's average
    do). Not checked: layers followed by a normalization (which undoes any scale), constant
    weights (NN401), frozen weights, weights on the meta device, embeddings and normalization
    parameters (their conventions differ: N(0, 1), ones). Only a layer whose output goes, through
    activations, reshapes, pooling or dropout, straight into another weighted layer is checked
    for being too small, and not when that output is added to a skip connection before any
    normalization: a small last layer (Karpathy's "init well" recipe), a residual branch
    scaled down on purpose (GPT-2's 1/√(2·layers), Fixup, SkipInit, ConvNeXt's layer scale) or an
    attention projection is a choice, not a vanishing signal. PyTorch's default
    initialization (std = 1/√(3·fan_in)) is within a factor √6 ≈ 2.4 of these scales. Weights
    that were already trained are not judged either — they hold a gradient, the optimizer holds
    state for them, or their version counter shows more in-place writes (16) than an
    initialization makes —: a
    file that trains at import, or fine-tunes a loaded checkpoint, has weights whose scale the
    data chose.

    ## Why is this bad?
    Each layer multiplies the variance of its input by fan_in·Var(W) (×½ after a ReLU). He et
    al. (2015) and Glorot & Bengio (2010) choose Var(W) so that this factor is 1. A weight 10×
    too large multiplies the variance by 100 per layer: activations and gradients explode,
    softmax saturates, and the loss at initialization is far from log(C). 10× too small shrinks
    the signal by 100 per layer: it vanishes within a few layers and so do the gradients.

    ## Example
    ```python
    self.fc = nn.Linear(1024, 1024)
    nn.init.normal_(self.fc.weight)          # std 1: 22× the He scale 0.044
    ```
    Use instead:
    ```python
    nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
    ```

    ## Fix
    Use `nn.init.kaiming_normal_`/`kaiming_uniform_` before ReLU-family activations,
    `nn.init.xavier_normal_`/`xavier_uniform_` before tanh/sigmoid or for linear outputs, or keep
    PyTorch's default.

    ## References
    - He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers", ICCV, arXiv:1502.01852, equation 10
    - Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks", AISTATS, equations 10–12
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Parameter Initialization (threshold: an order of magnitude)
    """
    max_ratio = context.threshold("max-ratio")
    for weight in layer_weights(graph, _SCALED_OPS | {"matmul", "mm"}):
        if _already_trained(weight.tensor, context.target.optimizer, context.target.grads_from_first_step):
            continue  # initialization rules judge untrained weights: these moved with the data
        consumers = graph.consumers(weight.node, through=SHAPE_OPS | DROPOUTS | POOLING)
        if weight.tensor.numel() < 2 or any(graph.op(user) in NORMALIZATIONS for user in consumers):
            continue  # one value has no spread (and std() would warn on the user's terminal)
        std = _spread(weight.tensor)
        if not math.isfinite(std) or _constant_value(weight.tensor) is not None:
            continue  # constant weights are NN401's; rounding gives them a tiny nonzero std
        rectified = any(graph.op(user) in RECTIFIERS for user in consumers)
        scheme, gain2 = ("He", 2) if rectified else ("Glorot", 1)
        forward_scale = math.sqrt(gain2 / weight.fan_in)
        smallest_scale = math.sqrt(gain2 / max(weight.fan_in, weight.fan_out))
        if std > max_ratio * forward_scale:
            ratio, reference, fan, direction = std / forward_scale, forward_scale, weight.fan_in, "larger"
        elif std * max_ratio < smallest_scale and _feeds_next_layer(graph, weight.node) and not _in_residual_branch(graph, weight.node):
            ratio, reference, fan, direction = smallest_scale / std, smallest_scale, max(weight.fan_in, weight.fan_out), "smaller"
        else:
            continue
        effect = "activations and gradients grow" if direction == "larger" else "the signal and its gradient shrink"
        initializer = 'kaiming_normal_(w, nonlinearity="relu")' if rectified else "xavier_normal_(w)"
        yield Hit(
            message=(
                f"`{weight.name}` has std {std:.3g}, {ratio:.1f}× {direction} than the {scheme} scale √({gain2}/{fan}) = "
                f"{reference:.3g}{' (a ReLU-family activation follows)' if rectified else ''}: {effect} by about "
                f"{ratio * ratio:.0f}× in variance at this layer"
            ),
            fix=f"initialize it with nn.init.{initializer} or keep PyTorch's default",
            module=weight.module,
            location=None if weight.node.op == "call_module" else graph.location(weight.node),
            evidence={
                "parameter": weight.name,
                "std": std,
                "expected_std": reference,
                "ratio": ratio,
                "scheme": scheme,
                "fan_in": weight.fan_in,
                "fan_out": weight.fan_out,
                "max_ratio": max_ratio,
            },
        )


# In-place writes a weight gets from its initialization: PyTorch's reset_parameters makes one,
# custom schemes a few (normal_, then mul_ or clamp_). An optimizer writes one per step; a weight
# written this many times has been trained (the file trained at import, or loaded a checkpoint
# and fine-tuned it).
_TRAINED_WRITES = 16


def _already_trained(tensor: torch.Tensor, optimizer: object, grads_from_first_step: bool = False) -> bool:
    """Whether a weight was already trained: it has a gradient (backward ran on it: initialization
    never does that; a hand-written loop `param.data.add_(-lr * param.grad)` leaves no other trace)
    that is not the first step's of a script stopped before it (script mode), the optimizer holds
    state for it (Adam's moments, SGD's momentum buffer), or its version counter shows more in-place
    writes than any initialization makes."""
    state = getattr(optimizer, "state", None)
    trained_by_backward = user_grad(tensor) is not None and not grads_from_first_step
    if trained_by_backward or (isinstance(state, dict) and state.get(tensor)):
        return True
    return getattr(tensor, "_version", 0) >= _TRAINED_WRITES  # torch's per-tensor in-place write counter


# -- NN403 ----------------------------------------------------------------------------------------
@rule("NN403", "unused-module", Severity.WARNING)
def unused_module(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """A submodule with trainable parameters that forward never uses.

    ## What it does
    Flags submodules with trainable parameters of which forward uses none: the module is never
    called, is not inside a module that is called as a whole (layers inside
    `nn.TransformerEncoderLayer` run even though the graph does not show them), and none of its
    parameters is read directly (`F.linear(x, self.fc.weight)`) or shared with a used module
    (tied weights). Reports the outermost such module only. A module whose attribute name
    appears in one of its owner's methods other than `__init__` (a branch taken only in
    training or for other inputs, as in `if self.training: aux = self.aux_head(x)`) is not
    flagged: nnlint traces one forward in evaluation mode and cannot see the other branch.

    ## Why is this bad?
    Its parameters get no gradient, so they never train, yet they take memory, optimizer state
    and checkpoint space — and the model is not the one its author thinks it is: usually a
    layer was defined and then forgotten in forward, or forward calls another layer twice.

    ## Example
    ```python
    def __init__(self):
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 256), nn.Linear(256, 10)
    def forward(self, x):
        return self.fc3(F.relu(self.fc1(x)))    # fc2 is never used
    ```

    ## Fix
    Call the module in forward, or delete it. If your training code calls it outside forward,
    suppress the finding on its line.

    ## References
    - PyTorch forum, "Unused parameters and DistributedDataParallel" (`find_unused_parameters=True`): https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html
    - Nikanjam et al. (2022), "Automatic Fault Detection for Deep Learning Programs Using Graph Transformations" (NeuraLint), TOSEM
    """
    used = _parameters_used(graph)
    reported: list[str] = []
    for path, info in graph.modules.items():
        if not path or graph.runs(path) or any(path.startswith(f"{parent}.") for parent in reported):
            continue
        trainable = [p for p in info.module.parameters() if p.requires_grad]
        if not trainable or any(id(p) in used for p in trainable) or _named_in_owner_methods(graph, path):
            continue
        reported.append(path)
        count = sum(p.numel() for p in trainable)
        yield Hit(
            message=(
                f"{info.type_name} `{path}` ({count:,} trainable parameters) is never used by forward: its parameters get "
                "no gradient, yet they take memory, optimizer state and checkpoint space"
            ),
            fix="call it in forward or delete it (if your training code calls it outside forward, suppress this line)",
            module=path,
            evidence={"parameters": count},
        )


def _parameters_used(graph: ModelGraph) -> set[int]:
    """Parameters the forward touches: those of every called module (leaves whole) and those read directly."""
    used: set[int] = set()
    for node in graph.nodes:
        if node.op == "call_module" and (module := graph.module(node)) is not None:
            used.update(id(p) for p in module.parameters())
        elif node.op == "get_attr" and (parameter := _parameter(graph, str(node.target))) is not None:
            used.add(id(parameter))
    return used


def _named_in_owner_methods(graph: ModelGraph, path: str) -> bool:
    """Whether the nearest user-written owner of `path` mentions it in a method other than `__init__`."""
    parts = path.split(".")
    for depth in range(len(parts) - 1, -1, -1):
        owner = graph.modules[".".join(parts[:depth])].module
        names = _attributes_read_by_methods(type(owner))  # type: ignore[arg-type]  # classes hash; torch's stub hides it
        if names is not None:
            return parts[depth] in names
    return False


# Methods that set a model up rather than run it: a name read there is not a use.
_SETUP_METHODS = frozenset({"__init__", "reset_parameters", "_reset_parameters", "init_weights", "_init_weights", "extra_repr", "__repr__"})


@functools.lru_cache(maxsize=512)
def _attributes_read_by_methods(cls: type) -> frozenset[str] | None:
    """`self.<name>` (and `getattr(self, "<name>")`) in the methods of a user class; None for torch's own."""
    names: set[str] = set()
    user_classes = [c for c in cls.__mro__ if issubclass(c, nn.Module) and not c.__module__.startswith("torch.")]
    if not user_classes:
        return None
    for klass in user_classes:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            return None
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) or function.name in _SETUP_METHODS:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                    names.add(node.attr)
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names.add(node.value)
    return frozenset(names)


# -- NN404 ----------------------------------------------------------------------------------------
@rule("NN404", "no-trainable-parameters", Severity.WARNING)
def no_trainable_parameters(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Every parameter of the model is frozen: there is nothing to train.

    ## What it does
    Flags a model that has parameters, none of which has `requires_grad=True`. Models without
    any parameter are not reported.

    ## Why is this bad?
    An optimizer built from `model.parameters()` would update nothing (or raise on an empty
    list once frozen parameters are filtered out), and the loss would not move: usually a
    freezing loop (`p.requires_grad = False` for a pretrained backbone) also caught the new
    head, or the model was built under `torch.no_grad()`-style code that detached it.

    ## Example
    ```python
    model = torchvision.models.resnet18(weights="DEFAULT")
    for p in model.parameters():
        p.requires_grad = False
    model.fc = nn.Linear(512, 10)   # forgotten: this line came before the loop
    ```

    ## Fix
    Unfreeze the parameters you mean to train (`p.requires_grad_(True)`), e.g. replace the head
    after freezing the backbone. If the model is only used for inference, lint it without
    training context or suppress this finding.

    ## References
    - PyTorch, "Autograd mechanics — Locally disabling gradient computation / requires_grad": https://pytorch.org/docs/stable/notes/autograd.html
    - PyTorch tutorial, "Finetuning Torchvision Models" (freeze the backbone, then build the new head)
    """
    parameters = list(graph.root.parameters())
    if not parameters or any(p.requires_grad for p in parameters):
        return
    count = sum(p.numel() for p in parameters)
    yield Hit(
        message=f"all {len(parameters)} parameter tensors ({count:,} values) have requires_grad=False: training would change nothing",
        fix="set requires_grad=True on the parameters you mean to train (e.g. the new head after freezing the backbone)",
        evidence={"parameters": count, "trainable": 0},
    )


# -- NN405, NN406 ---------------------------------------------------------------------------------
# What every nn.Module keeps in its __dict__ itself (hooks, registries, the training flag).
_MODULE_INTERNALS = frozenset(vars(nn.Module()))


@rule("NN405", "unregistered-submodules", Severity.WARNING)
def unregistered_submodules(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Modules or parameters held in a plain list, tuple or dict attribute: invisible to PyTorch.

    ## What it does
    Looks at every submodule's plain attributes and flags a `list`, `tuple`, `dict` or `set`
    (also nested one level) holding `nn.Module`s or `nn.Parameter`s that are not registered
    anywhere in the model. Containers that only refer to registered modules (a list of
    references for hooks) are fine, and so is a private attribute (`self._teacher =
    [teacher]`), the known idiom for keeping a module out of `parameters()` on purpose.

    ## Why is this bad?
    PyTorch registers submodules and parameters only when they are assigned directly or held
    in `nn.ModuleList`/`nn.ModuleDict`/`nn.ParameterList`/`nn.ParameterDict`. Layers in a
    plain Python list still run in forward, but they are not in `model.parameters()` — the
    optimizer never updates them, so they keep their random initialization —, not in
    `state_dict()` (checkpoints lose them), not moved by `model.to(device)` (a device-mismatch
    error on the GPU), and not switched by `model.train()`/`model.eval()` (their dropout and
    BatchNorm stay in whatever mode they were built in).

    ## Example
    ```python
    self.blocks = [Block(width) for _ in range(depth)]
    ```
    Use instead:
    ```python
    self.blocks = nn.ModuleList([Block(width) for _ in range(depth)])
    ```

    ## Fix
    Wrap the container: `nn.ModuleList`, `nn.ModuleDict`, `nn.ParameterList`,
    `nn.ParameterDict` (or `nn.Sequential`).

    ## References
    - PyTorch, `torch.nn.ModuleList` ("Holds submodules in a list … properly registered, and will be visible by all Module methods"): https://pytorch.org/docs/stable/generated/torch.nn.ModuleList.html
    - PyTorch forum, "When should I use nn.ModuleList and when should I use nn.Sequential?" (modules in a Python list are not registered)
    """
    registered_modules = {id(m) for m in graph.root.modules()}
    registered_parameters = {id(p) for p in graph.root.parameters()}
    for path, info in graph.modules.items():
        for name, value in vars(info.module).items():
            if name in _MODULE_INTERNALS or name.startswith("_") or not isinstance(value, (list, tuple, dict, set)):
                continue
            hidden = [
                item
                for item in _contained(value)
                if (isinstance(item, nn.Module) and id(item) not in registered_modules)
                or (isinstance(item, nn.Parameter) and id(item) not in registered_parameters)
            ]
            if not hidden:
                continue
            parameters = sum(p.numel() for item in hidden for p in ([item] if isinstance(item, nn.Parameter) else item.parameters()))
            kind = type(value).__name__
            what = "parameter" if isinstance(hidden[0], nn.Parameter) else "module"
            wrapper = _REGISTERING_CONTAINER[kind, isinstance(hidden[0], nn.Parameter)]
            attribute = f"{path}.{name}" if path else name
            yield Hit(
                message=(
                    f"`{attribute}` is a plain {kind} holding {len(hidden)} {what}(s) "
                    f"({parameters:,} parameters) that PyTorch does not register: they are not in model.parameters() (the optimizer "
                    "never trains them), not in state_dict(), not moved by .to() and not switched by train()/eval()"
                ),
                fix=f"wrap it: self.{name} = {wrapper}(...)",
                module=path or None,
                location=_assignment_location(info.module, name) or info.location,
                evidence={"attribute": attribute, "container": kind, "unregistered": len(hidden), "parameters": parameters},
            )


_REGISTERING_CONTAINER = {
    ("list", False): "nn.ModuleList",
    ("tuple", False): "nn.ModuleList",
    ("set", False): "nn.ModuleList",
    ("dict", False): "nn.ModuleDict",
    ("list", True): "nn.ParameterList",
    ("tuple", True): "nn.ParameterList",
    ("set", True): "nn.ParameterList",
    ("dict", True): "nn.ParameterDict",
}


def _contained(value: object, depth: int = 2) -> Iterator[object]:
    """The items of a container, and of containers inside it down to `depth` levels."""
    items: Iterable[object] = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple, set)) else ()
    for item in items:
        if isinstance(item, (list, tuple, dict, set)) and depth > 1:
            yield from _contained(item, depth - 1)
        else:
            yield item


def _assignment_location(module: nn.Module, name: str) -> Location | None:
    """Where a user class assigns `self.<name> = …` (its __init__, usually)."""
    for klass in type(module).__mro__:
        if not issubclass(klass, nn.Module) or klass.__module__.startswith("torch."):
            continue
        try:
            filename = inspect.getsourcefile(klass)
            _, first = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        if filename is None:
            continue
        end = first + len(inspect.getsourcelines(klass)[0])
        for line, owner in attribute_assignments(filename, name):
            if owner == "self" and first <= line < end:
                return Location(filename, line)
    return None


@rule("NN406", "requires-grad-set-on-module", Severity.WARNING)
def requires_grad_set_on_module(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """`module.requires_grad = False` sets a plain attribute and freezes nothing.

    ## What it does
    Flags a module that has an attribute `requires_grad` set to False (assigned on the module,
    not on its parameters) while its parameters still require gradients. Points at the
    assignment when it is in the model's file or class, else at the module.

    ## Why is this bad?
    `requires_grad` is a property of tensors. `nn.Module` has no such attribute, so
    `model.encoder.requires_grad = False` just stores a new Python attribute on the module:
    no error, no warning, and every parameter of the encoder keeps `requires_grad=True` and
    keeps training. The "frozen" pretrained part is fine-tuned (and possibly destroyed by a
    learning rate chosen for the new head), and it costs the memory and time of its gradients.

    ## Example
    ```python
    model.encoder.requires_grad = False
    ```
    Use instead:
    ```python
    model.encoder.requires_grad_(False)       # the method, with the underscore
    ```

    ## Fix
    Call `module.requires_grad_(False)`, or set `p.requires_grad = False` for each parameter in
    `module.parameters()`.

    ## References
    - PyTorch, `torch.nn.Module.requires_grad_` ("Change if autograd should record operations on parameters in this module"): https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.requires_grad_
    - PyTorch, "Autograd mechanics — Setting requires_grad": https://pytorch.org/docs/stable/notes/autograd.html
    """
    for path, info in graph.modules.items():
        if vars(info.module).get("requires_grad", True) is not False:
            continue
        trainable = [p for p in info.module.parameters() if p.requires_grad]
        if not trainable:
            continue
        count = sum(p.numel() for p in trainable)
        yield Hit(
            message=(
                f"{graph.describe_module(path)} has an attribute requires_grad=False, which nn.Module does not read: "
                f"its {len(trainable)} parameter tensors ({count:,} values) still require gradients and keep training"
            ),
            fix=f"call {path.rpartition('.')[2] or 'model'}.requires_grad_(False) (the method), or set requires_grad on each parameter",
            module=path or None,
            location=_requires_grad_assignment(graph, context, path) or info.location,
            evidence={"trainable_parameters": count},
        )


def _requires_grad_assignment(graph: ModelGraph, context: RuleContext, path: str) -> Location | None:
    """The `<x>.requires_grad = …` line that names this module: in the target's file, or `self.<name>` in its owner's class."""
    name = path.rpartition(".")[2]
    files = [context.target_location.file] if context.target_location else []
    owner = graph.modules.get(path.rpartition(".")[0]) if path else None
    if owner is not None:
        with contextlib.suppress(TypeError):
            files.append(inspect.getsourcefile(type(owner.module)) or "")
    for filename in files:
        for line, written in attribute_assignments(filename, "requires_grad"):
            last = written.rpartition(".")[2]
            if (name and (last == name or written.endswith(f"[{name!r}]"))) or (not name and written.isidentifier()):
                return Location(filename, line)
    return None
