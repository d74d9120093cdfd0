"""NN8 — probe: gradients and numerics. The lecture "Applied Deep Learning — Practical Tips" (NTU,
2020) asks to "avoid exploding/vanishing gradients"; only running the model shows whether they do.
Every rule here judges numbers the probe measured (`context.probe`); none runs the model itself."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from nnlint.context import RuleContext
from nnlint.findings import Phase, Severity
from nnlint.formatting import number
from nnlint.graph import ModelGraph
from nnlint.graph.ops import LINEAR_MAPS
from nnlint.probe.result import ActivationSite, LayerGradient, ProbeResult
from nnlint.registry import Hit, rule

from .activations import softmax_over_one_class


def _probe(context: RuleContext) -> ProbeResult:
    assert context.probe is not None  # guaranteed by phase=Phase.PROBE
    return context.probe


def _profile(layers: tuple[LayerGradient, ...]) -> list[dict[str, object]]:
    return [{"module": layer.module, "grad_norm": layer.grad_norm, "weight_norm": layer.weight_norm} for layer in layers]


def steady_share(values: list[float], growing: bool) -> float:
    """The share of consecutive steps (input to output) in which `values` move the one way: a
    trend through depth has most steps going that way, one odd layer or a zig-zag does not."""
    steps = list(zip(values, values[1:], strict=False))
    if not steps:
        return 0.0
    return sum((after > before) if growing else (after < before) for before, after in steps) / len(steps)


def _steepest_step(layers: tuple[LayerGradient, ...], falling: bool) -> tuple[LayerGradient, LayerGradient, float] | None:
    """The consecutive pair of layers (input side first) where the norm changes the most."""
    best = None
    for lower, upper in zip(layers, layers[1:], strict=False):
        if lower.grad_norm <= 0 or upper.grad_norm <= 0:
            continue
        factor = lower.grad_norm / upper.grad_norm
        if best is None or (factor < best[2] if falling else factor > best[2]):
            best = (lower, upper, factor)
    return best


def _vanishing_chart_lines(thresholds: Mapping[str, float], last_grad_norm: float) -> dict[str, float]:
    """Where the report's gradient-flow chart draws NN801's limits: a first layer under both is vanishing."""
    return {"vanishing_below": last_grad_norm * thresholds["max-first-to-last-ratio"], "vanishing_floor": thresholds["max-first-norm"]}


# A collapse through depth: the norm grows toward the output in at least this share of consecutive layers.
_STEADY_COLLAPSE = 0.75


def _loss_scale(probe: ProbeResult) -> float:
    """The size of the loss the gradients come from (its first value): gradients scale with it, so
    an absolute floor on them means something only relative to it."""
    first = abs(probe.losses[0]) if probe.losses else 1.0
    return first if math.isfinite(first) and first > 0 else 1.0


# Ops whose derivative is zero wherever it is defined: a loss reached only through them has no gradient.
_ZERO_GRADIENT_OPS = frozenset({
    "round", "floor", "ceil", "trunc", "sign", "argmax", "argmin", "gt", "lt", "ge", "le", "eq", "ne", "heaviside",
})  # fmt: skip


def _inputs_all_zero(probe: ProbeResult) -> bool:
    stats = probe.inputs
    return stats is not None and all(low == high == 0 for low, high in zip(stats.minimum, stats.maximum, strict=False))


def _all_gradients_zero(graph: ModelGraph, layers: tuple[LayerGradient, ...]) -> Hit:
    """Every weight gradient exactly zero: no learning rate helps; name what blocks them."""
    cause, fix, location = (
        "nothing between the weights and the loss passes a gradient",
        "check the path from the weights to the loss for .detach(), torch.no_grad(), integer casts or comparisons",
        None,
    )
    constant = next(softmax_over_one_class(graph), None)
    blocking = next((n for n in graph.nodes if graph.op(n) in _ZERO_GRADIENT_OPS or str(n.target) == "detach"), None)
    zero_weight = next(
        (
            name
            for name, p in graph.root.named_parameters()
            if p.requires_grad and p.dim() >= 2 and not p.is_meta and not bool(p.detach().any())
        ),
        None,
    )
    if constant is not None:
        node, dim, shape = constant
        cause = f"{graph.describe(node)} normalizes over dimension {dim}, of size 1 ({tuple(shape)}): its output is constant"
        fix = "for one output unit use a sigmoid (or return the logit with BCEWithLogitsLoss); for C classes output C units"
        location = graph.location(node)
    elif zero_weight is not None:
        cause = f"`{zero_weight}` is all zeros, so the layers around it pass no signal and no gradient"
        fix = "initialize it randomly (PyTorch's default; nn.init.kaiming_normal_ before a ReLU)"
    elif blocking is not None:
        cause = f"{graph.describe(blocking)} ({graph.op(blocking)}) has a zero or no derivative, and the loss is reached through it"
        fix = "compute the loss from the values before it (e.g. logits instead of argmax/round), or use a differentiable surrogate"
        location = graph.location(blocking)
    return Hit(
        message=(
            f"every weight gradient is exactly zero (over {len(layers)} layer(s)): {cause}; no step changes the model — "
            "raising the learning rate cannot help"
        ),
        fix=fix,
        location=location,
        evidence={"layers": len(layers), "cause": cause},
    )


def _exploding_chart_lines(thresholds: Mapping[str, float], last_grad_norm: float) -> dict[str, float]:
    """Where the report's gradient-flow chart draws NN802's limit: a first layer over it is exploding."""
    return {"exploding_above": last_grad_norm * thresholds["max-first-to-last-ratio"]}


@rule(
    "NN801",
    "vanishing-gradients",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-first-to-last-ratio": 1e-3, "max-first-norm": 1e-4, "min-layers": 3},
    chart_lines=_vanishing_chart_lines,
)
def vanishing_gradients(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Gradient norms collapse toward the input: the first layers barely learn.

    ## What it does
    Measures each layer's weight-gradient norm (matrices and kernels; biases and normalization
    scales left out) over the probe's training steps, from the input to the output, and flags
    the model when the first layer's norm is below `max-first-to-last-ratio` (1e-3) times the
    last layer's **and** either below `max-first-norm` (1e-4) times the loss — AUTOTRAINER's
    rule (β₁ = 1e-3, β₂ = 1e-4), with the floor scaled by the loss the gradients come from — or
    collapsing steadily through depth (the norm grows toward the output in at least 3 of 4
    consecutive layers). It names where the norm falls fastest. When every weight gradient is
    exactly zero it says so and names the cause it finds in the graph (a softmax over one class,
    an argmax/round/comparison, a detach) instead of any learning-rate advice.

    What changed: the absolute floor alone missed real vanishing gradients. Gradients scale
    with the loss, so a fixed 1e-4 means different things for a loss of 0.01 and of 1000; and a
    plain 5-layer sigmoid MLP whose first-layer gradient is 2,000–6,000× smaller than the last
    layer's, shrinking at every layer, is vanishing even when that gradient is above 1e-4. A
    model whose first layer is merely small (a sparse embedding gradient) without a steady fall
    through depth still needs the loss-scaled floor. The text report draws the
    whole profile as a chart. A first-layer gradient of exactly zero behind a layer whose
    weights are all zero is not reported: zero-initialized layers (LoRA's B matrix, DiT's
    adaLN-Zero, a zero-initialized head) block the first step on purpose and open after it.

    Without `loss_fn`, the gradient comes from the probe's synthetic loss (mean squared error
    to fixed random targets), whose scale is that of an ordinary mean-reduced loss.

    ## Why is this bad?
    Each layer multiplies the backward signal by its Jacobian; with saturating activations
    (sigmoid's slope is at most 0.25), small weights or no normalization, the product shrinks
    geometrically with depth. The first layers then get updates orders of magnitude smaller
    than the last and stop learning: the lecture's "avoid vanishing gradients".

    ## Example
    ```python
    layers = []
    for _ in range(12):
        layers += [nn.Linear(64, 64), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(64, 10))
    ```
    Use instead:
    ```python
    for _ in range(12):
        layers += [nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU()]   # He-initialized: nn.init.kaiming_normal_
    ```

    ## Fix
    Use ReLU-family activations with He initialization, add normalization (BatchNorm,
    LayerNorm), or residual connections; for recurrent models use LSTM/GRU and gradient clipping.

    ## References
    - Zhang et al. (2021), "AUTOTRAINER", ICSE: vanishing when first/last < 1e-3 and first < 1e-4
    - Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks"
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020)
    """
    probe = _probe(context)
    layers = probe.layers
    if layers and all(layer.finite and layer.grad_norm == 0 for layer in layers):
        if probe.non_finite is None and not _inputs_all_zero(probe):
            yield _all_gradients_zero(graph, layers)  # (NaN in the data is NN803's; an all-zero batch explains itself)
        return
    if len(layers) < context.threshold("min-layers"):
        return
    first, last = layers[0], layers[-1]
    if not (first.finite and last.finite) or last.grad_norm <= 0:
        return
    if first.grad_norm == 0 and any(layer.weight_norm == 0 for layer in layers):
        return  # a zero-initialized layer (LoRA's B, adaLN-Zero, a zero head) blocks the first step by design
    ratio = first.grad_norm / last.grad_norm
    floor = context.threshold("max-first-norm") * _loss_scale(probe)
    collapsing = steady_share([layer.grad_norm for layer in layers], growing=True) >= _STEADY_COLLAPSE
    if ratio >= context.threshold("max-first-to-last-ratio") or (first.grad_norm >= floor and not collapsing):
        return
    steepest = _steepest_step(layers, falling=True)
    where = f"; it falls fastest from `{steepest[1].module}` to `{steepest[0].module}` (×{number(steepest[2])})" if steepest else ""
    yield Hit(
        message=(
            f"gradients vanish toward the input: the first layer, {graph.describe_module(first.module)}, gets a weight gradient of norm "
            f"{number(first.grad_norm)}, {number(ratio)} times the last layer's "
            f"({number(last.grad_norm)}, {graph.describe_module(last.module)}) "
            f"across {len(layers)} layers{where}"
        ),
        fix="use ReLU-family activations with He initialization, add BatchNorm/LayerNorm or residual connections",
        module=first.module,
        evidence={
            "first_grad_norm": first.grad_norm,
            "last_grad_norm": last.grad_norm,
            "ratio": ratio,
            "steepest_drop": {"from": steepest[1].module, "to": steepest[0].module, "factor": steepest[2]} if steepest else None,
            "profile": _profile(layers),
        },
    )


