"""The process's random number generators: save them, seed them, put them back.

Used where nnlint runs the user's code: importing a model file (so the model's initial weights,
and everything the probe measures on them, are the same in every run) and the probe itself.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch


def rng_states(numpy: bool = True) -> dict[str, Any]:
    """torch's CPU generator, CUDA's (when initialized), Python's and NumPy's (when imported, and `numpy`)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    # Only once numpy.random is imported: before that nothing has drawn from it (and touching
    # `numpy.random` would import it, 0.13 s, on every static run).
    numpy_random = sys.modules.get("numpy.random") if numpy else None
    if numpy_random is not None:
        states["numpy"] = numpy_random.get_state()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        sys.modules["numpy"].random.set_state(states["numpy"])


def seed_cpu_generators(seed: int, numpy: bool = True) -> None:
    """Seed torch's CPU generator, Python's and NumPy's (when imported, and `numpy`); CUDA's is left
    alone (seeding it before CUDA starts would be queued and change the user's CUDA stream later)."""
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    numpy_module = sys.modules.get("numpy") if numpy else None
    if numpy_module is not None:
        numpy_module.random.seed(seed)


@contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run the block with the CPU generators seeded; restore every generator afterwards."""
    # torch imports numpy, not numpy.random: that one is seeded only if the block imports it.
    deferred = "numpy" in sys.modules and "numpy.random" not in sys.modules
    with _numpy_random_seeded_on_import(seed) if deferred else contextlib.nullcontext():
        states = rng_states(numpy=not deferred)
        try:
            seed_cpu_generators(seed, numpy=not deferred)
            yield
        finally:
            restore_rng(states)


@contextmanager
def _numpy_random_seeded_on_import(seed: int) -> Iterator[None]:
    """NumPy's generator, seeded when the block imports `numpy.random` (if it does).

    torch imports numpy but not `numpy.random`, which takes about 0.13 s to import: a lint run
    would spend that on saving and seeding a generator that most model files never touch. So
    it is seeded as it is imported, before the file can draw from it; afterwards it is reseeded
    from the OS, as a first import would have left it.
    """
    finder = _SeedNumpyRandomOnImport(seed)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(finder)
        if finder.seeded:
            sys.modules["numpy.random"].seed()


class _SeedNumpyRandomOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.seeded = False

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "numpy.random" or self.seeded:
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_then_seed(module: ModuleType) -> None:
                run(module)
                module.seed(self.seed)
                self.seeded = True

            spec.loader.exec_module = exec_then_seed  # this loader loads numpy.random alone
        return spec
