"""NN2 — dropout and regularization, after the lecture "Applied Deep Learning — Practical Tips"
(NTU, 2020): Dropout, Weight Decay, Regularization."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch.fx
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Severity
from nnlint.graph import ModelGraph
from nnlint.graph.ir import call_argument
from nnlint.graph.ops import ACTIVATIONS, DROPOUTS, LINEAR_MAPS, NORMALIZATIONS, POOLING, SHAPE_OPS, module_op
from nnlint.registry import Hit, rule
from nnlint.runtime.torch_compat import DropoutBase
from nnlint.sources import literal_argument

_FUNCTIONAL_TRAINING_DEFAULT = True  # `F.dropout(x, p)`: training=True unless told otherwise


@dataclass(frozen=True)
class DropoutCall:
    """One dropout in the graph: a dropout module's call or a functional `F.dropout(...)`."""

    node: torch.fx.Node
    rate: float | None
    # The `training` argument of a functional call (constant in the traced graph); None for modules,
    # which follow their own `self.training`.
    training: bool | None


def dropout_calls(graph: ModelGraph) -> list[DropoutCall]:
    """Every dropout the forward runs, with its rate and, for functional calls, its `training` flag."""
    calls = []
    for node in graph.nodes_with_op(DROPOUTS):
        module = graph.module(node)
        if module is not None:
            calls.append(DropoutCall(node, _as_float(getattr(module, "p", None)), None))
            continue
        # F.dropout(input, p, training) and torch.dropout(input, p, train) alike.
        rate = call_argument(node, 1, "p", 0.5)
        training = call_argument(node, 2, ("training", "train"), _FUNCTIONAL_TRAINING_DEFAULT)
        calls.append(DropoutCall(node, _as_float(rate), training if isinstance(training, bool) else None))
    return calls


def _one_per_site(graph: ModelGraph, calls: list[DropoutCall]) -> list[DropoutCall]:
    """One call per dropout module, and per source line for functional calls (a loop calls one line often)."""
    seen: set[object] = set()
    kept = []
    for call in calls:
        site = graph.site(call.node)
        if site not in seen:
            seen.add(site)
            kept.append(call)
    return kept


def _written_as_zero(graph: ModelGraph, call: DropoutCall) -> bool:
    """Whether the code spells the rate 0 itself (`nn.Dropout(0.0)`, `F.dropout(x, 0)`): a rate
    read from a configuration (`nn.Dropout(config.attn_drop)`) is a setting, not a mistake."""
    location = graph.location(call.node)
    if location is None:
        return False
    position = 0 if graph.module(call.node) is not None else 1
    return literal_argument(location, "dropout", position, "p") in (0, 0.0)


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _leaf_dropout_rates(graph: ModelGraph) -> dict[str, list[tuple[str, float]]]:
    """Dropout configured inside leaf modules the graph does not look into, by leaf: [(what, rate)].

    `nn.LSTM(dropout=…)`, `nn.MultiheadAttention(dropout=…)` and the `nn.Dropout` submodules of
    `nn.TransformerEncoderLayer` run inside one call node.
    """
    by_leaf: dict[str, list[tuple[str, float]]] = {}
    for node in graph.nodes:
        if node.op != "call_module":
            continue
        leaf_path = str(node.target)
        leaf = graph.module(node)
        if leaf is None or leaf_path in by_leaf:
            continue
        rates: list[tuple[str, float]] = []
        for name, module in leaf.named_modules():
            where = f"{leaf_path}.{name}" if name else leaf_path
            if isinstance(module, DropoutBase) and name:
                rates.append((where, float(module.p)))
            elif isinstance(module, nn.RNNBase) and module.num_layers > 1:
                rates.append((f"{where} (between layers)", float(module.dropout)))
            elif isinstance(module, nn.MultiheadAttention):
                rates.append((f"{where} (attention weights)", float(module.dropout)))
        if rates:
            by_leaf[leaf_path] = rates
    return by_leaf


