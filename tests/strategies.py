"""Hypothesis strategies that write random but valid PyTorch model files, csmith-style.

A generated program is the text of a complete model file, as a user would write one: helper
blocks, a `Net` class, a module-level instance (or only the class, or an `@nnlint.target`
function), its example input, and sometimes a loss, an optimizer that has already taken a step
(so that it holds state and the parameters hold `.grad`), and a real-looking batch with odd
scales, NaNs or constant features. Writing source rather than building modules in memory runs
nnlint's own loader and its construction-line bookkeeping on every example.

The generator keeps a pool of live tensors with their concrete shapes. Each step picks an
operation that fits the newest tensor (sometimes an older one: a branch), writes its `__init__`
and `forward` lines and adds the result to the pool; residual adds and concatenations join two
tensors whose shapes agree. So every program runs on its example input — unless a `fault` was
asked for on purpose (a wrong input, a forward that raises or returns no tensor).
"""

from __future__ import annotations

import itertools
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from model_layers import Tensor, Writer, image_to_vector, linear, operation, sequence_to_vector

FAULTS = ("wrong_shape", "wrong_dtype", "raises", "returns_none", "returns_number", "exits")
# What hostile but working model files do (issue 13): nnlint must lint them and leave no trace.
HAZARDS = ("input_written", "weights_clamped", "checkpointed", "state_in_forward", "state_at_import")
MODEL_FILE = "fuzzed_model.py"


@dataclass(frozen=True)
class ModelProgram:
    """A model file's source and what it exercises."""

    source: str
    features: frozenset[str]
    fault: str | None = None  # None: a valid model that runs on its example input
    example_given: bool = True  # False: nnlint has to infer the input

    def __repr__(self) -> str:  # the source itself is printed with hypothesis.note
        return f"ModelProgram(fault={self.fault!r}, example_given={self.example_given}, features={sorted(self.features)})"

    def write(self, folder: Path) -> Path:
        path = folder / MODEL_FILE
        path.write_text(self.source, encoding="utf-8")
        return path


@dataclass(frozen=True)
class _Family:
    name: str
    shape: Callable[[Writer, int], tuple[int, ...]]  # (writer, batch) -> input shape
    integer_input: int | None = None  # vocabulary size for token inputs


def _image_shape(w: Writer, batch: int) -> tuple[int, ...]:
    return (batch, w.choose((1, 3, 4)), w.choose((5, 8, 12, 16)), w.choose((5, 8, 12, 16)))


def _vector_shape(w: Writer, batch: int) -> tuple[int, ...]:
    return (batch, w.choose((3, 8, 16, 32)))


def _sequence_shape(w: Writer, batch: int) -> tuple[int, ...]:
    return (batch, w.choose((1, 3, 5)), w.choose((4, 8)))


def _token_shape(w: Writer, batch: int) -> tuple[int, ...]:
    return (batch, w.choose((3, 6)))


_FAMILIES = (
    _Family("image", _image_shape),
    _Family("vector", _vector_shape),
    _Family("sequence", _sequence_shape),
    _Family("tokens", _token_shape, integer_input=50),
)


