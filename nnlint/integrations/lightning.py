"""`LightningWatch`: a Lightning callback that watches `trainer.fit` (imports lightning when loaded)."""

from __future__ import annotations

from typing import Any

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl  # type: ignore[no-redef]

from nnlint.report import Report
from nnlint.watch.session import Watch, crash_line


class LightningWatch(pl.Callback):
    """Watches the fit: the same recording and NN6 findings as `nnlint watch`; `report` after the fit.

    Options are `nnlint.watch.Watch`'s (`sample_every`, `config`, `print_to`, `html`). A logged
    `val_loss` (`self.log("val_loss", ...)`) is taken as the validation loss; the sanity-check
    validation before training is not an evaluation.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.watch: Watch | None = None
        self.report: Report | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.watch = Watch(pl_module, optimizer, name=type(pl_module).__name__, **self.options).start()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get("val_loss")
        if self.watch is not None and value is not None and not trainer.sanity_checking:
            self.watch.log("val_loss", float(value))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.watch is not None:
            self.report = self.watch.finish()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.watch is not None:
            interrupted = isinstance(exception, KeyboardInterrupt)
            self.report = self.watch.finish(crash=None if interrupted else crash_line(exception), interrupted=interrupted)
