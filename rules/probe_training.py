"""NN9 — probe: training behaviour. Checks from "A Recipe for Training Neural Networks" (Karpathy,
2019) and the lecture "Applied Deep Learning — Practical Tips" (NTU, 2020) that need a real forward
and backward: evaluation mode, the loss at initialization, the first optimizer step."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Iterator

import torch.nn.functional as F
from torch import nn

from nnlint.context import RuleContext
from nnlint.findings import Location, Phase, Severity
from nnlint.formatting import number
from nnlint.graph import ModelGraph
from nnlint.graph.ops import DROPOUT_LIKE
from nnlint.measures import Measure
from nnlint.probe.result import ProbeResult, TargetRange
from nnlint.registry import Hit, rule

from .activations import head_of


def _probe(context: RuleContext) -> ProbeResult:
    assert context.probe is not None  # guaranteed by phase=Phase.PROBE
    return context.probe


@rule(
    "NN901",
    "eval-mode-not-deterministic",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-difference": 1e-4},
    needs=(Measure.EVAL_DETERMINISM,),
)
def eval_mode_not_deterministic(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Two evaluation-mode forwards on the same input differ: something random ignores `eval()`.

    ## What it does
    Runs the model in evaluation mode; when that forward drew random numbers (from torch's,
    Python's or NumPy's generators), runs it again on the same input and compares the outputs
    (‖a − b‖ / ‖b‖). Flags a difference above `max-difference` (1e-4, far above the 1e-7 that
    non-deterministic GPU kernels cause) and names the first random operation that ran in
    evaluation mode — `F.dropout(x, p)` without `training=self.training`, `torch.randn_like`
    noise, `torch.rand` masks — with its line. Dropout left on is a warning; a sampling op
    (`randn`, `rand`, `bernoulli`, …) is reported as info, because models that sample by design
    (a VAE's reparameterization, stochastic policies, diffusion) do exactly that.

    ## Why is this bad?
    Evaluation and inference should be a function of the input. Randomness left on in
    evaluation makes validation metrics noisy and predictions irreproducible, and usually means
    dropout or noise injection that was meant for training only.

    ## Example
    ```python
    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), p=0.5))   # training=True by default
    ```
    Use instead:
    ```python
        return self.fc2(F.dropout(F.relu(self.fc1(x)), p=0.5, training=self.training))
    ```

    ## Fix
    Tie every random operation to the module's mode: `training=self.training` for functional
    dropout, `if self.training:` around noise injection, or use `nn.Dropout` modules.

    ## References
    - PyTorch, `torch.nn.functional.dropout` (training defaults to True): https://pytorch.org/docs/stable/generated/torch.nn.functional.dropout.html
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Dropout at testing time
    """
    found = _probe(context).determinism
    if found is None or not (found.relative_difference > context.threshold("max-difference")):
        return
    cause = ""
    sampling = found.random_op is not None and found.random_op not in DROPOUT_LIKE
    if found.random_op is not None:
        owner = graph.describe_module(found.module) if found.module is not None else "the model's forward"
        cause = f": `{found.random_op}` draws random numbers in evaluation mode in {owner}"
        if sampling:
            cause += " (intended if the model samples by design: a VAE's latent, a stochastic policy)"
    yield Hit(
        message=f"two evaluation-mode forwards on the same input differ by {number(found.relative_difference)} (relative){cause}",
        fix="tie randomness to the mode: F.dropout(x, p, training=self.training), `if self.training:` around noise, or nn.Dropout",
        module=found.module or None,
        location=found.location or (None if found.module else context.target_location),
        severity=Severity.INFO if sampling else None,
        evidence={"relative_difference": found.relative_difference, "random_op": found.random_op},
    )


