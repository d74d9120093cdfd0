"""The loss the probe backpropagates: the user's, on real or made-up targets, else a synthetic one.

In order of preference:
1. `loss_fn(output, targets)` with the targets of `example_batch`;
2. `loss_fn(output, random targets)` when the loss is a known torch loss (class indices for
   cross-entropy, 0/1 for binary cross-entropy, N(0, 1) values for regression losses);
3. without `loss_fn`, a loss guessed from `example_batch`'s targets: cross-entropy for integer
   class indices, mean squared error for float targets shaped like the output;
4. otherwise the **synthetic loss**: mean squared error between every floating-point output and
   fixed standard-normal targets — as if the model were trained to regress its outputs onto
   random values with `nn.MSELoss()`. Every output element gets a gradient proportional to its
   error, no gradient is zero by symmetry (as `output.sum()` would make it through a softmax or a
   normalization), and the scale is that of an ordinary mean-reduced loss, so absolute gradient
   norms stay comparable with a real loss of the same reduction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nnlint.runtime.escapes import user_code
from nnlint.runtime.state import preserved_process_state
from nnlint.runtime.torch_compat import tree_flatten, tree_map_only

_CLASS_INDEX_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
_BINARY_LOSSES = (nn.BCEWithLogitsLoss, nn.BCELoss)
_REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


class LossError(Exception):
    """The user's loss could not be computed on the model's output."""


@dataclass
class ProbeLoss:
    compute: Callable[[Any], torch.Tensor]
    source: str  # how the report names it
    targets: str | None  # "example_batch", "random" or None (synthetic)
    classification: tuple[str, float, int] | None  # (loss name, baseline, classes): the loss at initialization
    non_scalar: bool = False  # the user's loss returned a tensor that was averaged


def build_loss(loss_fn: Any, targets: Any, output: Any, device: torch.device, generator: torch.Generator) -> ProbeLoss:
    """Choose the loss from what the target gave; `output` is one forward's output, for shapes."""
    if loss_fn is not None and targets is not None:
        return _user_loss(loss_fn, targets, "example_batch", output)
    if loss_fn is not None:
        made_up = _random_targets(loss_fn, output, device, generator)
        if made_up is not None:
            return _user_loss(loss_fn, made_up, "random", output)
        synthetic = synthetic_loss(output, device, generator)
        synthetic.source = f"synthetic (no targets to make up for {_name(loss_fn)})"
        return synthetic
    if targets is not None:
        guessed = _guessed_loss(targets, output)
        if guessed is not None:
            return guessed
    return synthetic_loss(output, device, generator)


def _name(loss_fn: Any) -> str:
    return type(loss_fn).__name__ if isinstance(loss_fn, nn.Module) else getattr(loss_fn, "__name__", type(loss_fn).__name__)


def _user_loss(loss_fn: Any, targets: Any, origin: str, output: Any) -> ProbeLoss:
    on = "example_batch" if origin == "example_batch" else "random targets"
    loss = ProbeLoss(lambda out: _call_user_loss(loss_fn, out, targets, loss), f"loss_fn ({_name(loss_fn)}) on {on}", origin, None)
    loss.classification = _classification(loss_fn, output)
    return loss


def _call_user_loss(loss_fn: Any, output: Any, targets: Any, loss: ProbeLoss) -> torch.Tensor:
    try:
        with user_code(), preserved_process_state(generators=False):
            value = loss_fn(output, targets)
    except Exception as error:
        raise LossError(f"loss_fn raised {type(error).__name__}: {error}") from error
    if not isinstance(value, torch.Tensor):
        raise LossError(f"loss_fn returned {type(value).__name__}, not a tensor")
    if value.dim() > 0:
        loss.non_scalar = True
        value = value.float().mean()
    return value


def _classification(loss_fn: Any, output: Any) -> tuple[str, float, int] | None:
    logits = output if isinstance(output, torch.Tensor) else None
    if isinstance(loss_fn, _CLASS_INDEX_LOSSES) and logits is not None and logits.dim() >= 2 and logits.shape[1] >= 2:
        classes = int(logits.shape[1])
        return type(loss_fn).__name__, math.log(classes), classes
    if isinstance(loss_fn, _BINARY_LOSSES) and logits is not None:
        return type(loss_fn).__name__, math.log(2), 2
    return None


def _random_targets(loss_fn: Any, output: Any, device: torch.device, generator: torch.Generator) -> Any:
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return None
    if isinstance(loss_fn, _CLASS_INDEX_LOSSES) and output.dim() >= 2:
        shape = (output.shape[0], *output.shape[2:])
        return torch.randint(0, output.shape[1], shape, generator=generator, device="cpu").to(device)
    if isinstance(loss_fn, _BINARY_LOSSES):
        return torch.randint(0, 2, output.shape, generator=generator, device="cpu").to(device, output.dtype)
    if isinstance(loss_fn, _REGRESSION_LOSSES):
        return torch.randn(output.shape, generator=generator, device="cpu").to(device, output.dtype)
    return None


def _guessed_loss(targets: Any, output: Any) -> ProbeLoss | None:
    if not isinstance(targets, torch.Tensor) or not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return None
    if (
        not targets.is_floating_point()
        and not targets.is_complex()
        and output.dim() >= 2
        and targets.shape == (output.shape[0], *output.shape[2:])
    ):
        classes = int(output.shape[1])
        return ProbeLoss(
            lambda out: F.cross_entropy(out, targets),
            "cross-entropy, guessed from example_batch's class indices",
            "example_batch",
            ("cross-entropy", math.log(classes), classes) if classes >= 2 else None,
        )
    if targets.is_floating_point() and targets.shape == output.shape:
        return ProbeLoss(
            lambda out: F.mse_loss(out, targets.to(out.dtype)),
            "mean squared error, guessed from example_batch's targets",
            "example_batch",
            None,
        )
    return None


def synthetic_loss(output: Any, device: torch.device, generator: torch.Generator) -> ProbeLoss:
    floats = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
    targets = [torch.randn(t.shape, generator=generator, device="cpu").to(device, t.dtype) for t in floats]

    def compute(out: Any) -> torch.Tensor:
        values = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not values:
            raise LossError("the forward returned no floating-point tensor to compute a loss from")
        return sum((F.mse_loss(v, t) for v, t in zip(values, targets, strict=False)), torch.zeros((), device=values[0].device))

    return ProbeLoss(compute, "synthetic (MSE to fixed random targets)", None, None)


def main_output(output: Any) -> torch.Tensor | None:
    """The tensor a training loop usually hands the loss: the output itself, its `logits`, or the
    first element of a tuple (recursively); None when there is none."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        output = list(output.values())
    if isinstance(output, (tuple, list)) and output:
        return main_output(output[0])
    return None


def to_device(value: Any, device: torch.device) -> Any:
    """A copy of every tensor in `value` on `device` (copies, so the forward cannot change the user's)."""
    return tree_map_only(torch.Tensor, lambda t: t.detach().to(device, copy=True), value)
