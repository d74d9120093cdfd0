"""The probe run: a few instrumented forward → loss → backward steps on copies of the weights.

The user's module objects run the forward (so every Python line of theirs runs as in training),
but through `torch.func.functional_call` with copies of the parameters and buffers on the probe
device: BatchNorm updates the copies' running statistics, backward fills the copies' `.grad`,
the optimizer steps the copies. Peak memory is one extra copy of the weights plus what one
training step needs. All randomness is seeded, so two runs report the same numbers.

The training steps are also the two training-mode forwards the train-eval gap compares; after
them, each measurement runs only when asked for (`ProbeSettings.measures`, the `Measure`s the
selected rules need): two evaluation-mode forwards (determinism, sample mixing), one BatchNorm
calibration forward (train-eval gap), one step of a copy of the optimizer (update ratios), and
with `--deep` a few dozen steps on a handful of samples (overfit).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from nnlint.graph import one_line
from nnlint.measures import Measure
from nnlint.probe import budget, checks
from nnlint.probe.instrument import Instrument, is_leaf
from nnlint.probe.loss import LossError, ProbeLoss, build_loss, main_output, synthetic_loss, to_device
from nnlint.probe.result import InitialLoss, LayerGradient, MeasureNote, ModuleStats, NonFinite, ProbeResult, TargetRange
from nnlint.probe.settings import ProbeSettings
from nnlint.runtime.escapes import user_code
from nnlint.runtime.execution import call_arguments, run_with_tensors
from nnlint.runtime.randomness import rng_states, seed_cpu_generators
from nnlint.runtime.state import (
    is_on_meta,
    model_device,
    preserved_process_state,
    preserved_user_state,
    reachable_generators,
    reset_tensor_attributes,
    tensor_attributes,
    training_flags,
)
from nnlint.runtime.timeout import ProbeTimeout, deadline, protect
from nnlint.runtime.torch_compat import BatchNormBase, foreach_norm, tree_flatten, tree_map_only
from nnlint.targets import Target

_DEVICE_MISMATCH = re.compile(r"on the same device|device mismatch|Expected .* device", re.IGNORECASE)


def _compute_clock() -> float:
    """The probing thread's CPU time. The budget counts it rather than wall time, so that a busy
    machine (other jobs, a shared CI runner) takes longer but plans, and so finds, the same; the
    wall-clock limit is --probe-timeout. Threads torch starts for one operation are not counted:
    on a many-core machine the work fits sooner, as it runs sooner."""
    return time.thread_time()


# A training step (forward, loss, backward) costs about this many forwards.
_STEP_PER_FORWARD = 3.0


class ProbeSkipped(Exception):
    """The probe cannot run on this target; only the static checks apply (a note, not a finding)."""


class ProbeFailed(Exception):
    """The user's code failed in the probe: the forward, the loss or the backward raised."""

    def __init__(self, message: str, module: str | None = None) -> None:
        super().__init__(message)
        self.module = module


class ProbeInternalError(Exception):
    """nnlint's own measuring code failed (a bug to report), not the user's model."""


class ProbeTimedOut(Exception):
    def __init__(self, seconds: float, module: str | None) -> None:
        super().__init__(f"the probe did not finish within {seconds:g} s (--probe-timeout)")
        self.module = module


class _WrongDevice(Exception):
    """The forward mixed devices: it holds a tensor outside its parameters and buffers."""


def run_probe(model: nn.Module, example_input: Any, target: Target, settings: ProbeSettings) -> ProbeResult:
    """Probe `model`; the model and the process's RNG, grad mode and hooks are left as they were."""
    if is_on_meta(model):
        raise ProbeSkipped("the model's weights are on the meta device; the probe needs real weights")
    devices = _devices(settings.device, model)
    sessions: list[Session] = []
    # The user's code runs several times here: its warnings would repeat, and belong to its own runs.
    related = (target.loss_fn, target.example_input, target.example_batch, example_input)
    try:
        with preserved_user_state(model, *related), warnings.catch_warnings(), deadline(settings.timeout):
            warnings.simplefilter("ignore")
            return _first_device_that_works(model, example_input, target, settings, devices, sessions)
    except ProbeTimeout:
        session = sessions[-1] if sessions else None
        if session is None or not session.forward_worked:
            raise ProbeTimedOut(settings.timeout or 0, session.running_module() if session else None) from None
    # Slow, not broken: a forward returned, so what was measured before --probe-timeout is the result.
    stopped = f"--probe-timeout {settings.timeout:g} s"
    with preserved_user_state(model, *related), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return session.result_so_far(stopped)


