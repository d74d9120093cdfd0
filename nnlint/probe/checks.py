"""The probe's checks beyond the training steps: evaluation mode, BatchNorm calibration, one
optimizer step, overfitting a few samples. Each works on the session's copies of the weights."""

from __future__ import annotations

import copy
import functools
import inspect
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.graph import one_line
from nnlint.measures import Measure
from nnlint.probe.instrument import Instrument
from nnlint.probe.loss import ProbeLoss
from nnlint.probe.result import EvalDeterminism, MeasureNote, ModuleGap, OverfitRun, SampleMixing, TrainEvalGap, UpdateRatio
from nnlint.probe.settings import ProbeSettings
from nnlint.runtime.execution import run_with_tensors
from nnlint.runtime.randomness import rng_states
from nnlint.runtime.state import training_flags
from nnlint.runtime.torch_compat import BatchNormBase, foreach_norm, foreach_sub, step_without_dynamo_import, tree_flatten, tree_map_only
from nnlint.targets import Target


class ProbeRun(Protocol):
    """What the checks need from a probe run (the session provides it): the model with its copied
    weights and the batch, and the user's forward and loss, run the way the session runs them."""

    model: nn.Module
    target: Target
    settings: ProbeSettings
    device: torch.device
    tensors: dict[str, torch.Tensor]  # the copies, by parameter or buffer name
    copy_of: dict[int, torch.Tensor]  # id(user tensor) -> its copy
    parameters: dict[str, torch.Tensor]  # the trainable copies
    buffer_names: list[str]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    batch: int
    batch_dim: int  # where the samples lie: 1 for (time, batch, …) inputs
    notes: list[str | MeasureNote]

    def forward(
        self, instrument: Instrument, args: tuple[Any, ...], kwargs: dict[str, Any], what: str, tensors: dict | None = None
    ) -> Any: ...

    def loss_for(self, labels: Any, output: Any, seed: int) -> ProbeLoss: ...

    def compute_loss(self, loss: ProbeLoss, output: Any) -> torch.Tensor: ...

    def reseed(self, seed: int) -> None: ...

    def backward(self, loss: torch.Tensor, tensors: dict[str, torch.Tensor] | None = None) -> None: ...


OVERFIT_STEPS = 50
OVERFIT_SAMPLES = 8
_SAMPLED_ELEMENTS = 4096
# Gradient on other samples below this share of the sample's own is floating-point noise.
MIXING_TOLERANCE = 1e-6

Key = tuple[str, int]
Recorder = Callable[[Key, torch.Tensor], None]


