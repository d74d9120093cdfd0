"""Made-up constructor arguments, for a model class that nothing in its project shows how to build.

A library's model file seldom builds its own model: `GAT(nfeat, nhid, nclass, dropout, alpha,
nheads)` (Diego999/pyGAT models.py) is built by a training script that is not in the folder. When
no default, config class, call site or README example gives a required argument, nnlint makes up
an ordinary value for it, but only for an argument it can classify:

- by name (the vocabulary of model code: `dim`, `d_model`, `nhid` and `hidden_size` are widths,
  `depth` and `n_layer` counts, `nheads` heads, `vocab_size` and `n_src_vocab` vocabularies,
  `dropout` and `p` rates, `alpha` a slope, `*pad_idx*` an index, `image_size` and `patch_size`
  sides, `block_size` and `max_len` sequence lengths);
- by annotation (`int`, `float`, `bool`, a tuple of ints; a dataclass of the project's own, whose
  required fields are classified the same way: johnma2006/mamba-minimal's `Mamba(args: ModelArgs)`);
- by how the constructor uses it (a size given to `nn.Linear`/`nn.Conv*`/`nn.LayerNorm`, a
  vocabulary to `nn.Embedding`, a rate to `nn.Dropout`, a count to `range`, or passed on as a
  keyword whose name classifies it: pyGAT's `GraphAttentionLayer(..., dropout=dropout)`).

An argument it cannot classify (a module, a callable, a tensor, a string) is never made up: the
class is skipped with the message that says how to name its arguments.

Common constraints between the values (a width divisible by the number of heads, an image side
divisible by the patch size, a padding index below the vocabulary) hold by construction: every kind
has one value per candidate assignment (`CANDIDATES`), chosen so that they do, and the caller takes
the first assignment whose constructor and a forward on meta succeed.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
import sys
import textwrap
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class Kind(enum.Enum):
    """What a made-up argument stands for; each kind has one value per candidate assignment."""

    WIDTH = "width"
    IMAGE_CHANNELS = "image channels"
    CLASSES = "classes"
    VOCABULARY = "vocabulary"
    PAD_INDEX = "padding index"
    COUNT = "count"
    HEADS = "heads"
    IMAGE_SIDE = "image side"
    PATCH_SIDE = "patch side"
    SEQUENCE_LENGTH = "sequence length"
    FREQUENCY_BANDS = "frequency bands"
    MAX_FREQUENCY = "maximum frequency"
    KERNEL = "kernel size"
    STRIDE = "stride"
    RATE = "rate"
    SLOPE = "slope"
    EPSILON = "epsilon"
    FLAG = "flag"
    INTEGER = "integer"  # annotated `int`, nothing else known: a factor as likely as a size
    CHANNELS = "channels"  # a time series' variables (LTSF-Linear's `enc_in`), not an image's
    DEVICE = "device"  # the device the model is built on: the CPU, where nnlint builds every model


# One value per kind and candidate assignment, tried in this order. Every width is divisible by
# every number of heads of its assignment (and by 8, a common default for heads), every image side
# by its patch side; sequences are as long as nnlint's made-up token sequences (16) or longer; a
# padding index of 0 is below any vocabulary. The rates and slopes are the usual defaults
# (dropout 0.1, LeakyReLU 0.2): a rule about rates never fires on them. Widths are those of
# ordinary models (256, 512), not toy ones: a verdict that depends on a layer's fan-in (NN402's
# initialization scale, NN802's gradient norm) is then the one the author's model gets, as
# bench/made_up_vs_real.py and tests/test_made_up.py check against real arguments.
CANDIDATES: tuple[dict[Kind, Any], ...] = tuple(
    {
        Kind.WIDTH: width,
        Kind.HEADS: heads,
        Kind.IMAGE_SIDE: image,
        Kind.PATCH_SIDE: patch,
        Kind.SEQUENCE_LENGTH: sequence,
        Kind.IMAGE_CHANNELS: 3,
        Kind.CLASSES: 10,
        Kind.VOCABULARY: 100,
        Kind.PAD_INDEX: 0,
        Kind.COUNT: 2,
        Kind.FREQUENCY_BANDS: 6,
        Kind.MAX_FREQUENCY: 10.0,
        Kind.KERNEL: 3,
        Kind.STRIDE: 1,
        Kind.RATE: 0.1,
        Kind.SLOPE: 0.2,
        Kind.EPSILON: 1e-5,
        Kind.FLAG: False,
        Kind.INTEGER: 2,
        Kind.CHANNELS: 8,
        Kind.DEVICE: torch.device("cpu"),
    }
    for width, heads, image, patch, sequence in ((256, 4, 32, 4, 16), (512, 8, 64, 8, 32), (384, 6, 224, 16, 64), (128, 2, 32, 16, 128))
)

# Names, matched whole against the lower-cased argument name, most specific first.
_NAMES: tuple[tuple[Kind, str], ...] = (
    (Kind.DEVICE, r"device"),
    # A special token's index (padding, start, end of sequence): 0 lies below any vocabulary.
    (Kind.PAD_INDEX, r".*(pad(ding)?|sos|eos|bos)_?(idx|index|id|token_id)"),
    (
        Kind.VOCABULARY,
        r"(n_?|num_?)?(src_|trg_|tgt_|source_|target_|enc_|dec_)?(vocab|vocabulary|voc)(_size)?|n?tokens?|num_tokens|n_?vocab|vocab_?len",
    ),
    (Kind.CLASSES, r"(n_?|num_?)?class(es)?|n_?classes|num_labels|n_?labels|num_outputs"),
    (Kind.IMAGE_SIDE, r"(image|img|input_image)_?(size|side|res|resolution)"),
    (Kind.PATCH_SIDE, r"patch_?(size|side)"),
    (
        Kind.SEQUENCE_LENGTH,
        r"seq_?len(gth)?|block_size|max_?(seq_?)?len(gth)?|context_?(len|length|size)"
        r"|n_positions?|max_position_embeddings|n_ctx|len_max_seq|pred_len|label_len",
    ),
    (Kind.FREQUENCY_BANDS, r"num_freq_bands|n_?freq(_bands)?"),
    (Kind.MAX_FREQUENCY, r"max_freq"),
    (Kind.HEADS, r"(n_?|num_?)heads?|heads|nhead|num_attention_heads|(cross|latent)_heads"),
    (Kind.COUNT, r"depth|(n_?|num_?)(layers?|blocks?|stages)|nlayers"),
    (Kind.CHANNELS, r"enc_in|dec_in|c_out"),  # cure-lab/LTSF-Linear's and Informer's series variables
    (Kind.IMAGE_CHANNELS, r"(in_?|input_?|image_?|img_?|n_?|num_?)?(channels|chans)|in_ch|nc|n_channels"),
    (Kind.KERNEL, r"kernel(_size)?|ksize"),
    (Kind.STRIDE, r"stride"),
    (Kind.RATE, r"dropout(_rate|_prob|_p)?|p|p_?drop|drop(_rate|_prob|out_rate)?|drop_.*|.*_dropout|.*_drop(_rate)?|attn_drop|proj_drop"),
    (Kind.SLOPE, r"alpha|negative_slope|leak(y)?(_slope)?|slope"),
    (Kind.EPSILON, r"eps|epsilon|.*_eps|norm_eps"),
    (
        Kind.WIDTH,
        r".*dim.*|d_model|d_?ff|ffn_hidden|dim_feedforward|d_?inner|d_?hid|d_?k|d_?v|d_?word_vec|.*hidden.*|nhid|nfeat|n_?feat(ure)?s?|n_?embd|.*embed.*|emb_?size"
        r"|(in|out|input|output)_(features|channels|size)|num_features|.*width.*|nz|ngf|ndf|nf|latent(_size)?|z_?size|.*_size|.*_units|units",
    ),
)
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in _NAMES)

# Calls in a constructor whose positional arguments are sizes (and, for an embedding, a vocabulary first).
_SIZE_LAYERS = {"Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"}
_SIZE_LAYERS |= {"LayerNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LSTM", "GRU", "RNN", "MultiheadAttention"}
_RATE_CALLS = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "dropout"}


@dataclass(frozen=True)
class MadeUpArguments:
    """One candidate assignment: the arguments to call with, as source (`nfeat=32`) for the note."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    shown: tuple[str, ...]


