"""A validation pass while it is being recorded: its losses on the device, its batches, the modules it
found in training mode and the BatchNorm train/eval gap of its first batch; closed into an `Evaluation`."""

from __future__ import annotations

import torch

from nnlint.watch.readback import read_back
from nnlint.watch.series import Evaluation


class OpenEvaluation:
    """A validation pass being recorded (closed by the next optimizer step)."""

    def __init__(self, step: int, epoch: int) -> None:
        self.step = step
        self.epoch = epoch
        self.losses: list[torch.Tensor] = []
        self.batches = 0
        self.train_mode_modules: tuple[str, ...] = ()
        self.gap: tuple[torch.Tensor, torch.Tensor] | None = None  # (running-statistics loss, batch-statistics loss)
        self.gap_tried = False

    def close(self) -> Evaluation:
        losses = read_back(self.losses)
        running, batch = read_back(list(self.gap)) if self.gap is not None else (None, None)
        return Evaluation(
            self.step,
            self.epoch,
            sum(losses) / len(losses) if losses else None,
            max(self.batches, len(self.losses)),
            self.train_mode_modules,
            running_statistics_loss=running,
            batch_statistics_loss=batch,
        )
