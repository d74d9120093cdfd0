"""Model files as people write them: packages, config classes, factories, classes built by a script
beside them, objects found by type, and targets named with `file.py::expression`.

Each file here is written for the test; its docstring or a comment names the public project whose
pattern it follows. Discovery is checked through `loaded_model_file` (what was built, with which
arguments, and the notes the user sees); exit codes and one-line errors through the CLI.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from test_cli_core import run

from nnlint.errors import LoadError, NoModelError
from nnlint.loader import loaded_model_file


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def targets_of(path: Path, chosen: tuple[str, ...] = ()) -> dict[str, object]:
    with loaded_model_file(path, chosen) as loaded:
        return {t.name: t for t in loaded.targets}


# Pytorch-UNet (milesial/Pytorch-UNet): unet/__init__.py re-exports UNet, unet/unet_model.py does
# `from .unet_parts import *`, and train.py at the repository root builds
# `UNet(n_channels=3, n_classes=args.classes, bilinear=args.bilinear)` from argparse.
UNET_PARTS = """
    import torch
    from torch import nn


    class DoubleConv(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.double_conv = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )

        def forward(self, x):
            return self.double_conv(x)


    class OutConv(nn.Module):
        def __init__(self, in_channels, out_channels):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

        def forward(self, x):
            return self.conv(x)
"""
UNET_MODEL = """
    from torch import nn

    from .unet_parts import *


    class UNet(nn.Module):
        def __init__(self, n_channels, n_classes, bilinear=False):
            super().__init__()
            self.n_channels = n_channels
            self.inc = DoubleConv(n_channels, 8)
            self.outc = OutConv(8, n_classes)

        def forward(self, x):
            return self.outc(self.inc(x))
"""
UNET_TRAIN = """
    import argparse

    import torch

    from unet import UNet


    def get_args():
        parser = argparse.ArgumentParser(description="Train the UNet on images and target masks")
        parser.add_argument("--epochs", "-e", metavar="E", type=int, default=5)
        parser.add_argument("--bilinear", action="store_true", default=False, help="Use bilinear upsampling")
        parser.add_argument("--classes", "-c", type=int, default=2, help="Number of classes")
        return parser.parse_args()


    if __name__ == "__main__":
        args = get_args()
        model = UNet(n_channels=3, n_classes=args.classes, bilinear=args.bilinear)
        torch.save(model.state_dict(), "checkpoint.pth")
"""


def unet_project(root: Path) -> Path:
    write(root, "unet/__init__.py", "from .unet_model import UNet\n")
    write(root, "unet/unet_parts.py", UNET_PARTS)
    write(root, "train.py", UNET_TRAIN)
    return write(root, "unet/unet_model.py", UNET_MODEL)


def test_a_file_inside_a_package_imports_as_its_member_and_takes_the_scripts_arguments(tmp_path):
    path = unet_project(tmp_path)
    path_before, modules_before, argv_before = list(sys.path), set(sys.modules), list(sys.argv)
    with loaded_model_file(path) as loaded:
        assert [t.name for t in loaded.targets] == ["UNet"]  # DoubleConv, OutConv: building blocks
        unet = loaded.targets[0]
        assert unet.target.model.outc.conv.out_channels == 2  # args.classes' default
        assert unet.notes == ["built `UNet(n_channels=3, n_classes=2, bilinear=False)` (as train.py line 18 does)"]
        assert type(unet.target.model).__module__ == "unet.unet_model"
        assert unet.location.line == 6
    assert sys.path == path_before and sys.argv == argv_before
    assert not {"unet", "unet.unet_model", "unet.unet_parts"} & set(sys.modules) - modules_before
    assert not (tmp_path / "checkpoint.pth").exists()  # train.py is read, never run


def test_a_package_whose_init_fails_still_imports_the_file(tmp_path):
    """vit-pytorch's __init__.py imports every model, one of which needs a library not installed."""
    write(tmp_path, "vit_pytorch/__init__.py", "from vit_pytorch.vit import ViT\nfrom vit_pytorch.dino import Dino\n")
    write(tmp_path, "vit_pytorch/dino.py", "import not_installed_library\n")
    write(tmp_path, "vit_pytorch/helpers.py", "def pair(t):\n    return t if isinstance(t, tuple) else (t, t)\n")
    path = write(
        tmp_path,
        "vit_pytorch/vit.py",
        """
        from torch import nn

        from .helpers import pair


        class ViT(nn.Module):
            def __init__(self, image_size=8):
                super().__init__()
                self.to_patch = nn.Linear(pair(image_size)[0], 4)

            def forward(self, x):
                return self.to_patch(x)
        """,
    )
    assert list(targets_of(path)) == ["ViT"]


