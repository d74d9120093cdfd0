"""The layer catalogue of the model generator (tests/strategies.py): one function per operation.

Each function takes the program being written and a live tensor of known shape, writes the
`__init__` and `forward` lines of one operation on it — in one of the ways people spell it
(module, functional call, tensor method) — and returns the result with its shape, or None when
the operation does not fit. `operation` picks one by its weight for the tensor's rank:
4 (N, C, H, W) images, 3 (N, T, F) sequences, 2 (N, F) vectors.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # concrete, batch first; sequences are (N, T, F)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Writer:
    """Accumulates one program: `__init__` lines, `forward` lines and the live tensors."""

    draw: Callable[[st.SearchStrategy[Any]], Any]
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)  # helper classes by name, written before Net
    features: set[str] = field(default_factory=set)
    pool: list[Tensor] = field(default_factory=list)
    # Modules that map a shape onto itself, so they can be called again on another tensor.
    reusable: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    with_parameters: list[str] = field(default_factory=list)
    batchnorms: list[str] = field(default_factory=list)
    embedding: str | None = None  # the token embedding, for weight tying in the head
    embedding_width: int = 0
    discovery: str = "instance"  # how nnlint finds the model: instance, class or decorated
    batch: int = 1  # the example input's batch size
    at_import: str | None = None  # a process-wide setting the file changes at the end of its import
    _ids: itertools.count = field(default_factory=itertools.count)

    # -- choices -------------------------------------------------------------------------------
    def choose(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(list(options)))

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def chance(self, percent: int) -> bool:
        return self.draw(st.integers(0, 99)) < percent

    # -- writing -------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def module(self, constructor: str, *, parameters: bool = True, prefix: str = "m") -> str:
        attribute = self.fresh(prefix)
        self.init.append(f"self.{attribute} = {constructor}")
        if parameters:
            self.with_parameters.append(attribute)
        return f"self.{attribute}"

    def emit(self, expression: str, shape: Sequence[int]) -> Tensor:
        tensor = Tensor(self.fresh("v"), tuple(shape))
        self.forward.append(f"{tensor.name} = {expression}")
        self.pool.append(tensor)
        return tensor

    def bind(self, name: str, shape: Sequence[int]) -> Tensor:
        """A tensor that forward lines written by hand have already assigned to `name`."""
        tensor = Tensor(name, tuple(shape))
        self.pool.append(tensor)
        return tensor

    def operand(self, rank: int | None = None) -> Tensor | None:
        """Usually the newest tensor (a stack); sometimes an older one (a branch of a DAG)."""
        candidates = [t for t in self.pool if rank is None or t.rank == rank]
        if not candidates:
            return None
        return candidates[-1] if len(candidates) == 1 or not self.chance(20) else self.choose(candidates)


# -- element-wise: activations, dropout ----------------------------------------------------------
ACTIVATION_MODULES = (
    "nn.ReLU()",
    "nn.GELU()",
    "nn.Tanh()",
    "nn.Sigmoid()",
    "nn.LeakyReLU(0.1)",
    "nn.ELU()",
    "nn.SiLU()",
    "nn.Softplus()",
    "nn.Hardtanh()",
)
_ACTIVATION_CALLS = (
    "F.relu({})",
    "torch.relu({})",
    "{}.relu()",
    "F.gelu({})",
    "torch.tanh({})",
    "{}.tanh()",
    "torch.sigmoid({})",
    "{}.sigmoid()",
    "F.leaky_relu({}, 0.1)",
    "F.silu({})",
)


def _activation(w: Writer, x: Tensor) -> Tensor:
    w.features.add("activation")
    if w.chance(50):
        module = w.module(w.choose(ACTIVATION_MODULES), parameters=False)
        w.reusable.append((module, x.shape))
        return w.emit(f"{module}({x.name})", x.shape)
    return w.emit(w.choose(_ACTIVATION_CALLS).format(x.name), x.shape)


def _dropout(w: Writer, x: Tensor) -> Tensor:
    rate = w.choose((0.0, 0.1, 0.5, 0.9))
    spellings = ["module", "module", "functional", "always_on", "alpha"] + (["module2d"] if x.rank == 4 else [])
    spelling = w.choose(spellings)
    w.features.add(f"dropout_{spelling}")
    if spelling == "functional":
        return w.emit(f"F.dropout({x.name}, {rate}, training=self.training)", x.shape)
    if spelling == "always_on":
        return w.emit(f"F.dropout({x.name}, {rate})", x.shape)
    kind = {"module": "Dropout", "module2d": "Dropout2d", "alpha": "AlphaDropout"}[spelling]
    return w.emit(f"{w.module(f'nn.{kind}({rate})', parameters=False)}({x.name})", x.shape)


# -- normalization -------------------------------------------------------------------------------
def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _group_counts(channels: int, spatial: int) -> list[int]:
    """GroupNorm refuses groups of a single value, even in evaluation."""
    return [g for g in _divisors(channels) if channels // g * spatial > 1]


def _batchnorm_options(w: Writer, values_per_channel: int) -> str:
    # Without running statistics BatchNorm uses the batch's even in evaluation: one value is too few.
    no_running_stats = (", track_running_stats=False",) if w.batch * values_per_channel > 1 else ()
    return w.choose(("", "", ", affine=False", ", momentum=None", ", eps=1e-3", *no_running_stats))


def _normalization(w: Writer, x: Tensor) -> Tensor:
    channels = x.shape[1] if x.rank != 3 else x.shape[2]
    if x.rank == 4:
        groups = _group_counts(channels, x.shape[2] * x.shape[3])
        kind = w.choose(
            ("batch", "batch", "layer") + (("group",) if groups else ()) + (("instance",) if x.shape[2] * x.shape[3] > 1 else ())
        )
        constructor = {
            "batch": f"nn.BatchNorm2d({channels}{_batchnorm_options(w, x.shape[2] * x.shape[3])})",
            "group": f"nn.GroupNorm({w.choose(groups) if groups else 1}, {channels})",
            "layer": f"nn.LayerNorm([{', '.join(map(str, x.shape[1:]))}])",
            "instance": f"nn.InstanceNorm2d({channels}, affine={w.choose((True, False))})",
        }[kind]
    elif x.rank == 2:
        groups = _group_counts(channels, 1)
        kind = w.choose(("batch", "batch", "layer", "functional_layer") + (("group",) if groups else ()))
        if kind == "functional_layer":
            w.features.add("norm_functional_layer")
            return w.emit(f"F.layer_norm({x.name}, ({channels},))", x.shape)
        constructor = {
            "batch": f"nn.BatchNorm1d({channels}{_batchnorm_options(w, 1)})",
            "layer": f"nn.LayerNorm({channels}, elementwise_affine={w.choose((True, False))})",
            "group": f"nn.GroupNorm({w.choose(groups) if groups else 1}, {channels})",
        }[kind]
    else:
        kind = w.choose(("layer", "layer", "batch_transposed"))
        if kind == "batch_transposed":  # BatchNorm1d wants (N, C, L): the usual transpose dance
            options = _batchnorm_options(w, x.shape[1])
            module = w.module(f"nn.BatchNorm1d({channels}{options})", parameters="affine=False" not in options)
            w.batchnorms.append(module)
            w.features.add("norm_batch_transposed")
            return w.emit(f"{module}({x.name}.transpose(1, 2)).transpose(1, 2)", x.shape)
        constructor = f"nn.LayerNorm({channels})"
    w.features.add(f"norm_{kind}")
    module = w.module(constructor, parameters="affine=False" not in constructor and "elementwise_affine=False" not in constructor)
    if kind == "batch":
        w.batchnorms.append(module)
    w.reusable.append((module, x.shape))
    return w.emit(f"{module}({x.name})", x.shape)


# -- linear maps ---------------------------------------------------------------------------------
def _convolution(w: Writer, x: Tensor, out: int | None = None, keep_size: bool = False) -> Tensor:
    batch, channels, height, width = x.shape
    out = out or w.choose((channels, 4, 8, 16))
    bias = w.choose((True, False))
    if keep_size:
        kernel = w.choose((1, 3))
        stride, padding = 1, kernel // 2
    else:
        padding = w.choose((0, 1, 2))
        kernel = w.choose([k for k in (1, 3, 5) if k <= min(height, width) + 2 * padding])
        stride = w.choose((1, 1, 2))
    size = ((height + 2 * padding - kernel) // stride + 1, (width + 2 * padding - kernel) // stride + 1)
    spelling = w.choose(("module", "module", "module", "functional", "grouped", "weight_norm"))
    w.features.add(f"conv_{spelling}")
    if spelling == "functional":  # a raw parameter: a get_attr node, not a module call
        weight = w.module(f"nn.Parameter(torch.randn({out}, {channels}, {kernel}, {kernel}) * 0.1)")
        bias_argument = f", {w.module(f'nn.Parameter(torch.zeros({out}))')}" if bias else ""
        return w.emit(f"F.conv2d({x.name}, {weight}{bias_argument}, stride={stride}, padding={padding})", (batch, out, *size))
    groups = 1
    if spelling == "grouped":
        groups = w.choose([g for g in _divisors(channels) if out % g == 0])
    constructor = f"nn.Conv2d({channels}, {out}, {kernel}, stride={stride}, padding={padding}, groups={groups}, bias={bias})"
    if spelling == "weight_norm":
        constructor = f"torch.nn.utils.parametrizations.weight_norm({constructor})"
    module = w.module(constructor)
    if (batch, out, *size) == x.shape:
        w.reusable.append((module, x.shape))
    return w.emit(f"{module}({x.name})", (batch, out, *size))


def _transposed_convolution(w: Writer, x: Tensor) -> Tensor:
    batch, channels, height, width = x.shape
    out, kernel, stride = w.choose((channels, 4)), w.choose((2, 3)), w.choose((1, 2))
    w.features.add("conv_transposed")
    module = w.module(f"nn.ConvTranspose2d({channels}, {out}, {kernel}, stride={stride})")
    return w.emit(f"{module}({x.name})", (batch, out, (height - 1) * stride + kernel, (width - 1) * stride + kernel))


def linear(w: Writer, x: Tensor, out: int | None = None) -> Tensor:
    features = x.shape[-1]
    out = out or w.choose((features, 4, 8, 16, 32))
    bias = w.choose((True, False))
    shape = (*x.shape[:-1], out)
    spelling = w.choose(("module", "module", "module", "functional", "matmul", "spectral_norm"))
    w.features.add(f"linear_{spelling}")
    if spelling == "functional":
        weight = w.module(f"nn.Parameter(torch.randn({out}, {features}) / {features} ** 0.5)")
        bias_argument = f", {w.module(f'nn.Parameter(torch.zeros({out}))')}" if bias else ""
        return w.emit(f"F.linear({x.name}, {weight}{bias_argument})", shape)
    if spelling == "matmul":
        weight = w.module(f"nn.Parameter(torch.randn({features}, {out}) / {features} ** 0.5)")
        return w.emit(f"{x.name} @ {weight}", shape)
    constructor = f"nn.Linear({features}, {out}, bias={bias})"
    if spelling == "spectral_norm":
        constructor = f"torch.nn.utils.parametrizations.spectral_norm({constructor})"
    module = w.module(constructor)
    if out == features:
        w.reusable.append((module, x.shape))
    return w.emit(f"{module}({x.name})", shape)


def _sequence_convolution(w: Writer, x: Tensor) -> Tensor:
    batch, steps, features = x.shape
    out, kernel = w.choose((features, 8)), w.choose((1, 3))
    w.features.add("conv1d_transposed")
    module = w.module(f"nn.Conv1d({features}, {out}, {kernel}, padding={kernel // 2})")
    return w.emit(f"{module}({x.name}.transpose(1, 2)).transpose(1, 2)", (batch, steps, out))


def _linear_map(w: Writer, x: Tensor) -> Tensor:
    if x.rank == 4:
        return _transposed_convolution(w, x) if w.chance(10) and max(x.shape[2:]) <= 16 else _convolution(w, x)
    if x.rank == 3 and w.chance(25):
        return _sequence_convolution(w, x)
    return linear(w, x)


def _same_shape_map(w: Writer, x: Tensor) -> Tensor:
    return _convolution(w, x, out=x.shape[1], keep_size=True) if x.rank == 4 else linear(w, x, out=x.shape[-1])


# -- pooling and reshaping -----------------------------------------------------------------------
def _pooling(w: Writer, x: Tensor) -> Tensor:
    batch, channels, height, width = x.shape
    spellings = ["adaptive", "functional_adaptive"] + (["max", "avg", "functional_max"] if min(height, width) >= 2 else [])
    spelling = w.choose(spellings)
    w.features.add(f"pool_{spelling}")
    if spelling in ("adaptive", "functional_adaptive"):
        side = w.integer(1, min(height, width))
        if spelling == "adaptive":
            return w.emit(f"{w.module(f'nn.AdaptiveAvgPool2d({side})', parameters=False)}({x.name})", (batch, channels, side, side))
        return w.emit(f"F.adaptive_avg_pool2d({x.name}, {side})", (batch, channels, side, side))
    shape = (batch, channels, height // 2, width // 2)
    if spelling == "functional_max":
        return w.emit(f"F.max_pool2d({x.name}, 2)", shape)
    kind = "MaxPool2d" if spelling == "max" else "AvgPool2d"
    return w.emit(f"{w.module(f'nn.{kind}(2)', parameters=False)}({x.name})", shape)


def image_to_vector(w: Writer, x: Tensor) -> Tensor:
    batch, channels, height, width = x.shape
    spelling = w.choose(("flatten", "view", "reshape", "module", "mean", "pool_flatten"))
    if channels * height * width > 4096:
        spelling = w.choose(("mean", "pool_flatten"))
    w.features.add(f"to_vector_{spelling}")
    flat = (batch, channels * height * width)
    return {
        "flatten": lambda: w.emit(f"torch.flatten({x.name}, 1)", flat),
        "view": lambda: w.emit(f"{x.name}.view({x.name}.size(0), -1)", flat),
        "reshape": lambda: w.emit(f"{x.name}.reshape({x.name}.shape[0], -1)", flat),
        "module": lambda: w.emit(f"{w.module('nn.Flatten()', parameters=False)}({x.name})", flat),
        "mean": lambda: w.emit(f"{x.name}.mean(dim=(2, 3))", (batch, channels)),
        "pool_flatten": lambda: w.emit(f"F.adaptive_avg_pool2d({x.name}, 1).flatten(1)", (batch, channels)),
    }[spelling]()


def _image_to_sequence(w: Writer, x: Tensor) -> Tensor:
    batch, channels, height, width = x.shape
    w.features.add("to_sequence_patches")
    return w.emit(f"{x.name}.flatten(2).transpose(1, 2)", (batch, height * width, channels))


def sequence_to_vector(w: Writer, x: Tensor) -> Tensor:
    spelling = w.choose(("last", "first", "mean", "amax"))
    w.features.add(f"to_vector_{spelling}")
    expression = {"last": "{}[:, -1]", "first": "{}[:, 0, :]", "mean": "{}.mean(dim=1)", "amax": "{}.amax(dim=1)"}[spelling]
    return w.emit(expression.format(x.name), (x.shape[0], x.shape[2]))


def _vector_to_sequence(w: Writer, x: Tensor) -> Tensor:
    steps = w.integer(2, 4)
    w.features.add("to_sequence_expand")
    return w.emit(f"{x.name}.unsqueeze(1).expand(-1, {steps}, -1)", (x.shape[0], steps, x.shape[1]))


# -- recurrence ----------------------------------------------------------------------------------
def _recurrent(w: Writer, x: Tensor) -> Tensor:
    batch, steps, features = x.shape
    kind = w.choose(("LSTM", "GRU", "RNN"))
    hidden, layers = w.choose((4, 8, 16)), w.choose((1, 1, 2))
    bidirectional, batch_first = w.choose((False, True)), w.choose((True, True, False))
    dropout = f", dropout={w.choose((0.0, 0.2))}" if layers > 1 else ""
    module = w.module(
        f"nn.{kind}({features}, {hidden}, num_layers={layers}, batch_first={batch_first}, bidirectional={bidirectional}{dropout})"
    )
    w.features.add(f"rnn_{kind.lower()}")
    out = hidden * (2 if bidirectional else 1)
    if not batch_first:
        w.features.add("rnn_time_first")
        return w.emit(f"{module}({x.name}.transpose(0, 1))[0].transpose(0, 1)", (batch, steps, out))
    spelling = w.choose(("index", "unpack", "last_hidden"))
    if spelling == "index":
        return w.emit(f"{module}({x.name})[0]", (batch, steps, out))
    outputs, state = w.fresh("out"), w.fresh("state")
    w.forward.append(f"{outputs}, {state} = {module}({x.name})")
    if spelling == "unpack":
        return w.bind(outputs, (batch, steps, out))
    w.features.add("rnn_last_hidden")
    hidden_state = f"{state}[0]" if kind == "LSTM" else state
    return w.emit(f"{hidden_state}[-1]", (batch, hidden))


def _cell_loop(w: Writer, x: Tensor) -> Tensor | None:
    """A recurrent cell stepped in a Python loop; FX unrolls a fixed range, not one over `x.size(1)`."""
    batch, steps, features = x.shape
    if steps > 16:
        return None  # an unrolled graph of hundreds of steps only makes the run slow
    kind, hidden = w.choose(("RNNCell", "LSTMCell", "GRUCell")), w.choose((4, 8))
    cell = w.module(f"nn.{kind}({features}, {hidden})")
    h, c, outputs, t = w.fresh("h"), w.fresh("c"), w.fresh("steps"), w.fresh("t")
    over = w.choose((f"range({x.name}.size(1))", f"range({steps})"))
    w.features.add(f"cell_{kind.lower()}" + ("_dynamic" if "size" in over else "_fixed"))
    w.forward.append(f"{h} = {x.name}.new_zeros({x.name}.size(0), {hidden})")
    if kind == "LSTMCell":
        w.forward.append(f"{c} = {x.name}.new_zeros({x.name}.size(0), {hidden})")
    w.forward += [f"{outputs} = []", f"for {t} in {over}:"]
    if kind == "LSTMCell":
        w.forward.append(f"    {h}, {c} = {cell}({x.name}[:, {t}], ({h}, {c}))")
    else:
        w.forward.append(f"    {h} = {cell}({x.name}[:, {t}], {h})")
    if w.chance(30):  # a norm inside the loop: LayerNorm is right, BatchNorm is NN101's case
        norm = w.choose((f"nn.LayerNorm({hidden})", f"nn.BatchNorm1d({hidden})"))
        module = w.module(norm)
        if "Batch" in norm:
            w.batchnorms.append(module)
        w.features.add("cell_norm_in_loop")
        w.forward.append(f"    {h} = {module}({h})")
    w.forward.append(f"    {outputs}.append({h})")
    return w.emit(f"torch.stack({outputs}, dim=1)", (batch, steps, hidden))


def _attention(w: Writer, x: Tensor) -> Tensor:
    batch, steps, features = x.shape
    heads = w.choose([h for h in (1, 2, 4) if features % h == 0])
    if w.chance(50):
        w.features.add("multihead_attention")
        attention, out = w.module(f"nn.MultiheadAttention({features}, {heads}, batch_first=True)"), w.fresh("v")
        w.forward.append(f"{out}, _ = {attention}({x.name}, {x.name}, {x.name}, need_weights=False)")
        return w.bind(out, x.shape)
    w.features.add("transformer_encoder_layer")
    layer = w.module(f"nn.TransformerEncoderLayer({features}, {heads}, dim_feedforward={2 * features}, dropout=0.1, batch_first=True)")
    return w.emit(f"{layer}({x.name})", x.shape)


def _positions(w: Writer, x: Tensor) -> Tensor:
    """Learned positions indexed by `torch.arange` on the input's device, as in most transformers."""
    batch, steps, features = x.shape
    table = w.module(f"nn.Embedding({steps + w.integer(0, 8)}, {features})")
    w.features.add("positions_arange")
    return w.emit(f"{x.name} + {table}(torch.arange({x.name}.size(1), device={x.name}.device))", x.shape)