@rule(
    "NN902",
    "train-eval-mismatch",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"min-difference": 0.25, "dropout-factor": 2.0},
    needs=(Measure.TRAIN_EVAL_GAP,),
)
def train_eval_mismatch(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Training- and evaluation-mode outputs disagree far beyond what dropout explains.

    ## What it does
    First lets BatchNorm's running statistics catch up with the batch (on a copy, as many
    training steps would), then compares the training-mode output — over pieces of the training
    batch size when that is smaller than the batch — with the evaluation-mode output. Two
    training-mode forwards measure what dropout alone changes. Flags a relative difference
    above `min-difference` (0.25) that is also more than `dropout-factor` (2×) dropout's, and
    names the first module whose output diverges that way. When the first module whose outputs
    differ by more than `min-difference` at all is one dropout explains, the gap is dropout's and
    is not reported: layers after a dropout reshape its effect — a ReLU turns its noise into a
    shift, and global pooling then averages the noise between two training runs away but keeps
    the shift (SqueezeNet's Dropout → Conv → ReLU → pooling head differs from evaluation 3× more
    than two training runs differ, with no BatchNorm at all). The defaults are nnlint's, from
    measurements: a BatchNorm ResNet agrees to floating-point precision once calibrated, and in
    models whose only difference is dropout (a pre-norm transformer, an LSTM tagger) the
    train/eval difference is 0.7× the dropout difference, since evaluation is dropout's average.

    ## Why is this bad?
    A model is trained in one mode and used in the other. When they disagree beyond dropout,
    validation and deployment see a different model from the one training optimized — the
    classic "great training loss, poor validation" from BatchNorm statistics that do not match
    (one BatchNorm shared across time steps or branches, statistics from tiny batches, a
    hand-written normalization whose running statistics never update) or code that branches on
    `self.training`.

    ## Example
    ```python
    self.norm = nn.BatchNorm1d(32)
    for t in range(steps):
        h = self.norm(self.cell(x[:, t], h))   # one set of running statistics for every step
    ```

    ## Fix
    Give each use its own normalization or use one without batch statistics (LayerNorm,
    GroupNorm); train with batches of at least 16; make sure running statistics update in
    training; keep `self.training` branches to dropout-like noise.

    ## References
    - Ioffe (2017), "Batch Renormalization", arXiv:1702.03275 (train/inference mismatch of BatchNorm)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization at testing time
    """
    gap = _probe(context).train_eval
    if gap is None:
        return
    minimum, factor = context.threshold("min-difference"), context.threshold("dropout-factor")
    if not (gap.relative_difference > minimum and gap.relative_difference > factor * gap.dropout_difference):
        return
    onset = next((m for m in gap.modules if m.difference > minimum), None)
    if onset is not None and onset.difference <= factor * onset.dropout_difference:
        return  # the outputs start to differ at a dropout: what follows it reshapes dropout's effect
    first = next((m for m in gap.modules if m.difference > minimum and m.difference > factor * m.dropout_difference), None)
    where = f"; the first module to diverge is {graph.describe_module(first.module)} ({number(first.difference)})" if first else ""
    batch = f" in pieces of {gap.chunk_size} (the training batch size)" if gap.chunk_size < _probe(context).batch else ""
    yield Hit(
        message=(
            f"training-mode output{batch} and evaluation-mode output differ by {number(gap.relative_difference)} (relative) after "
            f"BatchNorm statistics caught up with the batch; dropout alone changes it by {number(gap.dropout_difference)}{where}"
        ),
        fix="give each use its own normalization or use LayerNorm/GroupNorm; train with batches of 16 or more; check `if self.training`",
        module=first.module if first else None,
        location=None if first else context.target_location,
        evidence={
            "relative_difference": gap.relative_difference,
            "dropout_difference": gap.dropout_difference,
            "chunk_size": gap.chunk_size,
            "module": first.module if first else None,
        },
    )


@rule(
    "NN903",
    "loss-at-initialization",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-ratio": 2.0},
    requires=("loss_fn",),
)
def loss_at_initialization(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Classification loss at initialization far above log(C).

    ## What it does
    For `nn.CrossEntropyLoss`/`nn.NLLLoss` (C classes from the output's dimension 1) and binary
    cross-entropy, compares the probe's first loss with what a model that knows nothing yet
    scores — log(C), or log(2) per binary output — and flags a loss above `max-ratio` (2×)
    that value: logits with a standard deviation of about √(2·log C) already, where a default
    PyTorch head scores within 1.1× and a He-initialized one about 1.6×. Without
    `example_batch` the targets are random labels, for which log(C) is still the expected loss
    of an uninformed model.

    ## Why is this bad?
    Karpathy's recipe: "verify loss @ init … you should measure -log(1/n_classes)". A higher
    loss means the untrained model is already confidently wrong — logits too large from a badly
    scaled last layer or unscaled features, or a loss summed instead of averaged — and the
    first iterations only undo that ("hockey stick" loss curves).

    ## Example
    ```python
    model.head = nn.Linear(512, 10)
    nn.init.normal_(model.head.weight, std=1.0)   # logits with std ~20
    ```

    ## Fix
    Initialize the last layer small (or zero) and its bias to the class prior; standardize
    the features; average the loss (`reduction="mean"`).

    ## References
    - Karpathy (2019), "A Recipe for Training Neural Networks": "verify loss @ init", "init well"
    """
    found = _probe(context).initial_loss
    if found is None or not math.isfinite(found.loss) or found.loss <= context.threshold("max-ratio") * found.baseline:
        return
    layers = _probe(context).layers
    if layers and all(layer.finite and layer.grad_norm == 0 for layer in layers):
        return  # a constant model: NN801 names why no gradient flows; initialization is not the cause
    head = layers[-1].module if layers else None
    baseline = f"log({found.classes}) = {number(found.baseline)}"
    yield Hit(
        message=(
            f"the {found.loss_name} at initialization is {number(found.loss)}, {number(found.loss / found.baseline)}× the "
            f"{baseline} of an uninformed model ({'real' if found.targets == 'example_batch' else 'random'} targets): "
            "the untrained model is confidently wrong"
        ),
        fix="initialize the last layer small (its bias to the class prior), standardize the features, average the loss (reduction='mean')",
        module=head,
        location=None if head else context.target_location,
        evidence={"loss": found.loss, "baseline": found.baseline, "classes": found.classes, "targets": found.targets},
    )