def classify(function: Callable[..., Any], name: str, namespace: Mapping[str, Any] | None = None) -> Kind | None:
    """The kind of one required argument, by its name, then its annotation, then how the
    constructor uses it; None when nothing says what it is."""
    by_name = kind_of_name(name)
    annotation = _annotation(function, name, namespace)
    by_annotation = _kind_of_annotation(annotation)
    if by_annotation is Kind.FLAG or (by_annotation is not None and by_name is None):
        return by_annotation
    if annotation is not None and by_annotation is None and _is_type(annotation):
        return None  # annotated as a module, a tensor, a string: whatever its name says, not a number
    return by_name or _kind_of_use(function, name)


def kind_of_name(name: str) -> Kind | None:
    lowered = name.lower()
    return next((kind for kind, pattern in _COMPILED if pattern.fullmatch(lowered)), None)


def candidate_arguments(
    function: Callable[..., Any], required: list[str], namespace: Mapping[str, Any] | None = None
) -> tuple[list[MadeUpArguments], list[str]]:
    """The candidate assignments for `function`'s required arguments, and the arguments that could
    not be classified (when there are any, no candidates)."""
    kinds: dict[str, Kind | type | _DefaultConfig | _AttributeConfig] = {}
    pairs: set[str] = set()  # annotated as a tuple of ints: (value, value)
    unknown: list[str] = []
    for name in required:
        kind = classify(function, name, namespace)
        config: type | _DefaultConfig | _AttributeConfig | None = None
        if kind is None:
            config = _config_class(function, name, namespace) or _default_config(function, name) or _attribute_config(function, name)
        if kind is None and _is_tuple_of_ints(_annotation(function, name, namespace)):
            kind = kind_of_name(name) or Kind.WIDTH
            pairs.add(name)
        if kind is not None:
            kinds[name] = kind
        elif config is not None:
            kinds[name] = config
        else:
            unknown.append(name)
    if unknown:
        return [], unknown
    keyword_only = _keyword_only(function)
    found: list[MadeUpArguments] = []
    # A default config whose presets and sizes exclude each other gets a second try with its presets cleared.
    clearing = (False, True) if any(isinstance(kind, _DefaultConfig) for kind in kinds.values()) else (False,)
    for values, clear in ((values, clear) for values in CANDIDATES for clear in clearing):
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        shown: list[str] = []
        for name in required:
            made_as = kinds[name]
            if isinstance(made_as, Kind):
                value: Any = (values[made_as], values[made_as]) if name in pairs else values[made_as]
                text = _source(value)
            elif isinstance(made_as, (_DefaultConfig, _AttributeConfig)):
                value, text = made_as.made(values, clear)
            else:
                value, text = _made_up_config(made_as, values, namespace)
            shown.append(f"{name}={text}")
            if name in keyword_only:
                kwargs[name] = value
            else:
                args.append(value)
        found.append(MadeUpArguments(tuple(args), kwargs, tuple(shown)))
    return list({made.shown: made for made in found}.values()), []


