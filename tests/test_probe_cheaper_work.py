"""The probe's work cut where a measurement does not need it (issue 17, time to a verdict): a fully
convolutional model given no input trains on smaller made-up images, and training steps that would
repeat the first exactly are left out — both only under --probe-budget, and with the same findings
as the full work (`--probe-budget none`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from expectations import FIXTURES, found_findings, lint
from probe_helpers import lint_model
from torch import nn

from nnlint.config import Config
from nnlint.inputs import PROBE_IMAGE_SIDE, smaller_probe_image

DEAD_RELU_SEGMENTATION = FIXTURES / "nn804_segmentation_dead_relu.py"
CLEAN_SEGMENTATION = FIXTURES / "clean_segmentation_encoder_decoder.py"


def _images(side: int) -> torch.Tensor:
    return torch.randn(4, 3, side, side)


class _Segmenter(nn.Module):
    """Class scores per pixel, upsampled to the input's size (an FCN)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.score = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.score(self.body(x)), size=x.shape[-2:])


class _FlattenIntoLinear(nn.Module):
    """A classifier whose Linear reads the flattened feature map: it needs the image size it was built for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 4, stride=4)
        self.fc = nn.Linear(4 * 56 * 56, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _global_pool_classifier() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


# -- smaller made-up images ------------------------------------------------------------------------
def test_a_fully_convolutional_model_gets_smaller_images_of_the_same_batch_and_channels():
    smaller = smaller_probe_image(_Segmenter(), _images(224))
    assert smaller is not None and tuple(smaller.shape) == (4, 3, PROBE_IMAGE_SIDE, PROBE_IMAGE_SIDE)


def test_models_that_need_their_image_size_or_pool_it_away_keep_the_input():
    assert smaller_probe_image(_FlattenIntoLinear(), _images(224)) is None  # rejects 64×64: a shape mismatch in `fc`
    assert smaller_probe_image(_global_pool_classifier(), _images(224)) is None  # accepts it, but its output is no image
    assert smaller_probe_image(_Segmenter(), _images(PROBE_IMAGE_SIDE)) is None  # already that small
    assert smaller_probe_image(_Segmenter(), torch.randn(4, 3, 224, 160)) is None  # not square: left alone
    assert smaller_probe_image(_Segmenter(), (_images(224), _images(224))) is None  # not one image batch


def test_the_fixture_reports_the_same_dead_relu_on_64_as_on_224_pixels_and_says_which_it_used():
    budgeted = lint(DEAD_RELU_SEGMENTATION)
    full = lint(DEAD_RELU_SEGMENTATION, probe_budget=None)
    assert found_findings(budgeted) == found_findings(full) == found_findings(lint(DEAD_RELU_SEGMENTATION, probe_budget=None))
    assert [f.code for f in budgeted.findings] == ["NN804"]
    (target,) = budgeted.targets
    assert "probe: trained on made-up 64x64 images, not 224x224: the model is fully convolutional" in " ".join(target.notes)
    assert "no example input given: inferred an input of shape 4x3x224x224 from the first layer" in target.notes  # the graph's input
    assert not any("images, not" in note for note in full.targets[0].notes)
    # The dead units were counted over 64×64 pixels' positions: 4 samples × 16 × 16 after two halvings.
    assert budgeted.findings[0].evidence["observations"] == 4 * 16 * 16
    assert full.findings[0].evidence["observations"] == 4 * 56 * 56


def test_the_clean_encoder_decoder_is_clean_at_both_sizes_with_the_same_gradient_flow_layers():
    budgeted, full = lint(CLEAN_SEGMENTATION), lint(CLEAN_SEGMENTATION, probe_budget=None)
    assert not budgeted.findings and not full.findings
    assert any("images, not 224x224" in note for note in budgeted.targets[0].notes)
    small, large = budgeted.targets[0].gradient_flow, full.targets[0].gradient_flow
    assert small is not None and large is not None
    assert [layer.module for layer in small.layers] == [layer.module for layer in large.layers]


def test_a_linear_after_flatten_is_probed_on_the_size_it_requires():
    report = lint_model(_FlattenIntoLinear())
    notes = report.targets[0].notes
    assert "no example input given: inferred an input of shape 4x3x224x224 from the first layer" in notes
    assert not any("images, not" in note for note in notes), notes
    assert any(note.startswith("probe: ") and "training step" in note for note in notes), notes  # the probe ran, at 224


def test_a_given_example_input_is_never_shrunk():
    report = lint_model(_Segmenter(), example_input=_images(224))
    assert not any("images, not" in note for note in report.targets[0].notes)


# -- training steps that would repeat the first ----------------------------------------------------
_REPEAT_NOTE = "probe: ran 1 of 3 training steps: the forward draws no random numbers"


def _steps_note(report) -> str:
    return next(note for note in report.targets[0].notes if note.startswith("probe: ") and " training step" in note and " on cpu" in note)


def test_a_forward_without_randomness_runs_one_step_and_the_note_says_why():
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    report = lint_model(model, example_input=torch.randn(8, 10))
    assert _steps_note(report).startswith("probe: 1 training step on cpu")
    assert any(note.startswith(_REPEAT_NOTE) for note in report.targets[0].notes), report.targets[0].notes
    full = lint_model(model, Config(probe_budget=None), example_input=torch.randn(8, 10))
    assert _steps_note(full).startswith("probe: 3 training steps on cpu")
    assert not any("repeat" in note for note in full.targets[0].notes)


def test_dropout_keeps_every_step():
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
    report = lint_model(model, example_input=torch.randn(8, 10))
    assert _steps_note(report).startswith("probe: 3 training steps on cpu")
    assert not any("repeat" in note for note in report.targets[0].notes)


class _SpectralNormed(nn.Module):
    """spectral_norm's power iteration writes its `u` vector in every training forward: the next
    step normalizes by a different estimate, so it is no repeat of the first."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.utils.spectral_norm(nn.Linear(10, 16))
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def test_a_buffer_the_forward_writes_keeps_every_step():
    report = lint_model(_SpectralNormed(), example_input=torch.randn(8, 10))
    assert _steps_note(report).startswith("probe: 3 training steps on cpu"), report.targets[0].notes