def _first_device_that_works(
    model: nn.Module, example_input: Any, target: Target, settings: ProbeSettings, devices: list[torch.device], sessions: list[Session]
) -> ProbeResult:
    notes: list[str | MeasureNote] = []
    for attempt, device in enumerate(devices):
        session = Session(model, example_input, target, settings, device, notes)
        sessions.append(session)
        try:
            return session.run()
        except (torch.cuda.OutOfMemoryError, _WrongDevice) as error:
            session.release()
            if attempt == len(devices) - 1:
                raise ProbeFailed(f"on {device}: {one_line(error)}", session.running_module()) from error
            why = "ran out of memory" if isinstance(error, torch.cuda.OutOfMemoryError) else f"mixed devices ({one_line(error)})"
            notes.append(f"the probe {why} on {device}; it ran on {devices[attempt + 1]} instead")
    raise AssertionError("no device to probe on")


def _devices(requested: str, model: nn.Module) -> list[torch.device]:
    """The probe device, then fallbacks: the model's own device, and the CPU after CUDA."""
    own = model_device(model)
    if requested == "auto":
        primary = own if own.type == "cuda" else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif requested.startswith("cuda") and not torch.cuda.is_available():
        raise ProbeFailed(f"--device {requested}: CUDA is not available (torch.cuda.is_available() is False)")
    else:
        primary = torch.device(requested)
    devices = [primary]
    for fallback in (own, torch.device("cpu")):
        if fallback not in devices and (fallback == own or primary.type == "cuda"):
            devices.append(fallback)
    return devices


@dataclass
class _Steps:
    losses: list[torch.Tensor] = field(default_factory=list)
    grad_norms: list[torch.Tensor] = field(default_factory=list)
    without_grad: set[str] = field(default_factory=set)
    loss: ProbeLoss | None = None
    # Sampled module outputs of the first two steps: the train-eval gap's two training-mode forwards.
    training_runs: list[dict[checks.Key, torch.Tensor]] = field(default_factory=list)