# nanoGPT (karpathy/nanoGPT, model.py): `GPT(config)` with a `GPTConfig` dataclass whose fields all
# have defaults; minGPT's `NewGELU` is built in MLP's __init__ and must not become a target.
NANOGPT = """
    from dataclasses import dataclass

    import torch
    import torch.nn as nn
    from torch.nn import functional as F


    class NewGELU(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * torch.pow(x, 3.0))))


    class MLP(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
            self.gelu = NewGELU()
            self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))


    class Block(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ln = nn.LayerNorm(config.n_embd)
            self.mlp = MLP(config)

        def forward(self, x):
            return x + self.mlp(self.ln(x))


    @dataclass
    class GPTConfig:
        block_size: int = 32
        vocab_size: int = 64
        n_layer: int = 2
        n_embd: int = 16


    class GPT(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)

        def forward(self, idx, targets=None):
            x = self.wte(idx)
            for block in self.h:
                x = block(x)
            return self.lm_head(x)
"""


def test_a_config_argument_is_built_from_the_files_config_class(tmp_path):
    path = write(tmp_path, "model.py", NANOGPT)
    targets = targets_of(path)
    assert list(targets) == ["GPT"]  # not NewGELU, MLP or Block
    assert targets["GPT"].notes == ["built `GPT(GPTConfig())` (its config from GPTConfig's defaults)"]
    assert len(targets["GPT"].target.model.h) == 2


# llama2.c (karpathy/llama2.c, model.py): `Transformer(params: ModelArgs)`, a dataclass whose fields
# all have defaults; the argument is not called `config`, its annotation says what it is.
LLAMA2C = """
    from dataclasses import dataclass

    import torch.nn as nn


    @dataclass
    class ModelArgs:
        dim: int = 16
        n_layers: int = 2
        vocab_size: int = 32


    class Transformer(nn.Module):
        def __init__(self, params: ModelArgs):
            super().__init__()
            self.tok_embeddings = nn.Embedding(params.vocab_size, params.dim)
            self.layers = nn.ModuleList(nn.Linear(params.dim, params.dim) for _ in range(params.n_layers))
            self.output = nn.Linear(params.dim, params.vocab_size, bias=False)

        def forward(self, tokens):
            h = self.tok_embeddings(tokens)
            for layer in self.layers:
                h = layer(h)
            return self.output(h)
"""


def test_an_argument_annotated_with_the_files_config_class_is_built_from_it(tmp_path):
    path = write(tmp_path, "model.py", LLAMA2C)
    targets = targets_of(path)
    assert list(targets) == ["Transformer"]
    assert targets["Transformer"].notes == ["built `Transformer(ModelArgs())` (its params from ModelArgs's defaults)"]
    assert len(targets["Transformer"].target.model.layers) == 2


def test_an_unannotated_argument_of_another_name_is_not_guessed(tmp_path):
    path = write(tmp_path, "model.py", LLAMA2C.replace("params: ModelArgs", "params"))
    code, _, err = run("--static", str(path))
    assert code == 2
    assert 'nnlint "' in err and "::Transformer(params=...)" in err


def test_a_named_expression_builds_the_target_in_the_files_namespace(tmp_path):
    path = write(tmp_path, "model.py", NANOGPT)
    targets = targets_of(path, ("GPT(GPTConfig(n_layer=1))", "GPT"))
    assert list(targets) == ["GPT(GPTConfig(n_layer=1))", "GPT"]
    assert len(targets["GPT(GPTConfig(n_layer=1))"].target.model.h) == 1
    assert len(targets["GPT"].target.model.h) == 2


