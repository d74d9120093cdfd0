"""NN5 — optimizer and schedule, after the lecture "Applied Deep Learning — Practical Tips"
(NTU, 2020): Learning Rate, Weight Decay.

These rules read the target's `optimizer` (its `param_groups`); they never step it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import optim

from nnlint.context import RuleContext
from nnlint.findings import Severity
from nnlint.graph import ModelGraph
from nnlint.graph.ops import NORMALIZATIONS, module_op
from nnlint.registry import Hit, rule

_NEEDS = ("optimizer",)
_LISTED = 6  # parameter names shown in a message before "and N more"

# Optimizers whose `weight_decay` is L2 added to the gradient, which their adaptive step rescales.
_COUPLED_DECAY: tuple[type[optim.Optimizer], ...] = (
    optim.Adam, optim.Adamax, optim.NAdam, optim.RAdam, optim.Adagrad, optim.RMSprop, optim.Adadelta,
)  # fmt: skip

# Optimizer families with a usual learning-rate range (NN503); others (LBFGS, Rprop, Adafactor, …) are not checked.
_LR_FAMILIES: tuple[tuple[str, tuple[type[optim.Optimizer], ...]], ...] = (
    ("sgd", (optim.SGD, optim.ASGD)),
    ("adam", (optim.Adam, optim.AdamW, optim.Adamax, optim.NAdam, optim.RAdam, optim.SparseAdam)),
    ("adagrad", (optim.Adagrad,)),
    ("rmsprop", (optim.RMSprop,)),
    ("adadelta", (optim.Adadelta,)),
)


def param_groups(optimizer: object) -> list[dict[str, Any]] | None:
    """The optimizer's parameter groups, or None for something that is not a torch optimizer."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(group, dict) and "params" in group for group in groups):
        return None
    return groups


def _number(value: object, default: float = 0.0) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"`{name}`" for name in names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _groups_text(indices: list[int], total: int) -> str:
    if total == 1:
        return "the optimizer's only parameter group"
    return f"parameter group{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))}"


def _sentence_start(text: str) -> str:
    return text[:1].upper() + text[1:]


# -- NN501 ----------------------------------------------------------------------------------------
# A decay 100x below the smallest in common use (1e-4, He et al. 2016; 5e-4, Krizhevsky et al.
# 2012) shrinks a weight by under 0.1% over 100,000 steps at lr 0.01: it neither regularizes nor
# distorts the adaptive step, so there is nothing to report.
_NEGLIGIBLE_DECAY = {"min-weight-decay": 1e-6}


