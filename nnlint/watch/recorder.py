"""The watch's recorder: a few scalars per optimizer step, per-layer statistics every N steps.

Cheap by design. Each optimizer step keeps the loss and the global gradient norm as device tensors
(read back in batches of `_FLUSH_EVERY`, so a GPU run is not synchronized every step) and the
learning rate as a float. Per-layer gradient norms, dead-ReLU shares and BatchNorm statistics are
measured only on sampled steps (every `sample_every`), with hooks that exist only for that step.

What the recorder learns by type, without the script's help:
- optimizer steps from torch's global step hooks (the watched optimizer when one is given);
- the training loss from `Tensor.backward` on a scalar;
- epochs from iterations over the DataLoader that feeds the optimizer steps;
- validation: forwards of the model, and losses, under no_grad/inference_mode or on another loader;
- schedulers from their `step()`; checkpoints from `torch.save` and `load_state_dict`.
Every replaced attribute is put back by `stop()`.
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from nnlint.findings import Location
from nnlint.runtime.torch_compat import BatchNormBase, DropoutBase, LossBase, foreach_norm
from nnlint.sources import ModuleLocator, call_site, constructed_modules
from nnlint.watch.batchnorm_gap import measure_gap, replayable_batchnorms
from nnlint.watch.patches import Patches
from nnlint.watch.series import EvalModeTraining, Evaluation, LayerSample, NonFiniteLoss, RunRecord, SchedulerRecord

_NO_LOSS = torch.tensor(math.nan)
_FLUSH_EVERY = 64  # steps between device-to-host reads of the per-step scalars
DEFAULT_SAMPLE_EVERY = 20

_MODE_DEPENDENT = (DropoutBase, BatchNormBase)
_FUNCTIONAL_LOSSES = (
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


class _Evaluation:
    """A validation pass being recorded (closed by the next optimizer step)."""

    def __init__(self, step: int, epoch: int) -> None:
        self.step = step
        self.epoch = epoch
        self.losses: list[torch.Tensor] = []
        self.batches = 0
        self.train_mode_modules: tuple[str, ...] = ()
        self.gap: tuple[torch.Tensor, torch.Tensor] | None = None  # (running-statistics loss, batch-statistics loss)
        self.gap_tried = False


class _Scheduler:
    def __init__(self, scheduler: Any, location: Location | None) -> None:
        self.scheduler = scheduler
        self.location = location
        self.calls: list[int] = []


class Recorder:
    """Records one training run. `start()` installs the hooks, `stop()` removes them, `record()` reads back."""

    def __init__(
        self, model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None, *, sample_every: int = DEFAULT_SAMPLE_EVERY
    ) -> None:
        self.model: nn.Module | None = None
        self.optimizer = optimizer
        self.sample_every = max(1, sample_every)
        self.step = 0
        self._patches = Patches()
        self._handles: list[Any] = []
        self._model_handles: list[Any] = []
        # Per step, on the device until flushed
        self._pending_loss: torch.Tensor | None = None
        self._loss_tensors: list[torch.Tensor] = []
        self._norm_tensors: list[torch.Tensor] = []
        self._losses: list[float] = []
        self._norms: list[float] = []
        self._learning_rates: list[float] = []
        self._closure_step = False
        self._steps_without_loss: set[int] = set()  # steps taken without a backward seen (recorded as nan)
        # Loaders, epochs, validation
        self._loader_of_iterator: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._current_loader: int | None = None
        self._iterations: list[tuple[int, int, Location | None]] = []  # (loader id, step, line that iterates it)
        self._steps_on_loader: Counter[int] = Counter()
        self._train_loader: int | None = None
        self._evaluation: _Evaluation | None = None
        self._evaluations: list[Evaluation] = []
        self._in_loss = False
        # Modes
        self._mode_modules: list[tuple[str, nn.Module]] = []
        self._eval_mode_first: int | None = None
        self._eval_mode_steps = 0
        self._eval_mode_names: tuple[str, ...] = ()
        # Sampled per-layer statistics
        self._watched_parameters: list[torch.Tensor] = []
        self._layers: list[tuple[str, list[torch.Tensor]]] = []
        self._sample_handles: list[Any] = []
        self._sampling = False
        self._dead: dict[str, torch.Tensor] = {}
        self._shifts: dict[str, torch.Tensor] = {}
        self._samples: list[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []
        # The rest
        self._schedulers: dict[int, _Scheduler] = {}
        self._in_scheduler = False
        self._saves: list[int] = []
        self._restores: list[int] = []
        self._logged: dict[str, list[tuple[int, float]]] = {}
        self._non_finite: NonFiniteLoss | None = None
        self._check_finite_now = True
        self._last_input: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._validation_output: Any = None  # the model's output in the open validation pass, for the BatchNorm gap
        self._batchnorms: list[nn.Module] = []
        self._replaying = False
        self._replayed = False  # the bad step's forward was replayed (and its outputs were finite, if nothing was found)
        self._optimizer_location: Location | None = None
        self._optimizer_sites: weakref.WeakKeyDictionary[Any, Location | None] = weakref.WeakKeyDictionary()
        self.rank: int | None = None
        self._exchanged = False
        self.world_size = 1
        if model is not None:
            self._adopt_model(model)

    # -- installing and removing ------------------------------------------------------------------
    def start(self) -> Recorder:
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

        self._handles += [register_optimizer_step_pre_hook(self._before_step), register_optimizer_step_post_hook(self._after_step)]
        if self.model is not None:
            self._begin_sampling()  # the first step shows the run's starting point
        backward = torch.Tensor.backward
        recorder = self

        def watched_backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if tensor.dim() == 0 and tensor.requires_grad:
                recorder._training_loss(tensor)
            return backward(tensor, *args, **kwargs)

        self._patches.replace(torch.Tensor, "backward", watched_backward)
        self._patch_losses()
        self._patch_loaders()
        self._patch_schedulers()
        self._patch_checkpoints()
        self._patch_optimizer_construction()
        self._patch_process_group_teardown()
        return self

    def stop(self) -> None:
        self._end_sampling()
        for handle in [*self._handles, *self._model_handles]:
            handle.remove()
        self._handles, self._model_handles = [], []
        self._patches.undo()

    def _patch_losses(self) -> None:
        loss_call = LossBase.__call__
        recorder = self

        def watched_loss_module(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            return recorder._loss_called(loss_call, (module, *args), kwargs)

        self._patches.replace(LossBase, "__call__", watched_loss_module)
        for name in _FUNCTIONAL_LOSSES:
            original = getattr(functional, name, None)
            if original is not None:
                self._patches.replace(functional, name, _forwarding(self._loss_called, original))

    def _patch_loaders(self) -> None:
        recorder = self
        iterate = DataLoader.__iter__
        next_batch = _BaseDataLoaderIter.__next__

        def watched_iter(loader: DataLoader) -> Any:
            iterator = iterate(loader)
            recorder._loader_iterated(loader, iterator)
            return iterator

        def watched_next(iterator: Any) -> Any:
            recorder._current_loader = recorder._loader_of_iterator.get(iterator, recorder._current_loader)
            return next_batch(iterator)

        self._patches.replace(DataLoader, "__iter__", watched_iter)
        self._patches.replace(_BaseDataLoaderIter, "__next__", watched_next)

    def _patch_schedulers(self) -> None:
        recorder = self
        classes = [cls for cls in vars(lr_scheduler).values() if isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler)]
        for cls in classes:
            if "step" not in cls.__dict__:
                continue
            original = cls.__dict__["step"]

            def watched_step(scheduler: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
                if recorder._in_scheduler:
                    return _original(scheduler, *args, **kwargs)
                recorder._in_scheduler = True
                try:
                    recorder._scheduler_stepped(scheduler)
                    return _original(scheduler, *args, **kwargs)
                finally:
                    recorder._in_scheduler = False

            self._patches.replace(cls, "step", watched_step)

    def _patch_checkpoints(self) -> None:
        recorder = self
        save = torch.save
        load = nn.Module.load_state_dict

        def watched_save(*args: Any, **kwargs: Any) -> Any:
            recorder._saves.append(recorder.step)
            return save(*args, **kwargs)

        def watched_load(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            if module is recorder.model:
                recorder._restores.append(recorder.step)
            return load(module, *args, **kwargs)

        self._patches.replace(torch, "save", watched_save)
        self._patches.replace(nn.Module, "load_state_dict", watched_load)

    def _patch_optimizer_construction(self) -> None:
        construct = torch.optim.Optimizer.__init__
        sites = self._optimizer_sites

        def watched_init(optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
            if optimizer not in sites:
                sites[optimizer] = call_site()
            construct(optimizer, *args, **kwargs)

        self._patches.replace(torch.optim.Optimizer, "__init__", watched_init)

    def _patch_process_group_teardown(self) -> None:
        """Under torch.distributed, exchange what each rank saw while the group still exists: every
        rank calls destroy_process_group at the same point of the script, so the exchange is collective."""
        import torch.distributed as dist

        if not dist.is_available():
            return
        destroy = dist.destroy_process_group
        recorder = self

        def watched_destroy(*args: Any, **kwargs: Any) -> Any:
            recorder._exchange_between_ranks()
            return destroy(*args, **kwargs)

        self._patches.replace(dist, "destroy_process_group", watched_destroy)

    def _exchange_between_ranks(self) -> None:
        import torch.distributed as dist

        if self._exchanged or not (dist.is_available() and dist.is_initialized()):
            return
        self._exchanged = True
        self._flush()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        seen = self._non_finite
        mine = (self.rank, seen.step, seen.value) if seen is not None else None
        gathered: list[Any] = [None] * self.world_size
        try:
            dist.all_gather_object(gathered, mine)
        except Exception:  # a group that cannot exchange (a rank gone): report this rank's view only
            return
        reports = [entry for entry in gathered if entry is not None]
        if not reports:
            return
        rank, step, value = min(reports, key=lambda entry: (entry[1], entry[0]))
        if seen is None or (step, rank) < (seen.step, self.rank):
            self._non_finite = NonFiniteLoss(step, rank, value)
        else:
            self._non_finite = NonFiniteLoss(seen.step, self.rank, seen.value, seen.op, seen.module, seen.location, seen.replayed)

    # -- the model --------------------------------------------------------------------------------
    def _adopt_model(self, model: nn.Module) -> None:
        self.model = model
        self._mode_modules = [(path, m) for path, m in model.named_modules() if isinstance(m, _MODE_DEPENDENT)]
        self._layers = [(path, [p for p in m.parameters(recurse=False) if p.requires_grad]) for path, m in model.named_modules()]
        self._layers = [(path, params) for path, params in self._layers if params]
        self._batchnorms = replayable_batchnorms(model)
        self._model_handles.append(model.register_forward_pre_hook(self._model_called, with_kwargs=True))
        if self._batchnorms:
            self._model_handles.append(model.register_forward_hook(self._model_returned))
        if self.step == 0 and not self._sampling and self._handles:
            self._begin_sampling()  # the first step shows the run's starting point

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
        candidates = constructed_modules() or _live_modules()
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
            self._optimizer_location = self._optimizer_sites.get(optimizer) or call_site()
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
        self._norm_tensors.append(_total_norm(grads) if grads else _NO_LOSS)
        if self._sampling:
            self._take_sample()

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if optimizer is not self.optimizer:
            return
        if self._closure_step:
            self._measure_gradients()
        self.step += 1
        loss = self._pending_loss
        if loss is None:
            self._steps_without_loss.add(self.step - 1)
        self._loss_tensors.append(loss if loss is not None else _NO_LOSS)
        self._pending_loss = None
        learning_rate = optimizer.param_groups[0]["lr"]
        self._learning_rates.append(float(learning_rate))
        if self._current_loader is not None:
            self._steps_on_loader[self._current_loader] += 1
            self._train_loader = self._current_loader
        if self._evaluation is not None:
            self._close_evaluation()
        if len(self._loss_tensors) >= _FLUSH_EVERY:
            self._flush()
        if self.step % self.sample_every == 0 and self.model is not None:
            self._begin_sampling()

    def _training_loss(self, loss: torch.Tensor) -> None:
        self._pending_loss = loss.detach()
        if self._check_finite_now and self._non_finite is None:
            if loss.device.type != "cpu":
                self._check_finite_now = False  # found when the batch is read back instead, without a sync per step
            elif not bool(torch.isfinite(loss)):
                self._found_non_finite(self.step, float(loss.detach()))

    def _flush(self) -> None:
        if self._loss_tensors:
            self._losses += read_back(self._loss_tensors)
            self._norms += read_back(self._norm_tensors)
            self._loss_tensors, self._norm_tensors = [], []
        if self._non_finite is None:
            # Losses kept on an accelerator are checked here, once per batch read, not once per step.
            losses = self._losses
            bad = next((i for i, v in enumerate(losses) if not math.isfinite(v) and i not in self._steps_without_loss), None)
            if bad is not None:
                self._non_finite = NonFiniteLoss(bad, _rank(), losses[bad])

    # -- losses and validation ----------------------------------------------------------------------
    def _loss_called(self, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._in_loss:
            return original(*args, **kwargs)
        self._in_loss = True
        try:
            value = original(*args, **kwargs)
        finally:
            self._in_loss = False
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() and self._is_validation():
            evaluation = self._open_evaluation()
            evaluation.losses.append(value.detach().float().mean())
            self._note_train_mode(evaluation)
            if not evaluation.gap_tried and self._batchnorms:
                self._measure_batchnorm_gap(evaluation, original, args, kwargs, value)
        return value

    def _measure_batchnorm_gap(
        self, evaluation: _Evaluation, loss_fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], loss: torch.Tensor
    ) -> None:
        """On the pass's first loss of the model's output, in evaluation mode: the same samples' loss with
        BatchNorm normalizing by batch statistics (nnlint/watch/batchnorm_gap.py)."""
        model, output, call = self.model, self._validation_output, self._last_input
        if model is None or model.training or call is None or not isinstance(output, torch.Tensor):
            return
        if not any(arg is output for arg in args):
            return  # a loss of something else (a post-processed output, an auxiliary term): wait for the model's
        evaluation.gap_tried = True
        self._replaying = True
        try:
            evaluation.gap = measure_gap(model, self._batchnorms, call, loss_fn, args, kwargs, output, loss)
        except Exception:  # a best effort: the pass keeps its loss, only the gap is missing
            evaluation.gap = None
        finally:
            self._replaying = False

    def _note_train_mode(self, evaluation: _Evaluation) -> None:
        """Dropout/BatchNorm left in training mode while validating (the model's own forward may not be
        called: Lightning's validation_step calls its layers)."""
        if not evaluation.train_mode_modules:
            evaluation.train_mode_modules = tuple(path for path, m in self._mode_modules if m.training)

    def _is_validation(self) -> bool:
        if self._replaying:
            return False
        if not torch.is_grad_enabled():
            return True
        return self._train_loader is not None and self._current_loader is not None and self._current_loader != self._train_loader

    def _open_evaluation(self) -> _Evaluation:
        if self._evaluation is None or self._evaluation.step != self.step:
            if self._evaluation is not None:
                self._close_evaluation()
            self._evaluation = _Evaluation(self.step, self._epochs_begun())
        return self._evaluation

    def _close_evaluation(self) -> None:
        evaluation, self._evaluation = self._evaluation, None
        if evaluation is None:
            return
        self._validation_output = None
        losses = read_back(evaluation.losses)
        loss = sum(losses) / len(losses) if losses else None
        running, batch = read_back(list(evaluation.gap)) if evaluation.gap is not None else (None, None)
        self._evaluations.append(
            Evaluation(
                evaluation.step,
                evaluation.epoch,
                loss,
                max(evaluation.batches, len(evaluation.losses)),
                evaluation.train_mode_modules,
                running_statistics_loss=running,
                batch_statistics_loss=batch,
            )
        )

    def _loader_iterated(self, loader: DataLoader, iterator: Any) -> None:
        with contextlib.suppress(TypeError):  # an iterator that cannot be weakly referenced: the loader is current from here
            self._loader_of_iterator[iterator] = id(loader)
        self._current_loader = id(loader)
        self._iterations.append((id(loader), self.step, call_site()))

    def _epochs_begun(self) -> int:
        train = self._train_loader
        if train is None:
            return 1
        return max(1, sum(1 for loader, _, _ in self._iterations if loader == train))

    # -- sampled per-layer statistics ---------------------------------------------------------------
    def _begin_sampling(self) -> None:
        assert self.model is not None
        self._sampling = True
        self._dead, self._shifts = {}, {}
        for path, module in self.model.named_modules():
            if isinstance(module, nn.ReLU):
                self._sample_handles.append(module.register_forward_hook(_measure_dead_units(path, self)))
            elif isinstance(module, BatchNormBase) and module.track_running_stats:
                self._sample_handles.append(module.register_forward_pre_hook(_measure_batchnorm_shift(path, self)))

    def _end_sampling(self) -> None:
        for handle in self._sample_handles:
            handle.remove()
        self._sample_handles = []
        self._sampling = False

    def _take_sample(self) -> None:
        norms = {path: _total_norm(grads) for path, params in self._layers if (grads := [p.grad for p in params if p.grad is not None])}
        self._samples.append((self.step, norms, self._dead, self._shifts))
        self._end_sampling()

    # -- schedulers, checkpoints, metrics -------------------------------------------------------------
    def _scheduler_stepped(self, scheduler: Any) -> None:
        entry = self._schedulers.get(id(scheduler))
        if entry is None:
            entry = self._schedulers[id(scheduler)] = _Scheduler(scheduler, call_site())
        if getattr(scheduler, "_step_count", None) == 0:
            return  # the constructor's own first step
        entry.calls.append(self.step)

    def log(self, name: str, value: float | torch.Tensor, step: int | None = None) -> None:
        self._logged.setdefault(name, []).append((self.step if step is None else int(step), float(value)))

    # -- non-finite losses ----------------------------------------------------------------------------
    def _found_non_finite(self, step: int, value: float) -> None:
        found = self._replay_for_non_finite()
        if found is not None:
            self._non_finite = NonFiniteLoss(step, _rank(), value, found.op, found.module or None, found.location, replayed=True)
        else:  # no module made it (the loss function did) or no replay: the line that called backward
            self._non_finite = NonFiniteLoss(step, _rank(), value, location=call_site(), replayed=self._replayed)

    def _replay_for_non_finite(self) -> Any:
        """Run the last forward again with the probe's instrument (on the bad step only): the first op
        whose output was non-finite while its inputs were finite, and the module running it."""
        if self.model is None or self._last_input is None:
            return None
        from nnlint.probe.instrument import Instrument
        from nnlint.runtime.state import preserved_user_state

        args, kwargs = self._last_input
        self._replaying = True
        try:
            with preserved_user_state(self.model), torch.no_grad(), Instrument(self.model, find_non_finite=True) as instrument:
                self.model(*args, **kwargs)
            self._replayed = instrument.failure is None
            return instrument.first_non_finite
        except Exception:  # the replay is a best effort: the step and the value are reported without it
            return None
        finally:
            self._replaying = False

    # -- reading back ---------------------------------------------------------------------------------
    def record(self, *, script: str | None = None, crash: str | None = None, interrupted: bool = False) -> RunRecord:
        self._end_sampling()
        self._close_evaluation()
        self._flush()
        self._detect_rank()
        train = self._train_loader
        if train is None and self._steps_on_loader:
            train = self._steps_on_loader.most_common(1)[0][0]
        iterations = [(step, line) for loader, step, line in self._iterations if loader == train]
        loop_location = iterations[0][1] if iterations else None
        locate = ModuleLocator(self.model) if self.model is not None else None
        wanted = {path for path, _ in self._layers} | {path for path, _ in self._mode_modules}
        wanted |= {path for path, m in self.model.named_modules() if isinstance(m, nn.ReLU)} if self.model is not None else set()
        locations = {path: site for path in wanted if locate is not None and (site := _safe_locate(locate, path)) is not None}
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
            layers=tuple(_host_sample(sample) for sample in self._samples),
            schedulers=tuple(_scheduler_record(entry) for entry in self._schedulers.values() if entry.calls),
            eval_mode_training=eval_mode,
            non_finite=self._non_finite,
            logged={name: tuple(values) for name, values in self._logged.items()},
            save_steps=tuple(self._saves),
            restore_steps=tuple(self._restores),
            module_locations=locations,
            optimizer_location=self._optimizer_location,
            loop_location=loop_location,
            epoch_loop_location=_enclosing_loop(loop_location),
            script=script,
            crash=crash,
            interrupted=interrupted,
            world_size=self.world_size,
            sample_every=self.sample_every,
        )

    def _detect_rank(self) -> None:
        self._exchange_between_ranks()  # when the script left its process group up
        if self.rank is None and "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun, group already gone
            with contextlib.suppress(ValueError):
                self.rank, self.world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _rank() -> int | None:
    try:
        import torch.distributed as dist

        return dist.get_rank() if dist.is_available() and dist.is_initialized() else None
    except Exception:  # a process group in a state we cannot read
        return None