def _gated_split(w: Writer, x: Tensor) -> Tensor | None:
    """`chunk` into two halves, one gating the other (GLU)."""
    dim = 1 if x.rank != 3 else 2
    if x.shape[dim] % 2:
        return None
    shape = list(x.shape)
    shape[dim] //= 2
    left, right = w.fresh("a"), w.fresh("b")
    w.features.add("chunk_glu")
    w.forward.append(f"{left}, {right} = {x.name}.chunk(2, dim={dim})")
    return w.emit(f"{left} * torch.sigmoid({right})", shape)


def _conv_stack(w: Writer, x: Tensor) -> Tensor:
    """A Sequential conv-bn-relu stack, the way torchvision writes one."""
    batch, channels, height, width = x.shape
    out = w.choose((channels, 8))
    stack = w.module(f"nn.Sequential(nn.Conv2d({channels}, {out}, 3, padding=1, bias=False), nn.BatchNorm2d({out}), nn.ReLU(inplace=True))")
    w.features.add("sequential_conv_bn_relu")
    return w.emit(f"{stack}({x.name})", (batch, out, height, width))


def _upsample(w: Writer, x: Tensor) -> Tensor | None:
    batch, channels, height, width = x.shape
    if max(height, width) > 16:
        return None
    mode = w.choose(("nearest", "bilinear"))
    w.features.add(f"interpolate_{mode}")
    alignment = ", align_corners=False" if mode == "bilinear" else ""
    return w.emit(f"F.interpolate({x.name}, scale_factor=2, mode={mode!r}{alignment})", (batch, channels, 2 * height, 2 * width))


