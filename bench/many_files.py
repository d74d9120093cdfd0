"""The marginal cost of one more model file: `nnlint --static` on N files in one call versus one,
with each file in its own child process (the default) and in nnlint's own process
(`--no-isolation`), side by side in one run; with `--base REV`, the same for the nnlint of a git
revision, alternating with this checkout's (medians; the load average before and after).

torch is imported once per nnlint process, so N files should cost far less than N runs; the
child processes are forked from that process, so isolation should add little per file.

A checkout that has `--jobs` is measured isolated both with `--jobs 1` (one child after the
other) and with its default (as many children at once as the CPUs nnlint may use); a base
revision without it, isolated as it lints (one after the other).

    python bench/many_files.py [--files N] [--repeat N] [--probe] [--base REV ...]
    python bench/many_files.py --files 20 --repeat 5 --base 6f5b72f    # issue 13's figures
    python bench/many_files.py --files 20 --repeat 5 --base 6f5b72f --base be0c4ae  # and main before the fork server's 2026-12-07 changes
    python bench/many_files.py --files 20 --repeat 5 --base be0c4ae --base 290874d  # --jobs (third 2026-12-07 session)
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "bench" / "models" / "small_cnn.py"
MODES = {"isolated (default)": [], "--no-isolation": ["--no-isolation"]}
# A checkout with --jobs: isolated one child after the other, and its default (children at once).
JOBS_MODES = {"isolated --jobs 1": ["--jobs", "1"], f"isolated (default: --jobs {len(os.sched_getaffinity(0))})": [], **MODES}
del JOBS_MODES["isolated (default)"]
# `nnlint` from a given checkout (its path the first argument), whatever the venv installed: run in
# the checkout, `python -c` finds its nnlint first, and its top-level rules/ as nnlint.rules (the
# layout pyproject.toml's package-dir maps).
NNLINT = [
    "-c",
    "import sys; import nnlint; nnlint.__path__.append(sys.argv.pop(1)); from nnlint.cli import main; sys.argv[0] = 'nnlint'; main()",
]


def seconds(paths: list[Path], mode: list[str], probe: bool, checkout: Path = ROOT) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, nnlint and the children it forks) of one run."""
    command = [sys.executable, *NNLINT, str(checkout), *([] if probe else ["--static"]), *mode, *map(str, paths)]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False, cwd=checkout)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr.decode(errors='replace')}")
    return elapsed, _children_cpu() - cpu_before


def _children_cpu() -> float:
    # Descendants count once they are waited for: nnlint reaps each child before it exits itself.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


MATMULS = """\
import time
import torch
from torch import nn

a = torch.randn(512, 512)
start = time.perf_counter()
for _ in range(50):
    a @ a
open(__file__ + ".out", "w").write(f"{torch.get_num_threads()} {time.perf_counter() - start:.3f}")
model = nn.Linear(4, 2)
"""


def torch_threads(folder: Path) -> None:
    """torch's intra-op threads in a child of the fork server: as many, and as fast, as in-process
    (a parent that had started them before forking would leave its children hanging)."""
    first, second = folder / "a.py", folder / "b.py"  # the second child is forked after the warm-up imports
    for path in (first, second):
        path.write_text(MATMULS)
    for mode, flags in MODES.items():
        seconds([first, second], flags, probe=False)
        threads, elapsed = Path(f"{second}.out").read_text().split()
        print(f"{mode:>20}: 50 matmuls 512x512 at import: {float(elapsed):.2f} s on {threads} torch threads")


def modes_of(checkout: Path) -> dict[str, list[str]]:
    """The isolated modes a checkout has (--jobs or not), and --no-isolation."""
    return JOBS_MODES if "--jobs" in (checkout / "nnlint" / "cli.py").read_text() else MODES


def base_checkout(revision: str, folder: Path) -> Path:
    """The files of `revision` (no worktree, nothing changed in the repository)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probe", action="store_true", help="run the probe too (default: --static)")
    parser.add_argument(
        "--base", metavar="REV", action="append", default=[], help="also measure the nnlint of this git revision (repeatable), alternating"
    )
    options = parser.parse_args()
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as base_folder:
        checkouts = {f"base {revision}": base_checkout(revision, Path(base_folder) / revision) for revision in options.base}
        checkouts["this checkout"] = ROOT
        paths = []
        for index in range(options.files):
            path = Path(folder) / f"model_{index:03d}.py"
            shutil.copy(MODEL, path)
            paths.append(path)
        modes = {name: modes_of(checkout) for name, checkout in checkouts.items()}
        runs = [(name, checkout, mode, flags) for name, checkout in checkouts.items() for mode, flags in modes[name].items()]
        one: dict[tuple[str, str], list[tuple[float, float]]] = {(name, mode): [] for name, _, mode, _ in runs}
        many: dict[tuple[str, str], list[tuple[float, float]]] = {(name, mode): [] for name, _, mode, _ in runs}
        for _ in range(options.repeat):  # alternating, so that a change in the machine's load hits every variant
            for name, checkout, mode, flags in runs:
                one[name, mode].append(seconds(paths[:1], flags, options.probe, checkout))
                many[name, mode].append(seconds([Path(folder)], flags, options.probe, checkout))
    for name in checkouts:
        print(name)
        marginals: dict[str, list[float]] = {}
        for mode in modes[name]:
            # [wall, cpu]: wall-clock time is what a user waits; CPU time is what the work costs, and is
            # what a loaded machine (other jobs taking turns on the cores) changes least.
            marginals[mode] = []
            parts = []
            for kind, index in (("wall", 0), ("cpu", 1)):
                one_s = statistics.median(run[index] for run in one[name, mode])
                many_s = statistics.median(run[index] for run in many[name, mode])
                marginal = (many_s - one_s) / (options.files - 1)
                marginals[mode].append(marginal)
                parts.append(f"{kind}: 1 file {one_s:.2f} s, {options.files} files {many_s:.2f} s, {marginal * 1000:.0f} ms per more file")
            print(f"{mode:>20}: " + "   ".join(parts))
        in_process_wall, in_process_cpu = marginals["--no-isolation"]
        for mode, (isolated_wall, isolated_cpu) in marginals.items():
            if mode != "--no-isolation":
                print(
                    f"{'isolation costs':>20}: {(isolated_wall - in_process_wall) * 1000:+.0f} ms wall, "
                    f"{(isolated_cpu - in_process_cpu) * 1000:+.0f} ms CPU per file ({mode})"
                )
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as folder:
        torch_threads(Path(folder))


if __name__ == "__main__":
    main()
