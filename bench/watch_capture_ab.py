"""What the script runner's capture cost the watched run: `nnlint watch` on the bench CNN script with
the capture script mode uses (global module forward hooks, a record and a stack walk per step, as
the watch had it before) and with the empty one it uses now, alternating with the plain run in one
process. CPU time; each ratio is the median of the ratios of adjacent runs.

    python bench/watch_capture_ab.py [--repeats 5] [--epochs 3] [--batches 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import watch_overhead  # noqa: E402

from nnlint.config import Config  # noqa: E402
from nnlint.script.capture import Capture  # noqa: E402
from nnlint.watch import runner  # noqa: E402
from nnlint.watch.session import Watch  # noqa: E402

EMPTY_CAPTURE = runner._NothingCaptured


def watched_with(capture: type[Capture], args: list[str]) -> None:
    runner._NothingCaptured = capture  # type: ignore[misc]
    try:
        watch = Watch(config=Config(), print_to=None, script=str(watch_overhead.SCRIPT))
        with watch, contextlib.redirect_stderr(io.StringIO()):
            runner.run_script(watch_overhead.SCRIPT, args)
        assert watch.record is not None and watch.record.steps > 0
    finally:
        runner._NothingCaptured = EMPTY_CAPTURE  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    args = ["--epochs", str(options.epochs), "--batches", str(options.batches)]
    ways = {
        "plain": watch_overhead.plain,
        "full capture": lambda a: watched_with(Capture, a),
        "empty capture": lambda a: watched_with(EMPTY_CAPTURE, a),
    }
    for run in ways.values():
        run(args)  # warm-up
    print(f"load average at the start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(options.repeats):
        for name, run in ways.items():
            start = time.process_time()
            run(args)
            times[name].append(time.process_time() - start)
    for name, samples in times.items():
        ratio = statistics.median(t / p for t, p in zip(samples, times["plain"], strict=True))
        print(f"  {name:<14} {statistics.median(samples):7.3f} s CPU  {ratio:.3f}x plain")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
