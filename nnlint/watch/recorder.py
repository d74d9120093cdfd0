"""The watch's recorder: a few scalars per optimizer step, per-layer statistics every N steps.

Cheap by design. Each optimizer step keeps the loss and the global gradient norm (on an accelerator
as device tensors, read back in batches of `_FLUSH_EVERY` so a GPU run is not synchronized every
step; on the CPU the loss is read at once, which costs less than checking it on the device) and the
learning rate as a float. Per-layer statistics are measured only on sampled steps (every
`sample_every`, nnlint/watch/layer_sampling.py), with hooks that exist only for that step.

What the recorder learns by type, without the script's help (nnlint/watch/interceptors.py):
- optimizer steps from torch's global step hooks (the watched optimizer when one is given);
- the training loss from `Tensor.backward` on a scalar;
- epochs from iterations over the DataLoader that feeds the optimizer steps (nnlint/watch/loaders.py);
- validation: forwards of the model, and losses, under no_grad/inference_mode or on another loader
  (nnlint/watch/validation.py), with BatchNorm's train/eval gap (nnlint/watch/batchnorm_gap.py);
- schedulers from their `step()`; checkpoints from `torch.save` and `load_state_dict`.
Every replaced attribute is put back by `stop()`.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nnlint.findings import Location
from nnlint.runtime.torch_compat import BatchNormBase, DropoutBase, LossBase
from nnlint.sources import ModuleLocator, call_site, constructed_modules
from nnlint.watch.batchnorm_gap import among_processes, measure_gap, replayable_batchnorms
from nnlint.watch.interceptors import install as install_interceptors
from nnlint.watch.layer_sampling import LayerSampler
from nnlint.watch.loaders import LoaderTracker
from nnlint.watch.non_finite import exchange_between_ranks, process_rank, replay_for_non_finite
from nnlint.watch.patches import Patches
from nnlint.watch.readback import enclosing_loop, live_modules, read_back_mixed, safe_locate, scheduler_record, total_norm
from nnlint.watch.series import EvalModeTraining, Evaluation, NonFiniteLoss, RunRecord
from nnlint.watch.validation import OpenEvaluation

_FLUSH_EVERY = 64  # steps between device-to-host reads of the per-step scalars
DEFAULT_SAMPLE_EVERY = 20

_MODE_DEPENDENT = (DropoutBase, BatchNormBase)


class Recorder:
    """Records one training run. `start()` installs the hooks, `stop()` removes them, `record()` reads back."""

    def __init__(
        self, model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None, *, sample_every: int = DEFAULT_SAMPLE_EVERY
    ) -> None:
        self.model: nn.Module | None = None
        self.optimizer = optimizer
        self.sample_every = max(1, sample_every)
        self.step = 0
        self.loaders = LoaderTracker()
        self.sampler = LayerSampler()
        self.saves: list[int] = []  # steps taken when `torch.save` was called
        self.restores: list[int] = []  # ... when the model's `load_state_dict` was called
        self.optimizer_sites: weakref.WeakKeyDictionary[Any, Location | None] = weakref.WeakKeyDictionary()
        self.rank: int | None = None
        self.world_size = 1
        self._patches = Patches()
        self._handles: list[Any] = []
        self._model_handles: list[Any] = []
        # Per step, on the device (or already floats on the CPU) until flushed
        self._pending_loss: torch.Tensor | float | None = None
        self._step_losses: list[torch.Tensor | float] = []
        self._step_norms: list[torch.Tensor | float] = []
        self._losses: list[float] = []
        self._norms: list[float] = []
        self._learning_rates: list[float] = []
        self._closure_step = False
        self._steps_without_loss: set[int] = set()  # steps taken without a backward seen (recorded as nan)
        self._watched_parameters: list[torch.Tensor] = []
        self._optimizer_location: Location | None = None
        # Validation
        self._evaluation: OpenEvaluation | None = None
        self._evaluations: list[Evaluation] = []
        self._in_loss = False
        self._validation_output: Any = None  # the model's output in the open validation pass, for the BatchNorm gap
        self._batchnorms: list[nn.Module] = []
        # Modes
        self._mode_modules: list[tuple[str, nn.Module]] = []
        self._eval_mode_first: int | None = None
        self._eval_mode_steps = 0
        self._eval_mode_names: tuple[str, ...] = ()
        # The rest
        self._schedulers: dict[int, tuple[Any, Location | None, list[int]]] = {}
        self._logged: dict[str, list[tuple[int, float]]] = {}
        self._non_finite: NonFiniteLoss | None = None
        self._last_input: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._replaying = False
        self._exchanged = False
        if model is not None:
            self._adopt_model(model)

    # -- installing and removing ------------------------------------------------------------------
    def start(self) -> Recorder:
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

        self._handles += [register_optimizer_step_pre_hook(self._before_step), register_optimizer_step_post_hook(self._after_step)]
        if self.model is not None:
            self.sampler.begin(self.model)  # the first step shows the run's starting point
        install_interceptors(self._patches, self)
        return self

    def stop(self) -> None:
        self.sampler.end()
        for handle in [*self._handles, *self._model_handles]:
            handle.remove()
        self._handles, self._model_handles = [], []
        self._patches.undo()

    # -- the model --------------------------------------------------------------------------------
    def _adopt_model(self, model: nn.Module) -> None:
        self.model = model
        self._mode_modules = [(path, m) for path, m in model.named_modules() if isinstance(m, _MODE_DEPENDENT)]
        self.sampler.adopt(model)
        self._batchnorms = replayable_batchnorms(model)
        self._model_handles.append(model.register_forward_pre_hook(self._model_called, with_kwargs=True))
        if self._batchnorms:
            self._model_handles.append(model.register_forward_hook(self._model_returned))
        if self.step == 0 and not self.sampler.active and self._handles:
            self.sampler.begin(model)  # the first step shows the run's starting point

    def _model_called(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._replaying:
            return
        self._last_input = (args, kwargs)
        if self._is_validation():
            evaluation = self._open_evaluation()
            evaluation.batches += 1
            self._note_train_mode(evaluation)

    def _model_returned(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not self._replaying:
            self._validation_output = output if self._evaluation is not None and self._is_validation() else None

    def _model_from_optimizer(self, optimizer: torch.optim.Optimizer) -> nn.Module | None:
        """The module whose parameters this optimizer holds: of the modules the script built (or, in
        code, all live ones), the one holding most of them — the root, not one of its layers."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        candidates = constructed_modules() or live_modules()
        best: nn.Module | None = None
        best_count = 0
        for module in candidates:
            if isinstance(module, LossBase):
                continue
            count = sum(1 for p in module.parameters() if id(p) in held)
            if count > best_count:
                best, best_count = module, count
        return best

    # -- per step (the hot path) -------------------------------------------------------------------
    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self.optimizer is None:
            self.optimizer = optimizer
        if optimizer is not self.optimizer:
            return
        if self._optimizer_location is None:
            self._optimizer_location = self.optimizer_sites.get(optimizer) or call_site()
        if self.model is None:
            model = self._model_from_optimizer(optimizer)
            if model is not None:
                self._adopt_model(model)
        if not self._watched_parameters:
            self._watched_parameters = [p for group in optimizer.param_groups for p in group["params"]]
        # A step with a closure (Lightning, LBFGS) runs forward and backward inside it: measure after.
        self._closure_step = callable(kwargs.get("closure", args[0] if args else None))
        if not self._closure_step:
            self._measure_gradients()
        model = self.model
        if model is not None and not model.training and self._mode_modules:
            if self._eval_mode_first is None:
                self._eval_mode_first = self.step
                self._eval_mode_names = tuple(path for path, m in self._mode_modules if not m.training)
            self._eval_mode_steps += 1

    def _measure_gradients(self) -> None:
        grads = [p.grad for p in self._watched_parameters if p.grad is not None]
        self._step_norms.append(total_norm(grads) if grads else math.nan)
        if self.sampler.active:
            self.sampler.take(self.step)

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if optimizer is not self.optimizer:
            return
        if self._closure_step:
            self._measure_gradients()
        self.step += 1
        loss = self._pending_loss
        if loss is None:
            self._steps_without_loss.add(self.step - 1)
        self._step_losses.append(loss if loss is not None else math.nan)
        self._pending_loss = None
        self._learning_rates.append(float(optimizer.param_groups[0]["lr"]))
        self.loaders.stepped()
        if self._evaluation is not None:
            self._close_evaluation()
        if len(self._step_losses) >= _FLUSH_EVERY:
            self._flush()
        if self.step % self.sample_every == 0 and self.model is not None:
            self.sampler.begin(self.model)

    def training_loss(self, loss: torch.Tensor) -> None:
        """A scalar `.backward()`: the step's training loss."""
        if loss.device.type != "cpu":
            self._pending_loss = loss.detach()  # checked when the batch is read back, without a sync per step
            return
        value = loss.item()
        self._pending_loss = value
        if self._non_finite is None and not math.isfinite(value):
            self._found_non_finite(self.step, value)

    def _flush(self) -> None:
        if self._step_losses:
            self._losses += read_back_mixed(self._step_losses)
            self._norms += read_back_mixed(self._step_norms)
            self._step_losses, self._step_norms = [], []
        if self._non_finite is None:
            # Losses kept on an accelerator are checked here, once per batch read, not once per step.
            losses = self._losses
            bad = next((i for i, v in enumerate(losses) if not math.isfinite(v) and i not in self._steps_without_loss), None)
            if bad is not None:
                self._non_finite = NonFiniteLoss(bad, process_rank(), losses[bad])

    # -- losses and validation ----------------------------------------------------------------------
    def loss_called(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A loss module or functional loss: under validation, the validation loss."""
        if self._in_loss:
            return original(*args, **kwargs)
        self._in_loss = True
        try:
            value = original(*args, **kwargs)
        finally:
            self._in_loss = False
        # The training case first, and cheaply: most loss calls are training steps' (grad on, the training loader).
        if self._is_validation() and isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
            evaluation = self._open_evaluation()
            evaluation.losses.append(value.detach().float().mean())
            self._note_train_mode(evaluation)
            if not evaluation.gap_tried and self._batchnorms:
                self._measure_batchnorm_gap(evaluation, original, args, kwargs, value)
        return value

    def _measure_batchnorm_gap(
        self, evaluation: OpenEvaluation, loss_fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], loss: torch.Tensor
    ) -> None:
        """On the pass's first loss of the model's output, in evaluation mode: the same samples' loss with
        BatchNorm normalizing by batch statistics (nnlint/watch/batchnorm_gap.py)."""
        model, output, call = self.model, self._validation_output, self._last_input
        if model is None or model.training or call is None or not isinstance(output, torch.Tensor):
            return
        if among_processes():
            evaluation.gap_tried = True
            return
        if not any(arg is output for arg in args):
            return  # a loss of something else (a post-processed output, an auxiliary term): wait for the model's
        evaluation.gap_tried = True
        self._replaying = self.sampler.paused = True
        try:
            evaluation.gap = measure_gap(model, self._batchnorms, call, loss_fn, args, kwargs, output, loss)
        except Exception:  # a best effort: the pass keeps its loss, only the gap is missing
            evaluation.gap = None
        finally:
            self._replaying = self.sampler.paused = False

    def _note_train_mode(self, evaluation: OpenEvaluation) -> None:
        """Dropout/BatchNorm left in training mode while validating (the model's own forward may not be
        called: Lightning's validation_step calls its layers)."""
        if not evaluation.train_mode_modules:
            evaluation.train_mode_modules = tuple(path for path, m in self._mode_modules if m.training)

    def _is_validation(self) -> bool:
        if self._replaying:
            return False
        return not torch.is_grad_enabled() or self.loaders.reading_other_than_training()

    def _open_evaluation(self) -> OpenEvaluation:
        if self._evaluation is None or self._evaluation.step != self.step:
            if self._evaluation is not None:
                self._close_evaluation()
            self._evaluation = OpenEvaluation(self.step, self.loaders.epochs_begun())
        return self._evaluation

    def _close_evaluation(self) -> None:
        evaluation, self._evaluation = self._evaluation, None
        self._validation_output = None
        if evaluation is not None:
            self._evaluations.append(evaluation.close())

    # -- schedulers, metrics ------------------------------------------------------------------------
    def scheduler_stepped(self, scheduler: Any) -> None:
        entry = self._schedulers.get(id(scheduler))
        if entry is None:
            entry = self._schedulers[id(scheduler)] = (scheduler, call_site(), [])
        if getattr(scheduler, "_step_count", None) == 0:
            return  # the constructor's own first step
        entry[2].append(self.step)

    def log(self, name: str, value: float | torch.Tensor, step: int | None = None) -> None:
        self._logged.setdefault(name, []).append((self.step if step is None else int(step), float(value)))

    # -- non-finite losses and ranks ------------------------------------------------------------------
    def _found_non_finite(self, step: int, value: float) -> None:
        found, replayed = None, False
        if self.model is not None and self._last_input is not None:
            self._replaying = self.sampler.paused = True
            try:
                found, replayed = replay_for_non_finite(self.model, self._last_input)
            finally:
                self._replaying = self.sampler.paused = False
        if found is not None:
            self._non_finite = NonFiniteLoss(step, process_rank(), value, found.op, found.module or None, found.location, replayed=True)
        else:  # no module made it (the loss function did) or no replay: the line that called backward
            self._non_finite = NonFiniteLoss(step, process_rank(), value, location=call_site(), replayed=replayed)

    def exchange_between_ranks(self) -> None:
        """Under torch.distributed, once: every rank learns which one saw a non-finite loss first."""
        if self._exchanged:
            return
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        self._exchanged = True
        self._flush()
        exchanged = exchange_between_ranks(self._non_finite)
        if exchanged is not None:
            self.rank, self.world_size, self._non_finite = exchanged

    def _detect_rank(self) -> None:
        self.exchange_between_ranks()  # when the script left its process group up
        if self.rank is None and "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun, group already gone
            with contextlib.suppress(ValueError):
                self.rank, self.world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    # -- reading back ---------------------------------------------------------------------------------
    def record(self, *, script: str | None = None, crash: str | None = None, interrupted: bool = False) -> RunRecord:
        self.sampler.end()
        self._close_evaluation()
        self._flush()
        self._detect_rank()
        iterations = self.loaders.training_iterations()
        loop_location = iterations[0][1] if iterations else None
        eval_mode = (
            EvalModeTraining(self._eval_mode_first, self._eval_mode_steps, self._eval_mode_names)
            if self._eval_mode_first is not None
            else None
        )
        return RunRecord(
            losses=tuple(self._losses),
            grad_norms=tuple(self._norms),
            learning_rates=tuple(self._learning_rates),
            epoch_starts=tuple(step for step, _ in iterations),
            evaluations=tuple(self._evaluations),
            layers=self.sampler.samples(),
            schedulers=tuple(scheduler_record(*entry) for entry in self._schedulers.values() if entry[2]),
            eval_mode_training=eval_mode,
            non_finite=self._non_finite,
            logged={name: tuple(values) for name, values in self._logged.items()},
            save_steps=tuple(self.saves),
            restore_steps=tuple(self.restores),
            module_locations=self._module_locations(),
            optimizer_location=self._optimizer_location,
            loop_location=loop_location,
            epoch_loop_location=enclosing_loop(loop_location),
            script=script,
            crash=crash,
            interrupted=interrupted,
            world_size=self.world_size,
            sample_every=self.sample_every,
        )

    def _module_locations(self) -> dict[str, Location]:
        """Construction lines of the modules a finding may name: layers, dropout/BatchNorm, ReLUs."""
        if self.model is None:
            return {}
        locate = ModuleLocator(self.model)
        wanted = {path for path, _ in self.sampler.layers} | {path for path, _ in self._mode_modules}
        wanted |= {path for path, m in self.model.named_modules() if isinstance(m, nn.ReLU)}
        return {path: site for path in wanted if (site := safe_locate(locate, path)) is not None}
