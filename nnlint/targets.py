"""What a user hands nnlint: a model plus the optional context that enables more checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

F = TypeVar("F", bound=Callable[..., Any])

TARGET_MARK = "__nnlint_target__"

# Module-level names a model file may define; they apply to every target in that file.
RESERVED_NAMES = ("example_input", "example_batch", "loss_fn", "optimizer", "batch_size")


@dataclass
class Target:
    """A model to lint, with what nnlint needs to check it more deeply.

    `example_input` is a tensor, a tuple of tensors (positional arguments) or a dict (keyword
    arguments). `example_batch` is `(inputs, targets)` of real data. Every field but the model
    is optional; the checks that need a missing one are skipped and listed in the report.
    """

    model: nn.Module
    example_input: Any = None
    example_batch: Any = None
    loss_fn: Any = None
    optimizer: Any = None
    batch_size: int | None = None
    name: str | None = None
    # Script mode stopped the script at its first optimizer step: the gradients on the weights are
    # that step's, computed before anything updated them, so they are no sign of earlier training.
    grads_from_first_step: bool = False

    @property
    def labeled_batch(self) -> tuple[Any, Any] | None:
        """`example_batch` as `(inputs, labels)` when it is such a pair, else None: the one place it
        is decoded (input inference, the batch size, the probe and its input source read it here)."""
        batch = self.example_batch
        if isinstance(batch, (tuple, list)) and len(batch) == 2:
            return batch[0], batch[1]
        return None


def target(function: F) -> F:
    """Mark a function in a model file as building a lint target (a `Target` or a module)."""
    setattr(function, TARGET_MARK, True)
    return function