# -- structure: residuals, concatenations, reuse, branches ---------------------------------------
def _residual(w: Writer, x: Tensor) -> Tensor:
    if w.chance(40):
        return _residual_block(w, x)
    inner = _same_shape_map(w, x)
    if w.chance(50):
        inner = _normalization(w, inner)
    spelling = w.choose(("plus", "torch_add", "in_place"))
    w.features.add(f"residual_{spelling}")
    if spelling == "in_place":  # torchvision's `out = self.bn2(out); out += identity; out = self.relu(out)`
        w.forward.append(f"{inner.name} += {x.name}")
        return _activation(w, w.bind(inner.name, x.shape))
    inner = _activation(w, inner)
    return w.emit(f"{x.name} + {inner.name}" if spelling == "plus" else f"torch.add({inner.name}, {x.name})", x.shape)


_BLOCKS = {
    4: (
        "ConvBlock",
        """
        class ConvBlock(nn.Module):
            def __init__(self, channels, norm="batch"):
                super().__init__()
                self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
                self.norm = nn.BatchNorm2d(channels) if norm == "batch" else nn.GroupNorm(1, channels)
                self.act = nn.ReLU(inplace=True)

            def forward(self, x):
                return x + self.act(self.norm(self.conv(x)))
        """,
    ),
    2: (
        "DenseBlock",
        """
        class DenseBlock(nn.Module):
            def __init__(self, width, norm="layer"):
                super().__init__()
                self.fc = nn.Linear(width, width)
                self.norm = nn.LayerNorm(width) if norm == "layer" else nn.BatchNorm1d(width)
                self.drop = nn.Dropout(0.1)

            def forward(self, x):
                return x + self.drop(F.gelu(self.norm(self.fc(x))))
        """,
    ),
    3: (
        "SequenceBlock",
        """
        class SequenceBlock(nn.Module):
            def __init__(self, width, heads=1):
                super().__init__()
                self.norm = nn.LayerNorm(width)
                self.mix = nn.Linear(width, width)
                self.scale = width ** -0.5

            def forward(self, x):
                h = self.norm(x)
                weights = torch.softmax(h @ h.transpose(-1, -2) * self.scale, dim=-1)
                return x + self.mix(weights @ h)
        """,
    ),
}


