"""Script mode: `nnlint train.py [-- ARGS]` runs the script to its first optimizer step and lints
what it trains. The scripts under tests/scripts/ follow public training scripts (provenance in
each docstring); every test copies them into a temporary folder, where whatever they would write
(a checkpoint, a file counting the steps taken) would land."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nnlint.cli import main
from nnlint.script.capture import Capture
from nnlint.script.detect import is_training_script
from nnlint.script.models import script_models
from nnlint.script.runner import Ending, script_run

SCRIPTS = Path(__file__).parent / "scripts"


def nnlint(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def copied(tmp_path: Path, name: str) -> Path:
    shutil.copy(SCRIPTS / name, tmp_path / name)
    return tmp_path / name


def written(tmp_path: Path, text: str, name: str = "train.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def findings(stdout: str) -> dict[str, list[tuple[str, int, str | None]]]:
    document = json.loads(stdout)
    return {t["name"]: sorted((f["code"], f["location"]["line"], f["module"]) for f in t["findings"]) for t in document["targets"]}


def test_argparse_script_stops_before_its_first_step_and_lints_the_model_with_its_loss(tmp_path, process_state):
    script = copied(tmp_path, "mnist_main.py")
    code, stdout, stderr = nnlint(script, "--format", "json", "--", "--save-model", "--batch-size", "16")
    # NN302: nn.Softmax (line 23) feeds the loss the script calls `criterion`: found by its type.
    # NN205: Adadelta without weight decay (line 59) for a model with no dropout.
    assert findings(stdout) == {"Net": [("NN205", 59, None), ("NN302", 23, "softmax")]}
    assert code == 1
    notes = json.loads(stdout)["targets"][0]["notes"]
    assert "batch 16" in notes[0] and "CrossEntropyLoss at mnist_main.py:36" in notes[0]  # the script's argument arrived
    assert not (tmp_path / "steps.txt").exists()  # `except Exception` around the step did not swallow the stop
    assert not (tmp_path / "mnist_cnn.pt").exists()
    assert not [name for name in set(sys.modules) - process_state if "mnist_main" in name]


def test_a_gan_lints_both_models_each_with_its_own_optimizer(tmp_path, process_state):
    script = copied(tmp_path, "dcgan.py")
    with script_run(script, ["--batch_size", "8"]) as outcome:
        assert outcome.ending is Ending.STEPPED
        models = {m.loaded.name: m.loaded.target for m in script_models(outcome.record, outcome.namespace, script)}
        assert set(models) == {"generator", "discriminator"}
        assert models["generator"].optimizer is outcome.namespace["optimizer_G"]
        assert models["discriminator"].optimizer is outcome.namespace["optimizer_D"]
        # The generator's step judges the discriminator's output: the loss belongs to the discriminator.
        assert models["discriminator"].loss_fn is outcome.namespace["adversarial_loss"]
        assert models["generator"].loss_fn is None
        assert models["generator"].example_input.shape == (8, 16)  # the noise the generator really got
    assert not (tmp_path / "generator.pt").exists()
    code, stdout, _ = nnlint(script, "--format", "json")
    # PyTorch-GAN's `nn.BatchNorm2d(32, 0.8)` sets eps=0.8, not momentum (NN109, line 33).
    assert findings(stdout) == {"generator": [("NN109", 33, "conv_blocks.3")], "discriminator": [("NN205", 68, None)]}


def test_a_dataloader_whose_last_batch_is_one_sample_with_batchnorm_is_an_error(tmp_path):
    fixture = Path(__file__).parent.parent / "fixtures" / "train_mnist_style.py"
    script = tmp_path / "train.py"
    shutil.copy(fixture, script)
    code, stdout, _ = nnlint(script, "--format", "json", "--static", "--select", "NN105")
    assert (code, findings(stdout)) == (0, {"Net": []})  # --static lints `Net()` from the definitions: no DataLoader is built
    code, stdout, _ = nnlint(script, "--format", "json", "--select", "NN105")
    document = json.loads(stdout)
    (finding,) = document["targets"][0]["findings"]
    assert (finding["code"], finding["severity"], finding["location"]["line"]) == ("NN105", "error", 83)
    assert finding["evidence"] == {"dataset_length": 2049, "batch_size": 64, "drop_last": False, "last_batch": 1}
    code, stdout, _ = nnlint(script, "--format", "json", "--select", "NN105", "--", "--train-samples", "2048")  # the clean twin
    assert findings(stdout) == {"Net": []}
    assert code == 0


@pytest.fixture
def lightning():
    """Imported before `process_state` is taken: importing lightning sets environment variables."""
    return pytest.importorskip("lightning")


@pytest.fixture
def hf_trainer():
    pytest.importorskip("accelerate")  # transformers' Trainer needs it
    return pytest.importorskip("transformers")


@pytest.mark.slow
def test_a_lightning_trainer_fit_stops_before_its_first_step(tmp_path, lightning, process_state):
    script = copied(tmp_path, "lightning_classifier.py")
    code, stdout, _ = nnlint(script, "--format", "json")
    assert findings(stdout) == {"model": [("NN205", 31, None)]}  # Adam without weight decay, no dropout
    notes = json.loads(stdout)["targets"][0]["notes"]
    assert "loss F.cross_entropy at lightning_classifier.py:28" in notes[0]
    assert "loss_fn (cross_entropy) on example_batch" in notes[1]
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_a_hugging_face_trainer_train_stops_before_its_first_step(tmp_path, hf_trainer, process_state):
    script = copied(tmp_path, "hf_trainer.py")
    code, stdout, _ = nnlint(script, "--format", "json")
    # The same findings model-file mode reports for BERT: HF's normal(0, 0.02) init of the 16-wide
    # pooler is below NN402's scale, and the model traces with the recorder (NN001).
    assert findings(stdout) == {"BertForSequenceClassification": [("NN001", 29, None), ("NN402", 29, "bert.pooler.dense")]}
    notes = json.loads(stdout)["targets"][0]["notes"]
    assert "own loss (output['loss'])" in notes[0] and "batch 8" in notes[0]
    assert not list(tmp_path.rglob("checkpoint-*"))


# -- bad input: one line, exit 2 ------------------------------------------------------------------
MISSING_DATA = """\
    import argparse
    import numpy as np
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.fc = nn.Linear(4, hidden)

    def main():
        data = np.load("data/train.npz")
        model = Net(data["x"].shape[1])
        torch.optim.SGD(model.parameters(), lr=0.1).step()

    if __name__ == "__main__":
        main()
