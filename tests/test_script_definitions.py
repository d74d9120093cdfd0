"""A training script's definitions (the `--static` path, and the fallback when a script fails
before its first step): `if`/`elif` chains whose conditions call nothing run the branch they pick."""

from __future__ import annotations

import json
import textwrap

from test_cli_core import run

from nnlint.script.definitions import script_definitions

DCGAN = """\
    '''pytorch/examples dcgan/main.py's shape: argparse at module level, the dataset chosen by an
    if/elif chain on --dataset that also sets the image channels `nc`, read by the Generator's
    last layer; torchvision stands for a package that is not installed here.'''
    import argparse
    import torch
    import torch.nn as nn
    import torchvision_is_not_installed_here as dset

    parser = argparse.ArgumentParser()
    parser.add_argument('--dataset', required=True, help='cifar10 | mnist | fake')
    parser.add_argument('--nz', type=int, default=16)
    opt = parser.parse_args()

    if opt.dataset in ['imagenet', 'folder', 'lfw']:
        dataset = dset.ImageFolder(root='data')
        nc = 3
    elif opt.dataset == 'mnist':
        dataset = dset.MNIST(root='data', download=True)
        nc = 1
    elif opt.dataset == 'fake':
        dataset = dset.FakeData(image_size=(3, 64, 64))
        nc = 3

    nz = int(opt.nz)

    class Generator(nn.Module):
        def __init__(self, ngpu):
            super().__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.ConvTranspose2d(nz, 32, 4, 1, 0, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(True),
                nn.ConvTranspose2d(32, nc, 4, 2, 1, bias=False),
                nn.Tanh(),
            )

        def forward(self, input):
            return self.main(input)

    netG = Generator(1)

    if __name__ == '__main__':
        dataloader = torch.utils.data.DataLoader(dataset, batch_size=64)
        optimizer = torch.optim.Adam(netG.parameters())
        for data in dataloader:
            optimizer.zero_grad()
            netG(torch.randn(64, nz, 1, 1)).mean().backward()
            optimizer.step()
"""


def test_the_branch_an_argument_picks_sets_what_the_models_read(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(DCGAN))
    for dataset, channels in (("mnist", 1), ("fake", 3)):
        with script_definitions(script, ["--dataset", dataset]) as definitions:
            namespace = vars(definitions.module)
            assert namespace["nc"] == channels
            assert "dataset" not in namespace  # the dataset constructors in the branch are not run
            assert namespace["netG"].main[3].out_channels == channels
    with script_definitions(script, ["--dataset", "cifar10"]) as definitions:
        assert "nc" not in vars(definitions.module)  # no branch taken


def test_a_script_whose_channels_are_set_beside_its_dataset_is_linted_from_its_definitions(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(DCGAN))
    code, out, err = run("--static", "--format", "json", str(script), "--", "--dataset", "fake")
    assert code == 0, err  # before: NN002, `Generator(1)` raised NameError: name 'nc' is not defined
    (target,) = json.loads(out)["targets"]
    assert target["name"] == "netG" and target["graph"] is not None and target["findings"] == []


SIAMESE = """\
    '''pytorch/examples siamese_network/main.py's shape: the model's tower is a torchvision ResNet
    built in the constructor; here the package is one that is not installed.'''
    import torch
    import torch.nn as nn
    import torchvision_is_not_installed_here as torchvision

    class SiameseNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.resnet = torchvision.models.resnet18(weights=None)
            self.fc = nn.Linear(1000, 1)

        def forward(self, input1, input2):
            return self.fc(self.resnet(input1) * self.resnet(input2))

    if __name__ == '__main__':
        model = SiameseNetwork()
        optimizer = torch.optim.Adadelta(model.parameters())
        optimizer.step()
"""


def test_a_model_that_needs_a_package_that_did_not_import_says_so_in_one_line(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(SIAMESE))
    code, out, err = run("--static", "--format", "json", str(script))
    assert code == 2
    (target,) = json.loads(out)["targets"]
    (finding,) = target["findings"]
    assert finding["code"] == "NN002"
    assert finding["message"] == (
        "`SiameseNetwork` cannot be linted: `SiameseNetwork()` raised NameError: name 'torchvision' is not defined (line 10): "
        "`torchvision` is imported at line 5, which failed here "
        "(ModuleNotFoundError: No module named 'torchvision_is_not_installed_here'); install it where nnlint runs"
    )


REMOVED_NAME = """\
    '''A Hugging Face Trainer script of the transformers 4 era (TextDataset, removed in transformers 5,
    as in many GPT-2 fine-tuning tutorials); `torch.nn` stands for the library here, so the test
    needs no transformers: the script imports a name the installed library does not have.'''
    from torch.nn import Linear, TextDataset

    train_dataset = TextDataset(file_path="train.txt", block_size=128)
    model = Linear.from_pretrained("gpt2")  # a download: not run from the definitions
    model.train()
    model(train_dataset).sum().backward()
"""


def test_a_script_that_imports_a_name_its_library_no_longer_has_is_one_line_naming_it(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(REMOVED_NAME))
    code, out, err = run(str(script))
    assert code == 2
    (line,) = [line for line in err.splitlines() if line.startswith("nnlint:")]
    assert line.startswith(
        f"nnlint: {script}: the script raised ImportError: cannot import name 'TextDataset' from 'torch.nn' at line 4 "
        "before its first optimizer step (`python main.py` fails the same way: fix the import or install what it needs)"
    )
