"""What `nnlint watch` costs next to running the same training script plainly, side by side in one run.

    python bench/watch_overhead.py [--epochs 3] [--batches 20] [--repeats 5]

Script: bench/models/cnn_train_epochs.py (the small CIFAR-sized CNN, batch 32, SGD with momentum, cosine
schedule, a validation pass per epoch), on the CPU. Three ways, alternating, after one warm-up of
each (the first optimizer in a process imports part of torch._dynamo):
- plain: the script run in this process as `python cnn_train_epochs.py` would (runpy, `__main__`);
- watched: what `nnlint watch cnn_train_epochs.py` does (the script runner and its capture, the recorder,
  the analysis and the rendered report);
- recorder: the recorder and the analysis alone, without the script runner's capture (a Watch
  opened around the plain run, with construction lines recorded so it finds the model without
  scanning every live object) — what `with nnlint.watch(model, optimizer):` costs in code.
Each ratio is the median of the ratios of adjacent runs (a shared machine is noisy). Target: watched
≤ 1.05× plain.

Then the per-step cost alone, which is what a long run pays (the whole-run figures include fixed
costs: the script runner's setup, the analysis and the report, a fraction of a second): blocks of
`--block` training steps of the same model, alternately with and without the recorder's hooks
installed (sampling included), CPU time per block, median of adjacent ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import runpy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not

from nnlint.config import Config  # noqa: E402
from nnlint.render import OutputFormat, render  # noqa: E402
from nnlint.sources import recording_construction_sites  # noqa: E402
from nnlint.watch.runner import run_script  # noqa: E402
from nnlint.watch.session import Watch  # noqa: E402

SCRIPT = ROOT / "bench" / "models" / "cnn_train_epochs.py"


def plain(args: list[str]) -> None:
    saved = sys.argv[:]
    sys.argv = [str(SCRIPT), *args]
    try:
        runpy.run_path(str(SCRIPT), run_name="__main__")
    finally:
        sys.argv = saved


def watched(args: list[str]) -> None:
    watch = Watch(config=Config(), print_to=None, script=str(SCRIPT))
    with watch, contextlib.redirect_stderr(io.StringIO()):
        run_script(SCRIPT, args)
    assert watch.report is not None and watch.record is not None and watch.record.steps > 0
    render(watch.report, OutputFormat.TEXT)


def recorder(args: list[str]) -> None:
    with Watch(config=Config(), print_to=None) as watch, recording_construction_sites():
        plain(args)
    assert watch.record is not None and watch.record.steps > 0


def per_step(blocks: int, block: int) -> tuple[float, float]:
    """Median CPU-time ratio (recorder / plain) of adjacent blocks of steps, and the plain step's CPU time."""
    from nnlint.watch.recorder import Recorder

    namespace = runpy.run_path(str(SCRIPT), run_name="cnn_train_epochs")
    torch = namespace["torch"]
    torch.manual_seed(0)
    model = namespace["small_cnn"]()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    images, labels = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))

    def steps() -> float:
        start = time.process_time()
        for _ in range(block):
            optimizer.zero_grad()
            criterion(model(images), labels).backward()
            optimizer.step()
        return time.process_time() - start

    steps()  # warm-up
    ratios, plain_times = [], []
    for _ in range(blocks):
        base = steps()
        recorder = Recorder(model, optimizer).start()
        try:
            watched_time = steps()
        finally:
            recorder.stop()
        ratios.append(watched_time / base)
        plain_times.append(base / block)
    return statistics.median(ratios), statistics.median(plain_times)


def clock(run, args: list[str]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run(args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=15, help="per-step measurement: pairs of blocks")
    parser.add_argument("--block", type=int, default=20, help="per-step measurement: steps per block")
    parser.add_argument("--per-step-only", action="store_true")
    options = parser.parse_args()
    args = ["--epochs", str(options.epochs), "--batches", str(options.batches)]
    print(f"load average at the start: {_load()}")
    if not options.per_step_only:
        whole_runs(options, args)
    ratio, step_cpu = per_step(options.blocks, options.block)
    print(
        f"per step ({options.blocks} pairs of {options.block}-step blocks, the recorder sampling every 20 steps): "
        f"plain {step_cpu * 1000:.1f} ms CPU, recorder {ratio:.3f}x"
    )
    print(f"load average at the end: {_load()}")


def _load() -> str:
    """The 1/5/15-minute load averages: ratios measured on a busy machine move by several percent."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def whole_runs(options: argparse.Namespace, args: list[str]) -> None:
    ways = {"plain": plain, "watched": watched, "recorder": recorder}
    for run in ways.values():
        run(args)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(options.repeats):
        for name, run in ways.items():
            times[name].append(clock(run, args))
    steps = options.epochs * options.batches
    print(
        f"bench/models/cnn_train_epochs.py, {options.epochs} epochs x {options.batches} batches of 32 ({steps} steps), CPU, "
        f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, {options.repeats} repeats"
    )
    base = times["plain"]
    for name, samples in times.items():
        wall = statistics.median(w for w, _ in samples)
        ratio = statistics.median(w / b for (w, _), (b, _) in zip(samples, base, strict=True))
        cpu_ratio = statistics.median(c / b for (_, c), (_, b) in zip(samples, base, strict=True))
        print(f"  {name:<8} {wall:7.3f} s  wall {ratio:.3f}x  cpu {cpu_ratio:.3f}x")


if __name__ == "__main__":
    main()