@rule("NN501", "adam-with-l2-weight-decay", Severity.WARNING, requires=_NEEDS, thresholds=_NEGLIGIBLE_DECAY)
def adam_with_l2_weight_decay(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Adam/Adagrad/RMSprop with `weight_decay>0`: L2 coupled to the adaptive step; use AdamW.

    ## What it does
    Flags `Adam`, `Adamax`, `NAdam`, `RAdam`, `Adagrad`, `RMSprop` and `Adadelta` optimizers with
    `weight_decay` of at least `min-weight-decay` (default 1e-6) in any parameter group, unless
    the decay is decoupled (`AdamW`, or `decoupled_weight_decay=True`). A smaller decay (1e-8 is
    seen in public code) is 100× below the smallest values in common use (1e-4, He et al. 2016;
    5e-4, Krizhevsky et al. 2012) and shrinks a weight by under 0.1% over 100,000 steps at
    lr 0.01: it has no effect to couple, so it is not reported.

    ## Why is this bad?
    These optimizers implement `weight_decay` as an L2 term added to the gradient, which is then
    divided by the adaptive denominator √v. Weights with large or frequent gradients are
    therefore decayed *less* than the others, so the decay is neither uniform nor equivalent to
    weight decay. Loshchilov & Hutter (2019) show that decoupling the decay from the gradient
    step (AdamW) restores regularization and generalizes better, and makes the best decay
    independent of the learning rate.

    ## Example
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    ```
    Use instead:
    ```python
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    ```

    ## Fix
    Use `torch.optim.AdamW` (decoupled decay; typical values 0.01–0.1), or pass
    `decoupled_weight_decay=True` where the optimizer supports it.

    ## References
    - Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", ICLR, arXiv:1711.05101
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Weight Decay
    """
    optimizer = context.target.optimizer
    groups = param_groups(optimizer)
    if groups is None or not isinstance(optimizer, _COUPLED_DECAY) or isinstance(optimizer, optim.AdamW):
        return
    coupled = [
        index
        for index, group in enumerate(groups)
        if _number(group.get("weight_decay")) >= context.threshold("min-weight-decay") and not group.get("decoupled_weight_decay", False)
    ]
    if not coupled:
        return
    name = type(optimizer).__name__
    decays = sorted({_number(groups[index]["weight_decay"]) for index in coupled})
    yield Hit(
        message=(
            f"{name} applies weight_decay={', '.join(f'{d:g}' for d in decays)} in {_groups_text(coupled, len(groups))} as an "
            "L2 term on the gradient, which its adaptive step rescales: parameters with large gradients are barely decayed"
        ),
        fix="use torch.optim.AdamW (decoupled weight decay; typically 0.01–0.1)"
        + (", or pass decoupled_weight_decay=True" if "decoupled_weight_decay" in groups[coupled[0]] else ""),
        location=context.location_of("optimizer"),
        evidence={"optimizer": name, "weight_decay": decays, "groups": coupled},
    )


# -- NN502 ----------------------------------------------------------------------------------------
@rule("NN502", "weight-decay-on-norm-or-bias", Severity.WARNING, requires=_NEEDS, thresholds=_NEGLIGIBLE_DECAY)
def weight_decay_on_norm_or_bias(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Weight decay applied to normalization weights or biases.

    ## What it does
    For each optimizer parameter group with `weight_decay` of at least `min-weight-decay`
    (default 1e-6; a smaller decay has no measurable effect, see NN501), lists the parameters it holds
    that are the scale or shift of a normalization layer (BatchNorm, LayerNorm, GroupNorm,
    InstanceNorm, RMSNorm) or a bias (`*.bias`, `in_proj_bias`), by their path in the model.

    ## Why is this bad?
    Weight decay regularizes by keeping the weights that multiply inputs small. Biases and
    normalization parameters do not multiply inputs: they are few, do not cause overfitting, and
    decaying them pulls BatchNorm/LayerNorm scales toward 0 and shifts toward 0, fighting the
    layers they belong to. Goyal et al. (2017) and He et al. (2019, "no bias decay") leave them
    undecayed and gain accuracy; BERT and GPT training code exclude them likewise.

    ## Example
    ```python
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    ```
    Use instead:
    ```python
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-4
    )
    ```

    ## Fix
    Put biases and normalization parameters (in practice: every parameter with fewer than two
    dimensions) into a parameter group with `weight_decay=0`.

    ## References
    - Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677 (no decay on γ, β)
    - He et al. (2019), "Bag of Tricks for Image Classification with Convolutional Neural Networks", CVPR, section 3.1 ("no bias decay")
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Weight Decay
    """
    groups = param_groups(context.target.optimizer)
    if groups is None:
        return
    names = graph.parameter_names()
    exempt = _norm_and_bias_parameters(graph, names)
    for index, group in enumerate(groups):
        decay = _number(group.get("weight_decay"))
        decayed = [names[id(p)] for p in group["params"] if id(p) in exempt and getattr(p, "requires_grad", False)]
        if decay < context.threshold("min-weight-decay") or not decayed:
            continue
        yield Hit(
            message=(
                f"{_sentence_start(_groups_text([index], len(groups)))} (weight_decay={decay:g}) decays {len(decayed)} normalization "
                f"or bias parameter(s): {_listed(decayed)}; decay should only shrink weights that multiply inputs"
            ),
            fix="put biases and normalization parameters (every parameter with p.dim() < 2) in a group with weight_decay=0",
            location=context.location_of("optimizer"),
            evidence={"group": index, "weight_decay": decay, "parameters": decayed},
        )


def _norm_and_bias_parameters(graph: ModelGraph, names: dict[int, str]) -> set[int]:
    found = {id(p) for info in graph.modules.values() if module_op(info.module) in NORMALIZATIONS for p in info.module.parameters()}
    found |= {key for key, name in names.items() if name.rpartition(".")[2] == "bias" or name.endswith("_bias")}
    return found


# -- NN503 ----------------------------------------------------------------------------------------
@rule(
    "NN503",
    "learning-rate-out-of-range",
    Severity.WARNING,
    thresholds={
        "sgd-min-lr": 1e-6,
        "sgd-max-lr": 1.0,
        "adam-min-lr": 1e-6,
        "adam-max-lr": 1e-2,
        "adagrad-min-lr": 1e-4,
        "adagrad-max-lr": 1.0,
        "rmsprop-min-lr": 1e-6,
        "rmsprop-max-lr": 0.1,
        "adadelta-min-lr": 1e-2,
        "adadelta-max-lr": 10.0,
    },
    requires=_NEEDS,
)
def learning_rate_out_of_range(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Learning rate outside the usual range for that optimizer.

    ## What it does
    Reads the base learning rate of each parameter group (`initial_lr` when a scheduler has
    been attached, else `lr`) and compares it with the usual range for the optimizer's family:

    | optimizers | lowest (threshold = default) | highest (threshold = default) |
    | --- | --- | --- |
    | SGD, ASGD | `sgd-min-lr` = 1e-6 | `sgd-max-lr` = 1 |
    | Adam, AdamW, Adamax, NAdam, RAdam, SparseAdam | `adam-min-lr` = 1e-6 | `adam-max-lr` = 1e-2 |
    | Adagrad | `adagrad-min-lr` = 1e-4 | `adagrad-max-lr` = 1 |
    | RMSprop | `rmsprop-min-lr` = 1e-6 | `rmsprop-max-lr` = 0.1 |
    | Adadelta | `adadelta-min-lr` = 1e-2 | `adadelta-max-lr` = 10 |

    Other optimizers (LBFGS, Rprop, Adafactor, third-party ones) are not checked.

    ## Why is this bad?
    The lecture: the learning rate is the first hyperparameter to get right — too large and the
    loss diverges or oscillates, too small and it barely moves. The right value depends on the
    optimizer: adaptive methods normalize the step, so Adam's useful range sits about two orders
    of magnitude below SGD's. A value far outside its family's range is usually a value copied
    from another optimizer (SGD's 0.1 given to Adam) or a typo (1e-1 for 1e-4).

    Sources of the ranges: Bengio (2012) gives 1e-6 < lr < 1 for gradient descent on
    standardized inputs. Adam: Kingma & Ba (2015) use 1e-3; fine-tuning goes down to 2e-5
    (Devlin et al. 2019, BERT) and small graph models up to 1e-2 (Kipf & Welling 2017); the
    range keeps about two orders of magnitude of margin below. Adagrad: PyTorch's default 1e-2,
    GloVe 0.05 (Pennington et al. 2014). RMSprop: 1e-3 suggested by Tieleman & Hinton (2012),
    2.5e-4 in DQN (Mnih et al. 2015), 0.045 in Inception-v3 (Szegedy et al. 2016). Adadelta has
    no learning rate in Zeiler (2012); PyTorch's `lr` scales its step, default 1. Large-batch
    recipes that scale the learning rate linearly (Goyal et al. 2017) can exceed the upper
    bounds on purpose: raise the threshold for them.

    ## Example
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)   # SGD's learning rate
    ```
    Use instead:
    ```python
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ```

    ## Fix
    Start from the optimizer's usual value (SGD 0.01–0.1 with momentum, Adam/AdamW 1e-4–1e-3)
    and tune with a learning-rate range test.

    ## References
    - Bengio (2012), "Practical Recommendations for Gradient-Based Training of Deep Architectures", arXiv:1206.5533, section 3.1
    - Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR, arXiv:1412.6980
    - Smith (2017), "Cyclical Learning Rates for Training Neural Networks" (the range test), arXiv:1506.01186
    - Lecture "Applied Deep Learning — Practical Tips" (NTU, 2020): Learning Rate
    """
    optimizer = context.target.optimizer
    groups = param_groups(optimizer)
    family = next((name for name, classes in _LR_FAMILIES if isinstance(optimizer, classes)), None)
    if groups is None or family is None:
        return
    low, high = context.threshold(f"{family}-min-lr"), context.threshold(f"{family}-max-lr")
    name = type(optimizer).__name__
    outside: dict[float, list[int]] = {}
    for index, group in enumerate(groups):
        rate = _number(group.get("initial_lr", group.get("lr")), default=float("nan"))
        if rate == rate and not low <= rate <= high:  # NaN (unreadable) is skipped
            outside.setdefault(rate, []).append(index)
    for rate, indices in outside.items():
        side = "above" if rate > high else "below"
        effect = "the loss is likely to diverge or oscillate" if rate > high else "training will barely move"
        yield Hit(
            message=(
                f"{name} learning rate {rate:g} in {_groups_text(indices, len(groups))} is {side} the usual range for "
                f"{family.upper() if family == 'sgd' else family.capitalize()}-type optimizers ({low:g} … {high:g}): {effect}"
            ),
            fix=f"use a learning rate between {low:g} and {high:g} for {name} (then tune it, e.g. with a learning-rate range test)",
            location=context.location_of("optimizer"),
            evidence={"optimizer": name, "lr": rate, "family": family, "min_lr": low, "max_lr": high, "groups": indices},
        )


# -- NN504 ----------------------------------------------------------------------------------------
@rule("NN504", "parameters-not-in-optimizer", Severity.WARNING, requires=_NEEDS)
def parameters_not_in_optimizer(graph: ModelGraph, context: RuleContext) -> Iterator[Hit]:
    """Trainable parameters that the optimizer does not update.

    ## What it does
    Compares the model's trainable parameters (`requires_grad=True`) with those in the
    optimizer's parameter groups and names the missing ones by their path in the model. When a
    whole submodule is missing it is reported once, at its construction line; when the
    optimizer holds none of the model's parameters, once for the model.

    ## Why is this bad?
    A parameter the optimizer does not hold receives gradients but never changes: a head added
    after the optimizer was built, a submodule created after `model.parameters()` was read, or
    a parameter group that filtered too much. The model trains partly, and nothing fails.

    ## Example
    ```python
    optimizer = torch.optim.SGD(model.backbone.parameters(), lr=0.01)   # model.head is not trained
    ```
    Use instead:
    ```python
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    ```

    ## Fix
    Build the optimizer from `model.parameters()` after the model is complete, or add the
    missing parameters to a group. Parameters meant to stay fixed should have
    `requires_grad=False`.

    ## References
    - PyTorch, "torch.optim — Constructing it" (the optimizer only updates the parameters it is given): https://pytorch.org/docs/stable/optim.html
    """
    groups = param_groups(context.target.optimizer)
    if groups is None:
        return
    held = {id(p) for group in groups for p in group["params"]}
    names = graph.parameter_names()
    trainable = {id(p) for p in graph.root.parameters() if p.requires_grad}
    missing = trainable - held
    if not missing:
        return
    if missing == trainable:
        yield Hit(
            message=(
                f"the optimizer holds none of the model's {len(trainable)} trainable parameter tensors: it was built for "
                "another model instance or from the wrong parameters, so this model never trains"
            ),
            fix="build the optimizer from this model's parameters: optimizer = Optimizer(model.parameters(), ...)",
            location=context.location_of("optimizer"),
            evidence={"missing": len(missing), "trainable": len(trainable)},
        )
        return
    covered: set[int] = set()
    for path, info in graph.modules.items():
        own = {id(p): names[id(p)] for p in info.module.parameters() if p.requires_grad}
        if not path or not own or not own.keys() <= missing or own.keys() <= covered:
            continue
        covered |= own.keys()
        listed = list(own.values())
        yield Hit(
            message=(
                f"{info.type_name} `{path}` is not in the optimizer: its {len(own)} trainable parameter tensor(s) "
                f"({_listed(listed)}) get gradients but are never updated"
            ),
            fix=f"add model.{path}.parameters() to the optimizer, or build it from model.parameters()",
            module=path,
            evidence={"parameters": listed},
        )
    by_owner: dict[str, list[str]] = {}
    for key in (key for key in names if key in missing - covered):  # in the model's order
        by_owner.setdefault(names[key].rpartition(".")[0], []).append(names[key])
    for owner, listed in by_owner.items():
        yield Hit(
            message=f"{len(listed)} trainable parameter(s) are not in the optimizer and are never updated: {_listed(listed)}",
            fix="add them to a parameter group, or build the optimizer from model.parameters()",
            module=owner or None,
            location=None if owner else context.location_of("optimizer"),
            evidence={"parameters": listed},
        )
