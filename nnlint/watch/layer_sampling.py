"""Per-layer statistics on sampled training steps: each layer's gradient norm, the share of each
ReLU's units never active on the batch, each BatchNorm's batch means against its running means.

The forward hooks exist only from the step a sample is due until the optimizer step that takes it;
the values stay on the device until the record is read back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nnlint.runtime.torch_compat import BatchNormBase
from nnlint.watch.readback import floats, total_norm
from nnlint.watch.series import LayerSample

_MIN_VALUES_PER_CHANNEL = 32  # fewer: the batch mean says too little to compare


class LayerSampler:
    def __init__(self) -> None:
        self.layers: list[tuple[str, list[torch.Tensor]]] = []  # module path -> its own trainable parameters
        self.active = False
        self.paused = False  # the recorder's own forwards (replays) are not the run's
        self._handles: list[Any] = []
        self._dead: dict[str, torch.Tensor] = {}
        self._shifts: dict[str, torch.Tensor] = {}
        self._samples: list[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def adopt(self, model: nn.Module) -> None:
        layers = [(path, [p for p in m.parameters(recurse=False) if p.requires_grad]) for path, m in model.named_modules()]
        self.layers = [(path, params) for path, params in layers if params]

    def begin(self, model: nn.Module) -> None:
        """Hooks on for the next training forward."""
        self.active = True
        self._dead, self._shifts = {}, {}
        for path, module in model.named_modules():
            if isinstance(module, nn.ReLU):
                self._handles.append(module.register_forward_hook(self._dead_units(path)))
            elif isinstance(module, BatchNormBase) and module.track_running_stats:
                self._handles.append(module.register_forward_pre_hook(self._batchnorm_shift(path)))

    def end(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.active = False

    def take(self, step: int) -> None:
        """At the optimizer step, with the gradients in place: the sample, and the hooks off."""
        norms = {path: total_norm(grads) for path, params in self.layers if (grads := [p.grad for p in params if p.grad is not None])}
        self._samples.append((step, norms, self._dead, self._shifts))
        self.end()

    def samples(self) -> tuple[LayerSample, ...]:
        return tuple(LayerSample(step, floats(norms), floats(dead), floats(shifts)) for step, norms, dead, shifts in self._samples)

    def _dead_units(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if self.paused or path in self._dead or not isinstance(output, torch.Tensor) or not module.training or output.dim() < 2:
                return
            axis = 1 if output.dim() != 3 else output.dim() - 1
            reduce_over = [d for d in range(output.dim()) if d != axis]
            active = (output.detach() > 0).amax(dim=reduce_over)
            self._dead[path] = 1.0 - active.float().mean()

        return hook

    def _batchnorm_shift(self, path: str) -> Callable[..., None]:
        def hook(module: BatchNormBase, args: Any) -> None:
            if self.paused or path in self._shifts or not module.training or not args or not isinstance(args[0], torch.Tensor):
                return
            values = args[0].detach()
            if values.dim() < 2 or module.running_mean is None or module.running_var is None:
                return
            if values.numel() // values.shape[1] < _MIN_VALUES_PER_CHANNEL:
                return
            reduce_over = [d for d in range(values.dim()) if d != 1]
            batch_mean = values.float().mean(dim=reduce_over)
            spread = (module.running_var.float() + module.eps).sqrt()
            self._shifts[path] = ((batch_mean - module.running_mean.float()).abs() / spread).mean()

        return hook