@rule(
    "NN904",
    "cannot-overfit-one-batch",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-final-ratio": 0.9},
    requires=("deep",),
    needs=(Measure.OVERFIT,),
)
def cannot_overfit_one_batch(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """The loss on a few samples does not fall in a few dozen steps (opt-in: `--deep`).

    ## What it does
    With `--deep`, trains a fresh copy of the model on the first 8 samples for 50 steps with a
    copy of the user's optimizer (Adam, lr 1e-3, when there is none) and the probe's loss, and
    flags the model when the best of the last five losses is above `max-final-ratio` (0.9) of
    the first: the loss on data it sees every step did not even fall by a tenth. (Memorizing
    random targets completely can take longer than 50 steps at an ordinary learning rate, so
    the rule asks for a fall, not for Karpathy's zero.)

    ## Why is this bad?
    Karpathy's recipe: "overfit one batch … if they do not [reach a loss of ~0], there is a bug
    somewhere". A model that cannot memorize a handful of samples has an output disconnected
    from its input or its parameters, a dead or saturated layer, a wrong loss, or a learning
    rate orders of magnitude off.

    ## Example
    ```python
    def forward(self, x):
        return self.head(self.body(x).detach() * 0)   # the output ignores the input
    ```

    ## Fix
    Look at the other findings first (NN804, NN805, NN807, NN801); check that the output depends
    on the input, that the loss compares the right tensors, and the learning rate.

    ## References
    - Karpathy (2019), "A Recipe for Training Neural Networks": "overfit one batch"
    """
    run = _probe(context).overfit
    if run is None or not math.isfinite(run.initial_loss) or run.initial_loss <= 0:
        return
    ratio = run.final_loss / run.initial_loss if math.isfinite(run.final_loss) else math.inf
    if ratio <= context.threshold("max-final-ratio"):
        return
    yield Hit(
        message=(
            f"{run.steps} steps of {run.optimizer} on {run.samples} samples took the loss from {number(run.initial_loss)} only to "
            f"{number(run.final_loss)} ({number(ratio)}×): the model cannot overfit a handful of samples"
        ),
        fix="check that the output depends on the input and the parameters (NN804/NN805/NN807), the loss's arguments and the learning rate",
        location=context.target_location,
        evidence={"initial_loss": run.initial_loss, "final_loss": run.final_loss, "steps": run.steps, "samples": run.samples},
    )


@rule(
    "NN905",
    "update-to-weight-ratio",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-ratio": 1e-1, "min-ratio": 1e-5},
    requires=("optimizer",),
    needs=(Measure.UPDATE_RATIOS,),
)
def update_to_weight_ratio(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Per-layer update/weight ratio after one optimizer step far from ~1e-3.

    ## What it does
    Steps a copy of the optimizer once (its hyperparameters and state, on copies of the
    weights; at each group's base learning rate `initial_lr` when a scheduler is warming it up)
    with the probe's gradients, and measures ‖ΔW‖ / ‖W‖ for every weight matrix and kernel.
    Flags the optimizer when the median over layers is above `max-ratio` (0.1) or below
    `min-ratio` (1e-5) — two orders of magnitude from the ~1e-3 that CS231n recommends —
    listing the layers furthest out.

    ## Why is this bad?
    The ratio is the learning rate as the weights feel it. Around 1e-3 a layer changes by 0.1%
    per step; at 0.1 and above the first steps rewrite the initialization and training
    diverges; below 1e-5 nothing moves in any reasonable number of steps.

    ## Example
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    ```

    ## Fix
    Scale the learning rate so that the ratio is near 1e-3 (run a learning-rate range test);
    with Adam, 1e-4 to 1e-3 is the usual range.

    ## References
    - Karpathy, CS231n "Neural Networks Part 3": "ratio of the update magnitudes to the value magnitudes … around 1e-3"
    - Smith (2017), "Cyclical Learning Rates for Training Neural Networks" (learning-rate range test)
    """
    # An update of exactly zero comes from a gradient of exactly zero: no learning rate moves it
    # (NN801 reports every gradient being zero, with its cause).
    ratios = sorted((r for r in _probe(context).update_ratios if r.update_norm > 0), key=lambda r: r.ratio)
    if not ratios:
        return
    median = statistics.median(r.ratio for r in ratios)
    high, low = context.threshold("max-ratio"), context.threshold("min-ratio")
    if low <= median <= high:
        return
    too_high = median > high
    outliers = [r for r in (reversed(ratios) if too_high else ratios) if (r.ratio > high if too_high else r.ratio < low)][:3]
    listed = ", ".join(f"`{r.parameter}` {number(r.ratio)}" for r in outliers)
    optimizer = context.target.optimizer
    group = optimizer.param_groups[0] if getattr(optimizer, "param_groups", None) else {}
    lr = group.get("initial_lr", group.get("lr"))
    yield Hit(
        message=(
            f"one step of {type(optimizer).__name__}{f' (lr={lr})' if lr is not None else ''} changes the weights by a median "
            f"{number(median)} of their norm (‖ΔW‖/‖W‖ over {len(ratios)} layers; ~1e-3 is healthy): {listed}"
        ),
        fix=f"{'lower' if too_high else 'raise'} the learning rate until the update/weight ratio is near 1e-3",
        location=_optimizer_location(context),
        evidence={"median_ratio": median, "ratios": {r.parameter: r.ratio for r in ratios}},
    )


def _optimizer_location(context: RuleContext) -> Location | None:
    return context.extra_locations.get("optimizer", context.target_location)


@rule(
    "NN906",
    "batch-samples-mixed",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-dependence": 1e-5},
    needs=(Measure.SAMPLE_MIXING,),
)
def batch_samples_mixed(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """A sample's output depends on other samples in the batch (a view/permute or batch_first bug).

    ## What it does
    In evaluation mode (so BatchNorm uses its running statistics; one without them, and a
    functional `F.batch_norm` given none — MAML's transductive batch norm — has its batch
    statistics held constant), backpropagates from the outputs of the first and last samples and
    measures the gradient that reaches the other samples' inputs (the embeddings' outputs for
    token inputs), relative to their own. Flags a share above `max-dependence` (1e-5; independent
    samples give exactly 0) and names the module after which samples stay separate — where they
    were mixed. Dimension 0 of a given input is taken as the batch, as everywhere in nnlint: a
    model that takes (time, batch, …) inputs on purpose mixes along that dimension by design, and
    the finding says so when the module it names has `batch_first=False`. An input nnlint makes up
    for a model whose sequence layer has `batch_first=False` is laid out (time, batch, …), and its
    samples are read along dimension 1 (pytorch/examples' word_language_model); a given input that
    is one sequence for such a model (only 1-D tensors, like the PyTorch tutorial's tagger given
    one sentence of word indices) holds one sample, and is not checked. Outputs indexed by two samples
    (batch × batch: CLIP's image–text logits, a similarity or Gram matrix) compare samples by
    definition and are left out; the model's other outputs are checked.

    ## Why is this bad?
    Samples of a batch must not see each other: the model would learn from, and predict with,
    whatever else shares the batch. Typical causes: an RNN or `nn.MultiheadAttention` given
    (batch, time, features) without `batch_first=True` (it attends or recurs across the
    batch), or `x.view(...)` where `x.permute(...)` was meant.

    ## Example
    ```python
    self.lstm = nn.LSTM(16, 32)          # expects (time, batch, features)
    out, _ = self.lstm(x)                # x is (batch, time, features)
    ```

    ## Fix
    Pass `batch_first=True` (or transpose to the layout the layer expects), and reshape with
    `permute`/`transpose` before `view` when moving dimensions.

    ## References
    - PyTorch, `torch.nn.LSTM` and `torch.nn.MultiheadAttention`: the `batch_first` argument
    - Karpathy (2019), "A Recipe for Training Neural Networks": "use backprop to chart dependencies"
    """
    mixing = _probe(context).mixing
    if mixing is None or not (mixing.dependence > context.threshold("max-dependence")):
        return
    where = f"; they mix in {graph.describe_module(mixing.module)}" if mixing.module else ""
    layer = graph.modules[mixing.module].module if mixing.module in graph.modules else None
    if getattr(layer, "batch_first", True) is False:
        where += (
            " (it has batch_first=False and reads dimension 1 as the batch; if the example input is laid out "
            "(time, batch, …) on purpose, dimension 0 is not the batch and this does not apply)"
        )
    source = "inputs" if mixing.probe_input == "input" else f"{graph.describe_module(mixing.probe_input)} outputs"
    yield Hit(
        message=(
            f"the outputs of samples 0 and {mixing.samples - 1} depend on other samples' {source} "
            f"(their gradient is {number(mixing.dependence)} of the samples' own){where}"
        ),
        fix="pass batch_first=True to RNN/MultiheadAttention/Transformer layers (or transpose); move dimensions with permute, not view",
        module=mixing.module,
        location=None if mixing.module else context.target_location,
        evidence={"dependence": mixing.dependence, "module": mixing.module, "samples": mixing.samples},
    )


# Bounded outputs: the op, the interval it maps into, and which share of the targets lies outside it.
_OUTPUT_RANGES: dict[str, tuple[str, Callable[[TargetRange], float]]] = {
    "sigmoid": ("(0, 1)", lambda t: t.outside_unit),
    "hardsigmoid": ("[0, 1]", lambda t: t.outside_unit),
    "softmax": ("[0, 1]", lambda t: t.outside_unit),
    "tanh": ("(-1, 1)", lambda t: t.outside_symmetric),
    "hardtanh": ("[-1, 1]", lambda t: t.outside_symmetric),
    "softsign": ("(-1, 1)", lambda t: t.outside_symmetric),
    "relu": ("[0, ∞)", lambda t: t.below_zero),
    "softplus": ("(0, ∞)", lambda t: t.below_zero),
}
# Losses that compare the output with the targets value for value (regression).
_REGRESSION_LOSSES: tuple[tuple[type, object], ...] = (
    (nn.MSELoss, F.mse_loss),
    (nn.L1Loss, F.l1_loss),
    (nn.SmoothL1Loss, F.smooth_l1_loss),
    (nn.HuberLoss, F.huber_loss),
)


def _is_regression_loss(loss_fn: object) -> bool:
    while isinstance(loss_fn, functools.partial):
        loss_fn = loss_fn.func
    return any(
        loss_fn is function or isinstance(loss_fn, cls) or (isinstance(loss_fn, type) and issubclass(loss_fn, cls))
        for cls, function in _REGRESSION_LOSSES
    )


@rule(
    "NN907",
    "output-cannot-reach-targets",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-outside-share": 0.01},
    requires=("loss_fn", "example_batch"),
)
def output_cannot_reach_targets(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """A bounded output (sigmoid, tanh, softmax, ReLU) trained on targets outside its range.

    ## What it does
    With a regression loss (`MSELoss`, `L1Loss`, `SmoothL1Loss`, `HuberLoss`, module or
    functional) and real targets (`example_batch`), looks at the op that produces the model's
    output (through reshapes and dropout) and flags it when more than `max-outside-share` (1%)
    of the target values lie outside the range that op can produce: (0, 1) for a sigmoid or
    softmax, (-1, 1) for tanh, [0, ∞) for ReLU. An output scaled after the activation
    (`torch.sigmoid(x) * 1080`) is not bounded and not flagged.

    ## Why is this bad?
    The model can never produce the values it is asked for: a sigmoid output trained on box
    coordinates of 10–1080 pixels is at best 1 everywhere, so the loss stays near the targets'
    size, and pushing the pre-activation toward +∞ saturates the sigmoid, whose gradient then
    vanishes — training stalls with the output stuck at its bound. Real reports: bounding-box
    regressors and age/price regressors ending in a sigmoid on unnormalized targets.

    ## Example
    ```python
    head = nn.Sequential(nn.Linear(256, 4), nn.Sigmoid())     # targets: pixel boxes 10..1080
    loss_fn = nn.MSELoss()
    ```

    ## Fix
    Scale the targets into the output's range (divide boxes by the image size, standardize
    regression targets), or remove the final activation (or scale its output) so the model can
    produce the targets' range.

    ## References
    - Goodfellow, Bengio & Courville (2016), "Deep Learning", section 6.2.2 (output units must match the target distribution)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): output layer and loss; Feature Scaling
    """
    found = _probe(context).target_range
    if found is None or not _is_regression_loss(context.target.loss_fn):
        return
    head = head_of(graph)
    bounded = _OUTPUT_RANGES.get(head.op) if head is not None else None
    if head is None or bounded is None:
        return
    interval, outside_share = bounded
    share = outside_share(found)
    if share <= context.threshold("max-outside-share"):
        return
    yield Hit(
        message=(
            f"the model's output comes from {graph.describe(head.node)}, which can only produce values in {interval}, but "
            f"{share:.0%} of the {found.values} target values lie outside it (targets {number(found.minimum)} to "
            f"{number(found.maximum)}): the loss cannot reach its minimum and the saturated {head.op} stops passing gradient"
        ),
        fix=f"scale the targets into {interval} (or standardize them), or remove or rescale the final {head.op}",
        module=graph.enclosing_module(head.node),
        location=graph.location(head.node),
        evidence={"output_op": head.op, "range": interval, "outside_share": share, "minimum": found.minimum, "maximum": found.maximum},
    )