def test_batchnorm_running_statistics_alone_do_not_keep_the_steps():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1))
    report = lint_model(model, example_input=torch.randn(4, 3, 16, 16))
    assert _steps_note(report).startswith("probe: 1 training step on cpu"), report.targets[0].notes


class _SixHalvings(nn.Module):
    """Fully convolutional, but six stride-2 convolutions take 224 down to 4×4: at 64×64 the
    deepest map would be 1×1, one position per sample for its units' statistics."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(6):
            layers += [nn.Conv2d(3 if index == 0 else 8, 8, 3, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.score = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.score(self.body(x)), size=x.shape[-2:])


def test_a_deep_downsampling_path_keeps_the_full_size_so_its_smallest_map_keeps_positions():
    assert smaller_probe_image(_SixHalvings(), _images(224)) is not None  # accepted without the graph's smallest map
    report = lint_model(_SixHalvings())
    notes = report.targets[0].notes
    assert "no example input given: inferred an input of shape 4x3x224x224 from the first layer" in notes
    assert not any("images, not" in note for note in notes), notes
    assert any("images, not 224x224" in note for note in lint_model(_Segmenter()).targets[0].notes)


@dataclass
class _NoiseConfig:
    features: int = 10
    hidden: int = 16
    noise_std: float = 0.1
    seed: int = 1234


class _OwnGeneratorNoise(nn.Module):
    """Gaussian noise injection seeded per module for reproducible runs, the `seed_or_generator`
    argument public augmentation modules take and keep (`self.random_generator =
    torch.Generator().manual_seed(seed)`), drawn from in forward while training: the process's
    generators are untouched, yet every step draws other noise."""

    def __init__(self, config: _NoiseConfig) -> None:
        super().__init__()
        self.std = config.noise_std
        self.random_generator = torch.Generator().manual_seed(config.seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.std == 0:
            return x
        return x + self.std * torch.randn(x.shape, generator=self.random_generator, dtype=x.dtype)


class _GeneratorsInAList(nn.Module):
    """The same noise with the model's generators kept in a plain list, one per device it may run
    on (a generator cannot be a registered buffer), and picked by the input's device."""

    def __init__(self, config: _NoiseConfig) -> None:
        super().__init__()
        self.std = config.noise_std
        self.generators = [torch.Generator().manual_seed(config.seed)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = next(g for g in self.generators if g.device == x.device)
        return x + self.std * torch.randn(x.shape, generator=generator, dtype=x.dtype) if self.training else x


def _noisy_mlp(noise: nn.Module, config: _NoiseConfig) -> nn.Module:
    return nn.Sequential(nn.Linear(config.features, config.hidden), noise, nn.ReLU(), nn.Linear(config.hidden, 2))


def test_a_forward_that_draws_from_a_generator_the_model_holds_keeps_every_step():
    config = _NoiseConfig()
    for noise in (_OwnGeneratorNoise(config), _GeneratorsInAList(config)):
        model = _noisy_mlp(noise, config)
        before = [g.get_state() for g in (getattr(noise, "generators", None) or [noise.random_generator])]
        report = lint_model(model, example_input=torch.randn(8, config.features))
        assert _steps_note(report).startswith("probe: 3 training steps on cpu"), (type(noise).__name__, report.targets[0].notes)
        assert not any("repeat" in note for note in report.targets[0].notes)
        after = [g.get_state() for g in (getattr(noise, "generators", None) or [noise.random_generator])]
        assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # the user's generator is put back
    # With the noise switched off (`--noise_std 0`) the generator is held but never drawn from: a repeat.
    silent = _NoiseConfig(noise_std=0.0)
    model = _noisy_mlp(_OwnGeneratorNoise(silent), silent)
    assert _steps_note(lint_model(model, example_input=torch.randn(8, silent.features))).startswith("probe: 1 training step on cpu")
