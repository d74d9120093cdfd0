"""Where one more file's cost goes with each file in its own process (issue 13): per file, the
child's user and system CPU and page faults, and the parent's, measured in one process that drives
`IsolatedFileLinter` as the CLI does (torch imported fresh, its objects frozen out of the garbage
collector), next to the same files linted in-process. Precise where bench/many_files.py's
whole-command timings drown in a loaded machine's noise. `--base REV` runs the same for a git
revision's nnlint, alternating with this checkout's.

    python bench/isolation_costs.py [--files N] [--repeat N] [--base REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from many_files import base_checkout  # noqa: E402

MEASURE = """
import gc, json, resource, shutil, sys, tempfile
from pathlib import Path
gc.disable()
import nnlint
nnlint.__path__.append(sys.argv.pop(1))  # the checkout's top-level rules/ as nnlint.rules
from nnlint import engine, isolation
import nnlint.rules
from nnlint.config import Config
import nnlint.cli
gc.freeze(); gc.enable()
mode, count, model = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
config = Config(static=True)
folder = Path(tempfile.mkdtemp())
lint = isolation.IsolatedFileLinter(fresh_process=True) if mode == "isolated" else engine.lint_file
rows = []
for index in range(count):
    path = folder / f"model_{index:03d}.py"
    shutil.copy(model, path)
    child, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    lint(path, config, explicit=True)
    child2, own2 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    rows.append([child2.ru_utime - child.ru_utime, child2.ru_stime - child.ru_stime, child2.ru_minflt - child.ru_minflt,
                 own2.ru_utime - own.ru_utime + own2.ru_stime - own.ru_stime])
shutil.rmtree(folder)
print(nnlint.__file__, nnlint.rules.__file__)
print(json.dumps([list(column) for column in zip(*rows[2:])]))
"""


def measure(checkout: Path, mode: str, files: int) -> list[list[float]]:
    """Per file after the second (the first children fill what the parent imports before the second):
    [child user s], [child system s], [child faults], [parent CPU s]."""
    model = ROOT / "bench" / "models" / "small_cnn.py"
    command = [sys.executable, "-c", MEASURE, str(checkout), mode, str(files), str(model)]
    # Run in the checkout: `python -c` finds its nnlint first, whatever the venv installed.
    where, output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=checkout).stdout.strip().splitlines()[-2:]
    assert all(Path(file).is_relative_to(checkout.resolve()) for file in where.split()), f"not the checkout's nnlint: {where}"
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--base", metavar="REV")
    options = parser.parse_args()
    print(f"load average before: {' '.join(f'{load:.2f}' for load in os.getloadavg())}; {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as base_folder:
        checkouts = {"this checkout": ROOT}
        if options.base:
            checkouts = {f"base {options.base}": base_checkout(options.base, Path(base_folder)), **checkouts}
        for _ in range(options.repeat):  # alternating, so that a change in the machine's load hits every variant
            for name, checkout in checkouts.items():
                isolated = [statistics.median(values) for values in measure(checkout, "isolated", options.files)]
                in_process = [statistics.median(values) for values in measure(checkout, "in-process", options.files)]
                child_user, child_system, faults, parent = isolated
                cost = child_user + child_system + parent - in_process[3]
                print(
                    f"{name:>20}: child user {child_user * 1000:.0f} ms, system {child_system * 1000:.0f} ms, "
                    f"{faults:.0f} faults; parent {parent * 1000:.0f} ms; in-process lint {in_process[3] * 1000:.0f} ms; "
                    f"isolation costs {cost * 1000:+.0f} ms CPU per file"
                )
    print(f"load average after: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
