"""One vocabulary for operations, whichever way they were written.

`nn.ReLU()`, `F.relu(x)`, `torch.relu(x)`, `x.relu()` and `x.relu_()` are all the op "relu";
rules ask about ops and op families, never about spellings.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import torch.fx
from torch import nn

from nnlint.runtime.torch_compat import BatchNormBase, InstanceNormBase

# Module types, most specific first where they inherit from one another.
_MODULE_OPS: dict[type[nn.Module], str] = {
    BatchNormBase: "batch_norm",
    nn.LayerNorm: "layer_norm",
    nn.GroupNorm: "group_norm",
    InstanceNormBase: "instance_norm",
    nn.LocalResponseNorm: "local_response_norm",
    nn.Conv1d: "conv1d",
    nn.Conv2d: "conv2d",
    nn.Conv3d: "conv3d",
    nn.ConvTranspose1d: "conv_transpose1d",
    nn.ConvTranspose2d: "conv_transpose2d",
    nn.ConvTranspose3d: "conv_transpose3d",
    nn.Linear: "linear",
    nn.Bilinear: "bilinear",
    nn.Embedding: "embedding",
    nn.EmbeddingBag: "embedding_bag",
    nn.RNN: "rnn",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.RNNCell: "rnn_cell",
    nn.LSTMCell: "lstm_cell",
    nn.GRUCell: "gru_cell",
    nn.MultiheadAttention: "multi_head_attention",
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "prelu",
    nn.RReLU: "rrelu",
    nn.ELU: "elu",
    nn.CELU: "celu",
    nn.SELU: "selu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Mish: "mish",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.Hardtanh: "hardtanh",
    nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid",
    nn.Softplus: "softplus",
    nn.Softsign: "softsign",
    nn.LogSigmoid: "logsigmoid",
    nn.Tanhshrink: "tanhshrink",
    nn.Threshold: "threshold",
    nn.GLU: "glu",
    nn.Softmax: "softmax",
    nn.LogSoftmax: "log_softmax",
    nn.Softmax2d: "softmax",
    nn.Dropout: "dropout",
    nn.Dropout1d: "dropout",
    nn.Dropout2d: "dropout",
    nn.Dropout3d: "dropout",
    nn.AlphaDropout: "alpha_dropout",
    nn.FeatureAlphaDropout: "alpha_dropout",
    nn.Flatten: "flatten",
    nn.Unflatten: "unflatten",
    nn.Identity: "identity",
    nn.MaxPool1d: "max_pool",
    nn.MaxPool2d: "max_pool",
    nn.MaxPool3d: "max_pool",
    nn.AvgPool1d: "avg_pool",
    nn.AvgPool2d: "avg_pool",
    nn.AvgPool3d: "avg_pool",
    nn.AdaptiveMaxPool1d: "max_pool",
    nn.AdaptiveMaxPool2d: "max_pool",
    nn.AdaptiveMaxPool3d: "max_pool",
    nn.AdaptiveAvgPool1d: "avg_pool",
    nn.AdaptiveAvgPool2d: "avg_pool",
    nn.AdaptiveAvgPool3d: "avg_pool",
}
if hasattr(nn, "RMSNorm"):
    _MODULE_OPS[nn.RMSNorm] = "rms_norm"

# Function and method names (after stripping dunders and the in-place `_`) that differ from the op.
_NAME_ALIASES = {
    "batch_norm": "batch_norm",
    "native_batch_norm": "batch_norm",
    "radd": "add",
    "iadd": "add",
    "rsub": "sub",
    "isub": "sub",
    "rmul": "mul",
    "imul": "mul",
    "rmatmul": "matmul",
    "truediv": "div",
    "rtruediv": "div",
    "rdiv": "div",
    "itruediv": "div",
    "conv_tbc": "conv1d",
    "dropout1d": "dropout",
    "dropout2d": "dropout",
    "dropout3d": "dropout",
    "feature_dropout": "dropout",
    "feature_alpha_dropout": "alpha_dropout",
    "max_pool1d": "max_pool",
    "max_pool2d": "max_pool",
    "max_pool3d": "max_pool",
    "adaptive_max_pool1d": "max_pool",
    "adaptive_max_pool2d": "max_pool",
    "adaptive_max_pool3d": "max_pool",
    "avg_pool1d": "avg_pool",
    "avg_pool2d": "avg_pool",
    "avg_pool3d": "avg_pool",
    "adaptive_avg_pool1d": "avg_pool",
    "adaptive_avg_pool2d": "avg_pool",
    "adaptive_avg_pool3d": "avg_pool",
    "hardtanh": "hardtanh",
    "T": "transpose",
    "mT": "transpose",
    "swapaxes": "transpose",
    "swapdims": "transpose",
    "concat": "cat",
    "concatenate": "cat",
    "data": "identity",
    "detach": "identity",
    "clone": "identity",
    "type_as": "identity",
    "float": "identity",
    "to": "identity",
    "contiguous": "identity",
}

NORMALIZATIONS = frozenset({"batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "local_response_norm"})
CONVOLUTIONS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
LINEAR_MAPS = CONVOLUTIONS | {"linear", "bilinear"}
RECURRENT = frozenset({"rnn", "lstm", "gru"})
RECURRENT_CELLS = frozenset({"rnn_cell", "lstm_cell", "gru_cell"})
SATURATING_ACTIVATIONS = frozenset({"sigmoid", "tanh", "hardtanh", "hardsigmoid", "softsign", "logsigmoid"})
ACTIVATIONS = SATURATING_ACTIVATIONS | {
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "selu", "gelu", "silu", "mish",
    "hardswish", "softplus", "tanhshrink", "threshold", "glu",
}  # fmt: skip
DROPOUTS = frozenset({"dropout", "alpha_dropout"})
# Functional ops (their torch names) that draw random numbers only when called with training=True:
# op -> (position of its `training` argument, its default).
DROPOUT_TRAINING_ARGUMENT = {
    "dropout": (2, True),
    "feature_dropout": (2, True),
    "alpha_dropout": (2, False),
    "feature_alpha_dropout": (2, False),
    "native_dropout": (2, True),
    "rrelu": (3, False),
}
DROPOUT_LIKE = frozenset(DROPOUT_TRAINING_ARGUMENT)
# Rectifier-like units: He et al. (2015) give them twice the variance of a linear unit (gain √2).
RECTIFIERS = frozenset({"relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "celu", "gelu", "silu", "mish", "hardswish", "softplus"})
# Activations bounded on at least one side: on logits they cap what the loss can express.
CLIPPING_ACTIVATIONS = ACTIVATIONS - {"leaky_relu", "prelu", "rrelu", "glu", "tanhshrink"}
POOLING = frozenset({"max_pool", "avg_pool"})
# Ops that only move or relabel values: a pattern seen through them is the same pattern.
SHAPE_OPS = frozenset({
    "getitem", "view", "reshape", "flatten", "unflatten", "permute", "transpose", "squeeze", "unsqueeze",
    "expand", "identity", "view_as", "reshape_as", "movedim",
})  # fmt: skip

# Ops that read a tensor's metadata, not its values: torch.fx records `x.size(0)` as a user of
# `x`, the recorder does not (it returns no tensor), and neither consumes the data.
METADATA_QUERIES = frozenset({
    "size", "dim", "ndimension", "numel", "shape", "dtype", "device", "stride", "is_floating_point", "is_contiguous",
})  # fmt: skip

_OPERATOR_NAMES = {getattr(operator, name): name for name in ("add", "sub", "mul", "truediv", "matmul", "getitem", "neg", "iadd", "imul")}


def module_op(module: nn.Module) -> str:
    """The op a leaf module performs; unknown types fall back to their lowercased class name."""
    for cls in type(module).__mro__:
        op = _MODULE_OPS.get(cls)
        if op is not None:
            return op
    return type(module).__name__.lower()


def canonical_name(raw: str) -> str:
    """`__radd__` -> add, `relu_` -> relu, `dropout2d` -> dropout."""
    name = raw
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    elif name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return _NAME_ALIASES.get(name, name)


def node_op(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    """The canonical op of an FX node, for module calls, functions and methods alike."""
    if node.op == "call_module":
        module = modules.get(str(node.target))
        return module_op(module) if module is not None else "module"
    if node.op == "call_method":
        return canonical_name(str(node.target))
    if node.op == "call_function":
        target = node.target
        if target is getattr and len(node.args) > 1 and isinstance(node.args[1], str):
            return canonical_name(node.args[1])
        raw = _OPERATOR_NAMES.get(target) or getattr(target, "__name__", str(target))
        return canonical_name(str(raw))
    return node.op


# -- activations written out as arithmetic ---------------------------------------------------
# `1 / (1 + torch.exp(-x))` is a sigmoid and `(e^x - e^-x) / (e^x + e^-x)` a tanh, whoever
# spelled them: ported TensorFlow code and tutorials write them by hand. Rules (and the probe)
# ask for "sigmoid"/"tanh" and should find these too. The recognition reads values through a
# `Producer`: what op computed a value and from which operands (as written), so the same code
# serves the graph's nodes and the probe's eager tensors.
Producer = Callable[[object], "tuple[str, tuple[object, ...]] | None"]

# The ops a written-out sigmoid or tanh is made of (what the probe keeps track of while it runs).
ARITHMETIC_OF_ACTIVATIONS = frozenset({"neg", "exp", "add", "sub", "mul", "div", "reciprocal"})


def written_out_activation(node: torch.fx.Node, op_of: dict[torch.fx.Node, str]) -> str | None:
    """ "sigmoid" or "tanh" when graph node `node` is the last step of one written as arithmetic, else None."""

    def producer(value: object) -> tuple[str, tuple[object, ...]] | None:
        if isinstance(value, torch.fx.Node) and value in op_of:
            return op_of[value], written_operands(value.op == "call_method" and str(value.target), value.args)
        return None

    found = producer(node)
    return activation_computed_by(*found, producer) if found is not None else None


def written_operands(method: str | bool, args: tuple[object, ...]) -> tuple[object, ...]:
    """A call's operands in the order the source wrote them: the reflected method `__rtruediv__(y, 1)`
    (for `1 / y`) is swapped back."""
    if isinstance(method, str) and method.startswith("__r") and len(args) >= 2:
        return (args[1], args[0], *args[2:])
    return tuple(args)


def activation_computed_by(op: str, operands: tuple[object, ...], producer: Producer) -> str | None:
    """ "sigmoid" or "tanh" when `op(*operands)` completes one written as arithmetic, else None."""
    if op == "reciprocal" and operands:
        return "sigmoid" if _one_plus_exp_of_negative(operands[0], producer) else None
    if op != "div" or len(operands) < 2:
        return None
    numerator, denominator = operands[0], operands[1]
    if _is_number(numerator, 1) and _one_plus_exp_of_negative(denominator, producer):
        return "sigmoid"
    if _exp_combination(numerator, producer, "sub") and _exp_combination(denominator, producer, "add"):
        return "tanh"
    return None


def _is_number(value: object, number: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == number


def _is_negation(value: object, producer: Producer) -> bool:
    """`-x`, `x.neg()`, `-1 * x`."""
    made = producer(value)
    if made is None:
        return False
    op, operands = made
    return op == "neg" or (op == "mul" and any(_is_number(operand, -1) for operand in operands[:2]))


def _exp_of(value: object, producer: Producer) -> object | None:
    """What `exp` is applied to, when `value` is an `exp`."""
    made = producer(value)
    return made[1][0] if made is not None and made[0] == "exp" and made[1] else None


def _one_plus_exp_of_negative(value: object, producer: Producer) -> bool:
    """`1 + exp(-x)` (either order)."""
    made = producer(value)
    if made is None or made[0] != "add" or len(made[1]) < 2:
        return False
    left, right = made[1][0], made[1][1]
    for one, other in ((left, right), (right, left)):
        exponent = _exp_of(other, producer)
        if _is_number(one, 1) and exponent is not None and _is_negation(exponent, producer):
            return True
    return False


def _exp_combination(value: object, producer: Producer, combine: str) -> bool:
    """`exp(x) ± exp(-x)`: two exps combined by `combine`, one of them of a negation."""
    made = producer(value)
    if made is None or made[0] != combine or len(made[1]) < 2:
        return False
    exponents = [_exp_of(operand, producer) for operand in made[1][:2]]
    return all(e is not None for e in exponents) and any(_is_negation(e, producer) for e in exponents)
