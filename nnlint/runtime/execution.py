"""Running a user's model without touching its weights: meta stand-ins and input plumbing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence
from torch.overrides import TorchFunctionMode

from nnlint.runtime.escapes import user_code
from nnlint.runtime.lazy_dynamo import dynamo_import_deferred
from nnlint.runtime.shape_formulas import ShapeFormulas
from nnlint.runtime.state import preserved_process_state
from nnlint.runtime.torch_compat import meta_nonzero_assumed, parse_to, tree_flatten, tree_map, tree_map_only


def call_arguments(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """An example input as forward's (args, kwargs): tensor -> (x,), tuple -> args, dict -> kwargs."""
    if isinstance(example_input, dict):
        return (), dict(example_input)
    if isinstance(example_input, (tuple, list)):
        return tuple(example_input), {}
    return (example_input,), {}


def input_problem(example_input: Any) -> str | None:
    """What is wrong with an example input that no forward could take, in words; else None."""
    if isinstance(example_input, dict):
        wrong = [key for key in example_input if not isinstance(key, str)]
        if wrong:
            return (
                f"`example_input` is a dict with the key {wrong[0]!r} ({type(wrong[0]).__name__}): a dict is passed as "
                "keyword arguments, so its keys must be the names of forward's arguments (strings)"
            )
    return None


def to_meta(value: Any) -> Any:
    """The same structure with every tensor replaced by a meta tensor of its shape and dtype.

    A PackedSequence keeps its batch sizes and orderings (bookkeeping its constructor requires on
    the CPU): only its data goes to meta, and it is not built again through that constructor."""

    def meta(t: torch.Tensor) -> torch.Tensor:
        return t if t.is_meta else torch.empty_like(t, device="meta")

    def convert(item: Any) -> Any:
        if isinstance(item, PackedSequence):
            return item._replace(data=meta(item.data))
        return meta(item) if isinstance(item, torch.Tensor) else item

    return tree_map(convert, value, is_leaf=lambda item: isinstance(item, PackedSequence))


def one_sample(value: Any, device: torch.device, batch_dim: int | None = 0) -> Any:
    """A copy of the first sample of every batched tensor, on `device` (for a cheap real forward).
    The samples lie along `batch_dim` (1 for (time, batch, …) inputs); None: the input is one
    sample, copied whole.

    Copies, not views: a forward that writes its input in place (`x /= 255`) writes the copy."""

    def first(t: torch.Tensor) -> torch.Tensor:
        # A sparse tensor cannot be sliced: whole.
        if batch_dim is not None and t.layout == torch.strided and t.dim() > batch_dim and t.shape[batch_dim] > 1:
            t = t.narrow(batch_dim, 0, 1)
        return input_copy(t, device)

    return tree_map_only(torch.Tensor, first, value)


