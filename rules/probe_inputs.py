"""NN7 — probe: inputs, after the lecture "Applied Deep Learning — Practical Tips" (NTU, 2020):
Feature Scaling. Measured on real data only (`example_batch`), as the first Conv/Linear/RNN layer
sees it — after whatever the forward does first (a `/ 255`, a normalization layer)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from torch.fx import Node

from nnlint.context import RuleContext
from nnlint.findings import Location, Phase, Severity
from nnlint.formatting import number
from nnlint.graph import ModelGraph
from nnlint.probe.result import InputStats
from nnlint.registry import Hit, rule

_REQUIRES = ("example_batch",)
_SHOWN = 6
_STANDARDIZE = "standardize each feature with the training set's mean and std: x = (x - mean) / std"


def _inputs(graph: ModelGraph, context: RuleContext, minimum: float) -> InputStats | None:
    """The measured inputs, when there are at least `minimum` values per feature and all are finite
    (NaN or Inf in the data is NN803's), and they are the data's, not features the forward computed."""
    stats = context.probe.inputs if context.probe is not None else None
    if stats is None or stats.observations < minimum or _periodic_features(graph, stats.module):
        return None
    if not all(math.isfinite(v) for values in (stats.mean, stats.std, stats.minimum, stats.maximum) for v in values):
        return None
    return stats


# Ops whose outputs are periodic features the forward makes from the data: a sinusoidal time or
# position embedding, Fourier features. Their scales are the embedding's design, not the data's.
_PERIODIC = frozenset({"sin", "cos"})


def _periodic_features(graph: ModelGraph, module: str) -> bool:
    """Whether what reaches the first layer `module` comes out of sin/cos in the forward
    (tanelp/tiny-diffusion: the 2-D points and the timestep go through SinusoidalEmbedding before
    the first Linear, whose low-frequency columns barely vary): no scaling of the data changes them."""
    pending = [source for node in graph.nodes if _calls(graph, node, module) for source in graph.tensor_inputs(node)]
    seen: set[Node] = set()
    while pending:
        node = pending.pop()
        if node in seen:
            continue
        seen.add(node)
        if graph.op(node) in _PERIODIC:
            return True
        pending.extend(graph.tensor_inputs(node))
    return False


def _calls(graph: ModelGraph, node: Node, module: str) -> bool:
    info = graph.module_info(node)
    return info is not None and info.path == module


def _location(context: RuleContext) -> Location | None:
    """Findings about the data point at `example_batch`'s line."""
    return context.extra_locations.get("example_batch", context.target_location)


def _features(stats: InputStats) -> str:
    return "channel" if stats.feature_axis == 1 and stats.observations > stats.samples else "feature"


def _listed(values: Sequence[float]) -> str:
    shown = ", ".join(number(v) for v in values[:_SHOWN])
    return f"[{shown}{', …' if len(values) > _SHOWN else ''}]"


@rule(
    "NN701",
    "unscaled-inputs",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-abs-mean": 10, "max-std": 10, "min-observations": 16},
    requires=_REQUIRES,
)
def unscaled_inputs(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Real input features far from mean 0 / std 1, or raw ranges such as 0..255.

    ## What it does
    Measures, per feature (per channel for images), the mean and standard deviation of the
    `example_batch` inputs as the first Conv/Linear/RNN layer receives them, and flags them when
    a feature's mean is beyond ±`max-abs-mean` (10) or its standard deviation above `max-std`
    (10) — an order of magnitude beyond unit scale — over at least `min-observations` (16)
    values per feature. It names raw 8-bit pixels (whole numbers in 0..255) as such. Inputs with
    NaN or Inf are NN803's.

    ## Why is this bad?
    Gradient descent converges fastest when each input has mean ≈ 0 and variance ≈ 1 (LeCun et
    al. 1998): a shifted input biases every update of the first layer in one direction, a large
    one scales its gradients up (see NN802) and saturates the activations behind it. The
    lecture: feature scaling makes the loss surface rounder and training faster.

    ## Example
    ```python
    images = torch.randint(0, 256, (32, 3, 32, 32)).float()   # raw pixels
    example_batch = (images, labels)
    ```

    ## Fix
    Standardize with the training set's statistics: `x = (x - mean) / std` per feature, or
    `transforms.Normalize(mean, std)` after `ToTensor()` (which divides by 255) for images.

    ## References
    - LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp", section 4.3 "Normalizing the inputs"
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Feature Scaling
    """
    stats = _inputs(graph, context, context.threshold("min-observations"))
    if stats is None:
        return
    max_mean, max_std = context.threshold("max-abs-mean"), context.threshold("max-std")
    far = [i for i, (mean, std) in enumerate(zip(stats.mean, stats.std, strict=True)) if abs(mean) > max_mean or std > max_std]
    if not far:
        return
    low, high = min(stats.minimum), max(stats.maximum)
    kind = _features(stats)
    raw_pixels = stats.integer_valued and low >= 0 and 1 < high <= 255
    what = "raw 8-bit pixel values" if raw_pixels else f"{len(far)} of {len(stats.mean)} {kind}s far from mean 0 / std 1"
    yield Hit(
        message=(
            f"the inputs reaching {graph.describe_module(stats.module)} are {what}: range {number(low)}..{number(high)}, per-{kind} mean "
            f"{_listed(stats.mean)}, std {_listed(stats.std)}"
        ),
        fix=("divide by 255, then " if raw_pixels else "") + _STANDARDIZE + " (transforms.Normalize(mean, std) for images)",
        location=_location(context),
        evidence={
            "first_layer": stats.module,
            "feature_axis": stats.feature_axis,
            "mean": list(stats.mean),
            "std": list(stats.std),
            "min": low,
            "max": high,
            "unscaled_features": far,
            "raw_8bit": raw_pixels,
        },
    )


@rule(
    "NN702",
    "features-on-different-scales",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-std-ratio": 100, "min-observations": 16},
    requires=_REQUIRES,
)
def features_on_different_scales(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Per-feature standard deviations that differ by orders of magnitude.

    ## What it does
    Compares the standard deviations of the input features (channels for images) that vary at
    all, as the first layer sees them, and flags the batch when the largest is more than
    `max-std-ratio` (100, two orders of magnitude) times the smallest, with at least
    `min-observations` (16) values per feature (fewer make a standard deviation noise).

    ## Why is this bad?
    With features on different scales the loss surface is a long narrow valley: one learning
    rate is too large for the large-scale features' weights and too small for the others', and
    gradient descent zig-zags. The lecture's feature-scaling picture shows exactly this.

    ## Example
    ```python
    features = torch.stack([age_years, income_dollars, rooms], dim=1)   # std ~10, ~20 000, ~1
    ```

    ## Fix
    Standardize each feature separately with the training set's mean and std (not one global
    scale), e.g. sklearn's `StandardScaler` fitted on the training set.

    ## References
    - LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp", section 4.3
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Feature Scaling
    """
    stats = _inputs(graph, context, context.threshold("min-observations"))
    if stats is None:
        return
    varying = [(std, i) for i, std in enumerate(stats.std) if std > 0]
    if len(varying) < 2:
        return
    (smallest, low_index), (largest, high_index) = min(varying), max(varying)
    ratio = largest / smallest
    if ratio <= context.threshold("max-std-ratio"):
        return
    kind = _features(stats)
    yield Hit(
        message=(
            f"the input {kind}s reaching {graph.describe_module(stats.module)} are on different scales: "
            f"{kind} {high_index} has std {number(largest)}, "
            f"{kind} {low_index} has {number(smallest)} ({number(ratio)}×)"
        ),
        fix=_STANDARDIZE + ", each feature with its own statistics",
        location=_location(context),
        evidence={"std": list(stats.std), "ratio": ratio, "largest": high_index, "smallest": low_index},
    )


# Multi-hot and bag-of-words inputs: whole non-negative counts, each feature present in under this
# share of the samples on average. Most of their columns are zero in any one batch.
_SPARSE_MEAN = 0.5


def _sparse_counts(stats: InputStats) -> bool:
    """Whether the input looks like multi-hot or bag-of-words features (word counts, tags): in a
    batch of 64 documents most words of a vocabulary never occur, and a column of zeros is a rare
    word, not a broken pipeline."""
    return stats.integer_valued and min(stats.minimum, default=-1) >= 0 and sum(stats.mean) / max(len(stats.mean), 1) < _SPARSE_MEAN


@rule(
    "NN703",
    "constant-features",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"min-samples": 16},
    requires=_REQUIRES,
)
def constant_features(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Input features with zero variance across the batch.

    ## What it does
    Flags input features (channels for images) whose every value is the same across all
    samples of `example_batch` — when it holds at least `min-samples` (16) samples, so that a
    rare category's one-hot column is unlikely to be all zeros by chance. Multi-hot and
    bag-of-words inputs (whole non-negative counts, each feature present in under half the
    samples on average) are sparse by nature: their all-zero columns are rare words or tags,
    normal in a batch of 64, and are not reported; a column constant at another value still is.

    ## Why is this bad?
    A constant feature carries no information, costs a weight per unit of the first layer, and
    breaks standardization: dividing by its standard deviation of 0 gives NaN or Inf. It often
    means a preprocessing step went wrong (a column filled with a default, a channel never
    written).

    ## Example
    ```python
    features[:, 3] = 0.0   # a column the pipeline never fills
    ```

    ## Fix
    Drop the feature, or fix the step that should fill it; when standardizing, guard the
    division (`std.clamp_min(1e-8)`).

    ## References
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Feature Scaling
    - scikit-learn, `VarianceThreshold`: https://scikit-learn.org/stable/modules/feature_selection.html#removing-features-with-low-variance
    """
    stats = _inputs(graph, context, 2)
    if stats is None or stats.samples < context.threshold("min-samples"):
        return
    sparse = _sparse_counts(stats)
    constant = [
        i for i, (low, high) in enumerate(zip(stats.minimum, stats.maximum, strict=True)) if low == high and not (sparse and low == 0)
    ]
    if not constant:
        return
    kind = _features(stats)
    shown = ", ".join(f"{i} (= {number(stats.minimum[i])})" for i in constant[:_SHOWN]) + (", …" if len(constant) > _SHOWN else "")
    yield Hit(
        message=(
            f"{len(constant)} of {len(stats.std)} input {kind}s reaching {graph.describe_module(stats.module)} are constant across all "
            f"{stats.samples} samples: {kind}s {shown}"
        ),
        fix="drop the constant features or fix the preprocessing that should fill them; guard standardization against std = 0",
        location=_location(context),
        evidence={"constant": constant, "values": [stats.minimum[i] for i in constant]},
    )
