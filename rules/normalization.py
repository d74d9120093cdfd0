"""NN1 — normalization, after the lecture "Applied Deep Learning — Practical Tips" (NTU, 2020):
Batch Normalization, A Closer Look at Batch Normalization, Layer Normalization."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterator

import torch.fx
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Finding, Severity
from nnlint.formatting import number
from nnlint.graph import ModelGraph, ModuleInfo
from nnlint.graph.ir import module_tensor
from nnlint.graph.ops import ACTIVATIONS, DROPOUTS, LINEAR_MAPS, POOLING, RECURRENT, RECURRENT_CELLS, SHAPE_OPS
from nnlint.measures import Measure
from nnlint.probe.result import ProbeResult
from nnlint.registry import Hit, rule
from nnlint.runtime.torch_compat import BatchNormBase

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
    return [info for info in graph.modules_of_type(BatchNormBase) if info.calls > 0 and (info.module.training or not root_training)]


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


# Between a recurrent module and a BatchNorm: reshapes (deepspeech's SequenceWise `view(T * N, -1)`)
# and the merge of a bidirectional output's two directions (`.view(T, N, 2, -1).sum(2)`, `fw + bw`).
_SEQUENCE_PRESERVING = SHAPE_OPS | {"sum", "add", "mean"}


def _on_recurrent_output(graph: ModelGraph, path: str, nodes: list[torch.fx.Node]) -> Hit | None:
    fed = next(((node, producer) for node in nodes if (producer := _recurrent_producer(graph, node)) is not None), None)
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


def _recurrent_producer(graph: ModelGraph, node: torch.fx.Node) -> torch.fx.Node | None:
    """The recurrent module whose whole output sequence `node` reads; None when it reads one time
    step only (`output[:, -1]`, the final hidden state), where nothing is pooled over time."""
    inputs = graph.tensor_inputs(node)
    current = inputs[0] if inputs else None
    while current is not None:
        op = graph.op(current)
        if op in RECURRENT | RECURRENT_CELLS:
            return current
        if op not in _SEQUENCE_PRESERVING:
            return None
        if op == "getitem" and _selects_one_step(graph, current):
            return None
        if op in ("sum", "mean") and len(graph.shape(current) or ()) < 3:
            return None  # pooled over time (`out.mean(1)`): one vector per sample, nothing per step
        sources = graph.tensor_inputs(current)
        current = sources[0] if sources else None
    return None


def _selects_one_step(graph: ModelGraph, getitem: torch.fx.Node) -> bool:
    """`out[:, -1]`, `out[-1]` or `h_n` (element 1 of a recurrent module's output tuple): one step, not the sequence."""
    source, index = getitem.args[0], getitem.args[1] if len(getitem.args) > 1 else None
    if isinstance(source, torch.fx.Node) and graph.op(source) in RECURRENT:
        return bool(index != 0)  # (output, h_n): h_n is the last step's state
    indices = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, int) and not isinstance(i, bool) for i in indices)


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
    runs more than once: in a loop over time steps, or shared between branches that see
    different kinds of input. A Siamese or triplet network — one shared encoder applied to
    several forward inputs of the same shape (`forward(left, right)`,
    `forward(anchor, positive, negative)`) — is not flagged: its inputs come from one
    distribution, so one set of statistics is right, and sharing the encoder is the design.

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
    calls = _batchnorm_calls(graph)
    for info in graph.modules_of_type(BatchNormBase):
        if info.calls < 2 or _shared_encoder_of_like_inputs(graph, calls.get(info.path, [])):
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


def _shared_encoder_of_like_inputs(graph: ModelGraph, nodes: list[torch.fx.Node]) -> bool:
    """Each call reads a different forward input and all those inputs have one shape: a Siamese or
    triplet network's shared encoder (`forward(anchor, positive, negative)`), where sharing is the design."""
    if len(nodes) < 2:
        return False
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    read: list[torch.fx.Node] = []
    for node in nodes:
        sources = [p for p in placeholders if graph.reaches(p, node)]
        if len(sources) != 1:
            return False
        read.append(sources[0])
    shapes = {graph.shape(p) for p in read}
    return len(set(read)) == len(read) and len(shapes) == 1 and None not in shapes


