"""Running a training script under `nnlint watch` inside the test process (fast: torch is loaded once)."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

from nnlint.config import Config
from nnlint.report import Report
from nnlint.watch.runner import run_script
from nnlint.watch.session import Watch

ROOT = Path(__file__).resolve().parent.parent
WATCH_FIXTURES = ROOT / "tests" / "data" / "watch"


def watched(script: Path, *args: str, config: Config | None = None, sample_every: int = 20) -> Report:
    """The report `nnlint watch script ARGS` prints (the script's own output swallowed)."""
    watch = Watch(sample_every=sample_every, config=config or Config(), print_to=None, script=str(script))
    with watch, contextlib.redirect_stderr(io.StringIO()):
        ended = run_script(script, list(args))
    assert ended.crash is None, f"{script.name} failed: {ended.crash}"
    assert watch.report is not None
    return watch.report


def found(report: Report) -> Counter[tuple[str, int]]:
    return Counter((f.code, f.location.line if f.location else 0) for f in report.findings)