# -- a dataclass of the project's own (`ModelArgs`) --------------------------------------------
def _config_class(function: Callable[..., Any], name: str, namespace: Mapping[str, Any] | None) -> type | None:
    """A dataclass of the user's own that the argument is annotated with, whose required fields
    can all be classified (mamba-minimal's `ModelArgs(d_model, n_layer, vocab_size)`)."""
    annotation = _annotation(function, name, namespace)
    if not (inspect.isclass(annotation) and dataclasses.is_dataclass(annotation)) or issubclass(annotation, nn.Module):
        return None
    fields = _required_fields(annotation)
    owner = vars(sys.modules.get(annotation.__module__) or object())
    return annotation if fields and all(classify(annotation, field, owner) is not None for field in fields) else None


def _required_fields(cls: type) -> list[str]:
    return [
        field.name
        for field in dataclasses.fields(cls)
        if field.init and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    ]


def _made_up_config(cls: type, values: dict[Kind, Any], namespace: Mapping[str, Any] | None) -> tuple[Any, str]:
    owner = vars(sys.modules.get(cls.__module__) or object())
    fields = {field: values[kind] for field in _required_fields(cls) if isinstance(kind := classify(cls, field, owner), Kind)}
    shown = ", ".join(f"{field}={value!r}" for field, value in fields.items())
    return cls(**fields), f"{cls.__name__}({shown})"