def test_the_command_line_and_the_config_name_targets(tmp_path):
    path = write(tmp_path, "model.py", NANOGPT)
    code, out, err = run("--static", "--format", "json", f"{path}::GPT(GPTConfig(n_layer=1))")
    assert (code, err) == (0, "")
    assert [t["name"] for t in json.loads(out)["targets"]] == ["GPT(GPTConfig(n_layer=1))"]
    write(tmp_path, "pyproject.toml", '[tool.nnlint]\ntargets = ["model.py::GPT(GPTConfig(n_embd=8))"]\n')
    code, out, _ = run("--static", "--format", "json", "--config", str(tmp_path / "pyproject.toml"), str(path))
    assert code == 0
    assert [t["name"] for t in json.loads(out)["targets"]] == ["GPT(GPTConfig(n_embd=8))"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("Transformer", "`::Transformer`: no `Transformer` in model.py; it defines model classes NewGELU, MLP, Block, GPT"),
        ("GPT(GPTConfig(n_embd=-1))", "`::GPT(GPTConfig(n_embd=-1))` raised RuntimeError: Trying to create tensor with negative dimension"),
        ("GPTConfig()", "`::GPTConfig()` gave GPTConfig, not an nn.Module"),
        ("GPT(", "`::GPT(` is not a Python expression"),
    ],
)
def test_a_bad_named_target_is_one_line_and_exit_2(tmp_path, target, message):
    path = write(tmp_path, "model.py", NANOGPT)
    code, out, err = run("--static", f"{path}::{target}")
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_factory_that_returns_no_module_is_an_error_when_named(tmp_path):
    path = write(tmp_path, "model.py", "import torch\n\ndef make_optimizer():\n    return 'adam'\n")
    with pytest.raises(LoadError, match=r"`::make_optimizer` gave str, not an nn.Module"):
        targets_of(path, ("make_optimizer",))


@pytest.mark.parametrize("entry", ["model.py", "model.py::", "model.py::GPT(", 3], ids=["no-target", "empty", "not-python", "not-a-string"])
def test_config_targets_are_validated(tmp_path, entry):
    write(tmp_path, "pyproject.toml", f"[tool.nnlint]\ntargets = [{json.dumps(entry)}]\n")
    path = write(tmp_path, "model.py", NANOGPT)
    code, _, err = run("--static", "--config", str(tmp_path / "pyproject.toml"), str(path))
    assert code == 2
    assert "[tool.nnlint] targets:" in err


# pytorch-cifar (kuangliu/pytorch-cifar, models/resnet.py): `ResNet(block, num_blocks)` needs
# arguments; module-level factories build it; `test()` prints and must never be called.
CIFAR_RESNET = """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, in_planes, planes, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)

        def forward(self, x):
            return F.relu(self.bn1(self.conv1(x)))


    class ResNet(nn.Module):
        def __init__(self, block, num_blocks, num_classes=10):
            super().__init__()
            self.in_planes = 8
            self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
            self.layers = nn.Sequential(*[block(8, 8) for _ in range(sum(num_blocks))])
            self.linear = nn.Linear(8, num_classes)

        def forward(self, x):
            out = self.layers(self.conv1(x))
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)
            return self.linear(out)


    def ResNet18():
        return ResNet(BasicBlock, [2, 2, 2, 2])


    def ResNet34():
        return ResNet(BasicBlock, [3, 4, 6, 3])


    def test():
        net = ResNet18()
        y = net(torch.randn(1, 3, 32, 32))
        print("ran test()", y.size())
"""


def test_factories_are_targets_and_other_functions_are_never_called(tmp_path, capsys):
    path = write(tmp_path, "resnet.py", CIFAR_RESNET)
    targets = targets_of(path)
    assert list(targets) == ["ResNet18", "ResNet34"]
    assert len(targets["ResNet34"].target.model.layers) == 16
    assert targets["ResNet18"].location.line == 32
    assert "ran test()" not in capsys.readouterr().err


# pytorch/examples super_resolution: model.py's `Net(upscale_factor)`, built in main.py as
# `Net(upscale_factor=opt.upscale_factor)`, the value from argparse.
SUPER_RESOLUTION_MODEL = """
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self, upscale_factor):
            super().__init__()
            self.conv = nn.Conv2d(1, upscale_factor**2, (3, 3), (1, 1), (1, 1))
            self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

        def forward(self, x):
            return self.pixel_shuffle(self.conv(x))
"""
SUPER_RESOLUTION_MAIN = """
    import argparse

    from model import Net

    parser = argparse.ArgumentParser(description="PyTorch Super Res Example")
    parser.add_argument("--upscale_factor", type=int, {option}, help="super resolution upscale factor")
    opt = parser.parse_args()
    model = Net(upscale_factor=opt.upscale_factor)
"""