@rule("NN201", "dropout-before-batchnorm", Severity.WARNING)
def dropout_before_batchnorm(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Dropout feeds BatchNorm: the variance BatchNorm learns in training is not the one it sees at evaluation.

    ## What it does
    Flags BatchNorm whose input comes from dropout — an `nn.Dropout` module or a functional
    `F.dropout` call — also through reshapes, pooling and activations in between. Dropout with
    rate 0 is ignored.

    ## Why is this bad?
    In training, dropout zeroes units and rescales the rest by 1/(1-p), which changes the
    variance of its output; BatchNorm's running variance is estimated from those training-mode
    activations. At evaluation dropout is the identity, so BatchNorm normalizes activations whose
    variance differs from the one it stored: a "variance shift" that Li et al. (2019) show
    degrades accuracy, worse with larger dropout rates.

    ## Example
    ```python
    nn.Sequential(nn.Linear(256, 128), nn.Dropout(0.5), nn.BatchNorm1d(128), nn.ReLU())
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(256, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5))
    ```

    ## Fix
    Put dropout after the last BatchNorm (e.g. only before the classifier), or drop one of the
    two: BatchNorm already regularizes.

    ## References
    - Li, Chen, Hu & Yang (2019), "Understanding the Disharmony between Dropout and Batch Normalization by Variance Shift",
      CVPR, arXiv:1801.05134
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout; Batch Normalization
    """
    rates = {call.node: call.rate for call in dropout_calls(graph)}
    flagged: set[str] = set()
    for node in graph.nodes_with_op("batch_norm"):
        path = graph.enclosing_module(node) or ""
        producer = graph.source(node, through=SHAPE_OPS | POOLING | ACTIVATIONS)
        if path in flagged or producer is None or producer not in rates or rates[producer] == 0:
            continue
        flagged.add(path)
        yield Hit(
            message=(
                f"{graph.describe(node)} normalizes the output of {graph.describe(producer)}, p={rates[producer]:g}: "
                "its running variance is learned with dropout active and used without it, a variance shift at evaluation"
            ),
            fix="move the dropout after the last BatchNorm (e.g. just before the classifier), or remove it",
            module=path or None,
            location=graph.location(node),
            evidence={"dropout": graph.enclosing_module(producer), "rate": rates[producer]},
        )


@rule("NN202", "dropout-always-on", Severity.WARNING)
def dropout_always_on(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Functional dropout whose `training` flag is not tied to `self.training`: still active at evaluation.

    ## What it does
    nnlint traces the model in evaluation mode, so a functional dropout written
    `F.dropout(x, p, self.training)` appears with `training=False`. It flags every functional
    dropout (`F.dropout`, `F.dropout2d`, `F.alpha_dropout`, `torch.dropout`, …) whose `training`
    argument is still True there: `F.dropout(x, p)` — its default is `training=True` — and
    `F.dropout(x, p, True)`. Dropout modules (`nn.Dropout`) follow `model.eval()` and are fine.

    ## Why is this bad?
    Dropout must be switched off at test time and the full network used (the lecture: "no
    dropout at testing"; Srivastava et al. 2014). A functional call with `training=True` ignores
    `model.eval()`: predictions stay random, accuracy measured at evaluation is that of a
    randomly thinned network, and two runs on the same input disagree.

    ## Example
    ```python
    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5))
    ```
    Use instead:
    ```python
    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), 0.5, training=self.training))
    ```

    ## Fix
    Pass `training=self.training`, or use an `nn.Dropout` module. If dropout at inference is
    intended (Monte Carlo dropout), suppress this finding on that line.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout at testing
    - Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15
    - PyTorch, `torch.nn.functional.dropout`: https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout.html
    """
    for call in _one_per_site(graph, dropout_calls(graph)):
        if call.training is not True or call.rate == 0:
            continue
        yield Hit(
            message=(
                f"{graph.describe(call.node)}, p={call.rate:g}, has training=True in evaluation mode: it is not tied to "
                "self.training, so it keeps dropping units after model.eval() and predictions stay random"
            ),
            fix=f"pass training=self.training: F.{graph.op(call.node)}(x, p={call.rate:g}, training=self.training), or use nn.Dropout",
            module=graph.enclosing_module(call.node),
            location=graph.location(call.node),
            evidence={"rate": call.rate, "training": True},
        )


@rule("NN203", "dropout-rate-suspicious", Severity.WARNING, thresholds={"max-rate": 0.8})
def dropout_rate_suspicious(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Dropout rate p == 0 (the layer does nothing) or p >= 0.8 (most of the signal dropped).

    ## What it does
    Reads the drop probability `p` of every dropout the forward runs — modules, functional
    calls, and the dropout configured inside `nn.LSTM`/`nn.GRU`, `nn.MultiheadAttention` and
    `nn.Transformer*Layer` — and flags `p` ≥ `max-rate` (default 0.8) as a warning, and a
    dropout layer or call whose code writes `p` as a literal 0 (`nn.Dropout(0.0)`) as
    information. A rate that is 0 by configuration (`nn.Dropout(config.attn_drop)`, timm's and
    Hugging Face's disabled dropouts) is a setting, not a mistake, and a leaf module's own
    default of 0 (e.g. `nn.LSTM(dropout=0)`) is not reported either.

    ## Why is this bad?
    `p` is the probability of *dropping* a unit (PyTorch), not of keeping it as in
    Srivastava et al. (2014), who found retention 0.5 best for hidden units, 0.8 for inputs,
    and test error rising steeply once fewer than ~40% of units are kept. With p ≥ 0.8 four
    units in five are zeroed at every step: the network underfits and the survivors are scaled
    by 1/(1-p) ≥ 5, which makes training noisy. Confusing "keep" with "drop" (TensorFlow 1's
    `keep_prob=0.8` ported as `p=0.8`) is the usual cause. A dropout with p = 0 is a no-op
    layer: harmless, but often a regularizer someone meant to turn on.

    ## Example
    ```python
    self.dropout = nn.Dropout(p=0.9)   # meant: keep 90%
    ```
    Use instead:
    ```python
    self.dropout = nn.Dropout(p=0.1)
    ```

    ## Fix
    Use p between 0.1 and 0.5 (0.5 for wide hidden layers, 0.1–0.2 for inputs and
    transformers); remove dropout layers with p = 0 or set the rate you intended.

    ## References
    - Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15, section 7.5 and figure 9
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout
    """
    max_rate = context.threshold("max-rate")
    for call in _one_per_site(graph, dropout_calls(graph)):
        severity: Severity | None = None
        if call.rate is None:
            continue
        if call.rate >= max_rate:
            message = f"{graph.describe(call.node)} drops p={call.rate:g} of its inputs: most of the signal is lost at every step"
            fix = f"use p between 0.1 and 0.5; p is the probability to drop — if you meant to keep {call.rate:.0%}, use p={1 - call.rate:g}"
        elif call.rate == 0 and _written_as_zero(graph, call):
            message, fix = f"{graph.describe(call.node)} has p=0: it does nothing", "remove it, or set the dropout rate you intended"
            severity = Severity.INFO
        else:
            continue
        yield Hit(
            message=message,
            fix=fix,
            module=graph.enclosing_module(call.node),
            location=graph.location(call.node),
            evidence={"rate": call.rate, "max_rate": max_rate},
            severity=severity,
        )
    for leaf_path, rates in _leaf_dropout_rates(graph).items():
        high = [(what, rate) for what, rate in rates if rate >= max_rate]
        if not high:
            continue
        listed = ", ".join(f"`{what}` p={rate:g}" for what, rate in high)
        yield Hit(
            message=f"{graph.modules[leaf_path].type_name} `{leaf_path}` is configured to drop most of the signal: {listed}",
            fix="set its dropout between 0.1 and 0.5 (p is the probability to drop, not to keep)",
            module=leaf_path,
            evidence={"rates": dict(high), "max_rate": max_rate},
        )


@rule("NN204", "dropout-on-output", Severity.WARNING)
def dropout_on_output(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Dropout applied to the model's output.

    ## What it does
    Flags a dropout module or functional dropout whose result is returned by `forward` (also
    through reshapes) and read by nothing else in the model, when that result is a prediction:
    the dropout acts straight on a Linear/Conv output (the logits), or the target has a
    `loss_fn` that consumes the output. A base model that returns dropped hidden states for a
    task head to read (T5's encoder) returns features, and is not flagged.

    ## Why is this bad?
    Dropout regularizes hidden units by making the next layer robust to missing inputs. On the
    output there is no next layer: in training the loss sees predictions with random entries
    zeroed and the rest multiplied by 1/(1-p), so the gradient pushes the model to compensate
    for noise that disappears at evaluation, and the logits it learns are miscalibrated.

    ## Example
    ```python
    nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10), nn.Dropout(0.5))
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 10))
    ```

    ## Fix
    Move the dropout before the last linear layer (on the features it reads).

    ## References
    - Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15 (on input and hidden units)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout
    """
    rates = {call.node: call.rate for call in dropout_calls(graph)}
    for returned in graph.returned():
        producer = graph.producer(returned)
        if producer not in rates or rates[producer] == 0 or not _drops_predictions(graph, producer, context):
            continue
        yield Hit(
            message=(
                f"{graph.describe(producer)}, p={rates[producer]:g}, acts on the model's output: in training the loss sees "
                "predictions with random entries zeroed and the rest rescaled, noise that is gone at evaluation"
            ),
            fix="move the dropout before the last linear layer, onto the features it reads",
            module=graph.enclosing_module(producer),
            location=graph.location(producer),
            evidence={"rate": rates[producer]},
        )


def _drops_predictions(graph: ModelGraph, dropout: torch.fx.Node, context: RuleContext) -> bool:
    """Whether the dropped tensor is the model's prediction, not features a later head will read.

    It is when nothing inside the model reads it and either a loss consumes the output or the
    dropout acts straight on a Linear/Conv's output (logits). A base model returning dropped
    hidden states after a LayerNorm (T5's encoder and decoder) is returning features.
    """
    if any(user.op != "output" for user in graph.consumers(dropout)):
        return False
    source = graph.source(dropout)
    return context.target.loss_fn is not None or (source is not None and graph.op(source) in LINEAR_MAPS)


@rule("NN205", "no-regularization", Severity.INFO, requires=("optimizer",))
def no_regularization(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """No dropout, no weight decay and no normalization anywhere.

    ## What it does
    Looks for any regularizer in the model and its optimizer: a dropout with p > 0 (modules,
    functional calls, or inside `nn.LSTM`/`nn.MultiheadAttention`/transformer layers), a
    normalization layer (BatchNorm, LayerNorm, GroupNorm, …), or `weight_decay > 0` in any of
    the optimizer's parameter groups. Reports, as information, a model that has none. Needs the
    `optimizer` to know about weight decay.

    ## Why is this bad?
    A network with nothing to regularize it fits its training set and generalizes worse once
    it has enough capacity. The lecture: "one should always try L2 first" — weight decay is the
    cheapest regularizer, and dropout or normalization are the next ones to try.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    ```
    Use instead:
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)
    ```

    ## Fix
    Add weight decay (e.g. 5e-4 with SGD, or AdamW with 0.01–0.1); then consider dropout
    before the classifier or normalization layers.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Weight Decay; Regularization
    - Krogh & Hertz (1991), "A Simple Weight Decay Can Improve Generalization", NIPS
    """
    groups = getattr(context.target.optimizer, "param_groups", None)
    if not isinstance(groups, list):
        return
    if any(float(group.get("weight_decay", 0) or 0) > 0 for group in groups):
        return
    if any(call.rate != 0 for call in dropout_calls(graph)) or any(
        rate > 0 for rates in _leaf_dropout_rates(graph).values() for _, rate in rates
    ):
        return
    if any(True for _ in graph.nodes_with_op(NORMALIZATIONS)) or any(
        graph.runs(info.path) and module_op(info.module) in NORMALIZATIONS for info in graph.modules.values()
    ):
        return
    yield Hit(
        message="the model has no dropout and no normalization layer, and the optimizer applies no weight decay: nothing regularizes it",
        fix="add weight decay to the optimizer (e.g. weight_decay=5e-4 with SGD, or AdamW); then consider dropout before the classifier",
        location=context.location_of("optimizer"),
        evidence={"dropout": False, "normalization": False, "weight_decay": 0.0},
    )


# Channel-wise dropout modules and functions, with the input rank each is written for (with a batch).
_CHANNEL_DROPOUT_RANK = {"dropout2d": 4, "dropout3d": 5}


@rule("NN206", "dropout-never-applied", Severity.WARNING)
def dropout_never_applied(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Dropout that does not do what it says: `nn.LSTM/GRU(dropout=p)` with one layer, `Dropout2d/3d` on the wrong rank.

    ## What it does
    Flags two configurations whose dropout is silently not the one written:
    - `nn.RNN`/`nn.LSTM`/`nn.GRU` with `dropout > 0` and `num_layers=1`;
    - `nn.Dropout2d`/`F.dropout2d` on an input that is not 4-D (N, C, H, W), and
      `nn.Dropout3d`/`F.dropout3d` on an input that is not 5-D (N, C, D, H, W).

    ## Why is this bad?
    A recurrent module's `dropout` is applied between stacked layers only ("on the outputs of
    each layer except the last"): with one layer there is no such place and no dropout at all —
    PyTorch only warns at construction. The channel-wise dropouts read a tensor's dimension 1 as
    channels and zero whole channels: `Dropout2d` on a (N, T, F) sequence zeroes whole time
    steps, on (N, F) it is plain element-wise dropout; `Dropout3d` on a 4-D image batch takes
    it for one unbatched (C, D, H, W) volume and zeroes *whole samples*. The regularization the
    code names is not the one that runs.

    ## Example
    ```python
    self.rnn = nn.LSTM(embed_dim, hidden, num_layers=1, dropout=0.3)   # no dropout at all
    self.drop = nn.Dropout3d(0.2)                                        # on (N, C, H, W) images
    ```
    Use instead:
    ```python
    self.rnn = nn.LSTM(embed_dim, hidden, num_layers=1)
    self.drop = nn.Dropout(0.3)                  # applied to the LSTM's output in forward
    self.drop2d = nn.Dropout2d(0.2)              # channel dropout for 4-D images
    ```

    ## Fix
    For a one-layer recurrent module apply `nn.Dropout` to its output (or stack layers); use
    the dropout whose rank matches the input (`Dropout1d` for (N, C, L), `Dropout2d` for
    (N, C, H, W)).

    ## References
    - PyTorch, `torch.nn.LSTM` ("a Dropout layer on the outputs of each LSTM layer except the last layer"):
      https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
    - PyTorch, `torch.nn.Dropout2d`, `torch.nn.Dropout3d` (input shapes): https://pytorch.org/docs/stable/generated/torch.nn.Dropout2d.html
    - Srivastava et al. (2014), "Dropout", JMLR 15 (dropout between layers, not after the last)
    """
    for info in graph.modules_of_type(nn.RNNBase):
        module = info.module
        dropout = float(getattr(module, "dropout", 0.0))
        if getattr(module, "num_layers", 1) == 1 and dropout > 0 and graph.runs(info.path):
            yield Hit(
                message=(
                    f"{info.type_name} `{info.path}` has dropout={dropout:g} and num_layers=1: its dropout is applied "
                    "only between stacked layers, so with one layer no dropout is applied at all"
                ),
                fix="apply nn.Dropout to its output in forward (or stack num_layers >= 2) and remove dropout= here",
                module=info.path,
                evidence={"dropout": dropout, "num_layers": 1},
            )
    seen: set[object] = set()
    for node, kind in _channel_dropouts(graph):
        inputs = graph.tensor_inputs(node)
        shape = graph.shape(inputs[0]) if inputs else None
        wanted = _CHANNEL_DROPOUT_RANK[kind]
        if shape is None or len(shape) == wanted or graph.site(node) in seen:
            continue
        seen.add(graph.site(node))
        yield Hit(
            message=f"{graph.describe(node)} ({kind}) gets a {len(shape)}-D input {tuple(shape)}: {_wrong_rank_effect(kind, len(shape))}",
            fix=f"use the dropout for a {len(shape)}-D input ({_right_dropout(len(shape))}), or reshape to {wanted}-D first",
            module=graph.enclosing_module(node),
            location=graph.location(node),
            evidence={"dropout": kind, "input_shape": list(shape), "expected_rank": wanted},
        )


def _channel_dropouts(graph: ModelGraph) -> Iterator[tuple[torch.fx.Node, str]]:
    """Dropout2d/Dropout3d calls, modules and functional alike (the op vocabulary calls them all "dropout")."""
    for node in graph.nodes_with_op("dropout"):
        module = graph.module(node)
        if isinstance(module, nn.Dropout3d):
            yield node, "dropout3d"
        elif isinstance(module, nn.Dropout2d):
            yield node, "dropout2d"
        elif module is None and node.op == "call_function":
            name = getattr(node.target, "__name__", "")
            if name in _CHANNEL_DROPOUT_RANK:
                yield node, name


def _wrong_rank_effect(kind: str, rank: int) -> str:
    if kind == "dropout3d" and rank == 4:
        return "Dropout3d reads it as one unbatched (C, D, H, W) volume and zeroes whole samples, not channels"
    if kind == "dropout2d" and rank == 3:
        return "Dropout2d reads it as (N, C, L) and zeroes whole rows of dimension 1 (time steps of a (N, T, F) sequence)"
    if rank == 2:
        return f"{kind} on (N, F) drops single features, not channels: plain dropout under a misleading name"
    return f"{kind} expects a {_CHANNEL_DROPOUT_RANK[kind]}-D input, so it does not drop the channels it is meant to"


def _right_dropout(rank: int) -> str:
    return {2: "nn.Dropout", 3: "nn.Dropout1d", 4: "nn.Dropout2d", 5: "nn.Dropout3d"}.get(rank, "nn.Dropout")
