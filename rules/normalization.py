"""NN1 — normalization, after the lecture "Applied Deep Learning — Practical Tips" (NTU, 2020):
Batch Normalization, A Closer Look at Batch Normalization, Layer Normalization."""

from __future__ import annotations

from collections.abc import Iterator

import torch.fx
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Severity
from nnlint.graph import ModelGraph, ModuleInfo
from nnlint.graph.ir import module_tensor
from nnlint.graph.ops import ACTIVATIONS, DROPOUTS, LINEAR_MAPS, POOLING, RECURRENT, RECURRENT_CELLS, SHAPE_OPS
from nnlint.registry import Hit, rule

_BATCHNORM_FREE = "LayerNorm or GroupNorm, which keep no batch statistics"


def _batchnorm_calls(graph: ModelGraph) -> dict[str, list[torch.fx.Node]]:
    """BatchNorm call nodes, grouped by the module they belong to (one finding per module)."""
    by_module: dict[str, list[torch.fx.Node]] = {}
    for node in graph.nodes_with_op("batch_norm"):
        by_module.setdefault(graph.enclosing_module(node) or "", []).append(node)
    return by_module


def _active_batchnorms(graph: ModelGraph) -> list[ModuleInfo]:
    """BatchNorm modules that will use batch statistics in training (not frozen in eval mode)."""
    root_training = graph.root.training
    return [
        info
        for info in graph.modules_of_type(nn.modules.batchnorm._BatchNorm)
        if info.calls > 0 and (info.module.training or not root_training)
    ]