def test_a_class_is_built_with_the_argparse_defaults_of_the_script_that_builds_it(tmp_path):
    write(tmp_path, "main.py", SUPER_RESOLUTION_MAIN.replace("{option}", 'default="3"'))
    path = write(tmp_path, "model.py", SUPER_RESOLUTION_MODEL)
    net = targets_of(path)["Net"]
    assert net.notes == ["built `Net(upscale_factor=3)` (as main.py line 8 does)"]  # "3" converted by type=int
    assert net.target.model.pixel_shuffle.upscale_factor == 3


def test_a_class_whose_arguments_are_known_only_at_run_time_says_how_to_name_them(tmp_path):
    write(tmp_path, "main.py", SUPER_RESOLUTION_MAIN.replace("{option}", "required=True"))
    path = write(tmp_path, "model.py", SUPER_RESOLUTION_MODEL)
    with pytest.raises(NoModelError) as caught:
        targets_of(path)
    assert caught.value.message == (
        "no model to lint: skipped `Net`: its constructor needs arguments (upscale_factor); main.py line 8 builds it as "
        "Net(upscale_factor=opt.upscale_factor) from values known only when it runs (opt.upscale_factor); "
        f'name them: nnlint "{path}::Net(upscale_factor=...)"'
    )
    with pytest.raises(LoadError, match=r"^.*: `::Net`: its constructor needs arguments \(upscale_factor\)"):
        targets_of(path, ("Net",))
    assert targets_of(path, ("Net(upscale_factor=2)",))["Net(upscale_factor=2)"].target.model.pixel_shuffle.upscale_factor == 2


def test_a_module_level_parse_args_sees_its_defaults_not_nnlints_options(tmp_path):
    path = write(
        tmp_path,
        "model.py",
        """
        import argparse

        from torch import nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--hidden", type=int, default=6)
        args = parser.parse_args()
        model = nn.Linear(3, args.hidden)
        """,
    )
    code, out, err = run("--static", "--format", "json", str(path))
    assert code == 0, err
    assert [t["name"] for t in json.loads(out)["targets"]] == ["model"]


# PyTorch-GAN (eriklindernoren/PyTorch-GAN, implementations/gan/gan.py): two models, `optimizer_G`
# and `optimizer_D`, and the loss named `adversarial_loss`, called on the discriminator's output.
GAN = """
    import torch
    import torch.nn as nn

    latent_dim = 8


    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Linear(latent_dim, 16), nn.LeakyReLU(0.2), nn.Linear(16, 4), nn.Tanh())

        def forward(self, z):
            return self.model(z)


    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Sigmoid())

        def forward(self, img):
            return self.model(img)


    adversarial_loss = torch.nn.BCELoss()
    generator = Generator()
    discriminator = Discriminator()
    optimizer_G = torch.optim.Adam(generator.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=0.0002, betas=(0.5, 0.999))


    def discriminator_loss(real_imgs, fake_imgs, valid, fake):
        real_loss = adversarial_loss(discriminator(real_imgs), valid)
        return real_loss
"""


def test_optimizers_and_losses_are_found_by_type_and_paired_with_their_models(tmp_path):
    path = write(tmp_path, "gan.py", GAN)
    with loaded_model_file(path) as loaded:
        targets = {t.name: t.target for t in loaded.targets}
        namespace = sys.modules[type(targets["generator"].model).__module__].__dict__
        assert list(targets) == ["generator", "discriminator"]
        assert targets["generator"].optimizer is namespace["optimizer_G"]
        assert targets["discriminator"].optimizer is namespace["optimizer_D"]
        assert targets["discriminator"].loss_fn is namespace["adversarial_loss"]
        assert targets["generator"].loss_fn is None  # BCELoss on a generator's images would be a guess
        assert loaded.notes == [
            "`generator`: optimizer `optimizer_G` (Adam), found by type",
            "`discriminator`: optimizer `optimizer_D` (Adam), found by type",
            "`discriminator`: loss `adversarial_loss` (BCELoss), found by type",
        ]


