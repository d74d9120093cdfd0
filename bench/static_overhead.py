"""`nnlint --static FILE` against the floor: starting Python, importing torch and the file (which
builds the model). Runs alternate between the two, and the ratio of medians is reported, because
this machine is noisy. Target: ≤ 1.3× the floor.

    python bench/static_overhead.py [--repeat N] [--base CHECKOUT] [--all] [FILE ...]

nnlint runs from this checkout (`python -m nnlint` with the checkout first on the path). With
`--base`, a second checkout (e.g. `git worktree add --detach /tmp/base main`) runs in the same
rotation — floor, base, new — so both ratios come from the same minutes of machine load.
`--all` adds the GPT-2-small-sized decoder and the UNet to the three default models.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from checkout import nnlint_in  # bench/checkout.py: a checkout's nnlint and its rules

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "bench" / "models"
DEFAULT_FILES = [MODELS / "small_cnn.py", MODELS / "resnet50.py", MODELS / "transformer12.py"]
# The GPT-2-small decoder and the UNet of bench/realworld/ (one copy of each serves both benches).
MORE_FILES = [ROOT / "bench" / "realworld" / "gpt2_small.py", ROOT / "bench" / "realworld" / "unet.py"]


def floor_command(path: Path) -> list[str]:
    return [sys.executable, "-c", f"import runpy, torch; runpy.run_path({str(path)!r})"]


def nnlint_command(path: Path, checkout: Path) -> list[str]:
    return nnlint_in(checkout, "--static", str(path))


def seconds(command: list[str], checkout: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=checkout)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return elapsed


def load_average() -> str:
    try:
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base", type=Path, help="another checkout of nnlint to run side by side (the 'before')")
    parser.add_argument("--all", action="store_true", help="also the GPT-2-small decoder and the UNet")
    options = parser.parse_args()
    files = [path.resolve() for path in options.files] or DEFAULT_FILES + (MORE_FILES if options.all else [])
    base = options.base.resolve() if options.base else None
    print(f"load average at start: {load_average()} ({os.cpu_count()} CPUs)")
    header = f"{'model':<16} {'floor s':>8} {'nnlint s':>9} {'ratio':>6}"
    if base:
        header += f" {'base s':>7} {'base ratio':>10}"
    print(f"{header}   (medians of {options.repeat}, alternating)")
    for path in files:
        floors: list[float] = []
        lints: list[float] = []
        bases: list[float] = []
        seconds(floor_command(path))  # warm the file cache
        for _ in range(options.repeat):
            floors.append(seconds(floor_command(path)))
            if base:
                bases.append(seconds(nnlint_command(path, base), base))
            lints.append(seconds(nnlint_command(path, ROOT), ROOT))
        floor, lint = statistics.median(floors), statistics.median(lints)
        row = f"{path.stem:<16} {floor:>8.2f} {lint:>9.2f} {lint / floor:>6.2f}"
        if base:
            row += f" {statistics.median(bases):>7.2f} {statistics.median(bases) / floor:>10.2f}"
        print(row, flush=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
