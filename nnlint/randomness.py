"""The process's random number generators: save them, seed them, put them back.

Used where nnlint runs the user's code: importing a model file (so the model's initial weights,
and everything the probe measures on them, are the same in every run) and the probe itself.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def rng_states() -> dict[str, Any]:
    """torch's CPU generator, CUDA's (when initialized), Python's and NumPy's (when imported)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        states["numpy"] = numpy.random.get_state()
    return states


def restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if "numpy" in states:
        sys.modules["numpy"].random.set_state(states["numpy"])


def seed_cpu_generators(seed: int) -> None:
    """Seed torch's CPU generator, Python's and NumPy's; CUDA's is left alone (seeding it before
    CUDA starts would be queued and change the user's CUDA stream later)."""
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)


@contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run the block with the CPU generators seeded; restore every generator afterwards."""
    states = rng_states()
    try:
        seed_cpu_generators(seed)
        yield
    finally:
        restore_rng(states)
