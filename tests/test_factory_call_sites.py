"""A module-level factory whose arguments have no defaults (lucidrains/mlp-mixer-pytorch's
`MLPMixer(*, image_size, channels, patch_size, dim, depth, num_classes)`, which returns an
nn.Sequential) is built the way a script beside it calls it, as classes already are; without such a
call it is skipped with one line that says how to name the arguments."""

from __future__ import annotations

import json
import textwrap

from click.testing import CliRunner

from nnlint.cli import main

MIXER = """\
    from torch import nn


    def FeedForward(dim, expansion_factor=4):
        inner = int(dim * expansion_factor)
        return nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Linear(inner, dim))


    def MLPMixer(*, image_size, channels, patch_size, dim, depth, num_classes):
        assert image_size % patch_size == 0, "image must be divisible by patch size"
        num_patches = (image_size // patch_size) ** 2
        return nn.Sequential(
            nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size),
            nn.Flatten(2),
            *[nn.Sequential(nn.LayerNorm(num_patches), FeedForward(num_patches)) for _ in range(depth)],
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(1),
            nn.Linear(dim, num_classes),
        )
    """

# The training script beside it, as projects that use the package write one (argparse defaults).
TRAIN = """\
    import argparse

    from mixer import MLPMixer

    parser = argparse.ArgumentParser()
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()

    model = MLPMixer(image_size=args.image_size, channels=3, patch_size=4, dim=64, depth=args.depth, num_classes=10)
    """


def _lint(path):
    return CliRunner().invoke(main, [str(path), "--static", "--format", "json", "--no-isolation"], catch_exceptions=False)


def test_a_factory_with_required_arguments_is_built_as_the_script_beside_it_calls_it(tmp_path):
    (tmp_path / "mixer.py").write_text(textwrap.dedent(MIXER))
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    result = _lint(tmp_path / "mixer.py")
    assert result.exit_code == 0, result.stderr
    (target,) = json.loads(result.stdout)["targets"]
    assert (target["name"], target["graph"], target["findings"]) == ("MLPMixer", "fx", [])
    built = "built `MLPMixer(image_size=32, channels=3, patch_size=4, dim=64, depth=2, num_classes=10)` (as train.py line 10 does)"
    assert built in target["notes"]
    # The declared image size is read from the arguments the script gave: a 32x32 image, not 224.
    assert "no example input given: inferred an input of shape 4x3x32x32 from the declared image size" in target["notes"]


def test_without_a_call_the_factory_is_built_from_made_up_arguments_with_a_note_naming_them(tmp_path):
    (tmp_path / "mixer.py").write_text(textwrap.dedent(MIXER))
    result = _lint(tmp_path / "mixer.py")
    assert result.exit_code == 0, result.stderr
    (target,) = json.loads(result.stdout)["targets"]
    # image_size is a multiple of patch_size: the first candidate assignment already holds.
    made_up = "built MLPMixer with made-up arguments image_size=32, channels=3, patch_size=4, dim=256, depth=2, num_classes=10"
    assert any(note.startswith(made_up) for note in target["notes"])
    assert any(
        "::MLPMixer(image_size=..., channels=..., patch_size=..., dim=..., depth=..., num_classes=...)" in n for n in target["notes"]
    )