def input_copy(tensor: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """A copy of an input tensor that a forward may write in place: a plain leaf, no autograd history."""
    return tensor.detach().to(device or tensor.device, copy=True)


def made_up(shape: tuple[int, ...], dtype: torch.dtype, integer_high: int | None = None) -> torch.Tensor:
    """Random values for an input nnlint makes up, integers below `integer_high` if given.

    From a private generator with a fixed seed: the user's random state is left alone, and the
    same model gets the same made-up input on every run.
    """
    generator = torch.Generator().manual_seed(0)
    if integer_high is not None:
        return torch.randint(0, max(integer_high, 1), shape, generator=generator)
    return torch.randn(shape, dtype=dtype, generator=generator)


def on_device(value: Any, device: torch.device) -> Any:
    """The same structure with every tensor copied to `device` (copies: see `one_sample`)."""
    return tree_map_only(torch.Tensor, lambda t: input_copy(t, device), value)


def meta_stand_ins(model: nn.Module) -> dict[str, torch.Tensor]:
    """A meta tensor for every parameter and buffer name; tied tensors share one stand-in."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return _one_per_tensor(named, lambda t: t if t.is_meta else torch.empty_like(t, device="meta"))


def meta_parameter_stand_ins(model: nn.Module) -> dict[str, torch.Tensor]:
    """Like `meta_stand_ins`, but a parameter's stand-in is a meta `nn.Parameter`."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return _one_per_tensor(named, lambda t: _as_parameter_like(t, t if t.is_meta else torch.empty_like(t, device="meta")))


def _as_parameter_like(original: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    if isinstance(original, nn.Parameter) and not isinstance(tensor, nn.Parameter):
        return nn.Parameter(tensor, requires_grad=original.requires_grad)
    return tensor


def real_copies(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer, for a real run: a forward that writes one in place —
    a counter or running statistic in a buffer, `nn.Embedding(max_norm=...)` renormalizing its
    rows, WGAN's `p.data.clamp_()` — then writes the copy, never the user's tensor. Tied tensors
    share a copy. Parameters stay parameters, so the forward sees what it built."""
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return _one_per_tensor(named, _real_copy)


def _real_copy(tensor: torch.Tensor) -> torch.Tensor:
    return _as_parameter_like(tensor, tensor.detach().clone())


def _one_per_tensor(named: Iterable[tuple[str, torch.Tensor]], replace: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    by_identity: dict[int, torch.Tensor] = {}
    replacements: dict[str, torch.Tensor] = {}
    for name, tensor in named:
        if id(tensor) not in by_identity:
            by_identity[id(tensor)] = replace(tensor)
        replacements[name] = by_identity[id(tensor)]
    return replacements


class _Runner(nn.Module):
    """Holds the user's model as its child so `functional_call` can swap its tensors for ours."""

    def __init__(self, model: nn.Module, body: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model
        self._body = body

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._body(*args, **kwargs)


def run_with_tensors(
    model: nn.Module,
    tensors: dict[str, torch.Tensor] | None,
    body: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_meta: bool = True,
) -> Any:
    """Call `body(*args, **kwargs)` while `model`'s parameters and buffers are `tensors`.

    With `tensors=None` the model's own tensors are used. The model's own tensors are never
    copied or written; `functional_call` puts them back when the call returns or raises.

    With meta `tensors` this is a meta run (see `MetaRun`): the inputs stay real — copies, so that
    a forward writing into its input leaves the caller's tensor alone. With `on_meta=False` it is
    a plain run on the given tensors (`real_copies`, for a real-value recording). A SystemExit or
    GeneratorExit from the forward comes out as `UserExit` (see nnlint.runtime.escapes).
    """
    runner = _Runner(model, body)
    with user_code(), preserved_process_state(generators=False):
        if tensors is None:
            return runner(*args, **kwargs)
        prefixed = {f"model.{name}": tensor for name, tensor in _one_name_per_slot(model, tensors).items()}
        if not on_meta:
            return functional_call(runner, prefixed, args, kwargs, tie_weights=False)
        args, kwargs = tree_map_only(torch.Tensor, lambda t: t if t.is_meta else input_copy(t), (args, kwargs))
        # Tensors the forward creates itself (`torch.empty(B, T, H)`) land on meta: nothing is allocated.
        # Common layers' shapes come from formulas, so most runs never enter torch's Python meta
        # kernels and the symbolic-shapes machinery they import (see nnlint.runtime.shape_formulas).
        with torch.device("meta"), MetaRun(), ShapeFormulas(), _data_dependent_shapes_assumed(), dynamo_import_deferred():
            return functional_call(runner, prefixed, args, kwargs, tie_weights=False)


def needs_real_values(error: BaseException) -> bool:
    """Whether a meta run failed for want of values (`.item()`, a kernel meta lacks), not a wrong input."""
    return isinstance(error, NotImplementedError) or "meta" in str(error).lower()


def _data_dependent_shapes_assumed() -> contextlib.AbstractContextManager[Any]:
    """`x[mask]`, `torch.nonzero`, `torch.where(mask)` on meta: assume every element is selected.

    The output's size depends on values meta does not have; torch offers this documented
    assumption (an upper bound), which is all a graph's shapes need.
    """
    return meta_nonzero_assumed()


# Constant tensors a forward builds (`torch.ones(B, T)` masks, `torch.arange(T)` positions) up to this
# many elements are made real in a meta run: their values are known and cost nothing to hold.
SMALL_CONSTANT = 1 << 20
# Ops meta cannot run get real stand-ins up to this many input elements in all: such ops (NMS,
# unique, sorting) can cost more than linear time, and shapes assumed from upper bounds
# (`x[mask]` keeps everything) can make their inputs far larger than in a real run.
STAND_IN_LIMIT = 1 << 15
_CONSTANT_FACTORIES = frozenset({
    torch.ones, torch.zeros, torch.full, torch.arange, torch.eye, torch.tensor, torch.scalar_tensor, torch.linspace,
})  # fmt: skip
_DEVICE_MOVES = frozenset({torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda})


class MetaRun(TorchFunctionMode):
    """A forward on meta weights that keeps real values wherever they cost nothing.

    Weights are meta, so everything computed from them has shapes but no values. What a forward
    computes from its inputs alone — attention masks, position ids, and the checks on them
    (`if mask.all():`, `pad_id in input_ids`) — needs values, and is input-sized. So in a meta run:

    - the inputs are real, and so are small constant tensors the forward builds;
    - moving a tensor between devices (`mask.to(self.weight.device)`, `.cpu()`) keeps it where it
      is, converting only its dtype: real values stay real, meta stays meta;
    - a call that mixes meta and real tensors runs with all of them on meta (`x * weight`).
      A real tensor written in place with meta data keeps its old values; its shape is right,
      and the recorder links it to the writing op;
    - a tensor op meta cannot run — no meta kernel, or an output whose size depends on values
      (`torchvision.ops.nms`, `torch.unique`) — runs on small real stand-ins of its meta inputs,
      and its output goes back to meta. Python values (`.item()`, `if x.any():` on a weight's
      output) are not invented: the forward then needs a real run.
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _DEVICE_MOVES and args and isinstance(args[0], torch.Tensor):
            return _moved_in_place(func, args[0], args[1:], kwargs)
        if _mixes_meta_and_real((args, kwargs)):
            # Some kernels accept the mix and make up values (`real[meta_index]`): meta it is.
            args, kwargs = to_meta(args), to_meta(kwargs)
        try:
            output = func(*args, **kwargs)
        except Exception:
            output = _on_stand_in_values(func, args, kwargs)
            if output is None:
                raise
            return output
        if func in _CONSTANT_FACTORIES and _is_small_meta(output):
            return func(*args, **{**kwargs, "device": "cpu"})
        return output


def _moved_in_place(func: Any, tensor: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor:
    """`tensor.to(device, dtype)`, `.cpu()`, `.cuda()` without the device change: only the dtype applies."""
    if func is not torch.Tensor.to:
        return tensor
    dtype, memory_format = parse_to(*args, **kwargs)
    if dtype is None and memory_format is None:
        return tensor
    return tensor.to(dtype=dtype or tensor.dtype, memory_format=memory_format or torch.preserve_format)


def _on_stand_in_values(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`func`'s tensor output computed on real stand-ins for its (small) meta inputs, as meta; else None."""
    tensors = [leaf for leaf in tree_flatten((args, kwargs))[0] if isinstance(leaf, torch.Tensor)]
    if not any(t.is_meta for t in tensors) or sum(t.numel() for t in tensors) > STAND_IN_LIMIT:
        return None
    values = torch.Generator().manual_seed(0)  # fixed, and the user's random state is not touched
    real_args, real_kwargs = tree_map_only(torch.Tensor, lambda t: _stand_in(t, values), (args, kwargs))
    try:
        output = func(*real_args, **real_kwargs)
    except Exception:
        return None
    tensors_out = [leaf for leaf in tree_flatten(output)[0] if isinstance(leaf, torch.Tensor)]
    return to_meta(output) if tensors_out else None


def _stand_in(tensor: torch.Tensor, values: torch.Generator) -> torch.Tensor:
    """Real values of a meta tensor's shape: uniform floats, zero integers, all-true masks."""
    if not tensor.is_meta:
        return tensor
    if tensor.is_floating_point():
        return torch.rand(tensor.shape, dtype=tensor.dtype, generator=values, device="cpu")
    if tensor.dtype is torch.bool:
        return torch.ones(tensor.shape, dtype=torch.bool, device="cpu")
    return torch.zeros(tensor.shape, dtype=tensor.dtype, device="cpu")


def _is_small_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_meta and value.numel() <= SMALL_CONSTANT


def _mixes_meta_and_real(value: Any) -> bool:
    tensors = [leaf for leaf in tree_flatten(value)[0] if isinstance(leaf, torch.Tensor)]
    return any(t.is_meta for t in tensors) and any(not t.is_meta for t in tensors)


def _one_name_per_slot(model: nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop names that reach a tensor slot another name already reached (`self.alias = self.fc`).

    `functional_call` swaps and restores name by name: a slot swapped twice would be "restored"
    to the stand-in it held after the first swap, leaving meta tensors in the user's model.
    Tied tensors in different modules keep one name each, so every module sees the stand-in.
    """
    kept: dict[str, torch.Tensor] = {}
    slots: set[tuple[int, str]] = set()
    for name, tensor in tensors.items():
        owner, _, attribute = name.rpartition(".")
        slot = (id(model.get_submodule(owner)), attribute)
        if slot not in slots:
            slots.add(slot)
            kept[name] = tensor
    return kept