# -- a config from the class's own `get_default_config()` (karpathy/minGPT) ---------------------
_CONFIG_NAMES = ("config", "cfg", "conf", "hparams")


@dataclass(frozen=True)
class _DefaultConfig:
    """minGPT's `GPT(config)`, whose config comes from `GPT.get_default_config()` with the sizes
    left None ("these options must be filled in externally"): every None field is filled when its
    name classifies. minGPT's default also names a preset (`model_type='gpt'`) that excludes
    explicit sizes; the second variant (`clear`) sets such string fields to None."""

    owner: str
    factory: Callable[[], Any]

    def made(self, values: dict[Kind, Any], clear: bool) -> tuple[Any, str]:
        config = self.factory()
        fields = vars(config)
        filled = {name: values[kind] for name, value in fields.items() if value is None and (kind := kind_of_name(name)) is not None}
        cleared = {name: None for name, value in fields.items() if clear and isinstance(value, str)}
        for name, value in {**cleared, **filled}.items():
            setattr(config, name, value)
        shown = ", ".join(f"{name}={value!r}" for name, value in {**cleared, **filled}.items())
        return config, f"{self.owner}.get_default_config() with {shown}"


def _default_config(function: Callable[..., Any], name: str) -> _DefaultConfig | None:
    """A `config` argument of a class that makes its own default config, whose empty (None) fields
    all classify by name."""
    factory = getattr(function, "get_default_config", None)
    if name not in _CONFIG_NAMES or not callable(factory):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = factory()
        fields = vars(config)
    except Exception:
        return None
    empty = [field for field, value in fields.items() if value is None]
    if not empty or any(kind_of_name(field) is None for field in empty):
        return None
    return _DefaultConfig(getattr(function, "__name__", "config"), factory)


# -- a namespace whose attributes the constructor reads (`configs.seq_len`) -----------------------
_NAMESPACE_NAMES = ("config", "configs", "cfg", "conf", "args", "opt", "opts", "hparams")


@dataclass(frozen=True)
class _AttributeConfig:
    """cure-lab/LTSF-Linear's `Model(configs)`, whose configs is the argparse Namespace its
    run_longExp.py builds and whose constructor reads `configs.seq_len`, `configs.enc_in`, ...:
    a `types.SimpleNamespace` with each attribute the constructor reads, made up by its kind."""

    attributes: tuple[tuple[str, Kind], ...]

    def made(self, values: dict[Kind, Any], clear: bool) -> tuple[Any, str]:
        fields = {name: values[kind] for name, kind in self.attributes}
        shown = ", ".join(f"{name}={_source(value)}" for name, value in fields.items())
        return types.SimpleNamespace(**fields), f"SimpleNamespace({shown})"


def _attribute_config(function: Callable[..., Any], name: str) -> _AttributeConfig | None:
    """An unannotated `configs` argument that the constructor only reads attributes of, each of
    which classifies by its name or as a flag the constructor tests (`if self.individual:`)."""
    tree = _constructor_tree(function)
    if name not in _NAMESPACE_NAMES or tree is None or _annotation(function, name, None) is not None:
        return None
    read: dict[str, None] = {}
    attribute_values: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name:
            attribute_values.add(id(node.value))
            if isinstance(node.ctx, ast.Load):
                read.setdefault(node.attr)
    # Passed on whole (`Encoder(configs)`), indexed or tested itself: what it must hold is not known here.
    passed_on = any(isinstance(n, ast.Name) and n.id == name and id(n) not in attribute_values for n in ast.walk(tree))
    if passed_on or not read:
        return None
    tested = _tested_attributes(tree, name)
    attributes = [(attribute, kind_of_name(attribute) or (Kind.FLAG if attribute in tested else None)) for attribute in read]
    known = [(attribute, kind) for attribute, kind in attributes if kind is not None]
    return _AttributeConfig(tuple(known)) if len(known) == len(attributes) else None