def _residual_block(w: Writer, x: Tensor) -> Tensor:
    name, source = _BLOCKS[x.rank]
    w.classes[name] = textwrap.dedent(source).strip()
    width = x.shape[1] if x.rank != 3 else x.shape[2]
    if x.rank == 4:
        argument = w.choose(('"batch"', '"group"') if _group_counts(width, x.shape[2] * x.shape[3]) else ('"batch"',))
    else:
        argument = w.choose(('"layer"', '"batch"')) if x.rank == 2 else "1"
    w.features.add(f"block_{name}")
    if w.chance(30):  # a ModuleList of blocks run in a Python loop
        count, each = w.integer(2, 3), w.fresh("block")
        blocks = w.module(f"nn.ModuleList([{name}({width}, {argument}) for _ in range({count})])")
        w.features.add("module_list_loop")
        out = w.fresh("v")
        w.forward += [f"{out} = {x.name}", f"for {each} in {blocks}:", f"    {out} = {each}({out})"]
        return w.bind(out, x.shape)
    module = w.module(f"{name}({width}, {argument})")
    w.reusable.append((module, x.shape))
    return w.emit(f"{module}({x.name})", x.shape)


def _concatenate(w: Writer, x: Tensor) -> Tensor:
    dim = 2 if x.rank == 3 else 1
    partners = [
        t
        for t in w.pool
        if t is not x and t.rank == x.rank and all(a == b for i, (a, b) in enumerate(zip(t.shape, x.shape, strict=True)) if i != dim)
    ]
    if partners and w.chance(50):
        other = w.choose(partners)
        w.features.add("concat_dag")
    else:  # two branches of the same tensor
        left, right = _linear_map_to_width(w, x), _linear_map_to_width(w, x)
        x, other = left, right
        w.features.add("concat_branches")
    shape = list(x.shape)
    shape[dim] += other.shape[dim]
    spelling = w.choose(("torch.cat([{}, {}], dim={})", "torch.cat(({}, {}), {})", "torch.concat([{}, {}], dim={})"))
    return w.emit(spelling.format(x.name, other.name, dim), shape)


