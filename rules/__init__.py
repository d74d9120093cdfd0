"""The rule catalogue, one module per family; this list is the registry, sorted by code."""

from __future__ import annotations

from nnlint.registry import Rule

from .normalization import (
    batch_too_large,
    batch_too_small_for_batchnorm,
    batchnorm_after_activation,
    batchnorm_called_repeatedly,
    batchnorm_in_recurrent_path,
    batchnorm_without_running_stats,
    bias_before_batchnorm,
)
from .tool import graph_fallback, target_unusable, unused_suppression

ALL_RULES: tuple[Rule, ...] = (
    graph_fallback,  # NN001
    target_unusable,  # NN002
    unused_suppression,  # NN003
    batchnorm_in_recurrent_path,  # NN101
    batchnorm_called_repeatedly,  # NN102
    batchnorm_after_activation,  # NN103
    bias_before_batchnorm,  # NN104
    batch_too_small_for_batchnorm,  # NN105
    batch_too_large,  # NN106
    batchnorm_without_running_stats,  # NN107
)
