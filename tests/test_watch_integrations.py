"""The Lightning callback and the Hugging Face TrainerCallback on tiny models: the run is recorded
(steps, epochs, validation) and the NN6 findings come out as with `nnlint watch`. Each test skips
cleanly when its framework is not installed; importing nnlint.integrations needs neither."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset


def test_importing_the_integrations_loads_no_framework():
    check = "import sys, nnlint.integrations; print(sorted(m for m in ('lightning', 'transformers', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _classification(n: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=generator)
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_lightning_callback_records_the_fit_and_finds_validation_in_train_mode(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    from nnlint.integrations import LightningWatch

    class Classifier(pl.LightningModule):
        """A LightningModule as the Lightning docs write one, with validation that forgets nothing
        (Lightning calls eval() itself) except that this one turns dropout back on in validation."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            return loss

        def validation_step(self, batch, batch_idx):
            self.net.train()  # the mistake: dropout on while validating
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    callback = LightningWatch(print_to=None)
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(Classifier(), DataLoader(_classification(64, 1), batch_size=16), DataLoader(_classification(32, 2), batch_size=16))
    run = callback.report.targets[0].training_run
    assert run.steps == 12 and run.epochs == 3  # 64 / 16 = 4 steps an epoch
    assert [epoch for _, epoch, _ in run.validation_losses()] == [1, 2, 3]
    assert all(loss == loss for loss in run.losses)  # the loss came from inside Lightning's closure
    assert all(norm > 0 for norm in run.grad_norms)  # measured after the closure ran the backward
    assert {f.code for f in callback.report.findings} == {"NN610"}


class _Tokens(Dataset):
    def __init__(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=generator)
        self.y = (self.x[:, 0] > 0).long()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"features": self.x[i], "labels": self.y[i]}


class _TinyClassifier(nn.Module):
    """The contract Trainer needs from a model: keyword inputs, a dict with the loss."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))

    def forward(self, features, labels=None):
        logits = self.body(features)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return {"loss": loss, "logits": logits}


def test_hugging_face_callback_records_training_and_the_trainers_eval_loss(tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from nnlint.integrations import HuggingFaceWatch

    monkeypatch.setenv("WANDB_DISABLED", "true")
    callback = HuggingFaceWatch(print_to=None)
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        num_train_epochs=3,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        learning_rate=1e-2,
        disable_tqdm=True,
        logging_strategy="no",
    )
    trainer = transformers.Trainer(
        model=_TinyClassifier(), args=arguments, train_dataset=_Tokens(64, 1), eval_dataset=_Tokens(32, 2), callbacks=[callback]
    )
    trainer.train()
    run = callback.report.targets[0].training_run
    assert run.steps == 12 and run.epochs == 3
    assert [step for step, _, _ in run.validation_losses()] == [4, 8, 12]
    assert [value for _, value in run.logged["eval_loss"]] == [m["eval_loss"] for m in trainer.state.log_history if "eval_loss" in m]
    assert all(e.train_mode_modules == () for e in run.evaluations)  # the Trainer evaluates in eval mode
    assert [f.code for f in callback.report.findings if f.severity.value != "info"] == []