class Session:
    """One probe of one model on one device."""

    def __init__(
        self,
        model: nn.Module,
        example_input: Any,
        target: Target,
        settings: ProbeSettings,
        device: torch.device,
        notes: list[str | MeasureNote],
    ):
        self.model = model
        self.target = target
        self.settings = settings
        self.device = device
        self.notes = notes
        self.own_device = model_device(model)
        self.example_input = example_input
        self.instrument: Instrument | None = None
        self.tensors: dict[str, torch.Tensor] = {}
        self.copy_of: dict[int, torch.Tensor] = {}  # id(user tensor) -> its copy
        self.parameters: dict[str, torch.Tensor] = {}  # unique trainable parameters, by name
        self.buffer_names: list[str] = []
        self.measured: Instrument | None = None  # the first training step's measurements
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.batch = 1
        # Where the samples lie: 1 for (time, batch, …) inputs. An input that is one sample
        # (batch_dim None: one sequence, one graph) is cut, when the budget cuts, along dimension 0.
        self.batch_dim = settings.batch_dim if settings.batch_dim is not None else 0
        self.requested = settings  # what was asked; `settings` becomes what the budget allows
        self.started = time.monotonic()
        self.started_cpu = _compute_clock()
        self.forward_worked = False  # one forward returned: running out of time is then slowness, not a hang
        self.labels: Any = None
        self.full_batch = 1
        self.progress: _Steps | None = None
        self.samples: checks.OutputSamples | None = None
        self.chunk = 1
        self.stopped: str | None = None
        self.kept_state: list[tuple[nn.Module, str, Any]] = []  # tensors the model keeps between calls
        self.repeats_left_out = 0  # steps not run because they would repeat the first (`_repeats_first_step`)
        self.own_generators: list[torch.Generator] | None = None  # found when first needed (`_generator_states`)

    def running_module(self) -> str | None:
        return self.instrument.running_module() if self.instrument else None

    def release(self) -> None:
        self.tensors, self.copy_of, self.parameters = {}, {}, {}
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> ProbeResult:
        self.tensors, self.copy_of = checks.copies(self.model, self.device)
        self.kept_state = tensor_attributes(self.model)
        self.parameters = {n: self.copy_of[id(p)] for n, p in self.model.named_parameters() if p.requires_grad and p.is_floating_point()}
        self.buffer_names = [name for name, _ in self.model.named_buffers(remove_duplicate=False) if name in self.tensors]
        real = self.target.labeled_batch
        labels = to_device(real[1], self.device) if real is not None else None
        # Real data runs with its own labels; `example_input` is for the model without `example_batch`.
        inputs = to_device(real[0] if real is not None else self.example_input, self.device)
        self.args, self.kwargs = call_arguments(inputs)
        self.batch = self.full_batch = _size_along(inputs, self.batch_dim) or 1
        if self.batch == 1 and _trains_batchnorm(self.model):
            raise ProbeSkipped("a batch of one sample cannot train BatchNorm; give an example input of at least 2 samples")
        self.labels = labels
        if self.settings.budget is not None:
            self._fewer_samples_if_needed()
        wanted = self.settings.measures
        chunk = self.settings.training_batch_size or self.batch
        self.chunk = chunk = chunk if 1 < chunk < self.batch else self.batch
        self.samples = samples = checks.OutputSamples(self.batch, self.batch_dim)
        with self._seeded(), self._training_configuration():
            steps = self._steps(self.labels, samples if Measure.TRAIN_EVAL_GAP in wanted and chunk == self.batch else None)
            result = self._result(steps)
            result = dataclasses.replace(result, **self._extra_measurements(steps, samples, chunk, self.labels))
        return self._with_notes(result, steps)

    def _result(self, steps: _Steps) -> ProbeResult:
        """What the training steps measured (the extra measurements are added to it)."""
        instrument = self.measured
        assert instrument is not None and steps.loss is not None
        losses = [float(value) for value in torch.stack(steps.losses).tolist()]
        layers, total = self._gradient_profile(steps, instrument)
        modules = instrument.module_results()
        return ProbeResult(
            device=str(self.device),
            steps=len(losses),
            batch=self.batch,
            loss_source=steps.loss.source,
            losses=tuple(losses),
            inputs=instrument.input_stats,
            modules=tuple(modules),
            activations=tuple(instrument.activation_results()),
            layers=tuple(layers),
            total_grad_norm=total,
            without_grad=tuple(sorted((name, name.rpartition(".")[0]) for name in steps.without_grad)),
            non_finite=self._non_finite(steps, losses, layers, modules),
            batchnorm_spread=tuple(instrument.batchnorm_spread(self.settings.training_batch_size or self.batch)),
            initial_loss=_initial_loss(steps.loss, losses),
            targets_source=steps.loss.targets,
            input_source=self.settings.input_source,
            target_range=target_range(self.labels),
        )

    def _with_notes(self, result: ProbeResult, steps: _Steps) -> ProbeResult:
        assert steps.loss is not None
        notes = list(self.notes) + (["loss_fn returned a non-scalar tensor; the probe averaged it"] if steps.loss.non_scalar else [])
        left_out = sorted(self.requested.measures - self.settings.measures - ({Measure.OVERFIT} if not self.requested.deep else set()))
        if self.stopped is not None:
            cut = f" on {self.batch} of {self.full_batch} samples" if self.batch < self.full_batch else ""
            notes.append(f"stopped after {self.elapsed():.1f} s{cut}: measured what fit ({self.stopped})")
        elif result.steps + self.repeats_left_out < self.requested.steps or self.batch < self.full_batch or left_out:
            notes.append(f"{self._what_fit(result.steps + self.repeats_left_out)}, {self.elapsed():.1f} s: fitted to {self._budget_text()}")
        if self.repeats_left_out:
            notes.append(
                f"ran 1 of {1 + self.repeats_left_out} training steps: the forward draws no random numbers, so the others would "
                "repeat it (same batch, same weights)"
            )
        if left_out:
            why = f"the probe stopped first ({self.stopped})" if self.stopped else f"it did not fit {self._budget_text()}"
            notes += [MeasureNote(measure, f"not measured: {why}") for measure in left_out]
        return dataclasses.replace(
            result, notes=tuple(notes), full_batch=self.full_batch, seconds=self.elapsed(), stopped=self.stopped is not None
        )

    def _budget_text(self) -> str:
        return f"--probe-budget {self.requested.budget:g} s" if self.requested.budget is not None else "no --probe-budget"

    def _what_fit(self, steps: int) -> str:
        """What the probe ran, beside what it was asked: "3 steps on 8 of 128 samples"."""
        plural = "s" if steps != 1 or steps < self.requested.steps else ""
        of_steps = f"{steps} of {self.requested.steps} steps" if steps < self.requested.steps else f"{steps} step{plural}"
        of_samples = f"{self.batch} of {self.full_batch} samples" if self.batch < self.full_batch else f"{self.batch} samples"
        return f"{of_steps} on {of_samples}"

    def elapsed(self) -> float:
        """Wall-clock seconds since the probe started (what notes report)."""
        return time.monotonic() - self.started

    def computed(self) -> float:
        """Seconds of the probe's own compute since it started: what the budget counts."""
        return _compute_clock() - self.started_cpu

    def result_so_far(self, stopped: str) -> ProbeResult:
        """The result of the steps that completed before the probe was stopped (--probe-timeout);
        no extra measurement. Raises ProbeSkipped when not even the first step completed."""
        steps = self.progress
        self.stopped = stopped
        self.settings = dataclasses.replace(self.settings, measures=frozenset())
        if steps is None or self.measured is None or not steps.grad_norms or steps.loss is None:
            seconds = f"{self.elapsed():.1f} s"
            raise ProbeSkipped(f"it stopped after {seconds} ({stopped}): a forward ran, but a whole training step did not fit")
        del steps.losses[len(steps.grad_norms) :]
        with self._seeded(), self._training_configuration():
            result = self._result(steps)
        return self._with_notes(result, steps)

    # -- the budget (nnlint/probe/budget.py) ----------------------------------------------------
    def _fewer_samples_if_needed(self) -> None:
        """Time a forward on a slice of the batch (`_seconds_per_sample`); train on fewer samples
        than the batch only when the whole batch would not fit the budget."""
        fewest = self._samples_needed()
        if fewest >= self.batch:
            return
        per_sample = self._seconds_per_sample(fewest)
        if per_sample is None:
            return  # the forward rejects part of the batch (its dimension is a guess): train on all of it
        overfit = checks.OVERFIT_SAMPLES if self.settings.deep else 0
        left = self.settings.budget - self.computed()  # type: ignore[operator]
        chunk = self.settings.training_batch_size or self.batch
        samples = budget.samples_to_train_on(left, per_sample, self.batch, fewest, self.settings.measures, chunk, overfit)
        if samples < self.batch:
            self.args, self.kwargs = checks.chunks((self.args, self.kwargs), self.batch, samples, self.batch_dim)[0][1]
            if self.labels is not None:
                self.labels = checks.chunks(self.labels, self.batch, samples, self.batch_dim)[0][1]
            self.batch = samples

    def _seconds_per_sample(self, fewest: int) -> float | None:
        """Seconds of one training step per sample, timed on one sample: the timing forward is pure
        cost (the first step repeats its work), and one sample halves it where the plan's fewest is
        two. One sample's time counts the step's fixed cost whole: an upper bound, as the plan
        wants, and on a CPU, where a heavy model's cost grows with its samples, about the same
        per sample as two's. Timed on `fewest` instead: a model that trains BatchNorm (a flat
        BatchNorm rejects one sample), one whose forward rejects a single sample, and any model on
        an accelerator, where the clock counts the host launching kernels, the same for one sample
        as for two (one sample would double the estimate and halve the samples trained on).
        None when every slice fails."""
        one_sample = self.device.type == "cpu" and not _trains_batchnorm(self.model)
        sizes = [1, fewest] if one_sample else [fewest]
        for samples in dict.fromkeys(sizes):
            slice_ = checks.chunks((self.args, self.kwargs), self.batch, samples, self.batch_dim)[0][1]
            try:
                with self._seeded(), self._training_configuration():
                    return self._timed_step(*slice_) / samples
            except ProbeFailed:
                continue
        return None

    def _samples_needed(self) -> int:
        """The fewest samples the requested measurements keep their meaning on: BatchNorm's need
        the training batch; real data's input statistics need all of it; the rest need two. A
        made-up input with no known training batch has no batch size to keep: there BatchNorm
        over images or volumes (statistics over every pixel of a channel) needs two samples too."""
        if self.settings.input_source == "example_batch":
            return self.batch
        if self.settings.measures & {Measure.BATCHNORM_SPREAD, Measure.TRAIN_EVAL_GAP} and _trains_batchnorm(self.model):
            made_up = self.settings.input_source == "random" and self.settings.training_batch_size is None
            if not (made_up and _batchnorm_is_spatial(self.model)):
                return self.batch
        return min(self.batch, 2)

    def _timed_step(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        """Seconds for one training step on these inputs, estimated from a plain training-mode
        forward (a backward costs about two forwards), on scratch buffers: BatchNorm's running
        statistics stay as they were, and no gradient is left."""
        scratch = dict(self.tensors) | {name: self.tensors[name].clone() for name in self.buffer_names}
        start = _compute_clock()
        output = self.forward(Instrument(self.model), args, kwargs, "training mode", tensors=scratch)
        seconds = _compute_clock() - start
        self.forward_worked = True
        del output
        return _STEP_PER_FORWARD * seconds

    def _out_of_budget(self) -> bool:
        return self.requested.budget is not None and self.computed() > self.requested.budget

    def _plan_after_first_step(self, step_seconds: float, chunked: bool) -> None:
        """Steps and checks for the rest of the budget, from what the first step took."""
        if self.requested.budget is None:
            return
        overfit = min(checks.OVERFIT_SAMPLES, self.batch) / self.batch
        wanted = self.settings.measures if self.settings.deep else self.settings.measures - {Measure.OVERFIT}
        steps, kept = budget.after_first_step(
            self.requested.budget - self.computed(), step_seconds, self.settings.steps, wanted, chunked, overfit
        )
        self.settings = dataclasses.replace(self.settings, steps=steps, measures=kept | (self.settings.measures - wanted))

    def _extra_measurements(self, steps: _Steps, samples: checks.OutputSamples, chunk: int, labels: Any) -> dict[str, Any]:
        wanted = self.settings.measures
        if wanted and self._out_of_budget():
            self.stopped = self._budget_text()
            self.settings = dataclasses.replace(self.settings, measures=frozenset())
            return {}
        found: dict[str, Any] = {}
        train_eval = Measure.TRAIN_EVAL_GAP in wanted
        tensors = checks.calibrated_buffers(self, self.measured) if train_eval else self.tensors
        reference: dict[checks.Key, torch.Tensor] | None = {} if train_eval else None
        if wanted & {Measure.EVAL_DETERMINISM, Measure.TRAIN_EVAL_GAP, Measure.SAMPLE_MIXING}:
            determinism, mixing = checks.evaluation_runs(self, tensors, reference, samples)
            found["determinism"] = determinism if Measure.EVAL_DETERMINISM in wanted else None
            found["mixing"] = mixing
        if reference is not None:
            reused = chunk == self.batch and len(steps.training_runs) == 2
            runs = (
                steps.training_runs
                if reused
                else self._optional(Measure.TRAIN_EVAL_GAP, lambda: checks.chunked_training_runs(self, tensors, samples, chunk))
            )
            found["train_eval"] = checks.train_eval_gap(reference, runs, chunk) if runs is not None else None
        if Measure.UPDATE_RATIOS in wanted:
            found["update_ratios"] = tuple(checks.update_ratios(self))
        if self.settings.deep and Measure.OVERFIT in wanted:
            found["overfit"] = self._optional(Measure.OVERFIT, lambda: checks.overfit(self, labels))
        return found

    def _optional(self, measure: Measure, check: Callable[[], Any]) -> Any:
        """A check that runs the forward on part of the batch: the batch dimension is a guess (dimension
        0, or 1 for (time, batch, …) inputs), so a forward that rejects the piece skips the check with
        a note instead of failing the probe."""
        try:
            return check()
        except ProbeFailed as error:
            self.notes.append(MeasureNote(measure, f"not checked on part of the batch: {error}"))
            return None

    # -- plumbing the checks share --------------------------------------------------------------
    @contextmanager
    def _seeded(self) -> Iterator[None]:
        """Seed every generator the forward may draw from; preserved_user_state restores the CPU ones."""
        cuda_state = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        try:
            self.reseed(self.settings.seed)
            yield
        finally:
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, self.device)

    def reseed(self, seed: int) -> None:
        seed_cpu_generators(seed)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or torch.cuda.current_device()].manual_seed(seed)

    def _training_configuration(self) -> Any:
        """The model as it trains: its own flags when it is in training mode, else `model.train()`."""
        return nullcontext() if self.model.training else training_flags(self.model, True)

    def forward(self, instrument: Instrument, args: tuple[Any, ...], kwargs: dict[str, Any], what: str, tensors: dict | None = None) -> Any:
        """One forward under `instrument`; the user's errors become `ProbeFailed` naming the module."""
        self.instrument = instrument
        instrument.new_forward()
        device = torch.device(self.device) if self.device != self.own_device else nullcontext()
        # Fresh copies every time: a forward that writes its input (`x /= 255`) must find the same
        # values in every step, and a leaf the mixing check made require grad is written as a copy.
        args, kwargs = tree_map_only(torch.Tensor, torch.clone, (args, kwargs))
        reset_tensor_attributes(self.kept_state)  # a hidden state the last step stored is not this one's
        try:
            with instrument, device, user_code(), preserved_process_state(generators=False):
                output = functional_call(self.model, self.tensors if tensors is None else tensors, args, kwargs, tie_weights=False)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:
            if self.device != self.own_device and _DEVICE_MISMATCH.search(str(error)):
                raise _WrongDevice(one_line(error)) from error
            where = instrument.running_module()
            raise ProbeFailed(f"the forward raised in {what}{f' in `{where}`' if where else ''}: {one_line(error)}", where) from error
        if instrument.failure is not None:
            raise ProbeInternalError(f"measuring the forward in {what}: {one_line(instrument.failure)}") from instrument.failure
        if output is None:
            raise ProbeFailed(f"the forward returned None in {what}: there is nothing to compute a loss from")
        if not any(isinstance(t, torch.Tensor) and t.is_floating_point() for t in tree_flatten(output)[0]):
            raise ProbeFailed(f"the forward returned {type(output).__name__} with no floating-point tensor in {what}")
        return output

    def loss_for(self, labels: Any, output: Any, seed: int) -> ProbeLoss:
        try:
            return build_loss(self.target.loss_fn, labels, output, self.device, torch.Generator().manual_seed(seed))
        except LossError as error:
            raise ProbeFailed(str(error)) from error

    def compute_loss(self, loss: ProbeLoss, output: Any) -> torch.Tensor:
        try:
            return loss.compute(output)
        except LossError as error:
            raise ProbeFailed(str(error)) from error
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:
            raise ProbeFailed(f"the loss raised: {one_line(error)}") from error

    # -- the training steps -----------------------------------------------------------------------
    def _steps(self, labels: Any, samples: checks.OutputSamples | None) -> _Steps:
        """The training steps. The first one measures everything (inputs, activations, module
        outputs); every one measures the gradients; the first two keep samples of each module's
        output for the train-eval gap. Later steps pay only for module-call tracking."""
        steps = self.progress = _Steps()
        batchnorm_inputs = bool({Measure.BATCHNORM_SPREAD, Measure.TRAIN_EVAL_GAP} & self.settings.measures)
        measuring = Instrument(self.model, statistics=True, batchnorm_inputs=batchnorm_inputs)
        parameters = list(self.parameters.values())
        step, first_started = 0, _compute_clock()
        generators, buffers = self._generator_states(), self._buffers_besides_batchnorm()
        while step < max(self.settings.steps, 1):
            if step == 1:
                self._plan_after_first_step(_compute_clock() - first_started, chunked=self.chunk < self.batch)
                if step >= self.settings.steps:
                    break
                if self._repeats_first_step(generators, buffers, steps):
                    break
            elif step > 1 and self._out_of_budget():
                self.stopped = self._budget_text()
                break
            for parameter in parameters:
                parameter.grad = None
            instrument = measuring if step == 0 else Instrument(self.model)
            record = None
            if samples is not None and step < 2:
                steps.training_runs.append({})
                record = instrument.on_output = samples.recorder(steps.training_runs[-1])
            output = self.forward(instrument, self.args, self.kwargs, "training mode")
            self.forward_worked = True
            if record is not None:
                samples.record_output(record, output)  # type: ignore[union-attr]
            if steps.loss is None:
                steps.loss = self.loss_for(labels, output, self.settings.seed)
            value = self._first_loss(steps, output) if step == 0 else self.compute_loss(steps.loss, output)
            steps.losses.append(value.detach().float())
            if value.requires_grad:
                self.backward(value)
            if step == 0:
                steps.without_grad = {
                    name for name, p in self.parameters.items() if p.grad is None and self._ran(name.rpartition(".")[0], measuring)
                }
            steps.grad_norms.append(self._grad_norms(parameters))
            self.measured = measuring
            step += 1
        return steps

    def _buffers_besides_batchnorm(self) -> dict[str, torch.Tensor]:
        """Copies of the buffers a training forward could write and read back in the next one (a
        spectral norm's power-iteration vector, an EMA codebook); BatchNorm's running statistics
        are written too, but a training-mode forward normalizes with the batch's. Only under
        --probe-budget, where they decide whether later steps would repeat the first."""
        if self.requested.budget is None:
            return {}
        owned = {
            f"{path}.{name}" if path else name
            for path, module in self.model.named_modules()
            if not isinstance(module, BatchNormBase)
            for name, _ in module.named_buffers(recurse=False)
        }
        return {name: self.tensors[name].clone() for name in self.buffer_names if name in owned}

    def _generator_states(self) -> dict[str, Any]:
        """The process's generators' states and, under --probe-budget, those of the generators the
        model holds (`self.noise = torch.Generator()`, in a list or dict): a forward that draws
        from its own generator draws random numbers too."""
        if self.requested.budget is None:
            return rng_states()
        if self.own_generators is None:
            self.own_generators = reachable_generators([self.model])
        return {**rng_states(), "model": [generator.get_state() for generator in self.own_generators]}

    def _repeats_first_step(self, generators: dict[str, Any], buffers: dict[str, torch.Tensor], steps: _Steps) -> bool:
        """Under --probe-budget, whether the next steps would repeat the first one: they train on the
        same batch with the same weights (nothing updates them between steps), so when the first
        step drew no random number (no dropout, no noise: every generator, the process's and the
        model's own, is as it was) and wrote no buffer it reads (`_buffers_besides_batchnorm`), a
        second one computes the same losses and gradients, and the steps stop here. The train-eval gap's second training-mode forward
        is then the first one again, as it would have been."""
        if self.requested.budget is None or not checks.same_states(generators, self._generator_states()):
            return False
        if not all(torch.equal(before, self.tensors[name]) for name, before in buffers.items()):
            return False
        self.repeats_left_out = self.settings.steps - 1
        if len(steps.training_runs) == 1:
            steps.training_runs.append(steps.training_runs[0])
        return True

    def _first_loss(self, steps: _Steps, output: Any) -> torch.Tensor:
        """The first loss. A user's loss that rejects the whole output is tried on its main tensor
        (`logits`, or the first element: what a training loop usually passes); one that still fails
        (nnlint cannot know the loop's reshaping) gives way to the synthetic loss, with a note."""
        assert steps.loss is not None
        try:
            return self.compute_loss(steps.loss, output)
        except ProbeFailed as error:
            main = main_output(output)
            if main is not None and main is not output and steps.loss.source.startswith("loss_fn"):
                real = self.target.labeled_batch
                on_main = self.loss_for(to_device(real[1], self.device) if real is not None else None, main, self.settings.seed)
                try:
                    value = self.compute_loss(on_main, main)
                except ProbeFailed:
                    pass
                else:
                    steps.loss = dataclasses.replace(
                        on_main,
                        compute=lambda out: on_main.compute(main_output(out)),
                        source=f"{on_main.source}, on the output's main tensor",
                    )
                    return value
            self.notes.append(f"{error}; the probe used the synthetic loss instead")
            steps.loss = synthetic_loss(output, self.device, torch.Generator().manual_seed(self.settings.seed))
            return self.compute_loss(steps.loss, output)

    def _ran(self, owner: str, instrument: Instrument) -> bool:
        """Whether the forward ran the module owning a parameter, itself or as part of a layer that
        uses it directly (MultiheadAttention's `out_proj`); never-called submodules are a static rule's."""
        if owner in instrument.first_called:
            return True
        path = owner
        while path:
            path = path.rpartition(".")[0]
            if path in instrument.first_called and is_leaf(self.model.get_submodule(path), path):
                return True
        return False

    def backward(self, loss: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None) -> None:
        """Backpropagate with the copies still in the model: a forward using torch.utils.checkpoint
        runs again during backward, and must run on the copies (BatchNorm statistics, gradients)."""
        try:
            run_with_tensors(self.model, self.tensors if tensors is None else tensors, loss.backward, (), {}, on_meta=False)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as error:
            raise ProbeFailed(f"backward raised: {one_line(error)}") from error

    def _grad_norms(self, parameters: list[torch.Tensor]) -> torch.Tensor:
        """Every parameter's gradient norm (0 without a gradient), as one tensor: no sync per layer."""
        norms = torch.zeros(len(parameters), dtype=torch.float32, device=self.device)
        present = [index for index, p in enumerate(parameters) if p.grad is not None]
        if present:
            values = foreach_norm([parameters[index].grad for index in present])  # type: ignore[misc]
            norms[present] = torch.stack([value.float() for value in values]).to(self.device)
        return norms

    def _gradient_profile(self, steps: _Steps, instrument: Instrument) -> tuple[list[LayerGradient], float]:
        """Weight-gradient norms per layer, input to output. A layer is a called module holding
        matrices or kernels (≥2-D parameters, as AUTOTRAINER counts them); a module's parameters
        used by a parent (MultiheadAttention's `out_proj`) count for the parent."""
        names = list(self.parameters)
        if not names:
            return [], 0.0
        norms = torch.stack(steps.grad_norms).mean(0).tolist()
        total = math.sqrt(sum(n * n for n in norms))
        has_children = any(True for _ in self.model.children())
        by_layer: dict[str, list[int]] = {}
        for index, name in enumerate(names):
            layer = _calling_layer(name.rpartition(".")[0], instrument.first_called)
            if layer is None or self.parameters[name].dim() < 2 or name in steps.without_grad or (layer == "" and has_children):
                continue  # unused, a bias or norm scale, no gradient, or the model's own tensor (a position embedding)
            by_layer.setdefault(layer, []).append(index)
        with torch.no_grad():
            weights = torch.stack([n.float() for n in foreach_norm([self.parameters[name].detach() for name in names])]).tolist()
        layers = []
        for layer, indices in sorted(by_layer.items(), key=lambda item: instrument.first_called[item[0]]):
            grad = math.sqrt(sum(norms[i] ** 2 for i in indices))
            weight = math.sqrt(sum(weights[i] ** 2 for i in indices))
            layers.append(LayerGradient(layer, tuple(names[i] for i in indices), grad, weight, math.isfinite(grad)))
        return layers, total

    # -- where the first NaN/Inf came from -----------------------------------------------------------
    def _non_finite(self, steps: _Steps, losses: list[float], layers: list[LayerGradient], modules: list[ModuleStats]) -> NonFinite | None:
        forward_bad = any(not stats.finite for stats in modules)
        loss_bad = any(not math.isfinite(value) for value in losses)
        grads_bad = not bool(torch.isfinite(torch.stack(steps.grad_norms)).all())
        if not (forward_bad or loss_bad or grads_bad):
            return None
        inputs = [t for t in tree_flatten((self.args, self.kwargs))[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if any(not bool(torch.isfinite(t).all()) for t in inputs):
            return NonFinite("input", None, None, None, "the example input itself contains NaN or Inf")
        self.reseed(self.settings.seed)
        finder = Instrument(self.model, find_non_finite=True)
        with torch.no_grad():
            self.forward(finder, self.args, self.kwargs, "training mode")
        found = finder.first_non_finite
        if found is not None:
            return NonFinite("forward", found.module, found.op, found.location, f"`{found.op}` produced NaN/Inf from finite inputs")
        if loss_bad:
            return NonFinite("loss", None, None, None, "the loss is not finite although the model's output is")
        broken = next((layer for layer in reversed(layers) if not layer.finite), None)
        return NonFinite(
            "backward",
            broken.module if broken else None,
            None,
            None,
            "the gradient turns non-finite in backward; forward and loss are finite",
        )


protect(Session._seeded)


def target_range(targets: Any) -> TargetRange | None:
    """The range of real float targets: what a bounded output (sigmoid, tanh) would have to reach."""
    if not isinstance(targets, torch.Tensor) or not targets.is_floating_point() or targets.numel() == 0:
        return None
    with torch.no_grad():
        values = targets.detach().float()
        if not bool(torch.isfinite(values).all()):
            return None
        return TargetRange(
            values=values.numel(),
            minimum=float(values.min()),
            maximum=float(values.max()),
            outside_unit=float(((values < 0) | (values > 1)).float().mean()),
            outside_symmetric=float((values.abs() > 1).float().mean()),
            below_zero=float((values < 0).float().mean()),
        )


def _size_along(value: Any, dim: int) -> int | None:
    """The first tensor's size along `dim` (the batch dimension), among those that have it."""
    for leaf in tree_flatten(value)[0]:
        if isinstance(leaf, torch.Tensor) and leaf.dim() > dim:
            return int(leaf.shape[dim])
    return None


def _trains_batchnorm(model: nn.Module) -> bool:
    """Whether a BatchNorm normalizes with batch statistics in the model's training configuration."""
    return any(isinstance(m, BatchNormBase) and (m.training or not model.training) for m in model.modules())


def _batchnorm_is_spatial(model: nn.Module) -> bool:
    """Every BatchNorm normalizes images or volumes (2d/3d), never features of one value a sample."""
    return all(isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)) for m in model.modules() if isinstance(m, BatchNormBase))


def _calling_layer(owner: str, called: dict[str, int]) -> str | None:
    """The module a parameter belongs to in the forward: its owner, or the owner's nearest called ancestor."""
    path = owner
    while path not in called:
        if not path:
            return None
        path = path.rpartition(".")[0]
    return path


def _initial_loss(loss: ProbeLoss, losses: list[float]) -> InitialLoss | None:
    if loss.classification is None or not losses:
        return None
    name, baseline, classes = loss.classification
    return InitialLoss(losses[0], baseline, classes, name, loss.targets or "random")