def _linear_map_to_width(w: Writer, x: Tensor) -> Tensor:
    if x.rank == 4:
        return _convolution(w, x, out=w.choose((2, 4, 8)), keep_size=True)
    return linear(w, x, out=w.choose((2, 4, 8)))


def _reuse(w: Writer, x: Tensor) -> Tensor | None:
    """Call a module a second time (a shared module: NN102's case when it is a BatchNorm)."""
    fitting = [module for module, shape in w.reusable if shape == x.shape]
    if not fitting:
        return None
    w.features.add("shared_module")
    return w.emit(f"{w.choose(fitting)}({x.name})", x.shape)


def _shape_branch(w: Writer, x: Tensor) -> Tensor:
    """`if` on a size: FX cannot trace it; one of the two modules is never called."""
    dim = w.integer(1, x.rank - 1)
    threshold = x.shape[dim] + w.choose((-1, 0, 1))
    taken = w.module(w.choose(ACTIVATION_MODULES), parameters=False)
    other = w.module(w.choose(("nn.Identity()", "nn.Dropout(0.1)", "nn.Tanh()")), parameters=False)
    out = w.fresh("v")
    w.features.add("if_on_shape")
    w.forward += [
        f"if {x.name}.shape[{dim}] > {threshold}:",
        f"    {out} = {taken}({x.name})",
        "else:",
        f"    {out} = {other}({x.name})",
    ]
    return w.bind(out, x.shape)


