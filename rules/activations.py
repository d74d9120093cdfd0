"""NN3 — activations, the output head and the loss: saturating stacks, redundant or missing
nonlinearities, and heads that do not match the loss they feed."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import torch.fx
import torch.nn.functional as F
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Severity
from nnlint.graph import ModelGraph
from nnlint.graph.ir import call_argument
from nnlint.graph.ops import (
    ACTIVATIONS,
    CLIPPING_ACTIVATIONS,
    CONVOLUTIONS,
    DROPOUTS,
    LINEAR_MAPS,
    NORMALIZATIONS,
    POOLING,
    RECURRENT,
    RECURRENT_CELLS,
    SATURATING_ACTIVATIONS,
    SHAPE_OPS,
)
from nnlint.registry import Hit, rule
from nnlint.runtime.torch_compat import ConvBase

# What sits between the last layer and the loss without changing what the head computes.
_HEAD_PASS_THROUGH = SHAPE_OPS | DROPOUTS
# Output ops that squash into (0, 1): what BCELoss wants and BCEWithLogitsLoss must not get.
_SQUASH_TO_UNIT = frozenset({"sigmoid", "hardsigmoid"})
# Output ops whose values are not probabilities: BCELoss would read raw scores.
_RAW_SCORES = LINEAR_MAPS | {"matmul", "mm", "bmm", "addmm", "baddbmm", "einsum"} | (ACTIVATIONS - _SQUASH_TO_UNIT)


# -- the loss and the model's prediction ----------------------------------------------------------
_LOSS_KINDS: tuple[tuple[type[nn.Module], object, str], ...] = (
    (nn.CrossEntropyLoss, F.cross_entropy, "cross_entropy"),
    (nn.NLLLoss, F.nll_loss, "nll"),
    (nn.BCEWithLogitsLoss, F.binary_cross_entropy_with_logits, "bce_with_logits"),
    (nn.BCELoss, F.binary_cross_entropy, "bce"),
    (nn.MultiLabelSoftMarginLoss, F.multilabel_soft_margin_loss, "multilabel_soft_margin"),
)
_LOSS_NAMES = {
    "cross_entropy": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "bce_with_logits": "BCEWithLogitsLoss",
    "bce": "BCELoss",
    "multilabel_soft_margin": "MultiLabelSoftMarginLoss",
}


def loss_kind(loss_fn: object) -> str | None:
    """Which of the classification losses `loss_fn` is — a module, its class, or the functional form."""
    while isinstance(loss_fn, functools.partial):
        loss_fn = loss_fn.func
    for cls, function, kind in _LOSS_KINDS:
        if loss_fn is function or isinstance(loss_fn, cls) or (isinstance(loss_fn, type) and issubclass(loss_fn, cls)):
            return kind
    return None


def prediction(graph: ModelGraph) -> torch.fx.Node | None:
    """The output the loss reads: the returned tensor, the first of a tuple, or a dict's "logits"."""
    value: object = graph.output_node().args[0] if graph.output_node().args else None
    while not isinstance(value, torch.fx.Node):
        if isinstance(value, (tuple, list)) and value:
            value = value[0]
        elif isinstance(value, dict) and ("logits" in value or len(value) == 1):
            value = value.get("logits", next(iter(value.values())))
        else:
            return None
    return value


@dataclass(frozen=True)
class Head:
    """The op that computed the prediction the loss reads, seen through reshapes and dropout."""

    node: torch.fx.Node
    op: str


def head_of(graph: ModelGraph) -> Head | None:
    predicted = prediction(graph)
    if predicted is None:
        return None
    node = graph.producer(predicted, through=_HEAD_PASS_THROUGH)
    op = graph.op(node)
    if op == "log":  # torch.log(F.softmax(x)): log-probabilities, spelled in two steps
        inner = graph.source(node, through=_HEAD_PASS_THROUGH)
        if inner is not None and graph.op(inner) == "softmax":
            op = "log_softmax"
    return Head(node, op)


def _head_hit(graph: ModelGraph, head: Head, message: str, fix: str, severity: Severity | None = None, **evidence: object) -> Hit:
    return Hit(
        message=message,
        fix=fix,
        module=graph.enclosing_module(head.node),
        location=graph.location(head.node),
        evidence={"output_op": head.op, **evidence},
        severity=severity,
    )


