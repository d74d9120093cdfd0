"""From the recorder's live objects to the record's plain data: scalars read off the device in one
copy, schedulers summarized, the lines a report points to."""

from __future__ import annotations

import ast
import gc
import warnings
from typing import Any

import torch
from torch import nn

from nnlint.findings import Location
from nnlint.runtime.torch_compat import foreach_norm
from nnlint.sources import ModuleLocator, _parsed_file
from nnlint.watch.series import SchedulerRecord


def read_back(scalars: list[torch.Tensor]) -> list[float]:
    """Scalar tensors as floats with one device-to-host copy: stacked where the first one lives."""
    if not scalars:
        return []
    device = scalars[0].device
    return torch.stack([t.detach().float().to(device) for t in scalars]).cpu().tolist()


def read_back_mixed(values: list[torch.Tensor | float]) -> list[float]:
    """Floats as they are and tensors read back together, in their order."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    read = iter(read_back(tensors))
    return [next(read) if isinstance(v, torch.Tensor) else float(v) for v in values]


def floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    if not values:
        return {}
    return dict(zip(values, read_back(list(values.values())), strict=True))


def total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all the tensors together, on their device (no read back)."""
    norms = foreach_norm(tensors)
    if len(norms) == 1:
        return norms[0].float()
    if any(n.dtype != torch.float32 for n in norms):  # mixed precision: one dtype to stack
        norms = [n.float() for n in norms]
    return torch.linalg.vector_norm(torch.stack(norms))


def scheduler_record(scheduler: Any, location: Location | None, calls: list[int]) -> SchedulerRecord:
    period: float | None = None
    for attribute in ("step_size", "T_max", "total_steps"):
        value = getattr(scheduler, attribute, None)
        if isinstance(value, (int, float)):
            period = float(value)
            break
    milestones = getattr(scheduler, "milestones", None)
    if period is None and milestones:
        period = float(max(milestones))
    return SchedulerRecord(type(scheduler).__name__, location, tuple(calls), period)


def safe_locate(locate: ModuleLocator, path: str) -> Location | None:
    try:
        return locate.locate(path)
    except Exception:  # a module tree that changed since: no line rather than no report
        return None


def enclosing_loop(location: Location | None) -> Location | None:
    """The `for`/`while` around the line that iterates the training loader: the epoch loop."""
    if location is None:
        return None
    tree = _parsed_file(location.file)
    if tree is None:
        return None
    loops = [
        node for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While)) and node.lineno < location.line <= (node.end_lineno or 0)
    ]
    return Location(location.file, max(loop.lineno for loop in loops)) if loops else None


def live_modules() -> list[nn.Module]:
    with warnings.catch_warnings():  # isinstance on some lazily deprecated torch objects warns
        warnings.simplefilter("ignore")
        return [obj for obj in gc.get_objects() if isinstance(obj, nn.Module)]