@st.composite
def model_programs(draw: Callable[[st.SearchStrategy[Any]], Any], faults: bool = True, hazards: bool = True) -> ModelProgram:
    """A complete model file; with `faults`, one in ten is broken on purpose (see FAULTS); with
    `hazards`, some write their inputs or weights in place, checkpoint a layer, or change
    process-wide state (see HAZARDS)."""
    w = Writer(draw)
    family = w.choose(_FAMILIES)
    fault = w.choose(FAULTS) if faults and w.chance(10) else None
    w.features.update({f"family_{family.name}", f"fault_{fault}" if fault else "valid"})
    w.discovery = w.choose(("instance",) * 3 + ("class", "decorated"))
    w.features.add(f"discovery_{w.discovery}")
    w.batch = batch = w.choose((1, 2, 4, 8, 16, 32, 100))
    input_shape = family.shape(w, batch)
    dtype = w.choose(("float32",) * 6 + ("float64",)) if w.discovery != "class" else "float32"
    w.features.add(f"dtype_{dtype}")

    signature = w.choose(("tensor",) * 5 + ("tuple", "kwargs", "optional_given", "optional_default", "batch_dict", "var_kwargs"))
    w.features.add(f"input_{signature}")
    x = w.bind("x", input_shape) if family.integer_input is None else _embed(w, family, input_shape)
    if signature != "tensor":  # a mask or weight that multiplies the (embedded) input
        x = w.emit(f"{x.name} * extra", x.shape)
    if w.chance(15):
        x = _input_buffers(w, x)

    for _ in range(w.integer(1, 8)):
        current = w.operand()
        assert current is not None  # the input is always in the pool
        operation(w, current.rank)(w, current)

    output = _head(w, w.pool[-1], family)
    if hazards:
        _hazards(w, family)
    if fault in ("raises", "returns_none", "returns_number", "exits"):
        _break_forward(w, fault, output)
    else:
        output = _return(w, output)
    _structure_extras(w)

    example_given = not (signature == "tensor" and fault is None and w.chance(20))
    source = _file(w, family, signature, example_given, input_shape, dtype, output, fault)
    return ModelProgram(source, frozenset(w.features), fault, example_given)


