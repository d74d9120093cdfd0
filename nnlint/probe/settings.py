"""What a probe run is asked to do: where, how long, and which measurements to take."""

from __future__ import annotations

from dataclasses import dataclass

from nnlint.measures import Measure


@dataclass(frozen=True)
class ProbeSettings:
    device: str = "auto"
    steps: int = 3
    timeout: float | None = 60.0
    deep: bool = False
    # The optional measurements to take; the training steps' own are always taken.
    measures: frozenset[Measure] = frozenset(Measure)
    training_batch_size: int | None = None
    # Where the input came from: "example_input", "example_batch", or "random" (inferred or --input-shape).
    input_source: str = "example_input"
    seed: int = 0
    # Seconds the probe plans its work to fit (nnlint/probe/budget.py); None: the fixed workload above.
    budget: float | None = None
    # Which dimension of the input holds the samples: 1 for (time, batch, …) inputs, None for an
    # input that is one sample (one sequence); the sample-mixing check reads it.
    batch_dim: int | None = 0
    # Why the input has no batch dimension, when batch_dim is None (said in the probe's note).
    no_batch: str | None = None
