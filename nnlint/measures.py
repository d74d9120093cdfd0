"""What the probe can measure beyond its training steps, by name.

A rule declares the measurements it reads (`@rule(..., needs=(Measure.TRAIN_EVAL_GAP,))`); the
engine asks the probe for the union of what the enabled rules need, and the probe does only that
work. The probe knows these names, never rule codes; a misspelled member fails at import.
"""

from __future__ import annotations

from nnlint.findings import StrEnum


class Measure(StrEnum):
    """Optional probe work; the training steps' own measurements (losses, activations, gradients,
    inputs, the first NaN) are always taken."""

    BATCHNORM_SPREAD = "batchnorm-spread"  # how far BatchNorm batch means move between batches
    EVAL_DETERMINISM = "eval-determinism"  # two evaluation-mode forwards compared
    TRAIN_EVAL_GAP = "train-eval-gap"  # training vs evaluation output, BatchNorm calibrated
    UPDATE_RATIOS = "update-ratios"  # one step of a copy of the optimizer
    OVERFIT = "overfit"  # a few dozen steps on a handful of samples (--deep)
    SAMPLE_MIXING = "sample-mixing"  # whether one sample's output depends on another's input

    @property
    def label(self) -> str:
        """How notes name the measurement: "train-eval gap"."""
        return self.value.replace("-", " ")
