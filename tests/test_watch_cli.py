"""`nnlint watch train.py [-- ARGS]`: exit codes, where the script's output goes, and bad endings
(a crash, sys.exit, Ctrl-C, nothing trained) — the report of what was seen, in one line what ended it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.optim import optimizer as optimizer_module
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from nnlint.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())

# A plain training loop; ENDING is replaced by how a test wants the script to end after epoch 2.
TRAIN = """
import argparse, sys
import torch
from torch import nn
from torch.optim import optimizer as optimizer_module
from torch.utils.data import DataLoader, TensorDataset

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()
torch.manual_seed(0)
x = torch.randn(256, 6)
y = x.sum(1, keepdim=True)
loader = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=16)
val_loader = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=64)
model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(args.epochs):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(xb), yb).backward()
        optimizer.step()
    with torch.no_grad():
        val = sum(nn.functional.mse_loss(model(xb), yb).item() for xb, yb in val_loader)
    print(f"SCRIPT epoch {epoch} validation {val:.3f}")
    if epoch == 1:
        ENDING
"""


def script(tmp_path: Path, ending: str = "pass") -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN.replace("ENDING", ending))
    return path


def watch(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["watch", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_validates_and_the_script_output_goes_to_stderr(tmp_path):
    code, out, err = watch("--format", "json", str(script(tmp_path)), "--", "--epochs", "3")
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    (target,) = report["targets"]
    run = target["training_run"]
    assert run["steps"] == 36 and run["epochs"] == 3 and len(run["validation"]) == 3  # 192 / 16 = 12 steps an epoch
    assert [point[0] for point in run["loss"]] == list(range(1, 37))
    assert "SCRIPT epoch 2" in err and "SCRIPT" not in out
    assert all(f["phase"] == "watch" for f in target["findings"])
    assert code == report["summary"]["exit_code"]


def test_text_report_on_stdout_and_the_script_output_on_stderr(tmp_path):
    code, out, err = watch(str(script(tmp_path)), "--", "--epochs", "2")
    assert "SCRIPT epoch 1" in err and "SCRIPT" not in out and "training run: 24 steps, 2 epochs" in out
    assert "validation loss" in out and "learning rate" in out
    assert code == 0


def test_a_crash_reports_what_ran_and_passes_the_exit_code_through(tmp_path):
    code, out, err = watch(str(script(tmp_path, "raise ValueError('bad batch')")))
    assert code == 1  # what `python train.py` exits with on an uncaught exception
    assert "training run: 24 steps, 2 epochs" in out
    note = " ".join(out.split())  # the note is wrapped to the terminal width
    assert f"the script crashed after 24 steps: {tmp_path / 'train.py'}:27: ValueError: bad batch" in note
    assert err.strip().splitlines()[-1] == f"nnlint: the script crashed: {tmp_path / 'train.py'}:27: ValueError: bad batch"
    assert "Traceback" not in err


def test_sys_exit_code_is_passed_through(tmp_path):
    code, out, _ = watch(str(script(tmp_path, "sys.exit(3)")))
    assert code == 3 and "training run: 24 steps, 2 epochs" in out


def test_ctrl_c_reports_what_ran_and_exits_130(tmp_path):
    code, out, err = watch(str(script(tmp_path, "raise KeyboardInterrupt")))
    assert code == 130
    assert "interrupted (Ctrl-C) after 24 steps" in " ".join(out.split())
    assert "interrupted" in err and "Traceback" not in err


def test_a_script_that_trains_nothing_says_so_in_one_line(tmp_path):
    path = tmp_path / "infer.py"
    path.write_text("import torch\nmodel = torch.nn.Linear(2, 2)\nprint(model(torch.ones(1, 2)).shape)\n")
    code, out, err = watch(str(path))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "torch.Size([1, 2])",
        f"nnlint: {path}: no torch optimizer stepped: nothing was trained that nnlint can watch",
    ]


def test_a_missing_script_exits_2(tmp_path):
    code, _, err = watch(str(tmp_path / "nope.py"))
    assert code == 2 and "no such file" in err


def test_html_report_is_one_self_contained_file_with_the_plots(tmp_path):
    page = tmp_path / "report.html"
    code, _, _ = watch("--html", str(page), str(script(tmp_path)), "--", "--epochs", "2")
    text = page.read_text()
    assert code == 0
    assert text.count("<svg") == 3 and text.count('class="series"') >= 4  # loss (train, val), LR, per-layer gradient norms
    assert 'class="best"' in text and "best: epoch 2" in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    assert "<script" not in text


def test_everything_the_watch_replaced_is_put_back(tmp_path):
    originals = (
        torch.Tensor.backward,
        DataLoader.__iter__,
        _BaseDataLoaderIter.__next__,
        torch.save,
        nn.Module.load_state_dict,
        nn.functional.cross_entropy,
        nn.functional.mse_loss,
        torch.optim.Optimizer.__init__,
        torch.optim.lr_scheduler.LRScheduler.step,
        torch.optim.lr_scheduler.ReduceLROnPlateau.step,
    )
    argv, path = sys.argv[:], sys.path[:]
    assert "__call__" not in nn.modules.loss._Loss.__dict__
    for ending in ("pass", "raise ValueError('x')", "raise KeyboardInterrupt"):
        watch(str(script(tmp_path, ending)))
        assert (
            torch.Tensor.backward,
            DataLoader.__iter__,
            _BaseDataLoaderIter.__next__,
            torch.save,
            nn.Module.load_state_dict,
            nn.functional.cross_entropy,
            nn.functional.mse_loss,
            torch.optim.Optimizer.__init__,
            torch.optim.lr_scheduler.LRScheduler.step,
            torch.optim.lr_scheduler.ReduceLROnPlateau.step,
        ) == originals
        assert "__call__" not in nn.modules.loss._Loss.__dict__
        assert (sys.argv, sys.path) == (argv, path)
        assert not optimizer_module._global_optimizer_pre_hooks and not optimizer_module._global_optimizer_post_hooks


@pytest.mark.parametrize("fail_on, expected", [("warning", 0), ("info", 1)])
def test_fail_on_decides_the_exit_code_of_a_clean_ending(tmp_path, fail_on, expected):
    # One epoch of validation-free training: NN606 (info) at most; only --fail-on info makes it fail.
    path = tmp_path / "novalidation.py"
    path.write_text(TRAIN.replace("with torch.no_grad():\n        val = ", "val = 0 and ").replace("ENDING", "pass"))
    code, out, _ = watch("--fail-on", fail_on, str(path))
    assert "NN606" in out and code == expected


def test_readme_watch_excerpt_is_the_real_report(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    excerpt = re.search(r"```\n(tests/data/watch/nn601_no_early_stopping\.py :: .*?\nFound .*?\n)```", readme, re.DOTALL)
    assert excerpt, "README lost its excerpt of the watch report"
    monkeypatch.chdir(ROOT)
    code, out, _ = watch("tests/data/watch/nn601_no_early_stopping.py")
    assert code == 1 and out == excerpt.group(1)


def test_a_module_whose_hash_needs_its_own_init_can_be_built_mid_run(tmp_path):
    # torchmetrics' Metric hashes its state; Lightning's self.log builds one during training. Recording
    # construction lines must not call that __hash__ before the module's __init__ has run.
    path = tmp_path / "metric.py"
    path.write_text(
        "import torch\n"
        "class Metric(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self._defaults = {}\n"
        "    def __hash__(self):\n"
        "        return hash(tuple(self._defaults))\n"
        "model = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for step in range(3):\n"
        "    optimizer.zero_grad(); model(torch.ones(4, 2)).sum().backward(); optimizer.step()\n"
        "    metric = Metric()\n"
    )
    code, out, err = watch(str(path))
    assert code == 0 and "training run: 3 steps" in out and "crashed" not in err


def test_a_constant_learning_rate_draws_a_flat_line():
    from nnlint.watch.charts import sparkline

    assert sparkline([0.1] * 600, 48) == "▁" * 48
    assert sparkline([1.0, 2.0, 3.0, 4.0], 4) == "▁▃▅█"  # 0, 7/3, 14/3, 7 eighths of the way, rounded down