def test_a_single_models_loss_and_loader_are_found_whatever_their_names(tmp_path):
    path = write(
        tmp_path,
        "classifier.py",
        """
        import torch
        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset

        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        criterion = nn.CrossEntropyLoss()
        opt_d = torch.optim.SGD(net.parameters(), lr=0.1)
        train_loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,))), batch_size=16)
        """,
    )
    target = targets_of(path)["net"].target
    assert type(target.loss_fn) is __import__("torch").nn.CrossEntropyLoss
    assert type(target.optimizer).__name__ == "SGD"
    assert target.batch_size == 16


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('batch_size = "32"', "`batch_size` must be a positive int, got '32' (str)"),
        ("batch_size = 0", "`batch_size` must be a positive int, got 0 (int)"),
        ('optimizer = "adam"', "`optimizer` must be a torch.optim.Optimizer instance"),
        (
            "optimizer = torch.optim.Adam",
            "`optimizer` must be a torch.optim.Optimizer instance (e.g. `torch.optim.Adam(model.parameters())`), got the class Adam",
        ),
        ("example_batch = (torch.randn(2, 4),)", "`example_batch` must be an (inputs, targets) pair"),
        (
            "example_input = {0: torch.randn(2, 4)}",
            "`example_input` must be a tensor, a tuple of tensors, or a dict of keyword arguments with string keys",
        ),
    ],
)
def test_reserved_names_of_the_wrong_kind_are_errors_that_say_what_was_expected(tmp_path, line, message):
    path = write(tmp_path, "m.py", f"import torch\nfrom torch import nn\n\nmodel = nn.Linear(4, 2)\n{line}\n")
    code, out, err = run("--static", "--format", "json", str(path))
    assert code == 2 == json.loads(out)["summary"]["exit_code"]
    assert message in err
    assert "Traceback" not in err


def test_a_module_getattr_that_raises_does_not_stop_discovery(tmp_path):
    """PEP 562: a lazy-import module `__getattr__` (transformers-style) may raise for any name."""
    path = write(
        tmp_path,
        "m.py",
        """
        from torch import nn

        model = nn.Linear(4, 2)


        def __getattr__(name):
            raise RuntimeError(f"lazy attribute {name} failed")
        """,
    )
    code, out, err = run("--static", "--format", "json", str(path))
    assert code == 0, err
    assert [t["name"] for t in json.loads(out)["targets"]] == ["model"]


def test_a_discovered_factory_that_returns_no_module_is_skipped_with_a_note(tmp_path):
    """A helper that returns a model's parameters (seen in training utilities) is not a target,
    and does not hide the class it builds."""
    path = write(
        tmp_path,
        "net.py",
        """
        from torch import nn


        class Net(nn.Module):
            def __init__(self, width=4):
                super().__init__()
                self.fc = nn.Linear(width, 2)

            def forward(self, x):
                return self.fc(x)


        def trainable_parameters():
            return Net().parameters()
        """,
    )
    with loaded_model_file(path) as loaded:
        assert [t.name for t in loaded.targets] == ["Net"]
        assert loaded.notes == ["skipped `trainable_parameters()`: it returned generator, not an nn.Module"]


def test_a_class_a_plain_helper_class_builds_is_still_a_model(tmp_path):
    """Training code often wraps the model in a plain class (`self.model = Net()` in a Trainer);
    that does not make Net a building block, as MLP's `NewGELU()` is."""
    path = write(
        tmp_path,
        "m.py",
        """
        from torch import nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x)


        class Trainer:
            def __init__(self):
                self.model = Net()
        """,
    )
    assert list(targets_of(path)) == ["Net"]


def test_a_required_option_takes_the_value_the_projects_readme_runs_the_script_with(tmp_path):
    """pytorch/examples super_resolution: `--upscale_factor` is required; its README trains with
    `python main.py --upscale_factor 3 --batchSize 4 ...`."""
    write(tmp_path, "main.py", SUPER_RESOLUTION_MAIN.replace("{option}", "required=True"))
    write(tmp_path, "README.md", "## Example Usage\n\n```bash\npython main.py --upscale_factor 4 --batchSize 4 --lr 0.001\n```\n")
    path = write(tmp_path, "model.py", SUPER_RESOLUTION_MODEL)
    net = targets_of(path)["Net"]
    assert net.notes == ["built `Net(upscale_factor=4)` (as main.py line 8 does; --upscale_factor 4 from the README's example command)"]
    assert net.target.model.pixel_shuffle.upscale_factor == 4


def test_a_default_configuration_too_large_for_this_machine_is_built_on_meta(tmp_path, monkeypatch):
    # llama2.c's ModelArgs() defaults describe a 7B model (28 GB of float32 weights): built for real,
    # the lint was killed by the out-of-memory killer. Here the machine is made small instead.
    from nnlint.runtime import memory

    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 10_000)  # 10 kB: the 2-layer model has 6 kB of weights
    path = write(tmp_path, "model.py", LLAMA2C)
    target = targets_of(path)["Transformer"]
    assert all(p.is_meta for p in target.target.model.parameters())
    assert target.notes[0] == "built `Transformer(ModelArgs())` (its params from ModelArgs's defaults)"
    assert target.notes[1].startswith("built `Transformer(ModelArgs())` on the meta device: its 1,568 parameters take")
    assert f'nnlint "{path}::Transformer(ModelArgs())" with smaller sizes' in target.notes[1]


