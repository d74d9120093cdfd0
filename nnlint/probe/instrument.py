"""Watching a real forward: which module runs, what each layer outputs, where activations sit.

One `Instrument` is a `TorchFunctionMode` plus two global module hooks, active only inside its
`with` block. Module calls are tracked by the recorder's tracker (`nnlint.runtime.module_calls`:
outermost `torch.nn` leaf modules, the `call_module` nodes of the graph); functional activations (`F.relu`, `x.tanh()`)
are seen through the mode, so `nn.ReLU()` and `torch.relu(x)` are measured alike. Every
measurement stays a tensor on the probe's device until its results are read, so a CUDA probe does
not synchronize once per layer.

What it measures is chosen per run: statistics for the training steps, the first random op for
the evaluation forwards, the first non-finite value for the diagnosis pass, module outputs for
the comparisons.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.findings import Location
from nnlint.graph.ops import (
    ARITHMETIC_OF_ACTIVATIONS,
    CONVOLUTIONS,
    DROPOUT_TRAINING_ARGUMENT,
    LINEAR_MAPS,
    NORMALIZATIONS,
    RECURRENT,
    activation_computed_by,
    canonical_name,
    module_op,
    written_operands,
)
from nnlint.probe.result import ActivationSite, BatchNormSpread, InputStats, ModuleStats
from nnlint.runtime.module_calls import ModuleCallTracker, ModuleFrame
from nnlint.runtime.torch_compat import BatchNormBase, DisableTorchFunction, children_of, tree_flatten
from nnlint.sources import call_site

_FX_LEAF_CHECK = torch.fx.Tracer()

RELU_LIKE = frozenset({"relu", "relu6"})
# Saturating activations and the slope they have at an output value, as a share of their maximum slope.
_SLOPE_SHARE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": lambda y: 4 * y * (1 - y),
    "tanh": lambda y: 1 - y * y,
    "softsign": lambda y: (1 - y.abs()) ** 2,
}
SATURATING = frozenset({*_SLOPE_SHARE, "hardtanh", "hardsigmoid"})
# Where the flat region begins: the slope has fallen below this share of the activation's maximum.
FLAT_SLOPE_SHARE = 0.05
_WATCHED_ACTIVATIONS = RELU_LIKE | SATURATING

# Ops that draw random numbers; dropout-like ones only when called with training=True.
_RANDOM_OPS = frozenset({
    "rand", "randn", "randint", "rand_like", "randn_like", "randint_like", "randperm", "bernoulli", "multinomial",
    "normal", "uniform", "exponential", "geometric", "cauchy", "log_normal", "random", "poisson", "gumbel_softmax",
})  # fmt: skip
# Layers whose output axis 1 holds the channels of a 3-D tensor (N, C, L); after others it is the last.
_CHANNELS_FIRST = CONVOLUTIONS | {"batch_norm", "instance_norm", "group_norm", "max_pool", "avg_pool"}
STATISTICS_SAMPLE = 4096
_FIRST_LAYER_OPS = LINEAR_MAPS | RECURRENT | NORMALIZATIONS | {"embedding", "embedding_bag"}
# Functional calls that are a first layer: data first, a trainable weight second.
_FUNCTIONAL_FIRST_LAYERS = CONVOLUTIONS | {"linear", "matmul", "mm"}


@dataclass
class _Frame(ModuleFrame):
    call: int = 0  # the n-th call of this module in the forward
    activations: int = 0  # functional activations seen in this call so far


@dataclass
class _SiteData:
    site: tuple[str, int, str, int]
    functional: bool
    location: Location | None
    units: int
    observations: int
    ever_positive: torch.Tensor | None = None
    saturated: list[torch.Tensor] = field(default_factory=list)


@dataclass
class FirstRandomOp:
    op: str
    module: str | None
    location: Location | None


@dataclass
class FirstNonFinite:
    op: str
    module: str | None
    location: Location | None


class Instrument(ModuleCallTracker, TorchFunctionMode):
    """Tracks module calls; measures what the flags ask for. Use once per forward or per step."""

    def __init__(
        self,
        model: nn.Module,
        *,
        statistics: bool = False,
        watch_random: bool = False,
        find_non_finite: bool = False,
        on_output: Callable[[tuple[str, int], torch.Tensor], None] | None = None,
        batchnorm_inputs: bool = False,
    ) -> None:
        TorchFunctionMode.__init__(self)
        ModuleCallTracker.__init__(self, model, is_leaf)
        self.model = model
        self.statistics = statistics
        self.watch_random = watch_random
        self.find_non_finite = find_non_finite
        self.on_output = on_output
        self.batchnorm_inputs = batchnorm_inputs
        self._calls: Counter[str] = Counter()
        self._last_layer_op = ""
        # Results
        self.first_called: dict[str, int] = {}  # module path -> order of its first call
        self.module_stats: dict[tuple[str, int], tuple[str, list[torch.Tensor]]] = {}
        self.sites: dict[tuple[str, int, str, int], _SiteData] = {}
        self.input_stats: InputStats | None = None
        self.first_layer_seen = False
        # Per training-mode BatchNorm: its first call's per-sample channel means and channel variances
        # (the batch-mean spread), and every call's batch mean and variance (to calibrate running
        # statistics for the train-eval gap).
        self.batchnorm_samples: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.batchnorm_statistics: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.first_random: FirstRandomOp | None = None
        self.first_non_finite: FirstNonFinite | None = None
        self.failure: Exception | None = None  # an error in nnlint's own measuring code
        self._mode_active = False
        self._sample_positions: dict[tuple[int, torch.device], torch.Tensor] = {}
        # Which arithmetic op made a tensor, this forward (by identity, checked through a weak
        # reference): how a sigmoid written as `1 / (1 + torch.exp(-x))` is recognised as one.
        self._arithmetic: dict[int, tuple[weakref.ref[torch.Tensor], str, tuple[object, ...]]] = {}

    # -- activation -----------------------------------------------------------------------------
    def __enter__(self) -> Instrument:
        self.start_tracking()
        # The mode costs a Python call per torch operation: only runs that look at functions pay it.
        self._mode_active = self.statistics or self.watch_random or self.find_non_finite
        return super().__enter__() if self._mode_active else self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._mode_active:
                super().__exit__(*exc)
        finally:
            self.stop_tracking()

    def _fail(self, error: Exception) -> None:
        """A bug in our own measuring code: never raised into the user's forward (it would look like
        theirs); kept for the session to report as nnlint's, and measuring stops."""
        if self.failure is None:
            self.failure = error
        self.statistics = self.watch_random = self.find_non_finite = self.batchnorm_inputs = False
        self.on_output = None

    def new_forward(self) -> None:
        """Start counting calls afresh: the n-th call of a module is the same site in every step."""
        self.reset_stack()
        self._calls.clear()
        self._last_layer_op = ""
        self._arithmetic.clear()

    # -- module calls -----------------------------------------------------------------------------
    def _new_frame(self, module: nn.Module, path: str, leaf: bool, outermost_leaf: bool) -> _Frame:
        call = self._calls[path]
        self._calls[path] += 1
        self.first_called.setdefault(path, len(self.first_called))
        return _Frame(path, leaf, outermost_leaf, call)

    def _entered(self, module: nn.Module, frame: ModuleFrame, inside_leaf: bool, args: Any) -> None:
        # A BatchNorm with children (timm's BatchNormAct2d: it normalizes, then runs its `drop`
        # and `act`) is no leaf, but normalizes its input itself: its statistics count too.
        batchnorm = self.batchnorm_inputs and not inside_leaf and isinstance(module, BatchNormBase)
        if (frame.outermost_leaf and (self.statistics or self.batchnorm_inputs)) or batchnorm:
            self._busy = True
            try:
                with DisableTorchFunction():  # our own operations skip the mode
                    self._measure_inputs(module, frame.path, args, frame.outermost_leaf)
            except Exception as error:
                self._fail(error)
            finally:
                self._busy = False

    def _exited(self, module: nn.Module, frame: ModuleFrame, args: Any, kwargs: Any, output: Any) -> None:
        if not frame.outermost_leaf:
            return
        assert isinstance(frame, _Frame)
        op = module_op(module)
        tensor = _first_float_tensor(output)
        if tensor is None:
            return
        self._busy = True
        try:
            with DisableTorchFunction():  # our own operations skip the mode
                if self.statistics:
                    self._record_module_output(frame, op, tensor)
                if self.find_non_finite and self.first_non_finite is None and not _all_finite(tensor):
                    self.first_non_finite = FirstNonFinite(op, frame.path, None)
                if self.on_output is not None:
                    self.on_output((frame.path, frame.call), tensor)
        except Exception as error:
            self._fail(error)
        finally:
            self._busy = False
        if op in LINEAR_MAPS | NORMALIZATIONS | RECURRENT or op in ("embedding", "multi_head_attention"):
            self._last_layer_op = op

    def _record_module_output(self, frame: _Frame, op: str, tensor: torch.Tensor) -> None:
        with torch.no_grad():
            values = self._sample(tensor.detach())
            std, mean = torch.std_mean(values, correction=0)
            zero = 1 - torch.count_nonzero(values) / max(values.numel(), 1)
            record = torch.stack([mean, std, zero.float()])
        key = (frame.path, frame.call)
        if key not in self.module_stats:
            self.module_stats[key] = (op, [])
        self.module_stats[key][1].append(record)

    def _sample(self, values: torch.Tensor) -> torch.Tensor:
        """Up to `STATISTICS_SAMPLE` of a tensor's values, at fixed random positions: means,
        deviations and shares come out within about 1%, and every operation on them stays small
        enough to run on one thread (a parallel region costs milliseconds on a busy machine)."""
        flat = values.reshape(-1)
        if flat.numel() <= STATISTICS_SAMPLE:
            return flat.float()
        key = (flat.numel(), flat.device)
        if key not in self._sample_positions:
            generator = torch.Generator().manual_seed(flat.numel())
            self._sample_positions[key] = torch.randint(0, flat.numel(), (STATISTICS_SAMPLE,), generator=generator).to(flat.device)
        return flat.index_select(0, self._sample_positions[key]).float()

    def _measure_inputs(self, module: nn.Module, path: str, args: Any, leaf: bool) -> None:
        op = module_op(module)
        tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if self.batchnorm_inputs and op == "batch_norm" and module.training and tensor is not None and tensor.dim() >= 2:
            values = tensor.detach().float()
            # The batch's own (biased) variance, the one training normalizes with: calibrated to it,
            # evaluation reproduces training exactly at this batch size (what is left of the small-
            # batch effect, the unbiased running variance, is the small-batch rule's to report).
            variance, mean = torch.var_mean(values, dim=(0, *range(2, values.dim())), correction=0)
            self.batchnorm_statistics.setdefault(path, []).append((mean, variance))
            if path not in self.batchnorm_samples:
                per_sample = values.mean(dim=tuple(range(2, values.dim()))) if values.dim() > 2 else values
                self.batchnorm_samples[path] = (per_sample, variance)
        if leaf and self.statistics and not self.first_layer_seen and op in _FIRST_LAYER_OPS:
            self.first_layer_seen = True
            if tensor is not None and tensor.is_floating_point() and op in LINEAR_MAPS | RECURRENT:
                axis = 1 if op in CONVOLUTIONS else tensor.dim() - 1
                self.input_stats = _input_stats(path, tensor, axis)

    # -- functions --------------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types_: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if self._busy:
            return func(*args, **kwargs)
        if self.watch_random and self.first_random is None and _draws_random_numbers(func, args, kwargs):
            self._busy = True
            try:
                self.first_random = FirstRandomOp(_op_name(func), self.running_module(), call_site())
            except Exception as error:
                self._fail(error)
            finally:
                self._busy = False
        output = func(*args, **kwargs)
        if not (self.statistics or self.find_non_finite):
            return output
        self._busy = True
        try:
            if self.statistics:
                if not self.first_layer_seen and not self._inside_torch_layer():
                    self._measure_functional_first_layer(func, args)
                op = self._written_out_activation(func, args, output) or _activation_op(func, args, kwargs)
                if op in _WATCHED_ACTIVATIONS and isinstance(output, torch.Tensor) and output.is_floating_point():
                    self._record_activation(op, output, args, kwargs)
            if self.find_non_finite and self.first_non_finite is None:
                self._check_finite(func, args, kwargs, output)
        except Exception as error:
            self._fail(error)
        finally:
            self._busy = False
        return output

    def _inside_torch_layer(self) -> bool:
        """Whether a `torch.nn` layer is running (its own functional calls are that layer's, measured
        by its hooks); a hand-written module without children counts as a leaf but not as one."""
        return any(frame.leaf and type(self.model.get_submodule(frame.path)).__module__.startswith("torch.") for frame in self._stack)

    def _measure_functional_first_layer(self, func: Any, args: tuple[Any, ...]) -> None:
        """A model written functionally (weights as parameters through `F.conv2d`/`F.linear`, as
        ported TensorFlow code does): its first weighted call is the first layer the data reaches."""
        op = _op_name(func)
        if op not in _FUNCTIONAL_FIRST_LAYERS or len(args) < 2:
            return
        data, weight = args[0], args[1]
        if not isinstance(data, torch.Tensor) or not isinstance(weight, torch.Tensor) or not weight.requires_grad:
            return
        self.first_layer_seen = True
        if data.is_floating_point() and not data.requires_grad and data.dim() >= 2:
            with DisableTorchFunction():
                axis = 1 if op in CONVOLUTIONS else data.dim() - 1
                self.input_stats = _input_stats(self.running_module() or "", data, axis)

    def _written_out_activation(self, func: Any, args: tuple[Any, ...], output: Any) -> str | None:
        """ "sigmoid"/"tanh" when this call completes one written as arithmetic; remembers the
        arithmetic it sees so that the last step can be recognised."""
        op = _op_name(func)
        if op not in ARITHMETIC_OF_ACTIVATIONS or not isinstance(output, torch.Tensor):
            return None
        operands = written_operands(getattr(func, "__name__", ""), args)
        self._arithmetic[id(output)] = (weakref.ref(output), op, operands)
        return activation_computed_by(op, operands, self._made_by)

    def _made_by(self, value: object) -> tuple[str, tuple[object, ...]] | None:
        entry = self._arithmetic.get(id(value))
        if entry is None or entry[0]() is not value:
            return None
        return entry[1], entry[2]

    def _record_activation(self, op: str, output: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if output.dim() < 2 or output.shape[0] < 1:
            return
        frame = self._stack[-1] if self._stack else _Frame("", False, False)
        assert isinstance(frame, _Frame)
        functional = not (frame.outermost_leaf and module_op(self.model.get_submodule(frame.path)) == op) if frame.path else True
        index = frame.activations if functional else 0
        frame.activations += functional
        key = (frame.path, frame.call, op, index)
        with torch.no_grad():
            values = output.detach()
            axis = self._unit_axis(values)
            units = values.shape[axis]
            data = self.sites.get(key)
            if data is None:
                location = call_site() if functional else None
                data = self.sites[key] = _SiteData(key, functional, location, units, values.numel() // max(units, 1))
            if data.units != units:
                return  # the same site with another shape (a loop over varying lengths): keep the first
            if op in RELU_LIKE:
                others = [dim for dim in range(values.dim()) if dim != axis]
                positive = values.amax(dim=others) > 0
                data.ever_positive = positive if data.ever_positive is None else data.ever_positive | positive
            else:
                data.saturated.append(_saturated_share(op, self._sample(values), args, kwargs))

    def _unit_axis(self, values: torch.Tensor) -> int:
        """Units are channels for (N, C, ...) maps and features for (N, F) / (N, T, F) tensors."""
        if values.dim() >= 4 or values.dim() == 2:
            return 1
        return 1 if self._last_layer_op in _CHANNELS_FIRST else values.dim() - 1

    def _check_finite(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        outputs = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not outputs or all(_all_finite(t) for t in outputs):
            return
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if all(_all_finite(t) for t in inputs):
            self.first_non_finite = FirstNonFinite(_op_name(func), self.running_module(), call_site())

    # -- results ----------------------------------------------------------------------------------
    def module_results(self) -> list[ModuleStats]:
        """Per leaf-module call, in forward order (one device-to-host copy for all of them)."""
        keys = sorted(self.module_stats, key=self._order)
        if not keys:
            return []
        values = torch.stack([torch.stack(self.module_stats[key][1]).mean(0) for key in keys]).tolist()
        return [
            ModuleStats(path, call, self.module_stats[(path, call)][0], mean, std, zero, math.isfinite(mean) and math.isfinite(std))
            for (path, call), (mean, std, zero) in zip(keys, values, strict=True)
        ]

    def activation_results(self) -> list[ActivationSite]:
        """Per activation site, in forward order (one device-to-host copy for all of them)."""
        keys = sorted(self.sites, key=lambda key: (self._order(key[:2]), key[3]))
        if not keys:
            return []
        nan = torch.tensor(math.nan, dtype=torch.float32)
        shares = []
        for key in keys:
            data = self.sites[key]
            dead = saturated = nan
            if data.ever_positive is not None:
                dead = 1 - data.ever_positive.float().mean().cpu()
            if data.saturated:
                saturated = torch.stack(data.saturated).mean().cpu()
            shares.append(torch.stack([dead, saturated]))
        values = torch.stack(shares).tolist()
        results = []
        for key, (dead, saturated) in zip(keys, values, strict=True):
            data = self.sites[key]
            path, call, op, index = key
            results.append(
                ActivationSite(
                    path, call, op, index, data.functional, data.location, data.units, data.observations,
                    None if math.isnan(dead) else dead, None if math.isnan(saturated) else saturated,
                )
            )  # fmt: skip
        return results

    def batchnorm_spread(self, batch_size: int) -> list[BatchNormSpread]:
        spreads = []
        for path, (means, variances) in sorted(self.batchnorm_samples.items(), key=lambda item: self.first_called.get(item[0], 0)):
            if means.shape[0] < 2:
                continue
            between = means.std(dim=0, correction=1)
            ratio = between / math.sqrt(batch_size) / variances.clamp_min(1e-12).sqrt()
            spreads.append(BatchNormSpread(path, batch_size, ratio.median().item()))
        return spreads

    def _order(self, key: tuple[str, int]) -> tuple[int, int]:
        return (self.first_called.get(key[0], 0), key[1])


def is_leaf(module: nn.Module, path: str) -> bool:
    """A module measured as one layer: a `torch.nn` leaf (the graph's `call_module` nodes) or any
    module without children (a hand-written layer)."""
    return not children_of(module) or (bool(path) and _FX_LEAF_CHECK.is_leaf_module(module, path))


def _op_name(func: Any) -> str:
    return canonical_name(getattr(func, "__name__", ""))


def _activation_op(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The activation a call performs: `nn.ReLU6` runs `F.hardtanh(x, 0, 6)`, a ReLU with a cap."""
    op = _op_name(func)
    if op == "hardtanh" and kwargs.get("min_val", args[1] if len(args) > 1 else -1.0) == 0:
        return "relu6"
    return op


def _first_float_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    for leaf in tree_flatten(value)[0]:
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
            return leaf
    return None


def _all_finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor.detach()).all())


def _draws_random_numbers(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    op = _op_name(func)
    if op in DROPOUT_TRAINING_ARGUMENT:
        position, default = DROPOUT_TRAINING_ARGUMENT[op]
        training = kwargs.get("training", kwargs.get("train", args[position] if len(args) > position else default))
        probability = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        return bool(training) and not (isinstance(probability, (int, float)) and probability == 0)
    return op in _RANDOM_OPS


def _saturated_share(op: str, values: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    values = values.float()
    if op in _SLOPE_SHARE:
        return (_SLOPE_SHARE[op](values) < FLAT_SLOPE_SHARE).float().mean()
    if op == "hardtanh":
        low = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        high = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
    else:  # hardsigmoid
        low, high = 0.0, 1.0
    return ((values <= low) | (values >= high)).float().mean()


def _input_stats(path: str, tensor: torch.Tensor, axis: int) -> InputStats:
    with torch.no_grad():
        values = tensor.detach().float()
        per_feature = values.movedim(axis, -1).reshape(-1, values.shape[axis])
        std, mean = torch.std_mean(per_feature, dim=0, correction=0)
        minimum, maximum = per_feature.amin(dim=0), per_feature.amax(dim=0)
        finite = per_feature[torch.isfinite(per_feature)]
        integer_valued = bool(finite.numel() > 0 and torch.equal(finite, finite.round()))
    return InputStats(
        module=path,
        feature_axis=axis,
        samples=int(values.shape[0]),
        observations=int(per_feature.shape[0]),
        mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
        minimum=tuple(minimum.tolist()),
        maximum=tuple(maximum.tolist()),
        integer_valued=integer_valued,
    )