def _tested_attributes(tree: ast.AST, name: str) -> set[str]:
    """Attributes of `name` that decide an `if`: `if configs.individual:`, or kept as
    `self.individual = configs.individual` and tested as `if self.individual:` (or `not ...`)."""
    kept = {
        target.attr: node.value.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and _is_name(node.value.value, name)
        for target in node.targets
        if isinstance(target, ast.Attribute) and _is_name(target.value, "self")
    }
    tested: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.If, ast.IfExp, ast.While)):
            continue
        test = node.test.operand if isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not) else node.test
        if isinstance(test, ast.Attribute) and _is_name(test.value, name):
            tested.add(test.attr)
        elif isinstance(test, ast.Attribute) and _is_name(test.value, "self") and test.attr in kept:
            tested.add(kept[test.attr])
    return tested


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _source(value: Any) -> str:
    """A made-up value as the user would write it in a `::` call."""
    return f"torch.device({str(value)!r})" if isinstance(value, torch.device) else repr(value)


# -- annotations -------------------------------------------------------------------------------
def _annotation(function: Callable[..., Any], name: str, namespace: Mapping[str, Any] | None) -> Any:
    """The parameter's annotation, a string one (`from __future__ import annotations`) resolved
    in the function's module; None when there is none or it does not resolve."""
    try:
        annotation = inspect.signature(function).parameters[name].annotation
    except (TypeError, ValueError, KeyError):
        return None
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        module = sys.modules.get(getattr(function, "__module__", "") or "")
        scope = {**vars(typing), **(vars(module) if module else {}), **(namespace or {})}
        try:
            return eval(annotation, {"__builtins__": __builtins__}, scope)  # noqa: S307 - the user's own annotation
        except Exception:
            return None
    return annotation


def _kind_of_annotation(annotation: Any) -> Kind | None:
    if annotation is bool:
        return Kind.FLAG
    if annotation is int:  # 2, not a width: `upscale_factor: int` at 256 would ask for 65,536 channels
        return Kind.INTEGER
    if annotation is float:
        return Kind.RATE
    if annotation is torch.device:
        return Kind.DEVICE
    return None


def _is_tuple_of_ints(annotation: Any) -> bool:
    """`tuple[int, int]`, `Tuple[int, ...]`."""
    if typing.get_origin(annotation) is not tuple:
        return False
    return all(item is int or item is Ellipsis for item in typing.get_args(annotation)) and bool(typing.get_args(annotation))


def _is_type(annotation: Any) -> bool:
    return inspect.isclass(annotation) or typing.get_origin(annotation) is not None


def _keyword_only(function: Callable[..., Any]) -> set[str]:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


# -- how the constructor uses an argument ------------------------------------------------------
def _kind_of_use(function: Callable[..., Any], name: str) -> Kind | None:
    """A size given to `nn.Linear(name, ...)`, a vocabulary to `nn.Embedding(name, ...)`, a rate
    to `nn.Dropout(name)`, a count to `range(name)`, or a keyword whose name classifies it
    (`Layer(..., dropout=name)`), in the constructor's own source."""
    tree = _constructor_tree(function)
    if tree is None:
        return None
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        callee = call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id if isinstance(call.func, ast.Name) else ""
        for position, argument in enumerate(call.args):
            if not _mentions(argument, name):
                continue
            if callee in _SIZE_LAYERS:
                return Kind.WIDTH
            if callee in ("Embedding", "EmbeddingBag"):
                return Kind.VOCABULARY if position == 0 else Kind.WIDTH
            if callee in _RATE_CALLS:
                return Kind.RATE
            if callee == "range":
                return Kind.COUNT
        for keyword in call.keywords:
            if keyword.arg and _mentions(keyword.value, name) and (kind := kind_of_name(keyword.arg)) is not None:
                return kind
    return None


def _mentions(node: ast.expr, name: str) -> bool:
    """`name`, `name * 4`, `self.name`: the argument, alone or in arithmetic."""
    if isinstance(node, ast.Name):
        return node.id == name
    if isinstance(node, ast.Attribute):
        return node.attr == name and isinstance(node.value, ast.Name) and node.value.id == "self"
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.FloorDiv)):  # `nhid * nheads`, not `factor ** 2`
        return _mentions(node.left, name) or _mentions(node.right, name)
    return False


def _constructor_tree(function: Callable[..., Any]) -> ast.AST | None:
    constructor = function.__init__ if inspect.isclass(function) else function
    try:
        source = textwrap.dedent(inspect.getsource(constructor))
        return ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
