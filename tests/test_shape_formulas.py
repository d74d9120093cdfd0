"""nnlint.runtime.shape_formulas gives exactly what torch's meta kernels give (shape, dtype, strides,
aliasing), over a range of layer configurations; declines what it does not cover, so torch raises
its own error; and keeps a static lint of a CNN clear of torch's symbolic-shapes import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch
from torch import nn

from nnlint.graph import build_graph
from nnlint.runtime import shape_formulas
from nnlint.runtime.shape_formulas import ShapeFormulas, formula_for
from nnlint.sources import ModuleLocator

aten = torch.ops.aten


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def _outputs(value: Any) -> list[torch.Tensor]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _described(value: Any) -> list[tuple[Any, ...]]:
    return [(tuple(t.shape), t.stride(), t.dtype, t.device.type) for t in _outputs(value)]


# (op, args, kwargs): plain cases every formula must answer, as torch's meta kernel does.
CONV = [
    # Conv2d: kernel, stride, padding, dilation, groups, bias; Conv1d; Conv3d; depthwise.
    (meta(8, 3, 32, 32), meta(16, 3, 3, 3), meta(16), [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
    (meta(2, 64, 56, 56), meta(64, 64, 3, 3), None, [2, 2], [1, 1], [1, 1], False, [0, 0], 1),
    (meta(2, 3, 224, 224), meta(64, 3, 7, 7), None, [2, 2], [3, 3], [1, 1], False, [0, 0], 1),
    (meta(1, 32, 17, 23), meta(32, 1, 3, 5), None, [1, 2], [2, 0], [2, 1], False, [0, 0], 32),
    (meta(4, 8, 9, 9), meta(12, 4, 1, 1), meta(12), [3, 3], [0, 0], [1, 1], False, [0, 0], 2),
    (meta(4, 5, 100), meta(7, 5, 9), meta(7), [4], [4], [1], False, [0], 1),
    (meta(2, 4, 8, 8, 8), meta(6, 4, 3, 3, 3), None, [1, 1, 1], [1, 1, 1], [1, 1, 1], False, [0, 0, 0], 1),
    (meta(2, 16, 8, 8, dtype=torch.float64), meta(16, 16, 3, 3, dtype=torch.float64), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1),
    # ConvTranspose: stride 2 up-sampling (UNet), output padding, groups, 1d.
    (meta(2, 128, 16, 16), meta(128, 64, 2, 2), meta(64), [2, 2], [0, 0], [1, 1], True, [0, 0], 1),
    (meta(2, 16, 7, 9), meta(16, 4, 3, 3), None, [2, 2], [1, 1], [1, 1], True, [1, 1], 2),
    (meta(3, 6, 11), meta(6, 5, 4), meta(5), [3], [2], [2], True, [1], 1),
]
ANSWERED: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    *[(aten.convolution.default, args, {}) for args in CONV],
    (aten.native_batch_norm.default, (meta(8, 16, 5, 5), meta(16), meta(16), meta(16), meta(16), False, 0.1, 1e-5), {}),
    (aten.native_batch_norm.default, (meta(8, 16, 5, 5), meta(16), meta(16), meta(16), meta(16), True, 0.1, 1e-5), {}),
    (aten.native_batch_norm.default, (meta(8, 16), None, None, None, None, True, 0.1, 1e-5), {}),
    (aten.native_batch_norm.default, (meta(2, 3, 4, 5, 6), meta(3), meta(3), meta(3), meta(3), False, 0.1, 1e-5), {}),
    (aten.native_layer_norm.default, (meta(4, 10, 32), [32], meta(32), meta(32), 1e-5), {}),
    (aten.native_layer_norm.default, (meta(4, 10, 6, 7), [6, 7], None, None, 1e-5), {}),
    (aten.addmm.default, (meta(10), meta(4, 20), meta(20, 10)), {}),
    (aten.addmm.default, (meta(10), meta(4, 20), meta(10, 20).t()), {}),
    (aten.addmm.default, (meta(4, 10), meta(4, 20), meta(20, 10)), {"beta": 0.5, "alpha": 2}),
    (aten.mm.default, (meta(7, 3), meta(3, 9)), {}),
    (aten.bmm.default, (meta(5, 7, 3), meta(5, 3, 9)), {}),
    (aten.bmm.default, (meta(5, 7, 3), meta(5, 9, 3).transpose(1, 2)), {}),
    (aten.max_pool2d_with_indices.default, (meta(2, 64, 112, 112), [3, 3], [2, 2], [1, 1]), {}),
    (aten.max_pool2d_with_indices.default, (meta(2, 8, 32, 32), [2, 2]), {}),
    (aten.max_pool2d_with_indices.default, (meta(2, 8, 31, 29), [3, 2], [2, 3], [1, 0], [1, 1], True), {}),
    (aten.max_pool2d_with_indices.default, (meta(2, 8, 15, 15), [3, 3], [2, 2], [0, 0], [2, 2], False), {}),
    (aten.mean.dim, (meta(2, 2048, 7, 7), [-1, -2], True), {}),
    (aten.mean.dim, (meta(2, 10, 7), [1]), {}),
    (aten.relu.default, (meta(2, 3, 8, 8),), {}),
    (aten.gelu.default, (meta(4, 10, 32),), {"approximate": "tanh"}),
    (aten.sigmoid.default, (meta(6, 5),), {}),
    (aten.tanh.default, (meta(6, 5, dtype=torch.float64),), {}),
    (aten.silu.default, (meta(2, 3, 4, 5, 6),), {}),
    (aten.add.Tensor, (meta(2, 3, 8, 8), meta(2, 3, 8, 8)), {}),
    (aten.add.Tensor, (meta(4, 10, 32), meta(32)), {"alpha": 2}),
    (aten.mul.Tensor, (meta(2, 16, 8, 8), meta(2, 16, 1, 1)), {}),
    (aten.sub.Tensor, (meta(1, 10, 32), meta(4, 10, 32)), {}),
    (aten.div.Tensor, (meta(4, 10), meta(4, 1)), {}),
    (aten.mul.Scalar, (meta(4, 12, 10, 64), 0.125), {}),
    (aten.add.Scalar, (meta(4, 12), 1), {}),
    (aten.mul.Scalar, (meta(4, 12, 64, 10).transpose(2, 3), 0.125), {}),  # k.transpose(-2, -1) * scale
    (aten.mul.Scalar, (meta(8, 10, 3 * 48)[..., 48:96].view(8, 10, 4, 12).transpose(1, 2), 0.125), {}),  # a slice of qkv
    (aten.add.Tensor, (meta(4, 10, 32), meta(10, 4, 32).transpose(0, 1)), {}),
    (aten._safe_softmax.default, (meta(4, 12, 10, 10), -1), {}),
    (aten._softmax.default, (meta(4, 10), 1, False), {}),
    (aten.tril.default, (meta(16, 16, dtype=torch.bool),), {}),
    (aten.triu.default, (meta(3, 16, 16), 1), {}),
    (aten.where.self, (meta(16, 16, dtype=torch.bool), meta(), meta()), {}),
    (aten.where.self, (meta(2, 16, 16, dtype=torch.bool), meta(2, 16, 16), meta()), {}),
    (aten.arange.default, (128,), {"device": torch.device("meta")}),
    (aten.arange.start, (3, 250), {"dtype": torch.int64, "device": "meta"}),
    (aten.arange.start_step, (10, 0, -3), {"device": "meta"}),
    (aten.arange.start_step, (0, 10, 4), {"device": "meta"}),
    (aten.embedding.default, (meta(100, 16), meta(4, 7, dtype=torch.int64)), {}),
    (aten.embedding.default, (meta(100, 16), meta(9, dtype=torch.int32), 0), {}),
    (aten.cat.default, ([meta(2, 64, 16, 16), meta(2, 32, 16, 16)], 1), {}),
    (aten.cat.default, ([meta(3, 5), meta(4, 5), meta(1, 5)],), {}),
    (aten.cat.default, ([meta(2, 3, 4), meta(2, 3, 6)], -1), {}),
]
IN_PLACE: list[tuple[Any, tuple[Any, ...]]] = [
    (aten.relu_.default, (meta(2, 3, 8, 8),)),
    (aten.silu_.default, (meta(4, 5),)),
    (aten.add_.Tensor, (meta(2, 3, 8, 8), meta(2, 3, 8, 8))),
    (aten.mul_.Tensor, (meta(4, 10, 32), meta(32))),
]
# Wrong arguments: torch raises; the formula must decline so that torch's own error reaches the user.
REJECTED: list[tuple[Any, tuple[Any, ...]]] = [
    (aten.convolution.default, (meta(8, 4, 32, 32), meta(16, 3, 3, 3), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.convolution.default, (meta(8, 3, 2, 2), meta(16, 3, 5, 5), None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
    (aten.addmm.default, (meta(10), meta(4, 20), meta(21, 10))),
    (aten.mm.default, (meta(7, 3), meta(4, 9))),
    (aten.bmm.default, (meta(5, 7, 3), meta(4, 3, 9))),
    (aten.native_layer_norm.default, (meta(4, 10, 32), [16], None, None, 1e-5)),
    (aten.add.Tensor, (meta(2, 3), meta(4, 3))),
    (aten.cat.default, ([meta(2, 64, 16, 16), meta(2, 32, 8, 8)], 1)),
    (aten.max_pool2d_with_indices.default, (meta(2, 8, 1, 1), [3, 3], [2, 2], [0, 0])),
]
# Cases left to torch on purpose: other layouts, dtypes, devices, empty dimensions.
DECLINED: list[tuple[Any, tuple[Any, ...]]] = [
    (aten.relu.default, (meta(2, 8, 4, 4).to(memory_format=torch.channels_last),)),
    (aten.relu.default, (meta(2, 3, 8, 8, dtype=torch.float16),)),
    (aten.relu.default, (torch.zeros(2, 3),)),
    (aten.relu.default, (meta(0, 3),)),
    (aten.add.Tensor, (meta(2, 3), meta(2, 3, dtype=torch.float64))),
    (aten.add.Tensor, (meta(2, 1), meta(1, 3))),
    (aten.arange.start, (0.5, 4.0)),
    (aten.mul.Scalar, (meta(4, 1, 8).transpose(0, 2), 2.0)),
    (aten.native_batch_norm.default, (meta(8, 16, 1, 1), None, None, None, None, True, 0.1, 1e-5)),
    # A bias of the wrong length: meta does not check it (a real run does); torch's answer stands.
    (aten.convolution.default, (meta(8, 3, 9, 9), meta(16, 3, 3, 3), meta(8), [1, 1], [0, 0], [1, 1], False, [0, 0], 1)),
]


@pytest.mark.parametrize(("op", "args", "kwargs"), ANSWERED, ids=lambda v: str(v) if not isinstance(v, (tuple, dict)) else None)
def test_formula_matches_torch_meta_kernel(op, args, kwargs):
    formula = formula_for(op)
    assert formula is not None
    by_formula = formula(*args, **kwargs)
    assert by_formula is not None, "a plain case the formula should answer"
    assert _described(by_formula) == _described(op(*args, **kwargs))


@pytest.mark.parametrize(("op", "args"), IN_PLACE, ids=lambda v: str(v) if not isinstance(v, tuple) else None)
def test_in_place_formula_returns_its_input_as_torch_does(op, args):
    assert formula_for(op)(*args) is args[0]
    assert op(*args) is args[0]


@pytest.mark.parametrize(("op", "args"), REJECTED, ids=lambda v: str(v) if not isinstance(v, tuple) else None)
def test_wrong_arguments_get_torch_own_error(op, args):
    assert formula_for(op)(*args) is None
    with pytest.raises(RuntimeError) as plain:
        op(*args)
    with ShapeFormulas(), pytest.raises(RuntimeError) as under_formulas:
        op(*args)
    assert str(under_formulas.value) == str(plain.value)


@pytest.mark.parametrize(("op", "args"), DECLINED, ids=lambda v: str(v) if not isinstance(v, tuple) else None)
def test_cases_outside_the_formulas_run_torch_kernel(op, args):
    assert formula_for(op)(*args) is None
    with ShapeFormulas():
        assert _described(op(*args)) == _described(op(*args))


def _random_operand(shape: list[int], generator: torch.Generator) -> torch.Tensor:
    """A meta tensor of `shape`, or a broadcastable part of it, laid out as views lay it out:
    contiguous, transposed, or a slice of a wider tensor."""
    kept = [size if torch.rand((), generator=generator) < 0.7 else 1 for size in shape]
    kept = kept[int(torch.randint(0, len(kept), (), generator=generator)) :] if torch.rand((), generator=generator) < 0.3 else kept
    layout = int(torch.randint(0, 3, (), generator=generator))
    if layout == 1 and len(kept) >= 2:
        return meta(*kept[:-2], kept[-1], kept[-2]).transpose(-1, -2)
    if layout == 2 and kept:
        return meta(*kept[:-1], 2 * kept[-1])[..., : kept[-1]]
    return meta(*kept)


def test_elementwise_formulas_match_torch_on_random_layouts():
    """Broadcasting and strides are where an elementwise formula could drift from torch: 600
    random pairs (shapes with and without size-1 dimensions, transposed and sliced views)."""
    generator = torch.Generator().manual_seed(17)
    answered = 0
    for _ in range(600):
        shape = [int(size) for size in torch.randint(1, 5, (int(torch.randint(1, 5, (), generator=generator)),), generator=generator)]
        left, right = _random_operand(shape, generator), _random_operand(shape, generator)
        for op, args in [(aten.add.Tensor, (left, right)), (aten.mul.Tensor, (right, left)), (aten.mul.Scalar, (left, 0.5))]:
            by_formula = formula_for(op)(*args)
            try:
                expected = op(*args)
            except RuntimeError:
                assert by_formula is None  # shapes that do not broadcast: torch's error
                continue
            if by_formula is not None:
                answered += 1
                assert _described(by_formula) == _described(expected), (
                    op,
                    [(t.shape, t.stride()) for t in args if isinstance(t, torch.Tensor)],
                )
    assert answered > 600  # the formulas answer most of them; the rest run torch's kernel


class _Bottleneck(nn.Module):
    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels // 2)
        self.conv2 = nn.Conv2d(channels // 2, channels // 2, 3, stride=stride, padding=1, groups=2)
        self.conv3 = nn.Conv2d(channels // 2, channels, 1)
        self.down = nn.Conv2d(channels, channels, 1, stride=stride) if stride > 1 else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.conv3(torch.sigmoid(self.conv2(out))) + self.down(x))


def _models() -> list[tuple[nn.Module, torch.Tensor]]:
    cnn = nn.Sequential(
        nn.Conv2d(3, 16, 7, stride=2, padding=3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        _Bottleneck(16, 1), _Bottleneck(16, 2), nn.ConvTranspose2d(16, 8, 2, stride=2), nn.SiLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )  # fmt: skip
    return [(cnn, torch.randn(4, 3, 64, 64)), (_Decoder(), torch.randint(0, 50, (2, 9)))]


class _Decoder(nn.Module):
    """Attention written out (bmm, scaling, softmax), as minGPT-style code does."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, width)
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.up, self.down = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        weights = torch.bmm(q, k.transpose(1, 2).contiguous()) * (q.size(-1) ** -0.5)
        x = x + torch.bmm(weights.softmax(-1), v.contiguous())
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


