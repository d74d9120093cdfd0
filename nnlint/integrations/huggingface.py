"""`HuggingFaceWatch`: a transformers `TrainerCallback` that watches `Trainer.train()` (imports transformers when loaded)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from nnlint.report import Report
from nnlint.watch.session import Watch


class HuggingFaceWatch(TrainerCallback):  # type: ignore[misc]
    """Watches training: the same recording and NN6 findings as `nnlint watch`; `report` after it.

    Options are `nnlint.watch.Watch`'s (`sample_every`, `config`, `print_to`, `html`). The
    Trainer's `eval_loss` is taken as the validation loss, at the global step it was measured.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.watch: Watch | None = None
        self.report: Report | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        model, optimizer = kwargs.get("model"), kwargs.get("optimizer")
        self.watch = Watch(model, optimizer, name=type(model).__name__ if model is not None else None, **self.options).start()

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        metrics = kwargs.get("metrics") or {}
        if self.watch is not None and "eval_loss" in metrics:
            self.watch.log("eval_loss", float(metrics["eval_loss"]), step=state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.watch is not None:
            self.report = self.watch.finish()
