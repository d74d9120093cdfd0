"""A non-finite training loss: which op made it (the bad step's forward replayed with the probe's
instrument, on that step only), and under torch.distributed which rank saw it first."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnlint.watch.series import NonFiniteLoss


def replay_for_non_finite(model: nn.Module, call: tuple[tuple[Any, ...], dict[str, Any]]) -> tuple[Any, bool]:
    """Run the last forward again with the probe's instrument: (the first op whose output was non-finite
    while its inputs were finite, or None; whether the replay ran to its end)."""
    from nnlint.probe.instrument import Instrument
    from nnlint.runtime.state import preserved_user_state

    args, kwargs = call
    try:
        with preserved_user_state(model), torch.no_grad(), Instrument(model, find_non_finite=True) as instrument:
            model(*args, **kwargs)
        return instrument.first_non_finite, instrument.failure is None
    except Exception:  # the replay is a best effort: the step and the value are reported without it
        return None, False


def process_rank() -> int | None:
    try:
        import torch.distributed as dist

        return dist.get_rank() if dist.is_available() and dist.is_initialized() else None
    except Exception:  # a process group in a state we cannot read
        return None


def exchange_between_ranks(seen: NonFiniteLoss | None) -> tuple[int, int, NonFiniteLoss | None] | None:
    """(rank, world size, the earliest non-finite loss any rank saw) — collective: every rank calls it at
    the same point; None without a process group, or when the group cannot exchange (a rank gone)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    rank, world_size = dist.get_rank(), dist.get_world_size()
    mine = (rank, seen.step, seen.value) if seen is not None else None
    gathered: list[Any] = [None] * world_size
    try:
        dist.all_gather_object(gathered, mine)
    except Exception:  # report this rank's view only
        return rank, world_size, seen
    reports = [entry for entry in gathered if entry is not None]
    if not reports:
        return rank, world_size, seen
    first_rank, step, value = min(reports, key=lambda entry: (entry[1], entry[0]))
    if seen is None or (step, first_rank) < (seen.step, rank):
        return rank, world_size, NonFiniteLoss(step, first_rank, value)
    return rank, world_size, NonFiniteLoss(seen.step, rank, seen.value, seen.op, seen.module, seen.location, seen.replayed)
