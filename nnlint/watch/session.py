"""One watched run: `with nnlint.watch(model, optimizer) as run:` and what `nnlint watch` and the
framework callbacks use underneath."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import TextIO

import torch
from torch import nn

from nnlint.config import Config
from nnlint.report import Report
from nnlint.watch.recorder import DEFAULT_SAMPLE_EVERY, Recorder
from nnlint.watch.series import RunRecord

_active: list[Watch] = []  # the innermost watch receives `nnlint.watch.log(...)`


class Watch:
    """Records a training run while it is open; its `report` is ready when it closes.

    `model` and `optimizer` may be left out: the first optimizer that steps is watched, and the
    model is the module whose parameters it holds. On closing, the report is printed to
    `print_to` (stderr by default; None prints nothing) and written as HTML to `html` when given.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        *,
        sample_every: int = DEFAULT_SAMPLE_EVERY,
        config: Config | None = None,
        print_to: TextIO | None = sys.stderr,
        html: str | Path | None = None,
        name: str | None = None,
        script: str | None = None,
    ) -> None:
        self.recorder = Recorder(model, torch_optimizer(optimizer), sample_every=sample_every)
        self.config = config or Config()
        self.print_to = print_to
        self.html = Path(html) if html is not None else None
        self.name = name
        self.script = script
        self.record: RunRecord | None = None
        self.report: Report | None = None
        self._open = False

    # -- the context manager ----------------------------------------------------------------------
    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        interrupted = kind is not None and issubclass(kind, KeyboardInterrupt)
        crash = crash_line(error) if error is not None and not interrupted and not isinstance(error, SystemExit) else None
        self.finish(crash=crash, interrupted=interrupted)

    def start(self) -> Watch:
        self.recorder.start()
        _active.append(self)
        self._open = True
        return self

    def finish(self, *, crash: str | None = None, interrupted: bool = False) -> Report:
        """Stop recording and analyze what was seen (once; later calls return the same report)."""
        if not self._open:
            assert self.report is not None, "finish() before start()"
            return self.report
        self._open = False
        try:
            self.recorder.stop()
        finally:
            if self in _active:
                _active.remove(self)
        from nnlint.watch.analysis import run_report

        self.record = self.recorder.record(script=self.script, crash=crash, interrupted=interrupted)
        self.report = run_report(self.record, self.config, self.recorder.model, self.name)
        if self.is_reporting_process:
            if self.print_to is not None:
                self.report.print(self.print_to)
            if self.html is not None:
                from nnlint.render.html import render_html

                self.html.write_text(render_html(self.report), encoding="utf-8")
        return self.report

    @property
    def is_reporting_process(self) -> bool:
        """Rank 0 writes the report under torch.distributed; every process in a plain run."""
        return self.recorder.rank in (None, 0)

    @property
    def trained(self) -> bool:
        return self.recorder.step > 0

    def log(self, name: str, value: float | torch.Tensor, step: int | None = None) -> None:
        """Record a metric the heuristics cannot see (`val_loss` is taken as the validation loss)."""
        self.recorder.log(name, value, step)


def torch_optimizer(optimizer: object) -> torch.optim.Optimizer | None:
    """The torch optimizer inside a framework's wrapper (accelerate's AcceleratedOptimizer, Lightning's
    LightningOptimizer): torch's step hooks see the inner one."""
    for _ in range(4):  # wrappers may subclass Optimizer themselves (AcceleratedOptimizer does)
        inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "_optimizer", None)
        if inner is None or inner is optimizer:
            break
        optimizer = inner
    return optimizer if isinstance(optimizer, torch.optim.Optimizer) else None


def log(name: str, value: float | torch.Tensor, step: int | None = None) -> None:
    """`nnlint.watch.log("val_loss", loss)`: a metric for the innermost open watch; nothing when none is open,
    so a script can keep the call when it runs unwatched."""
    if _active:
        _active[-1].log(name, value, step)


def crash_line(error: BaseException) -> str:
    """`train.py:41: ValueError: message` — the innermost frame outside torch and nnlint, and the error."""
    from nnlint.sources import _is_internal_file

    where = ""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if not _is_internal_file(frame.filename):
            where = f"{frame.filename}:{frame.lineno}: "
            break
    message = " ".join(str(error).split())
    return f"{where}{type(error).__name__}" + (f": {message}" if message else "")
