"""What the probe measured: plain frozen data, no judgement (the probe-phase rules judge it)."""

from __future__ import annotations

from dataclasses import dataclass

from nnlint.findings import Location
from nnlint.formatting import number  # noqa: F401 - re-exported: probe rules on other branches import it from here
from nnlint.measures import Measure


@dataclass(frozen=True)
class InputStats:
    """The input as the first layer sees it (after whatever the forward does before it)."""

    module: str  # the first Conv/Linear/RNN layer the data reaches
    feature_axis: int  # the axis whose entries are the features (channels for convolutions)
    samples: int
    observations: int  # values per feature: samples × positions
    mean: tuple[float, ...]  # per feature
    std: tuple[float, ...]
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    integer_valued: bool  # every value is a whole number (raw pixels, counts)


@dataclass(frozen=True)
class TargetRange:
    """The values of `example_batch`'s float targets (class indices are not in the output's space)."""

    values: int
    minimum: float
    maximum: float
    outside_unit: float  # share of values outside [0, 1]
    outside_symmetric: float  # share of values outside [-1, 1]
    below_zero: float  # share of negative values


@dataclass(frozen=True)
class ModuleStats:
    """One leaf module's output on one of its calls (averaged over the probe's steps)."""

    module: str
    call: int  # 0 for the first call of this module in a forward, 1 for the second, ...
    op: str  # nnlint's op vocabulary: "linear", "conv2d", "relu", ...
    mean: float
    std: float
    fraction_zero: float
    finite: bool


@dataclass(frozen=True)
class ActivationSite:
    """One place where a ReLU-like or saturating activation ran: a module or a functional call."""

    module: str  # the innermost module running (the activation module itself, or the one calling F.relu)
    call: int  # which call of that module
    op: str  # "relu", "relu6", "sigmoid", "tanh", ...
    index: int  # the n-th such activation inside that module call (functional calls)
    functional: bool
    location: Location | None  # the user's line of a functional call
    units: int
    observations: int  # values seen per unit
    dead_fraction: float | None  # ReLU-like: share of units never positive
    saturated_fraction: float | None  # saturating: share of values where the slope is < 5% of its maximum

    def describe(self) -> str:
        if not self.functional:
            return f"`{self.module}` ({self.op})" + (f", call {self.call + 1}" if self.call else "")
        owner = f"`{self.module}`" if self.module else "the model's forward"
        return f"{self.op} #{self.index + 1} in {owner}" + (f", call {self.call + 1}" if self.call else "")


@dataclass(frozen=True)
class LayerGradient:
    """A layer's weight-gradient norm (matrices and kernels only, as AUTOTRAINER measures it)."""

    module: str
    parameters: tuple[str, ...]
    grad_norm: float  # mean over the probe's steps
    weight_norm: float
    finite: bool


@dataclass(frozen=True)
class NonFinite:
    """The first place a NaN or Inf appeared."""

    stage: str  # "input", "forward", "loss" or "backward"
    module: str | None
    op: str | None
    location: Location | None
    detail: str


@dataclass(frozen=True)
class BatchNormSpread:
    """How much a BatchNorm layer's batch mean moves between batches of the training size."""

    module: str
    batch_size: int
    # Median over channels of sd(batch mean) / sd(channel), from the per-sample channel means.
    mean_spread: float


@dataclass(frozen=True)
class EvalDeterminism:
    relative_difference: float
    random_op: str | None  # the first random op that ran in evaluation mode
    module: str | None
    location: Location | None


@dataclass(frozen=True)
class ModuleGap:
    module: str
    difference: float  # training vs evaluation output of this module, relative to the latter's norm
    dropout_difference: float  # two training forwards of this module


@dataclass(frozen=True)
class TrainEvalGap:
    relative_difference: float  # training vs evaluation output, BatchNorm statistics calibrated
    dropout_difference: float  # two training forwards: what randomness alone explains
    chunk_size: int  # samples per training-mode forward (the training batch size when smaller)
    modules: tuple[ModuleGap, ...] = ()  # leaf modules in forward order


@dataclass(frozen=True)
class InitialLoss:
    loss: float
    baseline: float  # log(C) for cross-entropy, log(2) for binary cross-entropy
    classes: int
    loss_name: str
    targets: str  # "example_batch" or "random"


@dataclass(frozen=True)
class UpdateRatio:
    parameter: str
    module: str
    ratio: float  # ‖ΔW‖ / ‖W‖ after one optimizer step
    update_norm: float
    weight_norm: float


@dataclass(frozen=True)
class OverfitRun:
    samples: int
    steps: int
    initial_loss: float
    final_loss: float  # the best of the last few steps
    optimizer: str


@dataclass(frozen=True)
class SampleMixing:
    dependence: float  # gradient on other samples relative to the sample's own
    samples: int
    module: str | None  # the first module after which samples stay separate
    probe_input: str  # "input" or the module whose output stood in for integer inputs


@dataclass(frozen=True)
class MeasureNote:
    """A note about one measurement (not taken, or taken another way); the report names the rules
    that read it."""

    measure: Measure
    text: str


@dataclass(frozen=True)
class ProbeResult:
    device: str
    steps: int
    batch: int
    loss_source: str  # "loss_fn", "cross_entropy (guessed from the targets)", "synthetic", ...
    losses: tuple[float, ...]
    inputs: InputStats | None
    modules: tuple[ModuleStats, ...]  # forward order
    activations: tuple[ActivationSite, ...]  # forward order
    layers: tuple[LayerGradient, ...]  # forward order: input to output
    total_grad_norm: float
    without_grad: tuple[tuple[str, str], ...]  # (parameter, module) trainable but no gradient
    non_finite: NonFinite | None
    batchnorm_spread: tuple[BatchNormSpread, ...] = ()
    determinism: EvalDeterminism | None = None
    train_eval: TrainEvalGap | None = None
    initial_loss: InitialLoss | None = None
    update_ratios: tuple[UpdateRatio, ...] = ()
    overfit: OverfitRun | None = None
    mixing: SampleMixing | None = None
    targets_source: str | None = None  # "example_batch", "random" or None (synthetic loss)
    input_source: str = "example_input"  # "example_input", "example_batch" or "random"
    target_range: TargetRange | None = None  # example_batch's float targets
    notes: tuple[str | MeasureNote, ...] = ()
    full_batch: int | None = None  # the example's samples, when the probe trained on `batch` of them (--probe-budget)
    seconds: float | None = None  # how long the probe ran
    stopped: bool = False  # it ran out of time (--probe-budget, --probe-timeout) and reports what it measured
