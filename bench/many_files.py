"""The marginal cost of one more model file: `nnlint --static` on N files in one call versus one,
with each file in its own child process (the default) and in nnlint's own process
(`--no-isolation`), side by side in one run.

torch is imported once per nnlint process, so N files should cost far less than N runs; the
child processes are forked from that process, so isolation should add little per file.

    python bench/many_files.py [--files N] [--repeat N] [--probe]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = Path(__file__).resolve().parent / "models" / "small_cnn.py"
MODES = {"isolated (default)": [], "--no-isolation": ["--no-isolation"]}


def seconds(paths: list[Path], mode: list[str], probe: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, nnlint and the children it forks) of one run."""
    executable = shutil.which("nnlint", path=str(Path(sys.executable).parent)) or "nnlint"
    command = [executable, *([] if probe else ["--static"]), *mode, *map(str, paths)]
    cpu_before = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probe", action="store_true", help="run the probe too (default: --static)")
    options = parser.parse_args()
    one: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    many: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(options.files):
            path = Path(folder) / f"model_{index:03d}.py"
            shutil.copy(MODEL, path)
            paths.append(path)
        for _ in range(options.repeat):  # alternating, so that a change in the machine's load hits both modes
            for mode, flags in MODES.items():
                one[mode].append(seconds(paths[:1], flags, options.probe))
                many[mode].append(seconds([Path(folder)], flags, options.probe))
    marginals: dict[str, list[float]] = {}
    for mode in MODES:
        # [wall, cpu]: wall-clock time is what a user waits; CPU time is what the work costs, and is
        # what a loaded machine (other jobs taking turns on the cores) changes least.
        marginals[mode] = []
        parts = []
        for kind, index in (("wall", 0), ("cpu", 1)):
            one_s = statistics.median(run[index] for run in one[mode])
            many_s = statistics.median(run[index] for run in many[mode])
            marginal = (many_s - one_s) / (options.files - 1)
            marginals[mode].append(marginal)
            parts.append(f"{kind}: 1 file {one_s:.2f} s, {options.files} files {many_s:.2f} s, {marginal * 1000:.0f} ms per more file")
        print(f"{mode:>20}: " + "   ".join(parts))
    (isolated_wall, isolated_cpu), (in_process_wall, in_process_cpu) = marginals.values()
    print(
        f"{'isolation costs':>20}: {(isolated_wall - in_process_wall) * 1000:+.0f} ms wall, "
        f"{(isolated_cpu - in_process_cpu) * 1000:+.0f} ms CPU per file"
    )
    with tempfile.TemporaryDirectory() as folder:
        torch_threads(Path(folder))


if __name__ == "__main__":
    main()
