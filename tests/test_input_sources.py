"""Input inference for forwards that take more than one tensor, patchify, or reshape their input,
and the message when nothing fits. Each model follows a public project's pattern (named per test)."""

from __future__ import annotations

import itertools
import json
import textwrap

import pytest
import torch
from test_cli_core import run
from torch import nn

from nnlint.inputs import INFERRED_BATCH, InputError, InputSource, example_input_for, infer_input, input_sources
from nnlint.loader import LoadedTarget
from nnlint.targets import Target


class SiameseNetwork(nn.Module):
    """pytorch/examples siamese_network/main.py: `forward(input1, input2)` runs one tower on each
    image and classifies the concatenated features."""

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 1)

    def forward_once(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)

    def forward(self, input1: torch.Tensor, input2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(torch.cat((self.forward_once(input1), self.forward_once(input2)), 1)))


def test_a_two_input_forward_gets_one_tensor_for_each_argument():
    first, second = infer_input(SiameseNetwork())
    assert first.shape == second.shape == (INFERRED_BATCH, 1, 224, 224)


class CharRNN(nn.Module):
    """spro/char-rnn.pytorch model.py: one character per sample, `input.view(1, batch, -1)` before a
    GRU, and the hidden state from the model's own `init_hidden(batch_size)`."""

    def __init__(self, vocabulary: int = 20, hidden: int = 8) -> None:
        super().__init__()
        self.hidden_size = hidden
        self.encoder = nn.Embedding(vocabulary, hidden)
        self.rnn = nn.GRU(hidden, hidden)
        self.decoder = nn.Linear(hidden, vocabulary)

    def forward(self, input: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch_size = input.size(0)
        output, hidden = self.rnn(self.encoder(input).view(1, batch_size, -1), hidden)
        return self.decoder(output.view(batch_size, -1)), hidden

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(1, batch_size, self.hidden_size)


def test_a_forward_that_reshapes_one_token_per_sample_gets_it_with_its_hidden_state():
    tokens, hidden = infer_input(CharRNN())
    assert tokens.shape == (INFERRED_BATCH,) and tokens.dtype == torch.long
    assert hidden.shape == (1, INFERRED_BATCH, 8)


# lucidrains/vit-pytorch vit.py: keyword-only constructor arguments, the image cut into patches with
# a reshape (einops' Rearrange there) and a position embedding of exactly one image size's patches.
VIT = """
    import torch
    from torch import nn


    class Patchify(nn.Module):
        def __init__(self, patch_size):
            super().__init__()
            self.patch_size = patch_size

        def forward(self, img):
            b, c, h, w = img.shape
            p = self.patch_size
            patches = img.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
            return patches.reshape(b, (h // p) * (w // p), p * p * c)


    class ViT(nn.Module):
        def __init__(self, *, image_size, patch_size, num_classes, dim, channels=3):
            super().__init__()
            num_patches = (image_size // patch_size) ** 2
            self.to_patch_embedding = nn.Sequential(Patchify(patch_size), nn.Linear(patch_size * patch_size * channels, dim))
            self.pos_embedding = nn.Parameter(torch.randn(1, num_patches, dim))
            self.mlp_head = nn.Linear(dim, num_classes)

        def forward(self, img):
            x = self.to_patch_embedding(img) + self.pos_embedding
            return self.mlp_head(x.mean(dim=1))
"""


def test_a_patchify_model_gets_the_image_size_it_was_built_with(tmp_path):
    path = tmp_path / "vit.py"
    path.write_text(textwrap.dedent(VIT))
    code, out, err = run("--static", "--format", "json", f"{path}::ViT(image_size=40, patch_size=8, num_classes=10, dim=16, channels=1)")
    assert code == 0, err
    (target,) = json.loads(out)["targets"]
    assert target["findings"] == []
    assert "no example input given: inferred an input of shape 4x1x40x40 from the declared image size" in target["notes"]


def test_given_inputs_come_first_and_made_up_ones_name_where_they_come_from():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    loaded = LoadedTarget(Target(model, example_input=torch.zeros(2, 3, 8, 8)), "model", None, None)  # type: ignore[arg-type]
    sources = list(input_sources(loaded, (1, 3, 5, 5)))
    assert [(s.origin, s.checked) for s in sources[:2]] == [("example_input", False), ("--input-shape", False)]
    assert sources[2] == InputSource(sources[2].value, "Conv2d `0`") and sources[2].value.shape == (INFERRED_BATCH, 3, 224, 224)
    assert example_input_for(loaded, None) == (loaded.target.example_input, False)


def test_when_nothing_fits_the_message_says_what_was_tried_and_the_first_reason():
    class NeedsFixedLength(nn.Module):
        """A forward that reshapes to a size no layer declares (a flattened 7×7 grid)."""

        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(12, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.view(-1, 49))

    with pytest.raises(InputError) as caught:
        infer_input(NeedsFixedLength())
    assert str(caught.value) == (
        "cannot infer an input: the forward rejected 4x12, 4x16x12 (from Linear `fc`) "
        "(first: RuntimeError: shape '[-1, 49]' is invalid for input of size 48)"
    )


def test_a_whole_graph_is_not_a_batch_of_samples():
    """Full-batch node classification (tkipf/pygcn: sparse adjacency; Diego999/pyGAT: dense) gives
    the model all N nodes and an N×N adjacency: its nodes mix by design and are not a batch, so the
    sample-mixing check is not run and the nodes do not count as a training batch size."""
    from nnlint.inputs import holds_one_graph, no_batch_because

    nodes = 40
    features, dense = torch.rand(nodes, 5), torch.eye(nodes)
    sparse = dense.to_sparse()
    assert holds_one_graph((features, sparse)) and holds_one_graph((features, dense))
    assert "one graph" in no_batch_because(nn.Linear(5, 2), (features, sparse))
    # Not a graph: a batch of sequences with a (time, time) causal mask, a square batch of images' rows.
    tokens, causal = torch.zeros(4, 16, dtype=torch.long), torch.ones(16, 16).tril()
    assert not holds_one_graph((tokens, causal)) and not holds_one_graph(torch.rand(32, 32))
    assert no_batch_because(nn.Linear(5, 2), (tokens, causal)) is None


# jik876/hifi-gan (models.py): a multi-period discriminator for raw audio. Its forward takes real
# and generated waveforms (batch, 1, time) and folds each into 2-D (time / period, period) for
# Conv2d stacks; the deeper convolutions hold up to 1024 channels.
class _PeriodDiscriminator(nn.Module):
    def __init__(self, period: int) -> None:
        super().__init__()
        self.period = period
        channels = [1, 32, 128, 512, 1024]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)) for a, b in itertools.pairwise(channels))
        self.conv_post = nn.Conv2d(1024, 1, (3, 1), 1, padding=(1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        if t % self.period:
            pad = self.period - t % self.period
            x = nn.functional.pad(x, (0, pad), "reflect")
            t = t + pad
        x = x.view(b, c, t // self.period, self.period)
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), 0.1)
        return torch.flatten(self.conv_post(x), 1, -1)


class _MultiPeriodDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(_PeriodDiscriminator(p) for p in (2, 3, 5))

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [d(y) for d in self.discriminators], [d(y_hat) for d in self.discriminators]


def test_a_forward_that_folds_a_signal_into_2d_gets_a_signal():
    # Before: every (batch, channels, height, width) image was rejected ("too many values to
    # unpack"), and nothing else was tried: "cannot infer an input", NN002.
    y, y_hat = infer_input(_MultiPeriodDiscriminator())
    assert y.shape == y_hat.shape == (INFERRED_BATCH, 1, 8192)


def test_no_made_up_candidate_holds_more_than_16m_elements():
    # Channel counts read off the deeper convolutions (1024) at the larger image sides made
    # candidates of 4x1024x299x299 (1.5 GB each): judging forty of them took a minute.
    from nnlint.inputs import made_up_sources

    sizes = [t.numel() for source in made_up_sources(_MultiPeriodDiscriminator(), {}) for t in source.value if isinstance(t, torch.Tensor)]
    assert sizes and max(sizes) <= 2**24