@rule("NN101", "batchnorm-in-recurrent-path", Severity.WARNING)
def batchnorm_in_recurrent_path(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm applied to a recurrent module's outputs, or inside a per-time-step loop.

    ## What it does
    Flags BatchNorm that normalizes the output of `nn.RNN`/`nn.LSTM`/`nn.GRU` (also through
    indexing, transposes and reshapes), and BatchNorm called once per time step in a Python
    loop alongside an `RNNCell`/`LSTMCell`/`GRUCell`.

    ## Why is this bad?
    Batch statistics assume a fixed structure; a recurrent network's is dynamic. Statistics
    pooled over time steps mix positions that behave differently, padded steps pollute them,
    and sequences longer at test time than in training meet statistics that were never
    estimated. The lecture: BatchNorm is "not suitable for dynamic structure", while
    LayerNorm "can be used in dynamic network structures like RNN".

    ## Example
    ```python
    out, _ = self.lstm(x)                          # (N, T, H)
    out = self.bn(out.transpose(1, 2)).transpose(1, 2)
    ```
    Use instead:
    ```python
    self.norm = nn.LayerNorm(hidden_size)
    out = self.norm(out)
    ```

    ## Fix
    Normalize each time step of each sample on its own: `nn.LayerNorm(hidden_size)`.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization; Layer Normalization
    - Ba, Kiros & Hinton (2016), "Layer Normalization", arXiv:1607.06450
    """
    cell_nodes = list(graph.nodes_with_op(RECURRENT_CELLS))
    for path, nodes in _batchnorm_calls(graph).items():
        hit = _on_recurrent_output(graph, path, nodes) or _in_time_step_loop(graph, path, nodes, cell_nodes)
        if hit is not None:
            yield hit


def _fed_by(
    graph: ModelGraph, nodes: list[torch.fx.Node], producers: frozenset[str], through: frozenset[str] = SHAPE_OPS
) -> tuple[torch.fx.Node, torch.fx.Node] | None:
    """The first of `nodes` whose input comes from an op in `producers`, and that producer."""
    for node in nodes:
        producer = graph.source(node, through)
        if producer is not None and graph.op(producer) in producers:
            return node, producer
    return None


def _on_recurrent_output(graph: ModelGraph, path: str, nodes: list[torch.fx.Node]) -> Hit | None:
    fed = _fed_by(graph, nodes, RECURRENT | RECURRENT_CELLS)
    if fed is None:
        return None
    node, producer = fed
    return Hit(
        message=(
            f"{graph.describe(node)} normalizes the output of {graph.describe(producer)}: batch statistics "
            "pooled over time steps mix positions, include padding, and do not fit sequence lengths unseen in training"
        ),
        fix="normalize each time step on its own: use nn.LayerNorm(hidden_size) instead of BatchNorm",
        module=path or None,
        location=graph.location(node),
        evidence={"recurrent_module": graph.enclosing_module(producer), "recurrent_op": graph.op(producer)},
    )


def _in_time_step_loop(graph: ModelGraph, path: str, nodes: list[torch.fx.Node], cell_nodes: list[torch.fx.Node]) -> Hit | None:
    if len(nodes) < 2:
        return None
    for cell in cell_nodes:
        cell_path = graph.enclosing_module(cell)
        steps = sum(1 for other in cell_nodes if graph.enclosing_module(other) == cell_path)
        if steps != len(nodes) or not any(graph.reaches(node, cell) or graph.reaches(cell, node) for node in nodes):
            continue
        return Hit(
            message=(
                f"{graph.describe(nodes[0])} runs once per time step beside {graph.describe(cell)} "
                f"({steps} calls each in one forward): one set of batch statistics serves every step of a recurrence"
            ),
            fix="normalize inside the recurrence with nn.LayerNorm(hidden_size) instead of BatchNorm",
            module=path or None,
            location=graph.location(nodes[0]),
            evidence={"recurrent_module": cell_path, "steps": steps},
        )
    return None


@rule("NN102", "batchnorm-called-repeatedly", Severity.WARNING)
def batchnorm_called_repeatedly(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """One BatchNorm module called more than once in one forward.

    ## What it does
    Counts how many times each BatchNorm module runs in one forward pass and flags any that
    runs more than once: in a loop over time steps, or shared between branches.

    ## Why is this bad?
    Each call updates the same running mean and variance, so the statistics used at evaluation
    are an average over all uses — time steps or branches whose activations have different
    distributions. In training each call normalizes with its own batch's statistics, so the
    model trains with one normalization and is evaluated with another.

    ## Example
    ```python
    def forward(self, left, right):
        return self.head(self.bn(self.conv(left))), self.head(self.bn(self.conv(right)))
    ```

    ## Fix
    Give each use its own BatchNorm module (one per branch or per step), or use a
    normalization without batch statistics (LayerNorm, GroupNorm).

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): A Closer Look at Batch Normalization
    - Ioffe & Szegedy (2015), "Batch Normalization", arXiv:1502.03167
    """
    for info in graph.modules_of_type(nn.modules.batchnorm._BatchNorm):
        if info.calls < 2:
            continue
        yield Hit(
            message=(
                f"{info.type_name} `{info.path}` runs {info.calls} times in one forward: its running statistics "
                f"average {info.calls} uses whose activations differ, so evaluation normalizes with statistics no single use has"
            ),
            fix=f"give each use its own {info.type_name}, or use {_BATCHNORM_FREE}",
            module=info.path,
            evidence={"calls": info.calls},
        )


@rule("NN103", "batchnorm-after-activation", Severity.WARNING)
def batchnorm_after_activation(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm consumes an activation's output.

    ## What it does
    Flags BatchNorm whose input comes straight from an activation function (ReLU, GELU, tanh,
    …, as a module, a functional call or a tensor method), also through reshapes, dropout and
    pooling, and whose output goes on into a Linear/Conv layer or out of the model — a
    normalization sitting after the activation instead of before it. A BatchNorm whose output
    goes into an activation (pre-activation designs: BN → ReLU → Conv) or into a sum
    (re-parameterizable identity branches such as RepVGG's `BN(x) + conv(x)`) is a different,
    deliberate design and is not flagged.

    ## Why is this bad?
    BatchNorm is meant to normalize the pre-activation so that the nonlinearity sees inputs
    with a controlled mean and scale; the lecture: "usually apply before activation function".
    After a ReLU it normalizes a half-rectified, skewed distribution, and the activation runs
    on unnormalized inputs.

    ## Example
    ```python
    nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.BatchNorm1d(64))
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Linear(64, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU())
    ```

    ## Fix
    Move BatchNorm between the linear map and the activation: Linear/Conv → BatchNorm →
    activation.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization
    - Ioffe & Szegedy (2015), "Batch Normalization", arXiv:1502.03167, section 3.2
    """
    see_through = SHAPE_OPS | DROPOUTS | POOLING
    for path, nodes in _batchnorm_calls(graph).items():
        feeding_layers = [node for node in nodes if _feeds_linear_map_or_output(graph, node, see_through)]
        fed = _fed_by(graph, feeding_layers, ACTIVATIONS, through=see_through)
        if fed is None:
            continue
        node, producer = fed
        yield Hit(
            message=(
                f"{graph.describe(node)} normalizes the output of {graph.describe(producer)}: "
                "BatchNorm belongs before the activation, so that the activation sees normalized inputs"
            ),
            fix="reorder to Linear/Conv → BatchNorm → activation",
            module=path or None,
            location=graph.location(node),
            evidence={"activation": graph.op(producer), "activation_module": graph.enclosing_module(producer)},
        )


