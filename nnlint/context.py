"""What a rule may read besides the graph: the target's extras, the batch size, thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nnlint.findings import Location
from nnlint.targets import Target

if TYPE_CHECKING:
    from nnlint.probe.result import ProbeResult
    from nnlint.watch.series import RunRecord


@dataclass(frozen=True)
class BatchSize:
    """The training batch size and where nnlint learned it (for the message and the location)."""

    value: int
    source: str  # "batch_size", "example_input", "example_batch" or "--batch-size"
    location: Location | None = None


@dataclass(frozen=True)
class DataLoaderFacts:
    """The DataLoader a training script iterated (script mode): what decides its last batch."""

    batch_size: int | None
    drop_last: bool
    dataset_length: int | None  # None for an IterableDataset
    shuffle: bool
    location: Location | None = None  # where the script built it


@dataclass(frozen=True)
class RuleContext:
    target: Target
    batch_size: BatchSize | None = None
    target_location: Location | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    # Where the model file defined the target's extras (`optimizer = …` on line 30), by name.
    extra_locations: Mapping[str, Location] = field(default_factory=dict)
    # What the probe measured; rules with phase=Phase.PROBE run only when it ran.
    probe: ProbeResult | None = None
    # The training DataLoader, when nnlint ran the training script to its first step.
    data_loader: DataLoaderFacts | None = None
    # What `nnlint watch` recorded; rules with phase=Phase.WATCH require ("run",) and run only on it.
    run: RunRecord | None = None

    def threshold(self, name: str) -> float:
        return self.thresholds[name]

    def location_of(self, extra: str) -> Location | None:
        """Where `optimizer`, `loss_fn`, … was defined; else the target's own location."""
        return self.extra_locations.get(extra) or self.target_location