"""


def test_a_script_that_raises_before_its_first_step_names_its_line_and_the_error(tmp_path, process_state):
    code, stdout, stderr = nnlint(written(tmp_path, MISSING_DATA), "--format", "json")
    assert code == 2
    (line,) = stderr.strip().splitlines()
    assert "the script raised FileNotFoundError" in line and "data/train.npz" in line and "at line 12" in line
    assert "Traceback" not in stderr


def test_a_failing_script_falls_back_to_the_models_its_definitions_build(tmp_path):
    script = written(tmp_path, MISSING_DATA.replace("def __init__(self, hidden)", "def __init__(self, hidden=8)"))
    code, stdout, stderr = nnlint(script, "--format", "json")
    document = json.loads(stdout)
    assert [t["name"] for t in document["targets"]] == ["Net"]
    assert "FileNotFoundError" in document["targets"][0]["notes"][0] and "definitions" in document["targets"][0]["notes"][0]
    assert stderr == ""


def test_argparse_rejecting_the_arguments_is_one_line_not_the_scripts_usage(tmp_path):
    script = written(
        tmp_path,
        """\
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument("--data", required=True)
        args = parser.parse_args()
        loss = torch.zeros(1, requires_grad=True).sum()
        loss.backward()
        """,
    )
    code, stdout, stderr = nnlint(script)
    assert code == 2
    assert stderr.strip().splitlines() == [
        f"nnlint: {script}: the script's arguments were rejected (the following arguments are required: --data) "
        "before its first optimizer step: pass them after `--`; its definitions build no model (no model found: define a module-level "
        "instance (`model = Net()`), an nn.Module subclass whose constructor needs no arguments, or an @nnlint.target function; "
        f'or name one: nnlint "{script}::Net(...)")'
    ]
    assert "usage:" not in stdout + stderr


def test_a_script_that_exits_before_its_first_step(tmp_path):
    script = written(tmp_path, "import sys\nimport torch\nif __name__ == '__main__':\n    sys.exit(3)\n")
    code, _, stderr = nnlint(script)
    assert code == 2
    assert "the script exited (sys.exit(3)) at line 4 before its first optimizer step" in stderr


def test_a_script_that_never_steps_is_linted_from_the_modules_it_called(tmp_path):
    script = written(
        tmp_path,
        """\
        import torch
        from torch import nn

        def evaluate():
            model = nn.Sequential(nn.Linear(4, 8, bias=True), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
            model.eval()
            with torch.no_grad():
                print(model(torch.randn(32, 4)).argmax(1))

        if __name__ == "__main__":
            evaluate()
        """,
    )
    code, stdout, _ = nnlint(script, "--format", "json", "--static")
    assert code == 2  # statically there is nothing: the model is built inside a function
    code, stdout, _ = nnlint(script, "--format", "json")
    assert findings(stdout) == {"Sequential": [("NN104", 5, "0")]}
    assert "ended without an optimizer step" in json.loads(stdout)["targets"][0]["notes"][0]
    empty = written(tmp_path, "import torch\nif __name__ == '__main__':\n    print(torch.ones(2))\n", "empty.py")
    code, _, stderr = nnlint(empty)
    assert code == 2
    assert stderr.strip() == f"nnlint: {empty}: the script ended without an optimizer step, and called no model: nothing to lint"


def test_the_script_timeout_stops_a_script_that_does_not_reach_its_first_step(tmp_path):
    script = written(tmp_path, "import time\nimport torch\nif __name__ == '__main__':\n    time.sleep(60)\n")
    code, _, stderr = nnlint(script, "--script-timeout", "1")
    assert code == 2
    assert "did not reach its first optimizer step within 1 s (--script-timeout)" in stderr


# -- --static: never a training loop -------------------------------------------------------------
MODULE_LEVEL_LOOP = """\
    '''The PyTorch CIFAR-10 tutorial's shape (beginner/blitz/cifar10_tutorial.py): the training
    loop at module level, `criterion`/`optimizer` globals, a `Net` with no constructor arguments.'''
    import os
    import torch
    import torch.nn.functional as F
    from torch import nn

    HERE = os.path.dirname(os.path.abspath(__file__))
    EPOCHS = 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(12, 16)
            self.fc2 = nn.Linear(16, 4)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    for epoch in range(EPOCHS):
        optimizer.zero_grad()
        loss = criterion(net(torch.randn(8, 12)), torch.randint(0, 4, (8,)))
        loss.backward()
        optimizer.step()
        open(os.path.join(HERE, "steps.txt"), "a").write("step\\n")
"""


def test_static_lints_the_definitions_and_never_runs_the_loop(tmp_path, process_state):
    script = written(tmp_path, MODULE_LEVEL_LOOP)
    code, stdout, _ = nnlint(script, "--format", "json", "--static")
    document = json.loads(stdout)
    assert [t["name"] for t in document["targets"]] == ["net"]  # `net = Net()`: a model's construction runs
    assert document["targets"][0]["notes"][0].startswith("--static: the training script was not run; linted the script's definitions")
    assert not (tmp_path / "steps.txt").exists()
    code, stdout, _ = nnlint(script, "--format", "json")
    assert "stopped at its first optimizer step at train.py:27" in json.loads(stdout)["targets"][0]["notes"][0]
    assert not (tmp_path / "steps.txt").exists()


def test_training_scripts_are_told_from_model_files(tmp_path):
    assert is_training_script(written(tmp_path, MODULE_LEVEL_LOOP))
    assert is_training_script(written(tmp_path, "import lightning as L\nL.Trainer().fit(model)\n", "a.py"))
    assert is_training_script(written(tmp_path, "trainer = Trainer(model=m)\ntrainer.train()\n", "b.py"))
    assert not is_training_script(written(tmp_path, "from torch import nn\nmodel = nn.Linear(2, 2)\nmodel.train()\n", "c.py"))
    # nnlint's own convention (fuzz-generated files take one step at module level) stays a model file
    convention = "model = M()\nexample_batch = (x, y)\nloss_fn(model(x), y).backward()\noptimizer.step()\n"
    assert not is_training_script(written(tmp_path, convention, "d.py"))


def test_the_capture_hooks_are_removed_after_the_run(tmp_path):
    from torch.nn.modules import module as module_globals
    from torch.optim import optimizer as optimizer_globals

    backward, hooks = torch.Tensor.backward, dict(optimizer_globals._global_optimizer_pre_hooks)
    forward_hooks = dict(module_globals._global_forward_hooks)
    with script_run(written(tmp_path, MODULE_LEVEL_LOOP), capture=Capture(tmp_path)) as outcome:
        assert outcome.ending is Ending.STEPPED
    assert torch.Tensor.backward is backward
    assert dict(optimizer_globals._global_optimizer_pre_hooks) == hooks
    assert dict(module_globals._global_forward_hooks) == forward_hooks


SWITCHES_THEN_EXITS = """\
import os, sys
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

torch.set_default_dtype(torch.float64)
torch.set_default_device("meta")
torch.use_deterministic_algorithms(True)
torch.autograd.set_detect_anomaly(True)
torch.set_num_threads(1)
register_optimizer_step_pre_hook(lambda *args: None)
os.environ["TRAIN_SEED"] = "1"
sys.exit("configured, then stopped")
"""


def test_a_scripts_global_switches_are_put_back_each_only_if_it_changed(tmp_path, monkeypatch):
    from torch.optim import optimizer as optimizer_globals

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    before = (torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(), torch.is_anomaly_enabled())
    hooks = dict(optimizer_globals._global_optimizer_pre_hooks)
    try:
        with script_run(written(tmp_path, SWITCHES_THEN_EXITS)) as outcome:
            assert outcome.ending is Ending.EXITED
        after_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    assert (torch.get_default_dtype(), torch.are_deterministic_algorithms_enabled(), torch.is_anomaly_enabled()) == before
    assert torch.empty(1).device.type == "cpu"  # the default device too (the script set meta)
    assert after_threads == 2 and dict(optimizer_globals._global_optimizer_pre_hooks) == hooks
    assert "TRAIN_SEED" not in os.environ
    # A switch the script did not touch is not set again: setting determinism imports torch._inductor.
    calls: list[object] = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *args, **kwargs: calls.append(args))
    with script_run(written(tmp_path, "import sys\nsys.exit(0)\n")) as outcome:
        assert outcome.ending is Ending.EXITED
    assert calls == []


def test_a_script_without_an_optimizer_stops_after_its_first_backward(tmp_path):
    """pytorch/examples word_language_model/main.py's default: no optimizer, the update written by
    hand after `clip_grad_norm_` (`p.data.add_(p.grad, alpha=-lr)`), module-level argparse."""
    script = written(
        tmp_path,
        """\
        import argparse
        import torch
        from torch import nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=20)
        args = parser.parse_args()
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
        criterion = nn.CrossEntropyLoss()
        before = model[0].weight.detach().clone()
        for step in range(3):
            model.zero_grad()
            loss = criterion(model(torch.randn(8, 6)), torch.randint(0, 3, (8,)))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-args.lr)
            open("steps.txt", "a").write("step\\n")
        """,
    )
    with script_run(script) as outcome:
        assert outcome.ending is Ending.STEPPED
        (model,) = script_models(outcome.record, outcome.namespace, script)
        assert model.loaded.target.model is outcome.namespace["model"]
        assert model.loaded.target.optimizer is None
        assert model.loaded.target.loss_fn is outcome.namespace["criterion"]
        assert torch.equal(outcome.namespace["model"][0].weight, outcome.namespace["before"])  # the update never ran
        assert model.notes[0].startswith("script: builds no optimizer; stopped after its first backward at train.py:14")
    assert not Path("steps.txt").exists() and not (tmp_path / "steps.txt").exists()


def test_definitions_run_imports_classes_constants_and_models_but_not_argparse_or_calls(tmp_path):
    from nnlint.script.definitions import script_definitions

    script = written(
        tmp_path,
        """\
        import argparse
        import torch
        from torch import nn
        try:
            import not_installed_anywhere
        except ImportError:
            not_installed_anywhere = None
        import torchvision_is_missing_here
        HIDDEN = 8
        SIZES = (HIDDEN, HIDDEN * 2)
        parser = argparse.ArgumentParser()
        parser.add_argument("--width", type=int, default=4)
        parser.add_argument("--log", type=argparse.FileType("w"), default="log.txt")
        opt = parser.parse_args()
        device = torch.device("cpu")

        class Net(nn.Module):
            def __init__(self, hidden=HIDDEN):
                super().__init__()
                self.fc = nn.Linear(opt.width, hidden)

        net = Net(SIZES[1]).to(device)
        data = torch.load("missing.pt")
        NZ = int(opt.width) * 2
        """,
    )
    with script_definitions(script, ["--width", "6"]) as definitions:
        namespace = vars(definitions.module)
        assert namespace["NZ"] == 12  # a pure builtin's call runs
        assert namespace["SIZES"] == (8, 16) and namespace["not_installed_anywhere"] is None
        assert namespace["opt"].width == 6 and not hasattr(namespace["opt"], "log")  # FileType would open log.txt
        assert "data" not in namespace
        # The device choice runs: a forward may put its state on the global `device` (yunjey's RNN).
        assert namespace["device"] == torch.device("cpu")
        assert (namespace["net"].fc.in_features, namespace["net"].fc.out_features) == (6, 16)
        assert definitions.skipped_lines == [13, 23]  # the FileType argument, torch.load(...)
        assert definitions.failed == ["line 8: ModuleNotFoundError: No module named 'torchvision_is_missing_here'"]
        assert [t.name for t in definitions.found.targets] == ["net"]
    assert not (tmp_path / "log.txt").exists() and not Path("log.txt").exists()


def test_a_training_script_found_in_a_folder_is_not_run(tmp_path):
    written(tmp_path, MODULE_LEVEL_LOOP)
    written(tmp_path, "import torch\nif __name__ == '__main__':\n    print(torch.ones(1))\n", "tool.py")  # builds nothing: skipped quietly
    code, stdout, stderr = nnlint(tmp_path, "--format", "json")
    document = json.loads(stdout)
    assert [t["name"] for t in document["targets"]] == ["net"]
    assert document["targets"][0]["notes"][0].startswith("a training script found in a folder is not run (name it to run it)")
    assert not (tmp_path / "steps.txt").exists()
    assert (code, stderr) == (0, "")


# Informer2020 (zhouhaoyi/Informer2020, main_informer.py): the entry script parses required arguments
# at module level and hands them to an experiment class in another module, which holds the training
# loop; the entry script itself never calls backward or step and has no __main__ block.
ENTRY_SCRIPT = """
    import argparse

    from exp_main import Exp

    parser = argparse.ArgumentParser(description="forecasting")
    parser.add_argument("--model", type=str, required=True)
    parser.add_argument("--hidden", type=int, default=16)
    args = parser.parse_args()

    exp = Exp(args)
    exp.train()