@pytest.mark.parametrize("index", [0, 1], ids=["cnn", "transformer"])
def test_graph_shapes_are_the_same_with_and_without_formulas(index, monkeypatch):
    model, x = _models()[index]
    with_formulas = build_graph(model, x, ModuleLocator(model))
    monkeypatch.setattr(shape_formulas, "_FORMULAS", {})
    without = build_graph(model, x, ModuleLocator(model))
    assert _node_values(with_formulas) == _node_values(without)
    assert len(_node_values(without)) > 10


def _node_values(graph: Any) -> list[tuple[str, list[tuple[Any, ...]]]]:
    values = [(node.name, node.meta.get("val")) for node in graph.fx_graph.nodes]
    return [(name, _described(value)) for name, value in values if isinstance(value, (torch.Tensor, tuple)) and _all_tensors(value)]


def _all_tensors(value: Any) -> bool:
    return all(isinstance(t, torch.Tensor) for t in _outputs(value))


def test_static_lint_of_a_cnn_does_not_import_symbolic_shapes(tmp_path):
    """The point of the formulas: `nnlint --static` on a ResNet-style CNN never pays for sympy."""
    model = tmp_path / "model.py"
    model.write_text(
        textwrap.dedent("""
            import torch
            from torch import nn
            model = nn.Sequential(
                nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
            )
            example_input = torch.randn(32, 3, 32, 32)
        """)
    )
    code = (
        "import sys\nfrom nnlint.cli import main\n"
        "sys.argv = ['nnlint', '--static', '--no-isolation', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(code, 'torch.fx.experimental.symbolic_shapes' in sys.modules, 'sympy' in sys.modules, 'torch._dynamo' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "0 False False False", result.stdout + result.stderr
