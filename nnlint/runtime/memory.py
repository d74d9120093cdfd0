"""Building a model nnlint chose to build, without running the machine out of memory.

When nnlint itself builds a model (a class with defaults, a config class's defaults, a factory), the
size is the author's default, which may be far larger than this machine: llama2.c's `ModelArgs()`
defaults describe a 7-billion-parameter model (28 GB of float32 weights), and building it for real
got the lint killed by the kernel's out-of-memory killer — on a laptop, the whole session can go
with it. So the model is built on the meta device first (no memory, no initialisation), its
weights are counted, and it is built for real only when they fit; otherwise the meta model is
linted as it is (static rules; the probe needs real weights) and a note says why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

# The probe holds the weights, their copies, gradients and optimizer state: about five times the
# weights. A model whose weights take more than this share of the memory available is built on meta.
SHARE_OF_AVAILABLE_MEMORY = 0.2

T = TypeVar("T")


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def weight_bytes(model: nn.Module) -> int:
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def built_within_memory(make: Callable[[], T], expression: str, file: str) -> tuple[T, str | None]:
    """`make()` for real when its weights fit, else the meta-device build and a note.

    A constructor that cannot run on meta (it reads values, loads a file) is built for real, as
    before: the meta build is only a measurement."""
    available = available_memory_bytes()
    if available is None:
        return make(), None
    try:
        with torch.device("meta"):
            on_meta = make()
    except Exception:
        return make(), None
    if not isinstance(on_meta, nn.Module):
        return make(), None
    size = weight_bytes(on_meta)
    if size <= SHARE_OF_AVAILABLE_MEMORY * available:
        return make(), None
    parameters = sum(p.numel() for p in on_meta.parameters())
    note = (
        f"built `{expression}` on the meta device: its {parameters:,} parameters take {size / 2**30:.1f} GiB, "
        f"more than {SHARE_OF_AVAILABLE_MEMORY:.0%} of the {available / 2**30:.1f} GiB available here, so only the "
        f'static rules ran; to probe it, build a smaller one: nnlint "{file}::{expression}" with smaller sizes'
    )
    return on_meta, note