def _extra_shape(family: _Family, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A mask/weight broadcastable to the (embedded) input."""
    if family.name == "image":
        return (shape[0], 1, shape[2], shape[3])
    if family.name == "vector":
        return shape
    return (shape[0], shape[1], 1)


def _embed(w: Writer, family: _Family, shape: tuple[int, ...]) -> Tensor:
    width = w.choose((8, 16))
    padding = w.choose(("", ", padding_idx=0"))
    w.embedding, w.embedding_width = w.module(f"nn.Embedding({family.integer_input}, {width}{padding})"), width
    w.features.add("embedding")
    return w.emit(f"{w.embedding}(x)", (*shape, width))


def _input_buffers(w: Writer, x: Tensor) -> Tensor:
    """Normalization constants as buffers, persistent or not."""
    broadcast = (x.shape[1], 1, 1) if x.rank == 4 else (x.shape[-1],)
    kind = w.choose(("persistent", "not_persistent", "plain_attribute"))
    w.features.add(f"buffer_{kind}")
    size = ", ".join(map(str, broadcast)) + ("," if len(broadcast) == 1 else "")
    if kind == "plain_attribute":  # a forgotten register_buffer: not in state_dict, not moved by .to()
        w.init += [f"self.mean = torch.full(({size}), 0.5)", f"self.std = torch.full(({size}), 0.25)"]
    else:
        persistent = kind == "persistent"
        w.init += [
            f'self.register_buffer("mean", torch.full(({size}), 0.5), persistent={persistent})',
            f'self.register_buffer("std", torch.full(({size}), 0.25), persistent={persistent})',
        ]
    return w.emit(f"({x.name} - self.mean) / self.std", x.shape)


def _head(w: Writer, x: Tensor, family: _Family) -> Tensor:
    """The last layers: a classifier on vectors, sometimes with a softmax/sigmoid; tied weights on tokens."""
    if family.integer_input is not None and x.rank == 3 and w.chance(50):
        w.features.add("weight_tying")
        if x.shape[2] != w.embedding_width:
            x = linear(w, x, out=w.embedding_width)
        head = w.module(f"nn.Linear({x.shape[2]}, {family.integer_input}, bias={w.choose((True, False))})")
        w.init.append(f"{head}.weight = {w.embedding}.weight")
        return w.emit(f"{head}({x.name})", (*x.shape[:2], family.integer_input))
    if x.rank == 4 and w.chance(60):
        x = image_to_vector(w, x)
    if x.rank == 3 and w.chance(40):
        x = sequence_to_vector(w, x)
    if x.rank == 2 and w.chance(70):
        x = linear(w, x, out=w.choose((1, 2, 10)))
        if w.chance(20):
            final = w.choose(("torch.softmax({}, dim=1)", "F.log_softmax({}, dim=-1)", "torch.sigmoid({})", "nn.Softmax(dim=1)"))
            w.features.add("output_" + final.split("(")[0].replace(".", "_"))
            if final.startswith("nn."):
                return w.emit(f"{w.module(final, parameters=False)}({x.name})", x.shape)
            return w.emit(final.format(x.name), x.shape)
    return x


def _return(w: Writer, output: Tensor) -> Tensor:
    """Write the return statement; the main output (what a loss would see) comes back."""
    others = [t for t in w.pool if t is not output]
    spelling = w.choose(("tensor",) * 4 + (("tuple", "dict", "list") if others else ()) + (("heads",) if output.rank == 2 else ()))
    w.features.add(f"output_{spelling}")
    if spelling == "tensor":
        w.forward.append(f"return {output.name}")
        return output
    if spelling == "heads":  # a ModuleDict of heads, one output per key; "logits" is the main one
        width, classes = output.shape[1], w.choose((2, 10))
        heads = w.module(f'nn.ModuleDict({{"logits": nn.Linear({width}, {classes}), "aux": nn.Linear({width}, 1)}})')
        w.forward.append(f"return {{name: head({output.name}) for name, head in {heads}.items()}}")
        return Tensor("logits", (output.shape[0], classes))
    aux = w.choose(others).name
    w.forward.append(
        {
            "tuple": f"return {output.name}, {aux}",
            "dict": f'return {{"logits": {output.name}, "features": {aux}}}',
            "list": f"return [{output.name}, {aux}]",
        }[spelling]
    )
    return output


def _break_forward(w: Writer, fault: str, output: Tensor) -> None:
    """A forward that raises part-way (after some layers ran), or that returns no tensor."""
    if fault == "raises":
        at = w.integer(0, max(len(w.forward) - 1, 0))
        while at > 0 and w.forward[at].startswith((" ", "else")):  # at the top level, not inside a block
            at -= 1
        w.forward.insert(at, 'if x.dim() > 0:\n    raise ValueError("fuzzed forward refuses this input")')
        w.forward.append(f"return {output.name}")
    elif fault == "exits":  # sys.exit() where a script would stop, or a stray GeneratorExit
        at = w.integer(0, max(len(w.forward) - 1, 0))
        while at > 0 and w.forward[at].startswith((" ", "else")):
            at -= 1
        raised = w.choose(('sys.exit("fuzzed forward exits")', "sys.exit(0)", "raise SystemExit(3)", "raise GeneratorExit"))
        w.forward.insert(at, f"if x.dim() > 0:\n    {raised}")
        w.forward.append(f"return {output.name}")
    elif fault == "returns_none":
        w.forward.append(f"{output.name}.sum()  # the result is dropped: `return` is missing")
    else:
        w.forward.append(f"return {output.name}.size(0)")


def _hazards(w: Writer, family: _Family) -> None:
    """Working code with side effects nnlint must contain (each pattern's origin in its comment)."""
    if family.integer_input is None and w.chance(10):  # YOLOv5's `im /= 255` on the input itself
        w.forward.insert(0, "x /= 2")
        w.features.add("hazard_input_written")
    if w.with_parameters and w.chance(8):  # WGAN's weight clipping (martinarjovsky/WassersteinGAN)
        w.forward.insert(0, "for p in self.parameters():\n    p.data.clamp_(-1.0, 1.0)")
        w.features.add("hazard_weights_clamped")
    calls = [
        index
        for index, line in enumerate(w.forward)
        if re.fullmatch(r"v\d+ = self\.m\d+\((x|v\d+)\)", line) and "inplace=True" not in _called_constructor(w, line)
    ]
    if calls and w.chance(15):  # activation checkpointing (Hugging Face's gradient_checkpointing_enable)
        index = w.choose(calls)
        name, call = w.forward[index].split(" = ")
        module, argument = call[:-1].split("(")
        reentrant = w.choose((False, False, True))
        w.forward[index] = f"{name} = checkpoint({module}, {argument}, use_reentrant={reentrant})"
        w.features.add(f"hazard_checkpointed{'_reentrant' if reentrant else ''}")
    if w.chance(8):  # set-up code that belongs in the training script, run by the forward
        statement = w.choose(
            ("torch.backends.cudnn.benchmark = True", 'torch.set_float32_matmul_precision("medium")', "os.chdir(tempfile.gettempdir())")
        )
        w.forward.insert(0, statement)
        w.features.add("hazard_state_in_forward")
    if w.chance(8):  # module-level set-up at import, after the model is built
        # (not the default dtype when nnlint builds the model from its class: a float64 model would
        # then meet the float32 example input, broken for the user too)
        w.at_import = w.choose(
            (
                *(("torch.set_default_dtype(torch.float64)",) if w.discovery != "class" else ()),
                "torch.backends.cudnn.deterministic = True",
                "torch.set_num_threads(1)",
                "os.chdir(os.path.dirname(os.path.abspath(__file__)))",
                "torch.use_deterministic_algorithms(True, warn_only=True)",
            )
        )
        w.features.add("hazard_state_at_import")


def _called_constructor(w: Writer, line: str) -> str:
    """The constructor of the module a `v3 = self.m2(v1)` line calls."""
    return _constructor(w, line.split(" = ")[1].split("(")[0])


def _structure_extras(w: Writer) -> None:
    """Frozen parameters, weight tying, a module registered twice, a module never called."""
    if w.with_parameters and w.chance(20):
        w.init.append(f"self.{w.choose(w.with_parameters)}.requires_grad_(False)")
        w.features.add("frozen_in_init")
    linears = [line.split(" = ")[0] for line in w.init if " = nn.Linear(" in line]
    same = [(a, b) for a, b in itertools.combinations(linears, 2) if _constructor(w, a) == _constructor(w, b)]
    if same and w.chance(50):
        first, second = w.choose(same)
        w.init.append(f"{second}.weight = {first}.weight")
        w.features.add("weight_tying_linear")
    layers = [line.split(" = ")[0] for line in w.init if " = nn.Linear(" in line or " = nn.Conv2d(" in line]
    if layers and w.chance(20):  # what NN401/NN402 judge: constant or badly scaled weights
        init = w.choose(
            ("zeros_({})", "constant_({}, 0.05)", "normal_({}, std=1.0)", "kaiming_normal_({}, nonlinearity='relu')", "orthogonal_({})")
        )
        w.init.append(f"nn.init.{init.format(w.choose(layers) + '.weight')}")
        w.features.add("init_" + init.split("_(")[0])
    if w.with_parameters and w.chance(15):
        w.init.append(f"self.alias = self.{w.choose(w.with_parameters)}")
        w.features.add("module_alias")
    if w.chance(15):
        w.init.append(f"self.unused = nn.Linear({w.integer(2, 9)}, 3)")
        w.features.add("unused_module")


def _constructor(w: Writer, attribute: str) -> str:
    return next(line.split(" = ", 1)[1] for line in w.init if line.startswith(attribute + " = "))


# -- the file ------------------------------------------------------------------------------------
_PROLOGUE = """\
import os
import sys
import tempfile

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import nnlint
"""

_HELPERS = """\
def main_output(output):
    if isinstance(output, dict):
        return output["logits"]
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def call(model, inputs):
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)
"""


def _file(
    w: Writer,
    family: _Family,
    signature: str,
    example_given: bool,
    shape: tuple[int, ...],
    dtype: str,
    output: Tensor,
    fault: str | None,
) -> str:
    parts = [_PROLOGUE, *w.classes.values(), _net_class(w, signature), _HELPERS]
    discovery = w.discovery
    module_level: list[str] = []
    if w.chance(10):  # the report on stdout must stay parseable
        module_level.append('print("building the model...")')
        w.features.add("prints_on_import")
    cast = ".double()" if dtype == "float64" else ""
    if discovery != "class":
        module_level.append(f"model = Net(){cast}")
        module_level += _modes_and_hooks(w)
    inputs = _input_expression(w, family, signature, shape, dtype, fault)
    if example_given:
        module_level.append(f"example_input = {inputs}")
    training = _training_context(w, family, signature, shape, dtype, output, fault, discovery)
    module_level += training
    if w.chance(15):
        module_level.append(f"batch_size = {w.choose((1, 4, 16, 256))}")
        w.features.add("batch_size_given")
    if discovery == "decorated":
        extras = "".join(
            f", {name}={name}"
            for name in ("example_input", "loss_fn", "optimizer")
            if any(line.startswith(f"{name} = ") for line in module_level)
        )
        module_level += ["", "", "@nnlint.target", "def fuzzed():", f'    return nnlint.Target(model{extras}, name="fuzzed")']
    if w.at_import:
        module_level += ["", w.at_import]
    parts.append("\n".join(module_level) + "\n")
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)


def _net_class(w: Writer, signature: str) -> str:
    parameters = {
        "tensor": "x",
        "tuple": "x, extra",
        "kwargs": "x, extra",
        "optional_given": "x, extra=None",
        "optional_default": "x, extra=None",
        "batch_dict": "batch",
        "var_kwargs": "x, **options",
    }[signature]
    preamble = {
        "batch_dict": ['x = batch["x"]', 'extra = batch["extra"]'],
        "var_kwargs": ['extra = options["extra"]'],
    }.get(signature, [])
    body = preamble + w.forward
    if signature in ("optional_given", "optional_default"):
        body = [line.replace(" * extra", " * (extra if extra is not None else 1.0)") for line in body]
    init = ["super().__init__()", *w.init]
    lines = [
        "class Net(nn.Module):",
        "    def __init__(self):",
        *_indent(init, 8),
        "",
        f"    def forward(self, {parameters}):",
        *_indent(body, 8),
    ]
    return "\n".join(lines)


def _indent(lines: list[str], spaces: int) -> list[str]:
    return [textwrap.indent(line, " " * spaces) for line in lines]


def _random_input(family: _Family, shape: tuple[int, ...], dtype: str, wrong: str | None = None) -> str:
    size = ", ".join(map(str, shape))
    if family.integer_input is not None:
        if wrong == "wrong_dtype":
            return f"torch.randn({size})"
        return f"torch.randint(0, {family.integer_input}, ({size},))"
    if wrong == "wrong_dtype":
        return f"torch.randint(0, 3, ({size},))"
    return f"torch.randn({size}{', dtype=torch.float64' if dtype == 'float64' else ''})"


def _input_expression(w: Writer, family: _Family, signature: str, shape: tuple[int, ...], dtype: str, fault: str | None) -> str:
    wrong = fault if fault in ("wrong_shape", "wrong_dtype") else None
    if wrong == "wrong_shape":
        shape = (shape[0], shape[1] + 1, *shape[2:]) if family.integer_input is None else (*shape, 2)
    x = _random_input(family, shape, dtype, wrong)
    extra_shape = _extra_shape(family, shape)
    extra = f"torch.rand({', '.join(map(str, extra_shape))}{', dtype=torch.float64' if dtype == 'float64' else ''})"
    return {
        "tensor": x,
        "tuple": f"({x}, {extra})",
        "kwargs": f'{{"x": {x}, "extra": {extra}}}',
        "optional_given": f"({x}, {extra})",
        "optional_default": x,
        "batch_dict": f'({{"x": {x}, "extra": {extra}}},)',
        "var_kwargs": f'{{"x": {x}, "extra": {extra}}}',
    }[signature]


def _modes_and_hooks(w: Writer) -> list[str]:
    lines = []
    if w.chance(10):
        lines.append("model.eval()")
        w.features.add("model_in_eval")
    if w.batchnorms and w.chance(20):
        lines.append(f"model.{w.choose(w.batchnorms).removeprefix('self.')}.eval()  # a frozen BatchNorm in a training model")
        w.features.add("mixed_modes")
    modules = [
        line.split(" = ")[0].removeprefix("self.")
        for line in w.init
        if (" = nn." in line or "Block(" in line) and "nn.Parameter(" not in line
    ]
    if modules and w.chance(20):
        target = w.choose(modules)
        hooks = ["register_forward_hook(lambda module, args, output: None)", "register_forward_pre_hook(lambda module, args: None)"]
        if "residual_in_place" not in w.features:  # autograd forbids `out += x` on a backward-hooked output
            hooks.append("register_full_backward_hook(lambda module, grad_in, grad_out: None)")
        hook = w.choose(hooks)
        lines.append(f"model.{target}.{hook}")
        w.features.add("hook")
    if w.with_parameters and w.chance(10):
        lines.append(f"model.{w.choose(w.with_parameters)}.requires_grad_(False)")
        w.features.add("frozen_after_build")
    return lines


def _training_context(
    w: Writer,
    family: _Family,
    signature: str,
    shape: tuple[int, ...],
    dtype: str,
    output: Tensor,
    fault: str | None,
    discovery: str,
) -> list[str]:
    """Sometimes a loss, a real-looking batch and an optimizer that has taken one step."""
    lines: list[str] = []
    classifier = output.rank == 2 and output.shape[1] > 1
    if w.chance(40):
        loss = w.choose(
            ("nn.CrossEntropyLoss()", "nn.MSELoss()", "nn.BCEWithLogitsLoss()", "nn.SmoothL1Loss()")
            if classifier
            else ("nn.MSELoss()", "nn.L1Loss()")
        )
        lines.append(f"loss_fn = {loss}")
        w.features.add("loss")
    else:
        loss = None
    if fault is not None or not w.chance(35):
        return lines
    batch = w.choose((2, 8, 32))
    batch_shape = (batch, *shape[1:])
    inputs = _input_expression(w, family, signature, batch_shape, dtype, None)
    scale = w.choose(("plain", "pixels", "large_offset", "tiny", "nan", "constant"))
    w.features.add(f"batch_{scale}")
    lines.append(f"batch_inputs = {inputs}")
    if family.integer_input is None:
        first = {"kwargs": 'batch_inputs["x"]', "var_kwargs": 'batch_inputs["x"]', "batch_dict": 'batch_inputs[0]["x"]'}.get(signature)
        first = first or ("batch_inputs[0]" if signature in ("tuple", "optional_given") else "batch_inputs")
        edit = {
            "plain": None,
            "pixels": f"{first}.mul_(127.5).add_(127.5).round_()",
            "large_offset": f"{first}.mul_(1e4).add_(300)",
            "tiny": f"{first}.mul_(1e-6)",
            "nan": f"{first}[0].view(-1)[0] = float('nan')",
            "constant": f"{first}[:, 0] = 3.0",
        }[scale]
        if edit:
            lines.append(edit)
    out_shape = (batch, *output.shape[1:])
    if loss == "nn.CrossEntropyLoss()":
        targets = f"torch.randint(0, {output.shape[1]}, ({batch},))"
    else:
        targets = f"torch.rand({', '.join(map(str, out_shape))}{', dtype=torch.float64' if dtype == 'float64' else ''})"
    lines.append(f"example_batch = (batch_inputs, {targets})")
    if loss is None or discovery == "class" or not w.with_parameters:
        return lines
    kind = w.choose(("SGD", "Adam", "AdamW", "RMSprop"))
    options = {"SGD": "lr=0.01, momentum=0.9", "Adam": "lr=1e-3", "AdamW": "lr=1e-3, weight_decay=0.01", "RMSprop": "lr=1e-3"}[kind]
    if w.chance(30):  # what NN501/NN503 look at: L2 decay under an adaptive step, odd learning rates
        options = w.choose(("lr=10.0", "lr=1e-8", "lr=1e-3, weight_decay=1e-4"))
        w.features.add("optimizer_odd_settings")
    parameters = w.choose(("model.parameters()",) * 3 + ("groups", "subset"))
    if parameters == "groups":  # decay on weights, none on biases and norms (NN502's remedy)
        lines += [
            "groups = [",
            '    {"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": 0.01},',
            '    {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0},',
            "]",
        ]
        parameters = '[group for group in groups if group["params"]]'
    elif parameters == "subset":  # part of the model is never updated (NN504)
        attribute = w.choose(w.with_parameters)
        is_raw_parameter = "nn.Parameter(" in _constructor(w, f"self.{attribute}")
        parameters = f"[model.{attribute}]" if is_raw_parameter else f"model.{attribute}.parameters()"
    w.features.add(f"optimizer_{kind}")
    lines += [
        f"optimizer = torch.optim.{kind}({parameters}, {options})",
        "step_loss = loss_fn(main_output(call(model, example_batch[0])), example_batch[1])",
        "if step_loss.requires_grad:  # one step, so the optimizer holds state and parameters hold .grad",
        "    step_loss.backward()",
        "    optimizer.step()",
    ]
    return lines
