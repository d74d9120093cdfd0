"""Time to a full report (`nnlint FILE`: static checks and the probe, default options) on public-style
models, as a ratio to the floor: a Python process that imports torch and builds the same model.

The models are in bench/realworld/ (our own code, each modeled on a public repository named in its
docstring). Runs alternate floor / before / after per model, so that a busy machine slows all three
alike; "before" is nnlint imported from a git worktree of a base commit (created under /tmp if
missing), "after" this checkout. `--load` starts two busy processes beside the runs (as on a shared
CI runner) and stops them at the end. Goal: median ≤ 3×, worst ≤ 5× the floor, and no NN002.
Each row also gives the runs' CPU seconds (user + system, the child process's): on a shared
machine they move far less than wall time, so their ratios are the steadier comparison.

    python bench/realworld_time.py [--quick] [--load] [--repeat N] [--base 6f5b72f] [--only unet,vgg16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from checkout import nnlint_in  # bench/checkout.py: a checkout's nnlint and its rules

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "bench" / "realworld"
BASE_COMMIT = "6f5b72f"
TIMEOUT = 600.0  # seconds a single run may take before it counts as a failure


def floor_command(path: Path) -> list[str]:
    return [sys.executable, "-c", f"import runpy, torch; runpy.run_path({str(path)!r})"]


def lint_command(path: Path, checkout: Path) -> list[str]:
    return nnlint_in(checkout, str(path), "--format", "json")


def base_checkout(commit: str) -> Path:
    """A git worktree of `commit` (detached), made once."""
    folder = Path(f"/tmp/nnlint-base-{commit}")
    if not (folder / "nnlint").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), commit], check=True, capture_output=True)
    return folder


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], source: Path | None) -> tuple[float, str]:
    """Seconds, and what the report said: "ok", "NN002", or why there was no report. The run's CPU
    seconds are appended to CPU_SECONDS: on a shared machine they move far less than wall time."""
    cpu_start = children_cpu()
    try:
        return _timed(command, source)
    finally:
        CPU_SECONDS.append(children_cpu() - cpu_start)


CPU_SECONDS: list[float] = []


def _timed(command: list[str], source: Path | None) -> tuple[float, str]:
    environment = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if source is not None:  # nnlint imported from that checkout, ahead of the installed one
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), environment.get("PYTHONPATH")]))
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=environment, check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"timed out after {TIMEOUT:g} s"
    seconds = time.perf_counter() - start
    if source is None:
        return seconds, "ok" if result.returncode == 0 else f"exit {result.returncode}: {result.stderr.strip()[-200:]}"
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return seconds, f"exit {result.returncode}, no JSON: {result.stderr.strip()[-200:]}"
    codes = {finding["code"] for target in report.get("targets", []) for finding in target.get("findings", [])}
    return seconds, "NN002" if "NN002" in codes else "ok"


def busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each (default: --repeat)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--load", action="store_true", help="two busy processes run beside the timings")
    parser.add_argument("--base", default=BASE_COMMIT, help="the commit 'before' is (default %(default)s)")
    parser.add_argument("--no-base", action="store_true", help="time only the floor and this checkout")
    parser.add_argument("--only", help="comma-separated model names (file stems in bench/realworld/)")
    options = parser.parse_args()
    repeat = 1 if options.quick else options.repeat
    files = sorted(MODELS.glob("*.py"))
    if options.only:
        files = [path for path in files if path.stem in options.only.split(",")]
    base = None if options.no_base else base_checkout(options.base)
    busy = busy_processes(2) if options.load else []
    try:
        run(files, repeat, base, options)
    finally:
        for process in busy:
            process.kill()
            process.wait()


def run(files: list[Path], repeat: int, base: Path | None, options: argparse.Namespace) -> None:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average at start: {load}; {'with' if options.load else 'without'} two busy processes")
    print(f"{'model':<12} {'floor s':>8} {'before s':>9} {'after s':>8} {'before×':>8} {'after×':>7}  verdicts (before / after)")
    before_ratios, after_ratios = [], []
    cpu_before_ratios, cpu_after_ratios = [], []
    for path in files:
        floors, befores, afters = [], [], []
        cpu: dict[str, list[float]] = {"floor": [], "before": [], "after": []}
        verdicts: dict[str, set[str]] = {"before": set(), "after": set()}
        for index in range(repeat):
            # The order rotates, so that none of the three always runs right after another's load.
            kinds = ["floor", "before", "after"] if base is not None else ["floor", "after"]
            kinds = kinds[index % len(kinds) :] + kinds[: index % len(kinds)]
            for kind in kinds:
                if kind == "floor":
                    seconds, verdict = timed(floor_command(path), None)
                    if verdict != "ok":
                        raise SystemExit(f"{path.name}: the floor itself failed: {verdict}")
                    floors.append(seconds)
                    cpu["floor"].append(CPU_SECONDS[-1])
                    continue
                seconds, verdict = timed(lint_command(path, base if kind == "before" else ROOT), base if kind == "before" else ROOT)
                (befores if kind == "before" else afters).append(seconds)
                cpu[kind].append(CPU_SECONDS[-1])
                verdicts[kind].add(verdict)
        floor = statistics.median(floors)
        after = statistics.median(afters)
        after_ratios.append(after / floor)
        before = statistics.median(befores) if befores else float("nan")
        if befores:
            before_ratios.append(before / floor)
        said = f"{'/'.join(sorted(verdicts['before'])) or '-'} / {'/'.join(sorted(verdicts['after']))}"
        cpu_floor = statistics.median(cpu["floor"])
        cpu_after_ratios.append(statistics.median(cpu["after"]) / cpu_floor)
        if cpu["before"]:
            cpu_before_ratios.append(statistics.median(cpu["before"]) / cpu_floor)
        cpu_said = "  ".join(f"{kind} {statistics.median(values):.2f}" for kind, values in cpu.items() if values)
        print(
            f"{path.stem:<12} {floor:>8.2f} {before:>9.2f} {after:>8.2f} {before / floor:>8.2f} {after / floor:>7.2f}  {said}"
            f"   [CPU s: {cpu_said}]",
            flush=True,
        )
    for name, ratios, cpu_ratios in (("before", before_ratios, cpu_before_ratios), ("after", after_ratios, cpu_after_ratios)):
        if ratios:
            print(
                f"{name}: median {statistics.median(ratios):.2f}× the floor, worst {max(ratios):.2f}× "
                f"(CPU time: median {statistics.median(cpu_ratios):.2f}×, worst {max(cpu_ratios):.2f}×)"
            )
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; medians of {repeat} run(s), alternating")


if __name__ == "__main__":
    main()