def _value_branch(w: Writer, x: Tensor) -> Tensor:
    """`if` on a tensor's value: meta cannot answer, so nnlint records on one real sample."""
    out = w.fresh("v")
    condition = w.choose((f"torch.isnan({x.name}).any()", f"{x.name}.abs().max().item() > 1e4", f"bool(({x.name} > 0).all())"))
    w.features.add("if_on_value")
    w.forward += [f"if {condition}:", f"    {out} = torch.nan_to_num({x.name}).clamp(-1e4, 1e4)", "else:", f"    {out} = {x.name}"]
    return w.bind(out, x.shape)


def _side_effects(w: Writer, x: Tensor) -> Tensor:
    """A forward that writes to its module: caches, counters, noise in training."""
    kind = w.choose(("cache", "counter", "counter_in_place", "noise"))
    w.features.add(f"side_effect_{kind}")
    if kind == "cache":
        w.forward.append(f"self.last_{x.name} = {x.name}.detach()")
    elif kind in ("counter", "counter_in_place"):
        name = w.fresh("calls")
        w.init.append(f'self.register_buffer("{name}", torch.zeros((), dtype=torch.long))')
        w.forward.append(f"self.{name} += 1" if kind == "counter" else f"self.{name}.add_(1)")
    else:
        out = w.fresh("v")
        w.forward += [
            "if self.training:",
            f"    {out} = {x.name} + 0.01 * torch.randn_like({x.name})",
            "else:",
            f"    {out} = {x.name}",
        ]
        return w.bind(out, x.shape)
    return x