# -- comparing outputs across runs ----------------------------------------------------------------
class OutputSamples:
    """The same random subset of each module output's elements in every run: per-module
    differences between runs without keeping whole activations."""

    def __init__(self, batch: int, batch_dim: int = 0) -> None:
        self.batch = batch
        self.batch_dim = batch_dim
        self._indices: dict[Key, torch.Tensor] = {}
        self._numel: dict[Key, int] = {}
        self._shapes: dict[Key, tuple[int, ...]] = {}  # each output's shape in the full-batch forward

    def recorder(self, store: dict[Key, torch.Tensor]) -> Recorder:
        """Samples each module output of a full-batch forward into `store`."""

        def record(key: Key, tensor: torch.Tensor) -> None:
            indices = self._indices_for(key, tensor.numel())
            if indices is not None:
                self._shapes.setdefault(key, tuple(tensor.shape))
                store[key] = _flat(tensor).index_select(0, indices.to(tensor.device)).float()

        return record

    def chunk_recorder(self, store: dict[Key, torch.Tensor], first_row: int) -> Recorder:
        """Samples the rows `first_row`… of each module output of a forward on part of the batch."""

        def record(key: Key, tensor: torch.Tensor) -> None:
            indices = self._indices.get(key)
            if indices is None or tensor.dim() == 0 or tensor.shape[0] == 0:
                return
            if self.batch_dim:
                self._record_piece_along(key, tensor, first_row, store)
                return
            row = tensor[0].numel()
            if self._numel[key] != row * self.batch:
                return
            low = first_row * row
            positions = ((indices >= low) & (indices < low + tensor.numel())).nonzero().squeeze(1)
            values = store.setdefault(key, torch.full((len(indices),), math.nan, dtype=torch.float32, device=tensor.device))
            picked = _flat(tensor).index_select(0, (indices.index_select(0, positions) - low).to(tensor.device))
            values.index_copy_(0, positions.to(tensor.device), picked.float())

        return record

    def _record_piece_along(self, key: Key, tensor: torch.Tensor, first_row: int, store: dict[Key, torch.Tensor]) -> None:
        """`chunk_recorder` for pieces cut along `batch_dim` (1: (time, batch, …) inputs): an output
        holds its samples along that dimension, else along 0 (reduced over time), as in the
        full-batch forward; the sampled elements that fall in this piece are picked."""
        full, indices = self._shapes.get(key), self._indices[key]
        if full is None or tensor.dim() != len(full):
            return
        dim = self.batch_dim if len(full) > self.batch_dim and full[self.batch_dim] == self.batch else 0
        size = tensor.shape[dim]
        if full[dim] != self.batch or any(n != f for axis, (n, f) in enumerate(zip(tensor.shape, full, strict=True)) if axis != dim):
            return
        inner = math.prod(full[dim + 1 :])
        sample = (indices // inner) % self.batch
        positions = ((sample >= first_row) & (sample < first_row + size)).nonzero().squeeze(1)
        wanted = indices.index_select(0, positions)
        local = (wanted // (inner * self.batch)) * (inner * size) + (sample.index_select(0, positions) - first_row) * inner + wanted % inner
        values = store.setdefault(key, torch.full((len(indices),), math.nan, dtype=torch.float32, device=tensor.device))
        picked = _flat(tensor).index_select(0, local.to(tensor.device))
        values.index_copy_(0, positions.to(tensor.device), picked.float())

    def record_output(self, recorder: Recorder, output: Any) -> None:
        for index, leaf in enumerate(_float_leaves(output)):
            recorder(("<output>", index), leaf)

    def _indices_for(self, key: Key, numel: int) -> torch.Tensor | None:
        if key in self._numel:
            return self._indices[key] if self._numel[key] == numel else None
        if numel <= _SAMPLED_ELEMENTS:
            indices = torch.arange(numel)
        else:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{key[0]}:{key[1]}".encode("utf-8", "surrogatepass")))
            indices = torch.randint(0, numel, (_SAMPLED_ELEMENTS,), generator=generator)
        self._indices[key], self._numel[key] = indices, numel
        return indices


# -- evaluation mode: determinism and sample mixing -----------------------------------------------
def evaluation_runs(
    session: ProbeRun, tensors: dict[str, torch.Tensor], reference: dict[Key, torch.Tensor] | None, samples: OutputSamples
) -> tuple[EvalDeterminism, SampleMixing | None]:
    """Evaluation mode. Does the output change from one forward to the next? Only a
    forward that draws random numbers can, so only then is it run again and compared, and a third
    time to find the operation that drew them. The first forward keeps its autograd graph: does
    sample i's output depend on sample j's input?"""
    batch_dim = session.settings.batch_dim
    samples_in_batch = _samples_along(session, batch_dim)
    wants_mixing = Measure.SAMPLE_MIXING in session.settings.measures and samples_in_batch >= 2
    if Measure.SAMPLE_MIXING in session.settings.measures and batch_dim is None:
        why = session.settings.no_batch or "the input is not a batch of samples"
        session.notes.append(MeasureNote(Measure.SAMPLE_MIXING, f"not checked: {why}"))
    captured: list[tuple[Key, torch.Tensor]] = []
    record = samples.recorder(reference) if reference is not None else None

    def on_output(key: Key, tensor: torch.Tensor) -> None:
        if wants_mixing:
            captured.append((key, tensor))
        if record is not None:
            record(key, tensor)

    difference: float | None = 0.0
    random_op = None
    with training_flags(session.model, False):
        args, kwargs = _copied((session.args, session.kwargs))
        batched = [t for t in tree_flatten((args, kwargs))[0] if _is_batched_float(t, samples_in_batch, batch_dim or 0)]
        for tensor in batched if wants_mixing else ():
            tensor.requires_grad_(True)
        generators = rng_states()
        with torch.enable_grad() if wants_mixing else torch.no_grad(), _batch_statistics_detached(session.model):
            output_a = session.forward(Instrument(session.model, on_output=on_output), args, kwargs, "evaluation mode", tensors=tensors)
        if record is not None:
            samples.record_output(record, output_a)
        if not same_states(generators, rng_states()):
            with torch.no_grad():
                args_b, kwargs_b = _copied((session.args, session.kwargs))
                output_b = session.forward(Instrument(session.model), args_b, kwargs_b, "evaluation mode", tensors=tensors)
                difference = relative_difference(output_a, output_b)
                watcher = Instrument(session.model, watch_random=True)
                args_c, kwargs_c = _copied((session.args, session.kwargs))
                session.forward(watcher, args_c, kwargs_c, "evaluation mode", tensors=tensors)
                random_op = watcher.first_random
        # Still in evaluation mode and on the copies: a checkpointed forward runs again in backward.
        mixing = _mixing(session, output_a, batched, captured, tensors, samples_in_batch, batch_dim or 0) if wants_mixing else None
    determinism = EvalDeterminism(
        difference if difference is not None else math.nan,
        random_op.op if random_op else None,
        random_op.module if random_op else None,
        random_op.location if random_op else None,
    )
    return determinism, mixing


def same_states(before: Any, after: Any) -> bool:
    """Generator states compare equal: tensors and arrays element-wise, containers item by item."""
    if isinstance(before, dict):
        return before.keys() == after.keys() and all(same_states(before[key], after[key]) for key in before)
    if isinstance(before, (tuple, list)):
        return len(before) == len(after) and all(same_states(a, b) for a, b in zip(before, after, strict=True))
    if hasattr(before, "shape"):
        return bool((before == after).all())
    return bool(before == after)


def _mixing(
    session: ProbeRun,
    output: Any,
    inputs: list[torch.Tensor],
    captured: list[tuple[Key, torch.Tensor]],
    tensors: dict[str, torch.Tensor],
    n: int,
    dim: int = 0,
) -> SampleMixing | None:
    """Backpropagate from the first and last samples' outputs; any gradient on the other samples'
    inputs (on the first layer's outputs, for token inputs) means they leaked in. Only then are
    the module outputs searched for the last one that still carries it: where samples mix. The
    samples are the `n` entries along dimension `dim` (1 for (time, batch, …) inputs)."""
    outputs = [(t, at) for t in _float_leaves(output) if t.requires_grad and (at := _sample_dim(t, n, dim)) is not None]
    modules = [(path, t, at) for (path, _), t in captured if t.requires_grad and (at := _sample_dim(t, n, dim)) is not None]
    entry = [("input", t, dim) for t in inputs] or modules[:1]
    if not outputs or not entry:
        return None
    own = [0, n - 1] if n >= 3 else [n - 1]
    index = torch.tensor(own)
    generator = torch.Generator().manual_seed(session.settings.seed + 1)
    picked = [out.index_select(at, index.to(out.device)) for out, at in outputs]
    weights = [torch.randn(mine.shape, generator=generator).to(mine.device, mine.dtype) for mine in picked]
    objective = cast(torch.Tensor, sum((mine * weight).sum() for mine, weight in zip(picked, weights, strict=True)))
    try:
        grads = _gradients(session, tensors, objective, [(path, t) for path, t, _ in entry], retain=True)
        dependence = max(_spread(grad, own, at) for grad, (_, _, at) in zip(grads, entry, strict=True))
    except RuntimeError as error:  # autograd.grad refuses some graphs (reentrant checkpointing)
        session.notes.append(MeasureNote(Measure.SAMPLE_MIXING, f"not checked: {one_line(error)}"))
        return None
    module = None
    if dependence > MIXING_TOLERANCE and modules:
        grads = _gradients(session, tensors, objective, [(path, t) for path, t, _ in modules], retain=False)
        spread = [_spread(grad, own, at) for grad, (_, _, at) in zip(grads, modules, strict=True)]
        leaking = [index for index, value in enumerate(spread) if value > MIXING_TOLERANCE]
        following = [path for path, _, _ in modules[leaking[-1] + 1 :]] if leaking else [path for path, _, _ in modules]
        module = following[0] if following else None
    return SampleMixing(dependence, n, module, entry[0][0])


def _sample_dim(output: torch.Tensor, n: int, dim: int) -> int | None:
    """Where an output holds the samples: along `dim`, else (for (time, batch, …) inputs) along 0
    when the output was reduced over time (a sequence classifier's (batch, classes)); None when it
    holds none, or when it is indexed by two samples (see `_pairwise`)."""
    if _is_batched_float(output, n, dim):
        return None if dim == 0 and _pairwise(output, n) else dim
    return 0 if dim and _is_batched_float(output, n) else None


def _samples_along(session: ProbeRun, dim: int | None) -> int:
    """How many samples the input holds: the probe's batch along dimension 0, else the first
    input tensor's size along `dim` (None: the input is one sample)."""
    if dim is None:
        return 1
    if dim == 0:
        return session.batch
    first = next((t for t in tree_flatten((session.args, session.kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > dim), None)
    return int(first.shape[dim]) if first is not None else 1


def _pairwise(tensor: torch.Tensor, batch: int) -> bool:
    """An output indexed by two samples (batch × batch: CLIP's image-text logits, a similarity or
    Gram matrix) compares samples by definition; each sample's own outputs are the others."""
    return tensor.dim() >= 2 and tensor.shape[1] == batch


def _gradients(
    session: ProbeRun, tensors: dict[str, torch.Tensor], objective: torch.Tensor, probes: list[tuple[str, torch.Tensor]], retain: bool
) -> list[torch.Tensor | None]:
    """Gradients of `objective`, computed while the model holds `tensors` (see Session.backward)."""

    def gradients() -> tuple[torch.Tensor | None, ...]:
        return torch.autograd.grad(objective, [t for _, t in probes], allow_unused=True, retain_graph=retain)

    return list(run_with_tensors(session.model, tensors, gradients, (), {}, on_meta=False))


def _spread(grad: torch.Tensor | None, own: list[int], dim: int = 0) -> float:
    """The gradient on the other samples relative to the gradient on the samples' own (0: separate)."""
    if grad is None:
        return 0.0
    grad = grad.movedim(dim, 0) if dim else grad
    per_sample = grad.detach().reshape(grad.shape[0], -1).float().square().sum(1).cpu()
    mine = float(per_sample[own].sum())
    theirs = float(per_sample.sum()) - mine
    return math.sqrt(max(theirs, 0.0) / mine) if mine > 0 else 0.0


@contextmanager
def _batch_statistics_detached(model: nn.Module) -> Iterator[None]:
    """BatchNorm with `track_running_stats=False` normalizes with batch statistics in evaluation
    too, coupling samples by design (a static rule reports that): treat its statistics as constants
    here, so the mixing measurement sees only coupling nobody intended. Its output values do not
    change. The same for a functional `F.batch_norm` given no running statistics (MAML-style
    functional forwards: transductive batch norm on purpose)."""
    handles = [
        module.register_forward_hook(_normalize_with_detached_statistics)
        for module in model.modules()
        if isinstance(module, BatchNormBase) and not module.track_running_stats
    ]
    try:
        with _FunctionalBatchStatisticsDetached():
            yield
    finally:
        for handle in handles:
            handle.remove()


class _FunctionalBatchStatisticsDetached(TorchFunctionMode):
    """`F.batch_norm(x, None, None, w, b, training=True)`: no running statistics to use, so the
    batch's are used in evaluation too (with training=False it could not run at all); computed
    here as constants. A call given running statistics is left as it is: `training=True` there
    ignores them at evaluation, a coupling nobody intended."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        try:
            call = _BATCH_NORM.bind(*args, **kwargs)
        except TypeError:
            return func(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        x = given["input"]
        if given["running_mean"] is not None or given["running_var"] is not None or not given["training"] or x.dim() < 2:
            return func(*args, **kwargs)
        dims = [0, *range(2, x.dim())]
        mean, var = x.mean(dims).detach(), x.var(dims, correction=0).detach()
        return func(x, mean, var, given["weight"], given["bias"], False, 0.0, given["eps"])


_BATCH_NORM = inspect.signature(F.batch_norm)


def _normalize_with_detached_statistics(module: BatchNormBase, args: Any, output: Any) -> Any:
    x = args[0]
    dims = [0, *range(2, x.dim())]
    mean, var = x.mean(dims).detach(), x.var(dims, correction=0).detach()
    return nn.functional.batch_norm(x, mean, var, module.weight, module.bias, False, 0.0, module.eps)


# -- the train-eval gap: training vs evaluation output --------------------------------------------
def calibrated_buffers(session: ProbeRun, measured: Instrument | None) -> dict[str, torch.Tensor]:
    """Weights whose BatchNorm running statistics equal this batch's — what training converges to
    with any non-zero momentum — so that evaluation mode is compared with training mode at its best,
    not at the initial mean 0 / variance 1. They come from the first training step's BatchNorm
    inputs (the average over calls for a BatchNorm called more than once, as `momentum=None`
    would keep), with the batch's own variance rather than the unbiased one BatchNorm keeps: at
    this batch size evaluation then reproduces training exactly, and what remains is a real
    difference (the n/(n-1) correction matters only for tiny batches, which a static rule reports). A
    BatchNorm with momentum 0 keeps its statistics, as it does in training."""
    tensors = dict(session.tensors)
    seen = measured.batchnorm_statistics if measured is not None else {}
    for path, module in session.model.named_modules():
        prefix = f"{path}." if path else ""
        if not isinstance(module, BatchNormBase) or path not in seen or module.momentum == 0:
            continue
        if f"{prefix}running_mean" not in tensors:
            continue  # track_running_stats=False: evaluation uses batch statistics too
        means, variances = zip(*seen[path], strict=True)
        running_mean, running_var = tensors[prefix + "running_mean"], tensors[prefix + "running_var"]
        tensors[prefix + "running_mean"] = torch.stack(means).mean(0).to(running_mean.dtype)
        tensors[prefix + "running_var"] = torch.stack(variances).mean(0).to(running_var.dtype)
    return tensors


def chunked_training_runs(
    session: ProbeRun, tensors: dict[str, torch.Tensor], samples: OutputSamples, chunk: int
) -> list[dict[Key, torch.Tensor]]:
    """Two training-mode forwards, each over the batch in pieces of the training batch size."""
    runs = []
    for _ in range(2):
        scratch = dict(tensors) | {name: tensors[name].clone() for name in session.buffer_names}
        store: dict[Key, torch.Tensor] = {}
        with torch.no_grad():
            for first_row, (args, kwargs) in chunks((session.args, session.kwargs), session.batch, chunk, session.batch_dim):
                record = samples.chunk_recorder(store, first_row)
                output = session.forward(Instrument(session.model, on_output=record), args, kwargs, "training mode", tensors=scratch)
                samples.record_output(record, output)
        runs.append(store)
    return runs


def train_eval_gap(reference: dict[Key, torch.Tensor], runs: list[dict[Key, torch.Tensor]], chunk: int) -> TrainEvalGap | None:
    """Relative differences, training vs evaluation and training vs training, for the output and
    for every module whose samples all three runs have."""
    keys = [key for key in reference if len(runs) == 2 and key in runs[0] and key in runs[1]]
    outputs = [key for key in keys if key[0] == "<output>"]
    if not outputs or len(outputs) != sum(key[0] == "<output>" for key in reference):
        return None
    with torch.no_grad():
        norms = torch.stack(
            [
                torch.stack([(runs[0][k].double() - reference[k].double()).norm(), (runs[0][k].double() - runs[1][k].double()).norm(),
                             reference[k].double().norm()]).cpu()
                for k in keys
            ]
        ).tolist()  # fmt: skip
    measured = {key: (gap, noise, scale) for key, (gap, noise, scale) in zip(keys, norms, strict=True)}
    if not all(math.isfinite(v) for key in outputs for v in measured[key]):
        return None
    scale = math.sqrt(sum(measured[key][2] ** 2 for key in outputs))
    if scale == 0:
        return None
    gap = math.sqrt(sum(measured[key][0] ** 2 for key in outputs)) / scale
    noise = math.sqrt(sum(measured[key][1] ** 2 for key in outputs)) / scale
    modules = tuple(
        ModuleGap(key[0], g / s, n / s)
        for key, (g, n, s) in measured.items()
        if key[0] != "<output>" and s > 0 and math.isfinite(g) and math.isfinite(n) and math.isfinite(s)
    )
    return TrainEvalGap(gap, noise, chunk, modules)


# -- update ratios: one optimizer step ------------------------------------------------------------
def update_ratios(session: ProbeRun) -> list[UpdateRatio]:
    """‖ΔW‖ / ‖W‖ per weight matrix after one step of a copy of the user's optimizer, from the
    gradients of the last training step."""
    optimizer = session.target.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        return []
    try:
        stepped = optimizer_copy(optimizer, session.copy_of)
    except Exception as error:
        session.notes.append(MeasureNote(Measure.UPDATE_RATIOS, f"the optimizer was not stepped: {error}"))
        return []
    names = {id(t): name for name, t in session.parameters.items()}
    watched = [p for group in stepped.param_groups for p in group["params"] if id(p) in names and p.dim() >= 2 and p.grad is not None]
    before = [p.detach().clone() for p in watched]
    try:
        step_without_dynamo_import(stepped)
    except Exception as error:
        note = f"a copy of the optimizer could not step ({one_line(error)}); update ratios were not measured"
        session.notes.append(MeasureNote(Measure.UPDATE_RATIOS, note))
        return []
    if not watched:
        return []
    with torch.no_grad():
        weights = torch.stack([n.float() for n in foreach_norm(before)]).tolist()
        updates = torch.stack([n.float() for n in foreach_norm(foreach_sub([p.detach() for p in watched], before))]).tolist()
    ratios = []
    for parameter, weight, update in zip(watched, weights, updates, strict=True):
        if weight > 0 and math.isfinite(update):
            name = names[id(parameter)]
            ratios.append(UpdateRatio(name, name.rpartition(".")[0], update / weight, update, weight))
    return ratios


def optimizer_copy(optimizer: torch.optim.Optimizer, copies: dict[int, torch.Tensor]) -> torch.optim.Optimizer:
    """A copy of `optimizer` — hyperparameters and state — that updates `copies` (by the user
    tensor's id) instead of the user's parameters. The user's optimizer is only read."""
    if not any(id(p) in copies for group in optimizer.param_groups for p in group["params"]):
        raise ValueError("it updates none of this model's parameters")
    stepped = copy.deepcopy(optimizer, dict(copies))
    stepped.load_state_dict(stepped.state_dict())  # moves the state to the copies' device
    for group in stepped.param_groups:
        if "initial_lr" in group:  # a scheduler is ramping the rate: step at the rate it ramps to
            group["lr"] = group["initial_lr"]
    return stepped


# -- overfit a handful of samples (--deep) --------------------------------------------------------
def overfit(session: ProbeRun, labels: Any) -> OverfitRun | None:
    samples = min(session.batch, OVERFIT_SAMPLES)
    (_, (args, kwargs)), *_ = chunks((session.args, session.kwargs), session.batch, samples, session.batch_dim)
    small_labels = chunks(labels, session.batch, samples, session.batch_dim)[0][1] if labels is not None else None
    tensors, copy_of = copies(session.model, session.device)  # fresh weights: the update-ratio step moved the session's
    optimizer: torch.optim.Optimizer | None = None
    name = "Adam(lr=1e-3)"
    if isinstance(session.target.optimizer, torch.optim.Optimizer):
        try:
            optimizer = optimizer_copy(session.target.optimizer, copy_of)
            name = type(session.target.optimizer).__name__
        except Exception as error:
            session.notes.append(MeasureNote(Measure.OVERFIT, f"the optimizer was not used ({error}); Adam(lr=1e-3) was"))
    if optimizer is None:
        trainable = [t for t in copy_of.values() if t.requires_grad]
        if not trainable:
            return None
        optimizer = torch.optim.Adam(trainable, lr=1e-3)
    session.reseed(session.settings.seed + 2)
    instrument = Instrument(session.model)
    loss = session.loss_for(
        small_labels, session.forward(instrument, args, kwargs, "training mode", tensors=tensors), session.settings.seed + 2
    )
    history: list[float] = []
    for _ in range(OVERFIT_STEPS):
        optimizer.zero_grad(set_to_none=True)
        value = session.compute_loss(loss, session.forward(instrument, args, kwargs, "training mode", tensors=tensors))
        history.append(float(value.detach()))
        if not value.requires_grad or not math.isfinite(history[-1]):
            break
        session.backward(value, tensors)
        optimizer.step()
    if len(history) < 2:
        return None
    return OverfitRun(samples, len(history), history[0], min(history[-5:]), name)


# -- helpers --------------------------------------------------------------------------------------
def copies(model: nn.Module, device: torch.device) -> tuple[dict[str, torch.Tensor], dict[int, torch.Tensor]]:
    """A copy of every parameter and buffer on `device`, by name; tied tensors share one copy.

    Every module attribute is named once: a module registered under two paths (`self.alias =
    self.block`) would otherwise be swapped twice by `functional_call`, which then puts the wrong
    tensor back. Tied weights (one tensor, two modules) keep both names, so both use the copy."""
    tensors: dict[str, torch.Tensor] = {}
    copy_of: dict[int, torch.Tensor] = {}
    owners = {path: module for path, module in model.named_modules(remove_duplicate=False)}
    named: set[tuple[int, str]] = set()
    for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
        owner, _, attribute = name.rpartition(".")
        slot = (id(owners[owner]), attribute)
        if slot in named:
            continue
        named.add(slot)
        if id(tensor) not in copy_of:
            copied = tensor.detach().to(device, copy=True)
            if isinstance(tensor, nn.Parameter) and tensor.is_floating_point():
                copied.requires_grad_(tensor.requires_grad)
            copy_of[id(tensor)] = copied
        tensors[name] = copy_of[id(tensor)]
    return tensors, copy_of


def chunks(value: Any, batch: int, size: int, dim: int = 0) -> list[tuple[int, Any]]:
    """`value` split along the batch dimension `dim` (1 for (time, batch, …) inputs) into pieces of
    `size`, with each piece's first row; tensors without the batch dimension are passed whole to
    every piece."""
    count = max(1, batch // size)
    pieces = []
    for index in range(count):
        start, stop = index * size, (batch if index == count - 1 else (index + 1) * size)
        rows = functools.partial(_rows, start=start, stop=stop, batch=batch, dim=dim)
        pieces.append((start, tree_map_only(torch.Tensor, rows, value)))
    return pieces


def _rows(tensor: torch.Tensor, start: int, stop: int, batch: int, dim: int = 0) -> torch.Tensor:
    if dim and tensor.dim() <= dim:  # a per-sample tensor beside (time, batch, …) ones (lengths): along 0
        dim = 0
    return tensor.narrow(dim, start, stop - start) if tensor.dim() > dim and tensor.shape[dim] == batch else tensor


def relative_difference(value: Any, reference: Any) -> float | None:
    """‖value − reference‖ / ‖reference‖ over every floating-point tensor of two outputs."""
    left, right = _float_leaves(value), _float_leaves(reference)
    if not right or len(left) != len(right) or any(a.shape != b.shape for a, b in zip(left, right, strict=True)):
        return None
    with torch.no_grad():
        pairs = zip(left, right, strict=True)
        difference = math.sqrt(sum(float((a.detach().double() - b.detach().double()).norm()) ** 2 for a, b in pairs))
        scale = math.sqrt(sum(float(b.detach().double().norm()) ** 2 for b in right))
    if not (math.isfinite(difference) and math.isfinite(scale)):
        return None
    return difference / scale if scale > 0 else (0.0 if difference == 0 else math.inf)


def _flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(-1)


def _float_leaves(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _is_batched_float(tensor: Any, batch: int, dim: int = 0) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.dim() > dim and tensor.shape[dim] == batch


def _copied(value: Any) -> Any:
    return tree_map_only(torch.Tensor, lambda t: t.detach().clone(), value)