def test_a_configuration_that_fits_is_built_with_real_weights(tmp_path):
    path = write(tmp_path, "model.py", LLAMA2C)
    assert not any(p.is_meta for p in targets_of(path)["Transformer"].target.model.parameters())


# lucidrains/mlp-mixer-pytorch (mlp_mixer_pytorch.py): the model is a factory with keyword-only
# sizes, `MLPMixer(*, image_size, channels, patch_size, dim, depth, num_classes, ...)`.
MIXER = """
    from torch import nn


    class PreNormResidual(nn.Module):
        def __init__(self, dim, fn):
            super().__init__()
            self.fn, self.norm = fn, nn.LayerNorm(dim)

        def forward(self, x):
            return self.fn(self.norm(x)) + x


    def MLPMixer(*, image_size, dim, depth, num_classes):
        return nn.Sequential(
            nn.Linear(image_size, dim),
            *[PreNormResidual(dim, nn.Linear(dim, dim)) for _ in range(depth)],
            nn.Linear(dim, num_classes),
        )
"""

# lukemelas/EfficientNet-PyTorch (efficientnet_pytorch/model.py): `EfficientNet()` asserts on its
# missing block arguments; the project builds it with `EfficientNet.from_name('efficientnet-b0')`.
EFFICIENTNET = """
    from torch import nn


    class EfficientNet(nn.Module):
        def __init__(self, blocks_args=None, global_params=None):
            super().__init__()
            assert isinstance(blocks_args, list), "blocks_args should be a list"
            self.blocks = nn.ModuleList(nn.Linear(global_params, global_params) for _ in blocks_args)

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

        @classmethod
        def from_name(cls, model_name):
            return cls([1, 2], {"efficientnet-b0": 8}[model_name])
"""


def test_a_factory_whose_arguments_nothing_gives_is_built_from_made_up_ones_and_says_so(tmp_path):
    path = write(tmp_path, "mixer.py", MIXER)
    code, out, _ = run("--static", "--format", "json", str(path))
    assert code == 0
    (target,) = json.loads(out)["targets"]
    made_up = (
        "built MLPMixer with made-up arguments image_size=32, dim=256, depth=2, num_classes=10: no call in the project "
        f'gives them; give yours: nnlint "{path}::MLPMixer(image_size=..., dim=..., depth=..., num_classes=...)"'
    )
    assert target["name"] == "MLPMixer" and made_up in target["notes"]
    code, out, _ = run("--static", "--format", "json", f"{path}::MLPMixer(image_size=16, dim=8, depth=2, num_classes=3)")
    assert code in (0, 1) and json.loads(out)["targets"][0]["name"].startswith("MLPMixer(")


def test_a_factory_with_an_argument_nnlint_cannot_classify_is_named_with_the_way_to_give_them(tmp_path):
    # `block` could be anything (a class, a callable): nothing is made up for it, so nothing is built.
    source = MIXER.replace(
        "def MLPMixer(*, image_size, dim, depth, num_classes):", "def MLPMixer(*, image_size, dim, depth, num_classes, block):"
    )
    path = write(tmp_path, "mixer.py", source)
    code, _, err = run("--static", str(path))
    assert code == 2
    assert (
        f'skipped `MLPMixer()`: it needs arguments (image_size, dim, depth, num_classes, block); name them: nnlint "{path}::MLPMixer('
        in err
    )


def test_a_class_whose_defaults_fail_names_its_own_constructors(tmp_path):
    path = write(tmp_path, "model.py", EFFICIENTNET)
    code, out, _ = run("--static", "--format", "json", str(path))
    assert code == 2
    problem = json.loads(out)["targets"][0]["findings"][0]["message"]
    assert "`EfficientNet()` raised AssertionError: blocks_args should be a list" in problem
    hint = f'it has its own constructors (EfficientNet.from_name(...)): name one, e.g. nnlint "{path}::EfficientNet.from_name(...)"'
    assert hint in problem
    code, out, _ = run("--static", "--format", "json", f"{path}::EfficientNet.from_name('efficientnet-b0')")
    assert code in (0, 1) and not any(f["code"] == "NN002" for f in json.loads(out)["targets"][0]["findings"])