@rule("NN103", "batchnorm-after-activation", Severity.WARNING)
def batchnorm_after_activation(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm consumes an activation's output.

    ## What it does
    Flags BatchNorm whose input comes straight from an activation function (ReLU, GELU, tanh,
    …, as a module, a functional call or a tensor method), also through reshapes, dropout and
    pooling, and whose output goes on into a Linear/Conv layer, a recurrent layer (LSTM, GRU),
    attention or a transformer layer (modules with linear maps inside), or out of the model — a
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
    return bool(consumers) and all(graph.op(user) in _WEIGHTED_CONSUMERS for user in consumers)


# What a normalization placed after an activation feeds when it normalizes that layer's input:
# a linear map, or a module with linear maps inside (recurrent layers, attention, transformer layers).
_WEIGHTED_CONSUMERS = LINEAR_MAPS | RECURRENT | RECURRENT_CELLS | {
    "output", "multi_head_attention", "transformerencoderlayer", "transformerdecoderlayer", "transformerencoder", "transformer",
}  # fmt: skip


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


def measured_batchnorm_spread(finding: Finding, probe: ProbeResult) -> Finding:
    """NN105's finding with the probe's measurement: how far a channel's batch mean wanders between
    batches of the training size, measured on `example_batch`'s real data (from the spread of
    per-sample channel means: sd / √batch). Random example inputs would understate it: their
    samples differ only by noise, which averages out over an image."""
    if "last_batch" in finding.evidence:  # the DataLoader's last batch of one (script mode): not about the spread
        return finding
    # NaN or Inf in the data (NN803's finding) leaves nothing to measure a spread with.
    spreads = [spread for spread in probe.batchnorm_spread if math.isfinite(spread.mean_spread)]
    if not spreads or probe.input_source != "example_batch":
        return finding  # on made-up inputs samples differ only by noise: the spread would understate real data's
    median = statistics.median(spread.mean_spread for spread in spreads)
    worst = max(spreads, key=lambda spread: spread.mean_spread)
    measured = (
        f"; measured by the probe on example_batch: at batch {spreads[0].batch_size} a channel's batch mean moves by {number(median)} "
        f"of the channel's standard deviation from batch to batch (median over {len(spreads)} BatchNorm layer(s); "
        f"{number(worst.mean_spread)} at `{worst.module}`)"
    )
    evidence = dict(finding.evidence) | {
        "measured_batch_mean_spread": {spread.module: spread.mean_spread for spread in spreads},
        "measured_batch_mean_spread_median": median,
    }
    return dataclasses.replace(finding, message=finding.message + measured, evidence=evidence)


@rule(
    "NN105",
    "batch-too-small-for-batchnorm",
    Severity.WARNING,
    thresholds={"min-batch-size": 16},
    requires=("batch_size",),
    needs=(Measure.BATCHNORM_SPREAD,),
    probe_evidence=measured_batchnorm_spread,
)
def batch_too_small_for_batchnorm(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Training batch size below the threshold (default 16) with BatchNorm in the model.

    ## What it does
    Compares the training batch size (`batch_size`, else the first dimension of
    `example_input`/`example_batch`, or `--batch-size`) with `min-batch-size` when the model
    has BatchNorm layers that use batch statistics (frozen ones in eval mode are not counted).
    Batch size 1 is an error where a BatchNorm normalizes (N, C) inputs (BatchNorm1d after a
    Linear: one value per channel, PyTorch raises), and a warning where spatial or time
    positions still give each channel several values (BatchNorm2d on images).
    When nnlint ran the training script (`nnlint train.py`), it also flags a DataLoader whose
    last batch holds one sample (`len(dataset) % batch_size == 1` without `drop_last=True`) as an error.

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
    severity: Severity | None = None
    if batch.value == 1:
        one_value = _one_value_per_channel(graph)
        severity = Severity.ERROR if one_value is not None else Severity.WARNING
        message = f"training batch size 1 ({batch.source}) with {len(batchnorms)} BatchNorm layer(s), first `{first.path}`: " + (
            f"`{one_value}` normalizes (N, C) inputs, one value per channel, so PyTorch raises in training"
            if one_value is not None
            else "each channel's statistics come from one sample's spatial positions only, far noisier than the running averages"
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
        severity=severity,
        evidence={"batch_size": batch.value, "source": batch.source, "min_batch_size": minimum, "batchnorm_layers": len(batchnorms)},
    )


def _one_value_per_channel(graph: ModelGraph) -> str | None:
    """The first BatchNorm that sees one value per channel and sample ((N, C) input, no positions
    to pool): at batch size 1 PyTorch raises "Expected more than 1 value per channel"."""
    for path, nodes in _batchnorm_calls(graph).items():
        if any(len(shape) == 2 for node in nodes if (shape := _input_shape(graph, node)) is not None):
            return path
    return None


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


@rule("NN106", "batch-too-large", Severity.INFO, thresholds={"max-batch-size": 512}, requires=("batch_size",))
def batch_too_large(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Training batch size above 512 without a learning rate scaled for it.

    ## What it does
    Flags a training batch size above `max-batch-size` (default 512) unless the optimizer's
    learning rate visibly follows the linear-scaling rule of Goyal et al. (2017) — SGD with
    lr ≥ half of 0.1 × batch / 256 in every parameter group. Other optimizers (and a missing
    one) are reported above the threshold, since nnlint cannot tell whether their rate was
    tuned for the batch. Informational.

    What changed: this rule used to report every batch above 32 (64 with BatchNorm), which
    put it on nearly every standard recipe (batch 64–128 on CIFAR, MNIST, GPT fine-tuning), so
    nobody read it. The small-batch advantage Masters & Luschi (2018) measured is real but
    modest inside that range; what reliably costs accuracy is a *large* batch trained with the
    small-batch learning rate and no warm-up, so that is what it reports now.

    ## Why is this bad?
    Masters & Luschi (2018) found that, for a fixed budget of epochs, small batches gave the
    best and most stable test accuracy; beyond a few hundred samples accuracy falls unless the
    learning rate is retuned. Goyal et al. (2017) train ResNet-50 with batches up to 8k at
    small-batch accuracy only by scaling the learning rate linearly with the batch (0.1 × k/256)
    and warming it up over the first epochs; without both, large-batch training converges to
    worse minima (Keskar et al. 2017).

    ## Example
    ```python
    batch_size = 2048
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ```

    ## Fix
    Scale the learning rate with the batch (lr = 0.1 × batch / 256 for SGD) and add a warm-up
    (`torch.optim.lr_scheduler.LinearLR` for the first epochs), or train with a smaller batch.

    ## References
    - Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677 (linear scaling, warm-up)
    - Masters & Luschi (2018), "Revisiting Small Batch Training for Deep Neural Networks", arXiv:1804.07612
    - Keskar et al. (2017), "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima", ICLR
    """
    batch = context.batch_size
    limit = int(context.threshold("max-batch-size"))
    if batch is None or batch.value <= limit or _learning_rate_scaled_for(context.target.optimizer, batch.value):
        return
    scaled = _GOYAL_BASE_RATE * batch.value / _GOYAL_BASE_BATCH
    yield Hit(
        message=(
            f"training batch size {batch.value} ({batch.source}) is above {limit} and the learning rate is not visibly scaled "
            f"for it (linear scaling: {scaled:g} for SGD): large batches trained with a small-batch learning rate and no "
            "warm-up generalize worse"
        ),
        fix=f"scale the learning rate with the batch (SGD: {scaled:g}) and warm it up over the first epochs, or use a smaller batch",
        location=batch.location or context.target_location,
        evidence={"batch_size": batch.value, "source": batch.source, "max_batch_size": limit, "linear_scaling_lr": scaled},
    )


# Goyal et al. (2017): lr 0.1 for batch 256, scaled linearly with the batch.
_GOYAL_BASE_RATE = 0.1
_GOYAL_BASE_BATCH = 256


def _learning_rate_scaled_for(optimizer: object, batch: int) -> bool:
    """Whether an SGD optimizer's learning rate is within 2x of the linear-scaling rule's for `batch`."""
    from torch import optim

    if not isinstance(optimizer, optim.SGD):
        return False
    wanted = _GOYAL_BASE_RATE * batch / _GOYAL_BASE_BATCH
    rates = [group.get("lr") for group in optimizer.param_groups]
    return bool(rates) and all(isinstance(lr, (int, float)) and lr >= wanted / 2 for lr in rates)


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
    for info in graph.modules_of_type(BatchNormBase):
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


@rule("NN108", "batchnorm-momentum-convention", Severity.WARNING, thresholds={"max-momentum": 0.5})
def batchnorm_momentum_convention(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm `momentum` of 0.5 or more: TensorFlow's decay convention written into PyTorch.

    ## What it does
    Flags BatchNorm modules whose `momentum` is at least `max-momentum` (default 0.5).
    `momentum=None` (a cumulative average) is not flagged.

    ## Why is this bad?
    The two frameworks mean opposite things by the same word. In TensorFlow/Keras, momentum is
    the weight of the *old* running statistic (`moving = moving * 0.99 + batch * 0.01`); in
    PyTorch it is the weight of the *new* batch (`running = (1 - 0.1) * running + 0.1 * batch`,
    default 0.1). A TensorFlow value such as 0.99 copied into PyTorch makes the running mean
    and variance almost exactly the last training batch's, so evaluation normalizes with one
    batch's noisy statistics instead of a moving average. Any value past 0.5 weighs the newest
    batch more than the whole history: the average no longer averages. The lecture: at test
    time BatchNorm uses the moving average of the training statistics.

    ## Example
    ```python
    nn.BatchNorm2d(64, momentum=0.99)      # Keras' BatchNormalization(momentum=0.99)
    ```
    Use instead:
    ```python
    nn.BatchNorm2d(64, momentum=0.01)      # the same average, in PyTorch's convention
    ```

    ## Fix
    Use `1 - tf_momentum` (0.99 → 0.01), or keep PyTorch's default 0.1.

    ## References
    - PyTorch, `torch.nn.BatchNorm2d` (note: "This momentum argument is different from one used in optimizer classes
      and the conventional notion of momentum"): https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
    - TensorFlow, `tf.keras.layers.BatchNormalization` (momentum=0.99, `moving_mean * momentum + mean(batch) * (1 - momentum)`)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization at testing time
    """
    limit = context.threshold("max-momentum")
    for info in graph.modules_of_type(BatchNormBase):
        momentum = getattr(info.module, "momentum", None)
        if not isinstance(momentum, (int, float)) or not info.module.track_running_stats or momentum < limit:
            continue
        yield Hit(
            message=(
                f"{info.type_name} `{info.path}` has momentum={momentum:g}: in PyTorch momentum is the weight of the newest "
                f"batch, so the running statistics are {momentum:.0%} the last batch's — TensorFlow's decay convention "
                "(0.99 = keep 99% of the old average) means the opposite"
            ),
            fix=f"use momentum={1 - momentum:.3g} (1 - the TensorFlow value), or PyTorch's default 0.1",
            module=info.path,
            evidence={"momentum": momentum, "max_momentum": limit},
        )


@rule("NN109", "batchnorm-eps-suspicious", Severity.WARNING, thresholds={"max-eps": 0.01})
def batchnorm_eps_suspicious(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm `eps` of 0.01 or more: usually `BatchNorm1d(features, 0.8)`, meant as momentum.

    ## What it does
    Flags BatchNorm modules whose `eps` is at least `max-eps` (default 0.01).

    ## Why is this bad?
    `eps` is the small constant added to the variance so that the division is defined:
    Ioffe & Szegedy (2015) call it "a constant added to the mini-batch variance for numerical
    stability"; PyTorch's default is 1e-5, TensorFlow's 1e-3. The second positional argument
    of `nn.BatchNorm1d` is `eps`, not `momentum`, so `nn.BatchNorm1d(out_feat, 0.8)` — the
    generator block of PyTorch-GAN's GAN/ACGAN/InfoGAN implementations, copied into many
    projects — sets eps=0.8. For activations whose variance is near or below 0.8 the layer no
    longer normalizes: it divides by √(var + 0.8) ≈ a constant, shrinking the signal instead.

    ## Example
    ```python
    layers = [nn.Linear(in_feat, out_feat), nn.BatchNorm1d(out_feat, 0.8)]
    ```
    Use instead:
    ```python
    layers = [nn.Linear(in_feat, out_feat), nn.BatchNorm1d(out_feat, momentum=0.8)]  # if momentum was meant
    ```

    ## Fix
    Pass the value by keyword (`momentum=` if that was meant — but see NN108), or keep the
    default `eps=1e-5`.

    ## References
    - Ioffe & Szegedy (2015), "Batch Normalization", arXiv:1502.03167, algorithm 1 (ε for numerical stability)
    - PyTorch, `torch.nn.BatchNorm1d(num_features, eps=1e-05, momentum=0.1, ...)`: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html
    - eriklindernoren/PyTorch-GAN, implementations/gan/gan.py (`nn.BatchNorm1d(out_feat, 0.8)`)
    """
    limit = context.threshold("max-eps")
    for info in graph.modules_of_type(BatchNormBase):
        eps = getattr(info.module, "eps", 0.0)
        if not isinstance(eps, (int, float)) or eps < limit:
            continue
        yield Hit(
            message=(
                f"{info.type_name} `{info.path}` has eps={eps:g}: eps is only a guard against dividing by zero (default 1e-5); "
                f"at {eps:g} it outweighs any activation variance below {eps:g}, so the layer shrinks instead of normalizing. "
                "`BatchNorm1d(features, 0.8)` sets eps, not momentum"
            ),
            fix="pass the value by keyword (momentum=…) if that was meant, and keep the default eps=1e-5",
            module=info.path,
            evidence={"eps": eps, "max_eps": limit},
        )


@rule("NN110", "frozen-batchnorm-in-train-mode", Severity.WARNING)
def frozen_batchnorm_in_train_mode(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm whose affine parameters are frozen while the module is in training mode.

    ## What it does
    Flags a model that trains some parameters but has BatchNorm layers whose weight and bias
    are all frozen (`requires_grad=False`) while the layers are in training mode — the usual
    "frozen backbone, new head" transfer-learning setup done with `requires_grad` alone.
    Reported once, at the first such layer, with their count.

    ## Why is this bad?
    `requires_grad=False` freezes γ and β, not the statistics. In training mode BatchNorm still
    normalizes with each batch's own mean and variance and still overwrites its running
    averages with the new dataset's, so the "frozen" backbone computes different features in
    every batch and after training is no longer the network that was pretrained; with small
    fine-tuning batches (NN105) the batch statistics are also noisy. The lecture: BatchNorm uses
    batch statistics in training and the moving average at test time — freezing a layer means
    keeping it in the test-time behaviour.

    ## Example
    ```python
    for parameter in model.backbone.parameters():
        parameter.requires_grad = False
    model.train()                                   # backbone's BatchNorm layers train too
    ```
    Use instead:
    ```python
    model.train()
    model.backbone.eval()       # after every model.train(), or override train() to keep it in eval
    ```

    ## Fix
    Put the frozen part in evaluation mode after every `model.train()` (or override the
    model's `train()`), or replace its BatchNorm with `torchvision.ops.FrozenBatchNorm2d`.

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization at testing time
    - torchvision, `torchvision.ops.FrozenBatchNorm2d` ("BatchNorm2d where the batch statistics and the affine
      parameters are fixed"), used by its detection backbones
    - Ioffe & Szegedy (2015), "Batch Normalization", arXiv:1502.03167, section 3.1
    """
    if not any(p.requires_grad for p in graph.root.parameters()):
        return  # nothing trains: NN404's case, not a fine-tuning setup
    frozen = [info for info in graph.modules_of_type(BatchNormBase) if _frozen_yet_training(graph, info)]
    if not frozen:
        return
    first = frozen[0]
    yield Hit(
        message=(
            f"{len(frozen)} BatchNorm layer(s) with frozen weight and bias are in training mode, first {first.type_name} "
            f"`{first.path}`: requires_grad=False does not freeze their statistics — they still normalize with each batch's "
            "and overwrite the pretrained running averages"
        ),
        fix="call .eval() on the frozen part after every model.train() (or override train()), or use torchvision.ops.FrozenBatchNorm2d",
        module=first.path,
        evidence={"frozen_batchnorm_layers": len(frozen), "first": first.path},
    )


def _frozen_yet_training(graph: ModelGraph, info: ModuleInfo) -> bool:
    module = info.module
    affine = [module_tensor(module, "weight"), module_tensor(module, "bias")]
    parameters = [p for p in affine if p is not None]
    return bool(
        graph.runs(info.path)
        and module.training
        and module.track_running_stats
        and bool(parameters)
        and not any(p.requires_grad for p in parameters)
    )


# Ops whose output keeps features on the last axis: (batch, time, features) when 3-D.
_FEATURES_LAST = frozenset({"linear", "bilinear", "embedding", "multi_head_attention", "layer_norm"})


@rule("NN111", "batchnorm-wrong-axis", Severity.WARNING)
def batchnorm_wrong_axis(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """BatchNorm1d over a (batch, time, features) tensor: it normalizes the time axis as channels.

    ## What it does
    Flags `BatchNorm1d` called on a 3-D tensor that comes straight from a layer that puts
    features on the last axis — `Linear`, `Embedding`, `MultiheadAttention`, `LayerNorm` —
    seen through activations and dropout but not through a transpose, permute or reshape.
    Such a tensor is (batch, time, features); BatchNorm1d reads 3-D input as (batch, channels,
    length).

    ## Why is this bad?
    BatchNorm1d normalizes dimension 1. On (N, T, F) that is the time axis: it keeps one mean
    and variance per time step, pooled over the batch *and the features*, so features of very
    different scales share one statistic and are never normalized individually, and the layer
    only runs at all because `num_features` was set to the sequence length (which then cannot
    change). The lecture: BatchNorm normalizes each feature (channel) over the batch.

    ## Example
    ```python
    self.bn = nn.BatchNorm1d(seq_len)
    x = self.bn(self.embedding(tokens))            # (N, T, F): normalizes time steps
    ```
    Use instead:
    ```python
    self.bn = nn.BatchNorm1d(features)
    x = self.bn(x.transpose(1, 2)).transpose(1, 2)  # or nn.LayerNorm(features) on (N, T, F)
    ```

    ## Fix
    Transpose to (N, F, T) around the BatchNorm with `num_features=F`, or use
    `nn.LayerNorm(F)`, which normalizes the last axis.

    ## References
    - PyTorch, `torch.nn.BatchNorm1d` (input (N, C) or (N, C, L)): https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm1d.html
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization
    """
    see_through = frozenset({"identity", "getitem"}) | DROPOUTS | ACTIVATIONS
    for path, nodes in _batchnorm_calls(graph).items():
        for node in nodes:
            module = graph.module(node)
            shape = _input_shape(graph, node)
            if not isinstance(module, nn.BatchNorm1d) or shape is None or len(shape) != 3:
                continue
            producer = graph.source(node, through=see_through)
            if producer is None or graph.op(producer) not in _FEATURES_LAST:
                continue
            yield Hit(
                message=(
                    f"{graph.describe(node)} normalizes a {tuple(shape)} tensor from {graph.describe(producer)}, whose features "
                    f"are on the last axis: BatchNorm1d reads (batch, channels, length), so it keeps one statistic per time "
                    f"step ({shape[1]}) pooled over the {shape[2]} features"
                ),
                fix=f"transpose to (N, {shape[2]}, {shape[1]}) around it with BatchNorm1d({shape[2]}), or use nn.LayerNorm({shape[2]})",
                module=path or None,
                location=graph.location(node),
                evidence={"input_shape": list(shape), "producer": graph.op(producer)},
            )
            break


def _input_shape(graph: ModelGraph, node: torch.fx.Node) -> tuple[int, ...] | None:
    inputs = graph.tensor_inputs(node)
    return graph.shape(inputs[0]) if inputs else None