# -- the catalogue -------------------------------------------------------------------------------
# How often each operation is picked for a tensor of rank 4 (N, C, H, W), 3 (N, T, F), 2 (N, F); 0: never.
_WEIGHTS: dict[Callable[[Writer, Tensor], Tensor | None], tuple[int, int, int]] = {
    _linear_map: (6, 4, 6),
    _activation: (5, 3, 5),
    _normalization: (5, 4, 5),
    _dropout: (2, 2, 3),
    _residual: (3, 2, 3),
    _concatenate: (2, 1, 2),
    _reuse: (2, 1, 2),
    _shape_branch: (1, 1, 1),
    _value_branch: (1, 1, 1),
    _side_effects: (1, 1, 1),
    _gated_split: (1, 1, 1),
    _pooling: (3, 0, 0),
    _conv_stack: (2, 0, 0),
    _upsample: (1, 0, 0),
    image_to_vector: (2, 0, 0),
    _image_to_sequence: (1, 0, 0),
    _recurrent: (0, 4, 0),
    _cell_loop: (0, 3, 0),
    _attention: (0, 2, 0),
    _positions: (0, 1, 0),
    sequence_to_vector: (0, 2, 0),
    _vector_to_sequence: (0, 0, 1),
}
RANKS = (4, 3, 2)


def operation(w: Writer, rank: int) -> Callable[[Writer, Tensor], Tensor | None]:
    column = RANKS.index(rank)
    return w.choose([op for op, weights in _WEIGHTS.items() for _ in range(weights[column])])