# -- NN301 ----------------------------------------------------------------------------------------
@rule("NN301", "saturating-activation-stack", Severity.WARNING, thresholds={"min-depth": 4})
def saturating_activation_stack(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """A deep chain of sigmoid/tanh layers with no normalization or residual path: vanishing gradients.

    ## What it does
    Follows the data flow and counts saturating activations (sigmoid, tanh, hardtanh,
    hardsigmoid, softsign, logsigmoid) that follow one another with only linear maps, reshapes,
    pooling or dropout between them. A normalization layer, a residual addition, or a
    non-saturating activation (ReLU, GELU, …) ends the chain; recurrent modules are not looked
    into. Reports each chain of at least `min-depth` (default 4) activations once, at its first
    activation.

    ## Why is this bad?
    Backpropagation multiplies the gradient by each activation's derivative. The sigmoid's is
    at most 1/4 and tanh's at most 1 (only at 0); both are near 0 once units saturate. Through
    four sigmoid layers the gradient shrinks by at least 1/4⁴ = 1/256 before weights are even
    counted, so the first layers barely learn. Glorot & Bengio (2010) watched the top hidden
    layer of a deep sigmoid network saturate at initialization and training stall; the lecture
    names this the vanishing gradient problem, fixed with ReLU-family activations,
    normalization, or residual connections.

    ## Example
    ```python
    nn.Sequential(
        nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
        nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1),
    )
    ```
    Use instead: `nn.ReLU()`/`nn.GELU()` between the layers, or a `nn.LayerNorm(64)` before
    each `nn.Tanh()`.

    ## Fix
    Use a ReLU-family activation in hidden layers, put a normalization layer before the
    saturating ones, or add residual connections around each block.

    ## References
    - Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks", AISTATS
    - Hochreiter (1991); Bengio, Simard & Frasconi (1994), "Learning long-term dependencies with gradient descent is difficult"
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Activation Functions; vanishing gradients
    """
    min_depth = int(context.threshold("min-depth"))
    depth: dict[torch.fx.Node, int] = {}
    start: dict[torch.fx.Node, torch.fx.Node | None] = {}
    deepest: dict[torch.fx.Node, int] = {}
    for node in graph.nodes:
        op = graph.op(node)
        inputs = [n for n in graph.tensor_inputs(node) if n in depth]
        longest = max(inputs, key=lambda n: depth[n], default=None)
        if op in NORMALIZATIONS or op in RECURRENT or op in RECURRENT_CELLS or graph.is_residual_add(node):
            depth[node], start[node] = 0, None
        elif op in SATURATING_ACTIVATIONS:
            depth[node] = (depth[longest] if longest is not None else 0) + 1
            start[node] = start[longest] if longest is not None and depth[longest] > 0 else node
        elif op in ACTIVATIONS:
            depth[node], start[node] = 0, None
        else:
            depth[node] = depth[longest] if longest is not None else 0
            start[node] = start[longest] if longest is not None else None
        first = start[node]
        if op in SATURATING_ACTIVATIONS and first is not None:
            deepest[first] = max(deepest.get(first, 0), depth[node])
    for first, length in deepest.items():
        if length < min_depth:
            continue
        yield Hit(
            message=(
                f"{length} saturating activations in a row start at {graph.describe(first)}, with no normalization or "
                "residual path between them: each multiplies the gradient by its derivative (sigmoid' ≤ 1/4, tanh' ≤ 1, "
                "both ≈ 0 when saturated), so early layers barely learn"
            ),
            fix="use ReLU/GELU in hidden layers, put a normalization layer before each sigmoid/tanh, or add residual connections",
            module=graph.enclosing_module(first),
            location=graph.location(first),
            evidence={"depth": length, "min_depth": min_depth, "first_activation": graph.op(first)},
        )


# -- NN302, NN303 ---------------------------------------------------------------------------------
@rule("NN302", "softmax-before-cross-entropy", Severity.WARNING, requires=("loss_fn",))
def softmax_before_cross_entropy(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """The model outputs softmax/log-softmax and the loss is CrossEntropyLoss, which applies log-softmax itself.

    ## What it does
    Looks at the op that produces the model's output (seen through reshapes and dropout) and
    at `loss_fn`, and flags:
    - softmax output with `CrossEntropyLoss` (warning);
    - softmax output with `NLLLoss`, which expects log-probabilities (warning);
    - softmax output with a loss that squashes scores itself: `BCEWithLogitsLoss`,
      `MultiLabelSoftMarginLoss` (warning; a multi-label head ported with a softmax);
    - log-softmax output with `CrossEntropyLoss` (information: redundant, but log-softmax of
      log-probabilities leaves them unchanged, so the loss is right).
    `torch.log(F.softmax(x))` counts as log-softmax. The functional losses count too.

    ## Why is this bad?
    `nn.CrossEntropyLoss` is log-softmax followed by negative log-likelihood: it expects raw
    logits. Given probabilities, it computes the softmax of values squeezed into [0, 1], so the
    loss can never get close to 0 (for 10 classes it stays above about 1.46) and its gradients
    shrink: training is slow and plateaus. `nn.NLLLoss` given probabilities computes −p instead
    of −log p, a different and badly scaled objective.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(128, 10), nn.Softmax(dim=1))
    loss_fn = nn.CrossEntropyLoss()
    ```
    Use instead:
    ```python
    model = nn.Sequential(nn.Linear(128, 10))   # logits; apply softmax only for predictions
    loss_fn = nn.CrossEntropyLoss()
    ```

    ## Fix
    Return logits and keep `CrossEntropyLoss`; apply `softmax` only where you need
    probabilities (inference). With `NLLLoss`, return `log_softmax`.

    ## References
    - PyTorch, `torch.nn.CrossEntropyLoss` ("The input is expected to contain the unnormalized logits"): https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): output layer and loss
    """
    kind = loss_kind(context.target.loss_fn)
    head = head_of(graph)
    mismatch = _PROBABILITY_MISMATCHES.get((head.op, kind)) if head is not None and kind is not None else None
    if head is None or kind is None or mismatch is None:
        return
    consequence, fix, severity = mismatch
    loss = _LOSS_NAMES[kind]
    yield _head_hit(
        graph,
        head,
        f"the model's output comes from {graph.describe(head.node)} and the loss is {loss}, {consequence}",
        fix,
        severity=severity,
        loss=loss,
    )


# (output op, loss) -> (what goes wrong, the fix, severity if not the rule's)
_PROBABILITY_MISMATCHES: dict[tuple[str, str], tuple[str, str, Severity | None]] = {
    ("softmax", "cross_entropy"): (
        "which applies log-softmax itself: it receives probabilities in [0, 1], so the loss cannot approach 0 and its gradients shrink",
        "return the logits (remove the softmax) and apply softmax only when you need probabilities",
        None,
    ),
    ("softmax", "nll"): (
        "which expects log-probabilities: given probabilities it minimizes -p instead of -log p",
        "use log_softmax instead of softmax, or return logits and use CrossEntropyLoss",
        None,
    ),
    ("softmax", "bce_with_logits"): (
        "which applies a sigmoid itself: softmax probabilities squashed again land in (0.5, 0.73), so the loss cannot "
        "approach 0 and its gradients shrink",
        "return the logits (remove the softmax); BCEWithLogitsLoss turns them into probabilities itself",
        None,
    ),
    ("softmax", "multilabel_soft_margin"): (
        "which applies a log-sigmoid itself: softmax probabilities squashed again land in (0.5, 0.73), so the loss cannot "
        "approach 0 and its gradients shrink",
        "return the logits (remove the softmax); MultiLabelSoftMarginLoss turns them into probabilities itself",
        None,
    ),
    ("log_softmax", "cross_entropy"): (
        "which applies log-softmax again: harmless (log-softmax leaves log-probabilities unchanged) but redundant",
        "use NLLLoss with log-softmax outputs, or return logits with CrossEntropyLoss",
        Severity.INFO,
    ),
}


@rule("NN303", "sigmoid-and-bce-mismatch", Severity.WARNING)
def sigmoid_and_bce_mismatch(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Sigmoid output with BCEWithLogitsLoss (sigmoid applied twice), raw scores with BCELoss, or a softmax over one class.

    ## What it does
    Looks at the op that produces the model's output (through reshapes and dropout) and at
    `loss_fn`, and flags a sigmoid (or hardsigmoid) output with `BCEWithLogitsLoss`, and an
    output that comes straight from a linear layer, a matrix product or a non-squashing
    activation with `BCELoss`. Other outputs (softmax, clamping, custom ops) are left alone.
    Without a loss it still flags a softmax or log-softmax anywhere in the model over a
    dimension of size 1 — the binary classifier ported from Keras' `Dense(1,
    activation='softmax')` —, which is a constant (1, or 0 for log-softmax): the output never
    changes and every gradient through it is exactly zero.

    ## Why is this bad?
    `BCEWithLogitsLoss` applies the sigmoid itself (fused with the log for numerical
    stability). After the model's own sigmoid it squashes twice: every prediction lands in
    (0.5, 0.73), the loss cannot fall far, and gradients are tiny. `BCELoss` expects
    probabilities: fed raw scores it raises on values outside [0, 1] or, if they happen to fit,
    optimizes the wrong quantity.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(32, 1), nn.Sigmoid())
    loss_fn = nn.BCEWithLogitsLoss()
    ```
    Use instead:
    ```python
    model = nn.Sequential(nn.Linear(32, 1))
    loss_fn = nn.BCEWithLogitsLoss()   # apply torch.sigmoid only for predictions
    ```

    ## Fix
    Prefer logits with `BCEWithLogitsLoss` (more stable than sigmoid + `BCELoss`). Keep the
    sigmoid only if the loss is `BCELoss`.

    ## References
    - PyTorch, `torch.nn.BCEWithLogitsLoss` ("more numerically stable than using a plain Sigmoid followed by a BCELoss"): https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html
    - PyTorch, `torch.nn.BCELoss`: https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html
    """
    yield from _softmax_over_one_class(graph)
    kind = loss_kind(context.target.loss_fn)
    head = head_of(graph)
    if head is None:
        return
    described = graph.describe(head.node)
    if kind == "bce_with_logits" and head.op in _SQUASH_TO_UNIT:
        yield _head_hit(
            graph,
            head,
            f"the model's output comes from {described} and the loss is BCEWithLogitsLoss, which applies a sigmoid "
            "itself: predictions are squashed twice into (0.5, 0.73) and the gradients nearly vanish",
            "remove the sigmoid from the model (apply torch.sigmoid only for predictions), or use BCELoss",
            loss="BCEWithLogitsLoss",
        )
    elif kind == "bce" and head.op in _RAW_SCORES:
        yield _head_hit(
            graph,
            head,
            f"the model's output comes from {described} and the loss is BCELoss, which expects probabilities in [0, 1]: "
            "raw scores make it raise or optimize the wrong quantity",
            "use BCEWithLogitsLoss on the raw outputs (more stable), or end the model with a sigmoid",
            loss="BCELoss",
        )


def softmax_over_one_class(graph: ModelGraph) -> Iterator[tuple[torch.fx.Node, int, tuple[int, ...]]]:
    """Softmax or log-softmax calls over a dimension of size 1, with that dimension and the input shape."""
    for node in graph.nodes_with_op(("softmax", "log_softmax")):
        inputs = graph.tensor_inputs(node)
        shape = graph.shape(inputs[0]) if inputs else None
        dim = _softmax_dim(graph, node)
        if shape is not None and dim is not None and -len(shape) <= dim < len(shape) and shape[dim] == 1:
            yield node, dim, shape


def _softmax_over_one_class(graph: ModelGraph) -> Iterator[Hit]:
    """Softmax or log-softmax over a dimension of size 1: a constant output, zero gradients."""
    seen: set[object] = set()
    for node, dim, shape in softmax_over_one_class(graph):
        if graph.site(node) in seen:
            continue
        seen.add(graph.site(node))
        constant = "1" if graph.op(node) == "softmax" else "0"
        yield Hit(
            message=(
                f"{graph.describe(node)} normalizes over dimension {dim}, of size 1 (shape {tuple(shape)}): its output is always "
                f"{constant} whatever the input, so every gradient through it is exactly zero and the model cannot learn"
            ),
            fix="for one output unit use a sigmoid (or return the logit with BCEWithLogitsLoss); for C classes output C units",
            module=graph.enclosing_module(node),
            location=graph.location(node),
            evidence={"op": graph.op(node), "dim": dim, "shape": list(shape)},
        )


def _softmax_dim(graph: ModelGraph, node: torch.fx.Node) -> int | None:
    module = graph.module(node)
    if module is not None:
        dim = getattr(module, "dim", None)
        return -3 if isinstance(module, nn.Softmax2d) else dim if isinstance(dim, int) else None
    dim = call_argument(node, 1, "dim")
    return dim if isinstance(dim, int) and not isinstance(dim, bool) else None


# -- NN304, NN305 ---------------------------------------------------------------------------------
@rule("NN304", "redundant-activation", Severity.WARNING)
def redundant_activation(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Two activations in a row (ReLU after ReLU).

    ## What it does
    Flags an activation whose input comes straight from another activation, also through
    reshapes, dropout and pooling. An activation whose output gates a product (`x *
    torch.tanh(F.softplus(x))`, Mish written out) is a deliberate composition and not flagged.

    ## Why is this bad?
    The second activation only sees the first one's range: ReLU after ReLU does nothing,
    sigmoid after ReLU maps everything into [0.5, 1), tanh after sigmoid into (0, 0.76). It is
    usually a copy-paste slip or a block whose own trailing activation is followed by another —
    and often a linear layer was meant to sit between them.

    ## Example
    ```python
    nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.ReLU(), nn.Linear(64, 10))
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    ```

    ## Fix
    Remove one of the two, or insert the layer that was meant to be between them.

    ## References
    - Nikanjam et al. (2022), "Automatic Fault Detection for Deep Learning Programs Using Graph Transformations",
      TOSEM (NeuraLint): redundant activation
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Activation Functions
    """
    see_through = SHAPE_OPS | DROPOUTS | POOLING
    seen: set[object] = set()
    for node in graph.nodes_with_op(ACTIVATIONS):
        before = graph.source(node, through=see_through)
        if before is None or graph.op(before) not in ACTIVATIONS or graph.site(node) in seen:
            continue
        if any(graph.op(user) == "mul" for user in graph.consumers(node)):
            continue  # a gate: the activation's output multiplies another tensor
        seen.add(graph.site(node))
        yield Hit(
            message=(
                f"{graph.describe(node)} directly follows {graph.describe(before)}: two activations in a row, "
                "so the second only sees the first's range — one is redundant or a layer is missing between them"
            ),
            fix="remove one of the two activations, or insert the layer meant to sit between them",
            module=graph.enclosing_module(node),
            location=graph.location(node),
            evidence={"activation": graph.op(node), "previous_activation": graph.op(before)},
        )


@rule("NN305", "missing-nonlinearity", Severity.WARNING)
def missing_nonlinearity(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Two linear maps in a row (Linear→Linear, Conv→Conv) collapse into one.

    ## What it does
    Flags a Linear or convolution (module or functional) whose input comes straight from
    another one, also through flatten, reshape, view and dropout. A normalization layer, an
    activation, a residual addition or a transpose/permute between them ends the pattern. Three
    deliberate designs are not flagged: an output shared by several maps (FPN levels read by a
    classification and a regression head; one projection read by query, key and value), a grouped or depthwise convolution next to its
    pointwise partner (separable convolution), and a low-rank bottleneck whose middle width is
    smaller than both ends (e.g. `Linear(512, 32)` → `Linear(32, 512)`).

    ## Why is this bad?
    The composition of two affine maps is one affine map: W₂(W₁x + b₁) + b₂ = (W₂W₁)x + (W₂b₁ +
    b₂). The second layer adds parameters and compute but no expressive power — the network is
    shallower than it looks. Usually an activation was forgotten.

    ## Example
    ```python
    nn.Sequential(nn.Linear(784, 256), nn.Linear(256, 10))
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    ```

    ## Fix
    Insert a nonlinearity (ReLU, GELU, …) between the two, or merge them into one layer.

    ## References
    - Goodfellow, Bengio & Courville (2016), "Deep Learning", section 6.1 (why a network of linear layers stays linear)
    - Nikanjam et al. (2022), "Automatic Fault Detection for Deep Learning Programs Using Graph Transformations",
      TOSEM (NeuraLint): missing activation
    """
    see_through = (SHAPE_OPS - {"permute", "transpose", "movedim"}) | DROPOUTS
    maps = CONVOLUTIONS | {"linear"}
    seen: set[tuple[object, object]] = set()
    for node in graph.nodes_with_op(maps):
        before = graph.source(node, through=see_through)
        if before is None or graph.op(before) not in maps:
            continue
        if len(graph.consumers(before, through=see_through)) > 1:
            continue  # a shared representation (FPN levels into two heads, one projection into Q, K and V)
        pair = (graph.site(before), graph.site(node))
        if pair in seen or _is_factorization(graph, before, node):
            continue
        seen.add(pair)
        yield Hit(
            message=(
                f"{graph.describe(node)} reads the output of {graph.describe(before)} with no nonlinearity between them: "
                "two linear maps compose into one, so the extra layer adds parameters but no expressive power"
            ),
            fix=f"insert an activation (e.g. ReLU) between {graph.describe(before)} and {graph.describe(node)}, or merge them",
            module=graph.enclosing_module(node),
            location=graph.location(node),
            evidence={"first": graph.enclosing_module(before), "second": graph.enclosing_module(node)},
        )


@dataclass(frozen=True)
class _MapShape:
    kind: str  # "linear" or "conv"
    inputs: int
    outputs: int
    groups: int


def _map_shape(graph: ModelGraph, node: torch.fx.Node) -> _MapShape | None:
    """Input/output features (or channels) and groups of a Linear or convolution, module or functional."""
    module = graph.module(node)
    if isinstance(module, nn.Linear):
        return _MapShape("linear", module.in_features, module.out_features, 1)
    if isinstance(module, ConvBase):
        return _MapShape("conv", module.in_channels, module.out_channels, module.groups)
    weight = call_argument(node, 1, "weight")
    shape = graph.shape(weight) if isinstance(weight, torch.fx.Node) else None
    if module is not None or shape is None or len(shape) < 2:
        return None
    if graph.op(node) == "linear":
        return _MapShape("linear", shape[1], shape[0], 1)
    groups = call_argument(node, 6, "groups", 1)
    groups = groups if isinstance(groups, int) else 1
    if graph.op(node).startswith("conv_transpose"):
        return _MapShape("conv", shape[0], shape[1] * groups, groups)
    return _MapShape("conv", shape[1] * groups, shape[0], groups)


def _is_factorization(graph: ModelGraph, first: torch.fx.Node, second: torch.fx.Node) -> bool:
    """A separable convolution or a low-rank bottleneck: two maps on purpose, cheaper than one."""
    a, b = _map_shape(graph, first), _map_shape(graph, second)
    if a is None or b is None:
        return False
    if a.kind == b.kind == "conv" and (a.groups > 1 or b.groups > 1):
        return True
    return a.kind == b.kind and a.outputs == b.inputs and a.outputs < min(a.inputs, b.outputs)


# -- NN306 ----------------------------------------------------------------------------------------
@rule("NN306", "activation-on-logits", Severity.WARNING, requires=("loss_fn",))
def activation_on_logits(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """ReLU (or another clipping activation) right before a classification loss.

    ## What it does
    With `CrossEntropyLoss` or `BCEWithLogitsLoss` as `loss_fn` (module or functional), flags a
    model whose output comes from an activation bounded on at least one side — ReLU, ReLU6,
    ELU, GELU, SiLU, softplus, tanh, hardtanh, sigmoid (with cross-entropy), … — seen through
    reshapes and dropout. Sigmoid with `BCEWithLogitsLoss` is NN303's case. With `NLLLoss` (or
    `CrossEntropyLoss`) after a final `log_softmax`, flags such an activation right before the
    log_softmax: ReLU → log_softmax → NLLLoss, as in the 2017 pytorch/examples MNIST net.

    ## Why is this bad?
    These losses expect logits: unbounded real scores whose sign and size carry the model's
    confidence. A ReLU clips every negative logit to 0 and passes no gradient to it, so a class
    can only be made less likely by pushing the others up; with `BCEWithLogitsLoss` a
    non-negative logit means a probability of at least 0.5 for every label. Bounded activations
    (tanh, sigmoid) cap the confidence the model can ever express.

    ## Example
    ```python
    nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10), nn.ReLU())
    loss_fn = nn.CrossEntropyLoss()
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    ```

    ## Fix
    End the model with the last linear layer; the loss turns logits into probabilities itself.

    ## References
    - Nikanjam et al. (2022), "Automatic Fault Detection for Deep Learning Programs Using Graph Transformations",
      TOSEM (NeuraLint): wrong last-layer activation
    - PyTorch, `torch.nn.CrossEntropyLoss`: https://pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html
    """
    kind = loss_kind(context.target.loss_fn)
    head = head_of(graph)
    clipped = _clipped_logits(graph, head, kind) if head is not None and kind is not None else None
    if clipped is None or kind is None:
        return
    loss = _LOSS_NAMES[kind]
    yield _head_hit(
        graph,
        clipped,
        f"the logits {loss} reads come from {graph.describe(clipped.node)}, which bounds them: the loss expects unbounded "
        "scores, so the model cannot express the confidence it needs, and no gradient flows where the activation is flat",
        f"remove the final {clipped.op} so the logits come straight from the last linear layer",
        loss=loss,
    )


def _clipped_logits(graph: ModelGraph, head: Head, kind: str) -> Head | None:
    """The clipping activation the loss's logits come from: the output itself (before
    CrossEntropyLoss/BCEWithLogitsLoss), or what a final log_softmax reads (before NLLLoss or
    CrossEntropyLoss: the 2017 pytorch/examples MNIST net's `F.log_softmax(F.relu(self.fc2(x)))`)."""
    if kind in ("cross_entropy", "bce_with_logits") and head.op in CLIPPING_ACTIVATIONS:
        if kind == "bce_with_logits" and head.op in _SQUASH_TO_UNIT:
            return None  # NN303 reports a sigmoid before BCEWithLogitsLoss
        return head
    if kind in ("cross_entropy", "nll") and head.op == "log_softmax":
        inner = graph.source(head.node, through=_HEAD_PASS_THROUGH)
        if inner is not None and graph.op(inner) in CLIPPING_ACTIVATIONS:
            return Head(inner, graph.op(inner))
    return None


# -- NN307 ----------------------------------------------------------------------------------------
@rule("NN307", "nll-loss-on-raw-scores", Severity.WARNING, requires=("loss_fn",))
def nll_loss_on_raw_scores(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """`NLLLoss`/`F.nll_loss` on outputs that are not log-probabilities: the loss is unbounded below.

    ## What it does
    With `NLLLoss` (module or `F.nll_loss`) as `loss_fn`, flags a model whose output comes
    straight from a linear layer, a matrix product or an activation other than a log-softmax
    (seen through reshapes and dropout). Softmax outputs are NN302's case; outputs of ops
    nnlint does not know are left alone.

    ## Why is this bad?
    `NLLLoss` does no normalization: it returns minus the input at the target index. It is
    correct only on log-probabilities (≤ 0, log-softmax). On raw scores the model lowers the
    loss by making the target's score large without bound — the loss goes to −∞, the other
    classes are never pushed down, and a falling loss says nothing about accuracy. The usual
    cause is a `log_softmax` dropped from the end of `forward` (or moved into a prediction
    helper) while the training script kept `NLLLoss`.

    ## Example
    ```python
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))
    loss_fn = nn.NLLLoss()
    ```
    Use instead:
    ```python
    loss_fn = nn.CrossEntropyLoss()         # log-softmax + NLL in one
    ```

    ## Fix
    Use `CrossEntropyLoss` on the raw scores, or end `forward` with `F.log_softmax(x, dim=1)`.

    ## References
    - PyTorch, `torch.nn.NLLLoss` ("The input given through a forward call is expected to contain log-probabilities of each class"): https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): output layer and loss
    """
    head = head_of(graph)
    if loss_kind(context.target.loss_fn) != "nll" or head is None or head.op not in _RAW_SCORES | _SQUASH_TO_UNIT:
        return
    yield _head_hit(
        graph,
        head,
        f"the model's output comes from {graph.describe(head.node)} and the loss is NLLLoss, which expects log-probabilities: "
        "on raw scores it returns minus the target's score, so the loss falls without bound and other classes are never pushed down",
        "use CrossEntropyLoss on the raw outputs, or end forward with F.log_softmax(x, dim=1)",
        loss="NLLLoss",
    )