@rule(
    "NN802",
    "exploding-gradients",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-first-to-last-ratio": 70, "max-total-norm": 1e3, "min-layers": 3, "min-steady-share": 0.75},
    chart_lines=_exploding_chart_lines,
)
def exploding_gradients(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Gradient norms blow up toward the input, or the total gradient norm is huge.

    ## What it does
    Flags the model when the first layer's weight-gradient norm exceeds `max-first-to-last-ratio`
    (70) times the last layer's — AUTOTRAINER's rule (β₃ = 70) — or when the norm of all
    gradients together exceeds `max-total-norm` (1000: three orders of magnitude above the
    clipping thresholds of 1–5 that recipes use, e.g. BERT and GPT clip at 1.0).
    The first-to-last ratio counts only when the norm also grows toward the input from layer to
    layer in at least `min-steady-share` (3/4) of the steps, as an explosion through depth does
    (the lecture's "avoid exploding gradients"; NN806 asks the same of activations). A profile
    that zig-zags is layers of different gradient scale side by side, not an explosion: at
    initialization attention's query/key projections get ~100× less gradient than value and
    MLP layers, a layer-scaled residual branch (ConvNeXt's γ = 1e-6) as much less as its scale,
    and an embedding table initialized small (std 0.02) and followed by LayerNorm gets ~1/0.02 =
    50× more, since LayerNorm divides by its output's scale (BERT-style embeddings).

    ## Why is this bad?
    The backward signal grows geometrically when layers amplify it (weights initialized too
    large, unnormalized inputs in the hundreds, deep stacks without normalization). Updates then
    overshoot, the loss jumps or turns NaN: the lecture's "avoid exploding gradients".

    ## Example
    ```python
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=1.0)   # ×√fan_in per layer
    ```

    ## Fix
    Initialize with He/Glorot scaling (`nn.init.kaiming_normal_`), standardize the inputs, add
    normalization layers, and clip gradients (`torch.nn.utils.clip_grad_norm_(params, 1.0)`).
    A loss with `reduction="sum"` scales gradients with the batch: prefer the mean.

    ## References
    - Zhang et al. (2021), "AUTOTRAINER", ICSE: exploding when first/last > 70
    - Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks" (gradient clipping)
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020)
    """
    probe = _probe(context)
    layers = probe.layers
    evidence: dict[str, object] = {"total_grad_norm": probe.total_grad_norm, "profile": _profile(layers)}
    if len(layers) >= context.threshold("min-layers") and layers[-1].grad_norm > 0 and all(layer.finite for layer in layers):
        first, last = layers[0], layers[-1]
        ratio = first.grad_norm / last.grad_norm
        steady = steady_share([layer.grad_norm for layer in layers], growing=False)
        evidence["steady_share"] = steady
        if ratio > context.threshold("max-first-to-last-ratio") and steady >= context.threshold("min-steady-share"):
            steepest = _steepest_step(layers, falling=False)
            where = f"; it grows fastest from `{steepest[1].module}` to `{steepest[0].module}` (×{number(steepest[2])})" if steepest else ""
            yield Hit(
                message=(
                    f"gradients explode toward the input: the first layer, {graph.describe_module(first.module)}, gets a weight "
                    f"gradient of norm {number(first.grad_norm)}, {number(ratio)} times the last layer's "
                    f"({number(last.grad_norm)}, {graph.describe_module(last.module)}){where}"
                ),
                fix="initialize with He/Glorot scaling, standardize the inputs, add normalization layers, clip gradients",
                module=first.module,
                evidence=evidence | {"first_grad_norm": first.grad_norm, "last_grad_norm": last.grad_norm, "ratio": ratio},
            )
            return
    limit = context.threshold("max-total-norm")
    if math.isfinite(probe.total_grad_norm) and probe.total_grad_norm > limit:
        yield Hit(
            message=f"the total gradient norm is {number(probe.total_grad_norm)} (above {number(limit)}) at initialization",
            fix="initialize with He/Glorot scaling, standardize the inputs, average the loss (reduction='mean'), clip gradients",
            location=context.target_location,
            evidence=evidence,
        )


@rule("NN803", "non-finite-values", Severity.ERROR, phase=Phase.PROBE)
def non_finite_values(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """NaN or Inf in an activation, the loss or a gradient: the first place it appeared.

    ## What it does
    When any activation, the loss or a gradient of the probe is NaN or Inf, reruns the forward
    watching every operation and reports the first one (in forward order) that turned finite
    inputs into NaN/Inf, with its module and line — or the input itself, the loss, or the
    backward pass when the forward was finite.

    ## Why is this bad?
    One NaN poisons every weight it reaches through the update; training continues and
    produces garbage. The usual sources are `log(0)`, `sqrt` of a negative, division by a zero
    norm, `exp` overflow, or NaN in the data.

    ## Example
    ```python
    def forward(self, x):
        return torch.log(self.fc(x))   # log of negative values: NaN
    ```

    ## Fix
    Guard the operation (`torch.log(x.clamp_min(1e-8))`, `x / (norm + eps)`,
    `torch.logsumexp` instead of `log(sum(exp))`), or clean the data.

    ## References
    - PyTorch, `torch.autograd.detect_anomaly`: https://pytorch.org/docs/stable/autograd.html#anomaly-detection
    - Amazon SageMaker Debugger, built-in rule `ExplodingTensor`
    """
    found = _probe(context).non_finite
    if found is None:
        return
    if found.stage == "input":
        given = context.extra_locations
        location = given.get("example_batch", given.get("example_input", context.target_location))
        yield Hit(
            message="the example input contains NaN or Inf: every activation and gradient downstream is NaN",
            fix="clean the data (torch.nan_to_num, drop or impute missing values) before it reaches the model",
            location=location,
            evidence={"stage": "input"},
        )
        return
    where = f" in {graph.describe_module(found.module)}" if found.module is not None else ""
    op = f"`{found.op}`" if found.op else "an operation"
    messages = {
        "forward": f"{op}{where} turns finite inputs into NaN/Inf in the forward pass",
        "loss": "the loss is NaN/Inf although the model's output is finite: check the loss on these outputs and targets",
        "backward": f"the gradient turns NaN/Inf in the backward pass{' at or after ' + repr(found.module) if found.module else ''} "
        "although forward and loss are finite (e.g. sqrt or norm at 0, pow with a negative base)",
    }
    yield Hit(
        message=messages[found.stage],
        fix="guard the operation: clamp before log/sqrt/division (x.clamp_min(1e-8)), add an eps to norms, use logsumexp",
        module=found.module or None,
        location=found.location or (None if found.module else context.target_location),
        evidence={"stage": found.stage, "op": found.op, "module": found.module},
    )


@rule(
    "NN804",
    "dead-relu",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-dead-fraction": 0.5, "min-observations": 16},
)
def dead_relu(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """More than half of a ReLU layer's units are never active on the batch.

    ## What it does
    For every ReLU/ReLU6 the probe saw (modules and functional calls), counts the units —
    channels of a convolution's output, features of a linear layer's — that were never positive
    for any sample and position of the batch in any training step. Flags a layer where that
    share exceeds `max-dead-fraction` (0.5), when each unit was observed at least
    `min-observations` (16) times: a healthy unit is positive about half the time, so 16
    observations leave it a 1-in-65 000 chance of looking dead. A layer with one value per unit
    and sample (after a Linear, or a global pooling) is judged on `example_batch` only: random
    inputs differ too little between samples once pooled (behind an SE block's squeeze on
    noise, pre-activations vary by ~0.02 between samples against ±0.2 between units), so there a
    quiet unit cannot be told from a dead one. Convolutional
    and sequence layers, with many positions per sample, keep their variety on random inputs.

    ## Why is this bad?
    A unit that is never positive passes no gradient: its weights never change and it never
    recovers ("dying ReLU"). At initialization it means the pre-activations are shifted far
    negative (a bias, unscaled inputs, a bad initialization); during training, a learning rate
    that knocked the units there. AUTOTRAINER flags dying ReLU at 70% of zero gradients; this
    rule counts units directly and uses the catalogue's one half.

    ## Example
    ```python
    fc = nn.Linear(64, 64)
    nn.init.constant_(fc.bias, -3.0)   # most pre-activations negative
    body = nn.Sequential(fc, nn.ReLU())
    ```

    ## Fix
    Check the preceding layer's bias and initialization (He initialization, zero bias),
    standardize the inputs, add normalization before the activation, lower the learning rate,
    or use LeakyReLU/GELU, which keep a gradient for negative inputs.

    ## References
    - Lu, Shin, Su & Karniadakis (2020), "Dying ReLU and Initialization: Theory and Numerical Examples", arXiv:1903.06733
    - Zhang et al. (2021), "AUTOTRAINER", ICSE (dying ReLU, gamma = 0.7)
    """
    probe = _probe(context)
    limit = context.threshold("max-dead-fraction")
    for site in probe.activations:
        if site.dead_fraction is None or site.dead_fraction <= limit or site.observations < context.threshold("min-observations"):
            continue
        if site.observations < 2 * probe.batch and probe.input_source != "example_batch":
            continue  # one value per sample, from inputs that may not vary as real data does
        dead = round(site.dead_fraction * site.units)
        yield Hit(
            message=(
                f"{number(100 * site.dead_fraction)}% of the {site.units} units of {_site(graph, site)} ({dead}) were never positive on "
                f"the batch ({site.observations} values each): they pass no gradient and do not learn"
            ),
            fix="check the preceding layer's bias and initialization (He init), standardize the inputs, or use LeakyReLU/GELU",
            module=site.module or None,
            location=site.location,
            evidence={"dead_fraction": site.dead_fraction, "units": site.units, "dead_units": dead, "observations": site.observations},
        )


@rule(
    "NN805",
    "saturated-activation",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-saturated-fraction": 0.5},
)
def saturated_activation(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Most sigmoid/tanh units sit in their flat region, where the slope is almost zero.

    ## What it does
    For every saturating activation the probe saw (sigmoid, tanh, hardtanh, hardsigmoid,
    softsign; modules and functional calls), measures the share of output values in the flat
    region — where the activation's slope is below 5% of its maximum: sigmoid outputs below
    0.013 or above 0.987 (|pre-activation| > 4.4), tanh beyond ±0.975 (|pre-activation| > 2.2),
    hardtanh/hardsigmoid at their bounds — and flags a layer where that share exceeds
    `max-saturated-fraction` (0.5).

    ## Why is this bad?
    In the flat region the gradient through the unit is nearly zero, so the layers below it
    stop learning; Glorot & Bengio (2010) show sigmoid networks whose top layer saturates at
    initialization and trains only after a long plateau.

    ## Example
    ```python
    model = nn.Sequential(nn.Linear(512, 256), nn.Tanh())   # inputs in the hundreds: tanh at ±1
    ```

    ## Fix
    Standardize the inputs, initialize with Glorot scaling (`nn.init.xavier_uniform_`), add
    normalization before the activation, or use ReLU-family activations.

    ## References
    - Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks", AISTATS
    - LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp", section 4.4
    """
    limit = context.threshold("max-saturated-fraction")
    for site in _probe(context).activations:
        if site.saturated_fraction is None or site.saturated_fraction <= limit:
            continue
        yield Hit(
            message=(
                f"{number(100 * site.saturated_fraction)}% of the values of {_site(graph, site)} are in its flat region "
                "(slope below 5% of its maximum): almost no gradient passes"
            ),
            fix="standardize the inputs, use Glorot initialization, normalize before the activation, or use ReLU-family activations",
            module=site.module or None,
            location=site.location,
            evidence={"saturated_fraction": site.saturated_fraction, "op": site.op, "units": site.units},
        )


def _site(graph: ModelGraph, site: ActivationSite) -> str:
    if site.functional:
        return site.describe()
    return graph.describe_module(site.module) + (f" (call {site.call + 1})" if site.call else "")


@rule(
    "NN806",
    "activation-scale-drift",
    Severity.WARNING,
    phase=Phase.PROBE,
    thresholds={"max-drift": 100, "min-layers": 4, "min-steady-share": 0.75},
)
def activation_scale_drift(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """The standard deviation of layer outputs grows or shrinks layer after layer.

    ## What it does
    Takes the output standard deviation of every Conv/Linear layer in forward order (the output
    layer left out: its scale is the task's), fits a geometric trend through them, and flags
    the model when the trend changes the scale by more than `max-drift` (100×, two orders of
    magnitude) from the first hidden layer to the last, over at least `min-layers` (4) layers,
    and the scale moves that way from layer to layer in at least `min-steady-share` (3/4) of the
    steps — a drift, not one odd layer (NN402 reports a single badly initialized weight) or a
    residual branch kept small on purpose.
    For scale: PyTorch's default initialization shrinks a ReLU MLP's activations about ×0.4 per
    layer; measured on width 128, eight bias-free layers drift ×0.002 (flagged), while with
    biases the scale settles after three layers at ×0.09 (not flagged).

    ## Why is this bad?
    Variance-preserving initializations (Glorot & Bengio 2010; He et al. 2015) exist because a
    per-layer factor compounds with depth: activations that shrink take the gradient with them,
    activations that grow saturate what follows or overflow. The lecture: "statistics of hidden
    states keep changing" — what normalization layers are there to stop.

    ## Example
    ```python
    for layer in mlp:                       # 8 ReLU layers, width 256
        nn.init.normal_(layer.weight, std=0.01)   # ×0.11 per layer
    ```

    ## Fix
    Initialize for the activation (`nn.init.kaiming_normal_(w, nonlinearity="relu")`, Xavier
    for tanh), or add BatchNorm/LayerNorm between layers.

    ## References
    - He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers", ICCV (variance-preserving initialization)
    - Glorot & Bengio (2010), AISTATS
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Batch Normalization
    """
    hidden = [stats for stats in _probe(context).modules if stats.op in LINEAR_MAPS and stats.finite][:-1]
    stds = [stats.std for stats in hidden]
    if len(hidden) < context.threshold("min-layers") or any(std <= 0 for std in stds):
        return
    logs = [math.log(std) for std in stds]
    count = len(logs)
    mean_x, mean_y = (count - 1) / 2, sum(logs) / count
    slope = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(logs)) / sum((i - mean_x) ** 2 for i in range(count))
    drift = math.exp(slope * (count - 1))
    limit = context.threshold("max-drift")
    if 1 / limit <= drift <= limit:
        return
    steady = steady_share(stds, growing=drift > 1)
    if steady < context.threshold("min-steady-share"):
        return
    direction = "grows" if drift > 1 else "shrinks"
    worst = hidden[-1]
    yield Hit(
        message=(
            f"activations' standard deviation {direction} ×{number(math.exp(slope))} per layer across {count} layers "
            f"(from {number(stds[0])} at {graph.describe_module(hidden[0].module)} to {number(stds[-1])} at "
            f"{graph.describe_module(worst.module)}; "
            f"×{number(drift)} overall)"
        ),
        fix="initialize for the activation (nn.init.kaiming_normal_ for ReLU, xavier for tanh) or add BatchNorm/LayerNorm between layers",
        module=worst.module,
        evidence={
            "per_layer_factor": math.exp(slope),
            "drift": drift,
            "steady_share": steady,
            "std": {f"{s.module}#{s.call}": s.std for s in hidden},
        },
    )


@rule("NN807", "parameters-without-gradient", Severity.WARNING, phase=Phase.PROBE)
def parameters_without_gradient(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Trainable parameters whose `.grad` stays None after backward: detached or unused.

    ## What it does
    After the probe's first backward, lists the parameters with `requires_grad=True` whose
    gradient is still None, one finding per module, for modules the forward ran (a submodule
    the forward never calls is NN403's).

    ## Why is this bad?
    The optimizer skips them: they stay at their initial values while you believe they train.
    Usual causes: a `.detach()`, `.data`, `.item()` or `torch.no_grad()` inside forward, a
    branch that is never taken, or a parameter registered but never used.

    ## Example
    ```python
    def forward(self, x):
        features = self.encoder(x).detach()   # the encoder never learns
        return self.head(features)
    ```

    ## Fix
    Remove the detach/no_grad on the path you want trained, use the parameter, or freeze it
    explicitly (`requires_grad_(False)`) if it should not train.

    ## References
    - PyTorch, "Autograd mechanics: locally disabling gradient computation": https://pytorch.org/docs/stable/notes/autograd.html
    """
    by_module: dict[str, list[str]] = {}
    for parameter, module in _probe(context).without_grad:
        by_module.setdefault(module, []).append(parameter)
    for module, parameters in by_module.items():
        names = ", ".join(f"`{name}`" for name in parameters[:6]) + (f" and {len(parameters) - 6} more" if len(parameters) > 6 else "")
        owner = graph.describe_module(module)
        yield Hit(
            message=f"{owner} runs in the forward, but its trainable parameter(s) {names} get no gradient: they will never change",
            fix="remove the .detach()/.data/no_grad on the path you want trained, or freeze them with requires_grad_(False)",
            module=module or None,
            location=None if module else context.target_location,
            evidence={"parameters": parameters},
        )
