"""What the recorder replaces in torch to see a run it was not told about, each put back by
`Patches.undo()`: `Tensor.backward` (the training loss), the loss modules and functional losses
(validation losses), DataLoader iteration (epochs, validation loaders), the schedulers' `step`,
`torch.save` and `load_state_dict` (checkpoints), optimizer construction (its line), and
`destroy_process_group` (the ranks' exchange, while the group still exists)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader

from nnlint.runtime.torch_compat import DataLoaderIterBase, LossBase
from nnlint.sources import call_site
from nnlint.watch.patches import Patches

if TYPE_CHECKING:
    from nnlint.watch.recorder import Recorder

FUNCTIONAL_LOSSES = (
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
)


def install(patches: Patches, recorder: Recorder) -> None:
    watch_backward(patches, recorder)
    watch_losses(patches, recorder)
    watch_loaders(patches, recorder)
    watch_schedulers(patches, recorder)
    watch_checkpoints(patches, recorder)
    watch_optimizer_construction(patches, recorder)
    watch_process_group_teardown(patches, recorder)


def watch_backward(patches: Patches, recorder: Recorder) -> None:
    backward = torch.Tensor.backward

    def watched_backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if tensor.dim() == 0 and tensor.requires_grad:
            recorder.training_loss(tensor)
        return backward(tensor, *args, **kwargs)

    patches.replace(torch.Tensor, "backward", watched_backward)


def watch_losses(patches: Patches, recorder: Recorder) -> None:
    loss_call = LossBase.__call__

    def watched_loss_module(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        return recorder.loss_called(loss_call, (module, *args), kwargs)

    patches.replace(LossBase, "__call__", watched_loss_module)
    for name in FUNCTIONAL_LOSSES:
        original = getattr(functional, name, None)
        if original is not None:
            patches.replace(functional, name, _forwarding(recorder.loss_called, original))


def watch_loaders(patches: Patches, recorder: Recorder) -> None:
    iterate = DataLoader.__iter__
    next_batch = DataLoaderIterBase.__next__
    loaders = recorder.loaders

    def watched_iter(loader: DataLoader) -> Any:
        iterator = iterate(loader)
        loaders.iterated(loader, iterator, recorder.step)
        return iterator

    def watched_next(iterator: Any) -> Any:
        loaders.next_batch(iterator)
        return next_batch(iterator)

    patches.replace(DataLoader, "__iter__", watched_iter)
    patches.replace(DataLoaderIterBase, "__next__", watched_next)


def watch_schedulers(patches: Patches, recorder: Recorder) -> None:
    inside = [False]  # a scheduler's step calling another's (SequentialLR, ChainedScheduler) is one step
    classes = [cls for cls in vars(lr_scheduler).values() if isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler)]
    for cls in classes:
        if "step" not in cls.__dict__:
            continue
        original = cls.__dict__["step"]

        def watched_step(scheduler: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            if inside[0]:
                return _original(scheduler, *args, **kwargs)
            inside[0] = True
            try:
                recorder.scheduler_stepped(scheduler)
                return _original(scheduler, *args, **kwargs)
            finally:
                inside[0] = False

        patches.replace(cls, "step", watched_step)


def watch_checkpoints(patches: Patches, recorder: Recorder) -> None:
    save = torch.save
    load = nn.Module.load_state_dict

    def watched_save(*args: Any, **kwargs: Any) -> Any:
        recorder.saves.append(recorder.step)
        return save(*args, **kwargs)

    def watched_load(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        if module is recorder.model:
            recorder.restores.append(recorder.step)
        return load(module, *args, **kwargs)

    patches.replace(torch, "save", watched_save)
    patches.replace(nn.Module, "load_state_dict", watched_load)


def watch_optimizer_construction(patches: Patches, recorder: Recorder) -> None:
    construct = torch.optim.Optimizer.__init__
    sites = recorder.optimizer_sites

    def watched_init(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        if optimizer not in sites:
            sites[optimizer] = call_site()
        construct(optimizer, *args, **kwargs)

    patches.replace(torch.optim.Optimizer, "__init__", watched_init)


def watch_process_group_teardown(patches: Patches, recorder: Recorder) -> None:
    """Under torch.distributed, exchange what each rank saw while the group still exists: every
    rank calls destroy_process_group at the same point of the script, so the exchange is collective."""
    import torch.distributed as dist

    if not dist.is_available():
        return
    destroy = dist.destroy_process_group

    def watched_destroy(*args: Any, **kwargs: Any) -> Any:
        recorder.exchange_between_ranks()
        return destroy(*args, **kwargs)

    patches.replace(dist, "destroy_process_group", watched_destroy)


def _forwarding(handler: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    def watched(*args: Any, **kwargs: Any) -> Any:
        return handler(original, args, kwargs)

    watched.__wrapped__ = original  # type: ignore[attr-defined]
    watched.__name__ = getattr(original, "__name__", "loss")
    return watched