def _feeds_linear_map_or_output(graph: ModelGraph, node: torch.fx.Node, through: frozenset[str]) -> bool:
    """Whether a BatchNorm's output goes on into a weighted layer or out of the model, as the
    normalization of that layer's input does — not into an activation (pre-activation designs,
    BN → ReLU → Conv) or a sum (re-parameterizable identity branches, RepVGG's BN(x) + conv(x))."""
    consumers = graph.consumers(node, through=through)
    return bool(consumers) and all(graph.op(user) in LINEAR_MAPS | {"output"} for user in consumers)


@rule("NN104", "bias-before-batchnorm", Severity.WARNING)
def bias_before_batchnorm(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Conv/Linear with a bias feeding BatchNorm: the bias is cancelled by the mean subtraction.

    ## What it does
    Flags a `Conv*`/`Linear` module constructed with `bias=True` whose output goes only to a
    BatchNorm over the same channels (also through reshapes). When the output also goes
    elsewhere, the bias matters there and nothing is flagged.

    ## Why is this bad?
    BatchNorm subtracts the per-channel batch mean, which removes any per-channel constant —
    the bias included; its gradient is exactly zero in training. BatchNorm's own β is the
    shift that remains. The bias costs parameters, memory and optimizer state for nothing.

    ## Example
    ```python
    nn.Sequential(nn.Conv2d(3, 64, 3), nn.BatchNorm2d(64), nn.ReLU())
    ```
    Use instead:
    ```python
    nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
    ```

    ## Fix
    Construct the layer with `bias=False`.

    ## References
    - Ioffe & Szegedy (2015), "Batch Normalization", arXiv:1502.03167, section 3.2 ("the bias b can be ignored")
    - He et al. (2016), "Deep Residual Learning" (conv layers without bias before BN)
    """
    flagged: set[str] = set()
    for node in graph.nodes:
        module = graph.module(node)
        path = str(node.target)
        if module is None or path in flagged or graph.op(node) not in LINEAR_MAPS:
            continue
        bias = module_tensor(module, "bias")
        if bias is None:
            continue
        consumers = graph.consumers(node)
        channels = getattr(module, "out_channels", getattr(module, "out_features", None))
        if not consumers or not all(_normalizes_channels(graph, c, channels) for c in consumers):
            continue
        flagged.add(path)
        yield Hit(
            message=(
                f"{graph.describe(node)} has a bias ({bias.numel()} parameters) but its output goes only to "
                f"{graph.describe(consumers[0])}, whose mean subtraction cancels it; BatchNorm's β already provides the shift"
            ),
            fix=f"construct it with bias=False: {type(module).__name__}(..., bias=False)",
            module=path,
            evidence={"bias_parameters": bias.numel(), "batchnorm": graph.enclosing_module(consumers[0])},
        )


def _normalizes_channels(graph: ModelGraph, node: torch.fx.Node, channels: int | None) -> bool:
    if graph.op(node) != "batch_norm":
        return False
    batchnorm = graph.module(node)
    return batchnorm is None or channels is None or getattr(batchnorm, "num_features", channels) == channels


@rule("NN105", "batch-too-small-for-batchnorm", Severity.WARNING, thresholds={"min-batch-size": 16}, requires=("graph", "batch_size"))
def batch_too_small_for_batchnorm(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Training batch size below the threshold (default 16) with BatchNorm in the model.

    ## What it does
    Compares the training batch size (`batch_size`, else the first dimension of
    `example_input`/`example_batch`, or `--batch-size`) with `min-batch-size` when the model
    has BatchNorm layers that use batch statistics (frozen ones in eval mode are not counted).
    Batch size 1 is an error. When nnlint ran the training script (`nnlint train.py`), it also
    flags a DataLoader whose last batch holds one sample (`len(dataset) % batch_size == 1` without
    `drop_last=True`) as an error.

    ## Why is this bad?
    BatchNorm estimates each channel's mean and variance from the batch. Wu & He (2018) show
    its error rising quickly below 16 images per batch (ResNet-50, ImageNet: 23.6% error at 32,
    34.7% at 2), because the estimates get noisy and differ from the running averages used at
    evaluation. At batch size 1 there is nothing to estimate: PyTorch raises "Expected more
    than 1 value per channel when training" for (N, C) inputs.

    ## Example
    ```python
    model = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())
    batch_size = 4
    ```
    Use instead:
    ```python
    model = nn.Sequential(nn.Conv2d(3, 32, 3, bias=False), nn.GroupNorm(8, 32), nn.ReLU())
    ```

    ## Fix
    Train with batches of at least 16 (accumulating gradients does not help BatchNorm), or
    replace BatchNorm with GroupNorm or LayerNorm, which do not depend on the batch.

    ## References
    - Wu & He (2018), "Group Normalization", ECCV, arXiv:1803.08494 (figure 1: threshold 16)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): A Closer Look at Batch Normalization
    """
    batchnorms = _active_batchnorms(graph)
    if batchnorms and (last := _last_batch_of_one(batchnorms, context)) is not None:
        yield last
    batch = context.batch_size
    minimum = int(context.threshold("min-batch-size"))
    if not batchnorms or batch is None or batch.value >= minimum:
        return
    first = batchnorms[0]
    if batch.value == 1:
        message = (
            f"training batch size 1 ({batch.source}) with {len(batchnorms)} BatchNorm layer(s), first `{first.path}`: "
            "BatchNorm cannot estimate statistics from one sample (PyTorch raises for (N, C) inputs)"
        )
    else:
        message = (
            f"training batch size {batch.value} ({batch.source}) is below {minimum} with {len(batchnorms)} BatchNorm "
            f"layer(s), first `{first.path}`: batch statistics from {batch.value} samples are noisy and differ from "
            "the running averages used at evaluation"
        )
    yield Hit(
        message=message,
        fix=f"train with batches of at least {minimum}, or replace BatchNorm with GroupNorm/LayerNorm",
        module=first.path,
        location=batch.location or first.location,
        severity=Severity.ERROR if batch.value == 1 else None,
        evidence={"batch_size": batch.value, "source": batch.source, "min_batch_size": minimum, "batchnorm_layers": len(batchnorms)},
    )


def _last_batch_of_one(batchnorms: list[ModuleInfo], context: RuleContext) -> Hit | None:
    """The training DataLoader ends every epoch on a batch of one sample (script mode knows it):
    `len(dataset) % batch_size == 1` and `drop_last=False`."""
    loader = context.data_loader
    if loader is None or loader.drop_last or not loader.batch_size or loader.batch_size < 2 or loader.dataset_length is None:
        return None
    if loader.dataset_length % loader.batch_size != 1:
        return None
    first = batchnorms[0]
    return Hit(
        message=(
            f"the training DataLoader's last batch holds 1 sample: {loader.dataset_length} samples in batches of "
            f"{loader.batch_size} with drop_last=False, and the model has {len(batchnorms)} BatchNorm layer(s), first "
            f'`{first.path}`: PyTorch raises "Expected more than 1 value per channel when training" for (N, C) inputs at '
            "the end of the first epoch, and otherwise normalizes that step with one sample's statistics"
        ),
        fix="pass drop_last=True to the DataLoader, or pick a batch size that does not leave one sample over",
        module=first.path,
        location=loader.location or first.location,
        severity=Severity.ERROR,
        evidence={"dataset_length": loader.dataset_length, "batch_size": loader.batch_size, "drop_last": False, "last_batch": 1},
    )


@rule(
    "NN106",
    "batch-too-large",
    Severity.INFO,
    thresholds={"max-batch-size": 32, "max-batch-size-with-batchnorm": 64},
    requires=("graph", "batch_size"),
)
def batch_too_large(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Training batch size above the threshold (default 64 with BatchNorm, 32 without).

    ## What it does
    Compares the training batch size with `max-batch-size-with-batchnorm` when the model has
    active BatchNorm layers, else with `max-batch-size`. Informational: large batches are a
    legitimate choice when the learning rate is scaled for them.

    ## Why is this bad?
    Masters & Luschi (2018) found that, for a fixed budget of epochs, small batches (between 2
    and 32) gave the best and most stable test accuracy across the networks they studied, with
    BatchNorm favouring somewhat larger ones; beyond that, accuracy falls unless the learning
    rate is retuned. Large batches need linear learning-rate scaling and a warm-up (Goyal et
    al. 2017) to match small-batch results.

    ## Example
    ```python
    batch_size = 512
    ```

    ## Fix
    If generalization suffers, try a smaller batch. If you keep the large batch, scale the
    learning rate with it and add a warm-up.

    ## References
    - Masters & Luschi (2018), "Revisiting Small Batch Training for Deep Neural Networks", arXiv:1804.07612
    - Goyal et al. (2017), "Accurate, Large Minibatch SGD", arXiv:1706.02677
    """
    batch = context.batch_size
    with_batchnorm = bool(_active_batchnorms(graph))
    limit = int(context.threshold("max-batch-size-with-batchnorm" if with_batchnorm else "max-batch-size"))
    if batch is None or batch.value <= limit:
        return
    yield Hit(
        message=(
            f"training batch size {batch.value} ({batch.source}) is above {limit}"
            f"{' for a model with BatchNorm' if with_batchnorm else ''}: small batches generalize better for a fixed number "
            "of epochs; large ones need the learning rate scaled and warmed up"
        ),
        fix=f"try a batch of at most {limit}, or scale the learning rate linearly with the batch and add a warm-up",
        location=batch.location or context.target_location,
        evidence={"batch_size": batch.value, "source": batch.source, "max_batch_size": limit, "batchnorm": with_batchnorm},
    )


@rule("NN107", "batchnorm-without-running-stats", Severity.WARNING)
def batchnorm_without_running_stats(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm with `track_running_stats=False`: evaluation uses the test batch's statistics.

    ## What it does
    Flags BatchNorm modules constructed with `track_running_stats=False`.

    ## Why is this bad?
    Without running averages, BatchNorm normalizes with the current batch's statistics in
    evaluation too: a prediction depends on which other samples share its batch, results
    change with the evaluation batch size, and a batch of one cannot be normalized. The
    lecture: at test time BatchNorm uses the moving average of the training statistics.

    ## Example
    ```python
    nn.BatchNorm2d(64, track_running_stats=False)
    ```

    ## Fix
    Keep the default `track_running_stats=True`. If batch-independent normalization was the
    goal, use GroupNorm or LayerNorm.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization at testing time
    - PyTorch, `torch.nn.BatchNorm2d`: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
    """
    for info in graph.modules_of_type(nn.modules.batchnorm._BatchNorm):
        if info.module.track_running_stats:
            continue
        yield Hit(
            message=(
                f"{info.type_name} `{info.path}` has track_running_stats=False: at evaluation it normalizes each batch "
                "with that batch's own statistics, so predictions depend on the other samples and batch size 1 fails"
            ),
            fix=f"remove track_running_stats=False (the default keeps moving averages for evaluation), or use {_BATCHNORM_FREE}",
            module=info.path,
            evidence={"track_running_stats": False},
        )
