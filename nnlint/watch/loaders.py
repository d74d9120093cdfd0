"""Which DataLoader the run is reading from: the training loader (the one that feeds optimizer
steps), its iterations (one per epoch), and whether a forward reads another one (validation)."""

from __future__ import annotations

import contextlib
import weakref
from collections import Counter
from typing import Any

from nnlint.findings import Location
from nnlint.sources import call_site


class LoaderTracker:
    def __init__(self) -> None:
        self.current: int | None = None  # id of the loader the last batch came from
        self.train: int | None = None  # id of the loader the last optimizer step's batch came from
        self._of_iterator: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._iterations: list[tuple[int, int, Location | None]] = []  # (loader id, step, line that iterates it)
        self._steps_on: Counter[int] = Counter()

    def iterated(self, loader: Any, iterator: Any, step: int) -> None:
        with contextlib.suppress(TypeError):  # an iterator that cannot be weakly referenced: the loader is current from here
            self._of_iterator[iterator] = id(loader)
        self.current = id(loader)
        self._iterations.append((id(loader), step, call_site()))

    def next_batch(self, iterator: Any) -> None:
        self.current = self._of_iterator.get(iterator, self.current)

    def stepped(self) -> None:
        """An optimizer step: the loader that fed it is the training loader."""
        if self.current is not None:
            self._steps_on[self.current] += 1
            self.train = self.current

    def reading_other_than_training(self) -> bool:
        return self.train is not None and self.current is not None and self.current != self.train

    def epochs_begun(self) -> int:
        if self.train is None:
            return 1
        return max(1, sum(1 for loader, _, _ in self._iterations if loader == self.train))

    def training_iterations(self) -> list[tuple[int, Location | None]]:
        """(step, line) of each iteration over the training loader: the epochs."""
        train = self.train
        if train is None and self._steps_on:
            train = self._steps_on.most_common(1)[0][0]
        return [(step, line) for loader, step, line in self._iterations if loader == train]