def _live_modules() -> list[nn.Module]:
    import gc
    import warnings

    with warnings.catch_warnings():  # isinstance on some lazily deprecated torch objects warns
        warnings.simplefilter("ignore")
        return [obj for obj in gc.get_objects() if isinstance(obj, nn.Module)]


def _forwarding(handler: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    def watched(*args: Any, **kwargs: Any) -> Any:
        return handler(original, args, kwargs)

    watched.__wrapped__ = original  # type: ignore[attr-defined]
    watched.__name__ = getattr(original, "__name__", "loss")
    return watched


def read_back(scalars: list[torch.Tensor]) -> list[float]:
    """Scalar tensors as floats with one device-to-host copy: stacked where the first one lives."""
    if not scalars:
        return []
    device = scalars[0].device
    return torch.stack([t.detach().float().to(device) for t in scalars]).cpu().tolist()


def _total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    norms = foreach_norm(tensors)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms])) if len(norms) > 1 else norms[0].float()


def _measure_dead_units(path: str, recorder: Recorder) -> Callable[..., None]:
    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if recorder._replaying or path in recorder._dead or not isinstance(output, torch.Tensor) or not module.training or output.dim() < 2:
            return
        axis = 1 if output.dim() != 3 else output.dim() - 1
        reduce_over = [d for d in range(output.dim()) if d != axis]
        active = (output.detach() > 0).amax(dim=reduce_over)
        recorder._dead[path] = 1.0 - active.float().mean()

    return hook


