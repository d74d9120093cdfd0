"""The train/eval gap BatchNorm makes: one validation batch's loss as evaluated (BatchNorm normalizing
with its running statistics) next to the same batch's loss with BatchNorm normalizing by the batch's
own statistics, as in training (NN609).

Measured once per validation pass, on its first batch, on at most `GAP_SAMPLES` of its samples: one
extra forward of the model under no_grad, with only the BatchNorm layers switched to training mode
(dropout stays off) and their running statistics swapped for copies, so the model's own buffers are
never written. The random generators are put back, so the script's next draws are the ones it would
have had. Nothing is replayed under torch.distributed with more than one process: a wrapped model
(DDP, FSDP) or a SyncBatchNorm may exchange tensors in its forward, and a script that validates on
rank 0 alone would leave the other processes waiting for this one's replay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from nnlint.runtime.randomness import restore_rng, rng_states
from nnlint.runtime.torch_compat import BatchNormBase

GAP_SAMPLES = 32  # the replayed slice of the batch: a training batch's worth of samples, at a fraction of the pass's cost
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def replayable_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The model's BatchNorm layers that keep running statistics; none when one of them is synchronized."""
    layers = [m for m in model.modules() if isinstance(m, BatchNormBase)]
    if any(isinstance(m, nn.SyncBatchNorm) for m in layers):
        return []
    return [m for m in layers if m.track_running_stats and m.running_mean is not None and m.running_var is not None]


def among_processes() -> bool:
    """More than one process in a torch.distributed group: no replay (see the module docstring)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@contextlib.contextmanager
def batch_statistics(layers: list[nn.Module]) -> Iterator[None]:
    """The layers in training mode, updating copies of their running statistics; exactly as they were after."""
    saved = [(layer, layer.training, {name: getattr(layer, name) for name in _BUFFERS}) for layer in layers]
    try:
        for layer, _, buffers in saved:
            layer.training = True
            for name, tensor in buffers.items():
                if tensor is not None:
                    setattr(layer, name, tensor.clone())
        yield
    finally:
        for layer, training, buffers in saved:
            layer.training = training
            for name, tensor in buffers.items():
                setattr(layer, name, tensor)


def measure_gap(
    model: nn.Module,
    layers: list[nn.Module],
    model_call: tuple[tuple[Any, ...], dict[str, Any]],
    loss_fn: Callable[..., Any],
    loss_args: tuple[Any, ...],
    loss_kwargs: dict[str, Any],
    output: torch.Tensor,
    loss: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(loss with running statistics, loss with batch statistics) on the batch's first samples, or None
    when the call cannot be replayed faithfully (the loss is not of the model's output as returned)."""
    position = next((i for i, arg in enumerate(loss_args) if arg is output), None)
    if position is None or output.dim() == 0 or loss.numel() != 1:
        return None
    samples = output.shape[0]
    keep = min(samples, GAP_SAMPLES)
    if keep < 2:  # BatchNorm cannot take batch statistics of a single sample
        return None
    args, kwargs = model_call
    states = rng_states(numpy=False)
    try:
        with torch.no_grad(), batch_statistics(layers):
            replayed = model(*_first(args, samples, keep), **_first(kwargs, samples, keep))
        if not isinstance(replayed, torch.Tensor) or replayed.shape != output[:keep].shape:
            return None
        rest_args, rest_kwargs = _first(loss_args, samples, keep), _first(loss_kwargs, samples, keep)
        with torch.no_grad():
            batch_loss = loss_fn(*_replaced(rest_args, position, replayed), **rest_kwargs)
            running_loss = loss if keep == samples else loss_fn(*_replaced(rest_args, position, output[:keep]), **rest_kwargs)
    finally:
        restore_rng(states)
    return running_loss.detach().float(), batch_loss.detach().float()


def _first(values: Any, samples: int, keep: int) -> Any:
    """Tensors whose first dimension is the batch's cut to their first `keep` rows, in tuples, lists and dicts."""
    if keep == samples:
        return values
    if isinstance(values, torch.Tensor):
        return values[:keep] if values.dim() and values.shape[0] == samples else values
    if isinstance(values, dict):
        return {key: _first(value, samples, keep) for key, value in values.items()}
    if isinstance(values, list) or type(values) is tuple:
        return type(values)(_first(value, samples, keep) for value in values)
    return values  # a structure this does not rebuild: the replay's output will not match, and is dropped


def _replaced(values: tuple[Any, ...], position: int, value: Any) -> tuple[Any, ...]:
    return (*values[:position], value, *values[position + 1 :])