"""
EXPERIMENT_MODULE = """
    import torch
    from torch import nn


    class Forecaster(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.encoder = nn.Linear(7, hidden)
            self.act = nn.ReLU()
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            return self.head(self.act(self.encoder(x)))


    class Exp:
        def __init__(self, args):
            self.model = Forecaster(args.hidden)

        def train(self):
            optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
            criterion = nn.MSELoss()
            generator = torch.Generator().manual_seed(0)
            x, y = torch.randn(32, 7, generator=generator), torch.randn(32, 1, generator=generator)
            for _ in range(3):
                optimizer.zero_grad()
                loss = criterion(self.model(x), y)
                loss.backward()
                optimizer.step()
                open("checkpoint.pt", "w").close()
"""


def test_arguments_after_double_dash_run_an_entry_script_whose_training_is_imported(tmp_path, process_state, monkeypatch):
    entry = written(tmp_path, ENTRY_SCRIPT, "main_entry.py")
    written(tmp_path, EXPERIMENT_MODULE, "exp_main.py")
    monkeypatch.chdir(tmp_path)
    assert not is_training_script(entry)  # nothing in the entry file itself trains
    code, stdout, _ = nnlint(entry, "--format", "json", "--", "--model", "mlp")
    document = json.loads(stdout)
    assert code in (0, 1)
    assert [t["name"] for t in document["targets"]] == ["Forecaster"]  # the model the optimizer holds
    assert not any(f["code"] == "NN002" for t in document["targets"] for f in t["findings"])
    assert not (tmp_path / "checkpoint.pt").exists()  # stopped before the first step


# pytorch-forecasting (jdb78/pytorch-forecasting, models/base_model.py): `forward(self, x)` takes one
# dict of tensors (encoder_cont, encoder_cat, ...), called as `self(x)`.
DICT_INPUT_SCRIPT = """
    import torch
    from torch import nn


    class Forecaster(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(8, 16)
            self.head = nn.Linear(16, 1)

        def forward(self, x):
            return self.head(torch.relu(self.encoder(x["encoder_cont"])))


    model = Forecaster()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        batch = {"encoder_cont": torch.randn(32, 8), "encoder_cat": torch.zeros(32, 2, dtype=torch.long)}
        loss = nn.functional.mse_loss(model(batch), torch.randn(32, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""


def test_a_forward_that_takes_one_dict_gets_it_as_one_argument(tmp_path, process_state, monkeypatch):
    script = written(tmp_path, DICT_INPUT_SCRIPT)
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = nnlint(script, "--format", "json")
    document = json.loads(stdout)
    assert code in (0, 1)
    assert [t["name"] for t in document["targets"]] == ["model"]
    assert not any(f["code"] == "NN002" for t in document["targets"] for f in t["findings"])