def _measure_batchnorm_shift(path: str, recorder: Recorder) -> Callable[..., None]:
    def hook(module: BatchNormBase, args: Any) -> None:
        if recorder._replaying or path in recorder._shifts or not module.training or not args or not isinstance(args[0], torch.Tensor):
            return
        values = args[0].detach()
        if values.dim() < 2 or module.running_mean is None or module.running_var is None or values.numel() // values.shape[1] < 32:
            return  # too few values per channel for the batch mean to mean much
        reduce_over = [d for d in range(values.dim()) if d != 1]
        batch_mean = values.float().mean(dim=reduce_over)
        spread = (module.running_var.float() + module.eps).sqrt()
        recorder._shifts[path] = ((batch_mean - module.running_mean.float()).abs() / spread).mean()

    return hook


def _host_sample(sample: tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]) -> LayerSample:
    step, norms, dead, shifts = sample
    return LayerSample(step, _floats(norms), _floats(dead), _floats(shifts))


def _floats(values: dict[str, torch.Tensor]) -> dict[str, float]:
    if not values:
        return {}
    read = read_back(list(values.values()))
    return dict(zip(values, read, strict=True))


def _scheduler_record(entry: _Scheduler) -> SchedulerRecord:
    scheduler = entry.scheduler
    period: float | None = None
    for attribute in ("step_size", "T_max", "total_steps"):
        value = getattr(scheduler, attribute, None)
        if isinstance(value, (int, float)):
            period = float(value)
            break
    milestones = getattr(scheduler, "milestones", None)
    if period is None and milestones:
        period = float(max(milestones))
    return SchedulerRecord(type(scheduler).__name__, entry.location, tuple(entry.calls), period)


def _safe_locate(locate: ModuleLocator, path: str) -> Location | None:
    try:
        return locate.locate(path)
    except Exception:  # a module tree that changed since: no line rather than no report
        return None


def _enclosing_loop(location: Location | None) -> Location | None:
    """The `for`/`while` around the line that iterates the training loader: the epoch loop."""
    if location is None:
        return None
    import ast

    from nnlint.sources import _parsed_file

    tree = _parsed_file(location.file)
    if tree is None:
        return None
    loops = [
        node for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While)) and node.lineno < location.line <= (node.end_lineno or 0)
    ]
    return Location(location.file, max(loop.lineno for loop in loops)) if loops else None
