"""`nnlint --static FILE` against the floor: starting Python, importing torch and the file (which
builds the model). Runs alternate between the two, and the ratio of medians is reported, because
this machine is noisy. Target: ≤ 1.3× the floor.

    python bench/static_overhead.py [--repeat N] [FILE ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_FILES = [MODELS / "small_cnn.py", MODELS / "resnet50.py", MODELS / "transformer12.py"]


def floor_command(path: Path) -> list[str]:
    return [sys.executable, "-c", f"import runpy, torch; runpy.run_path({str(path)!r})"]


def nnlint_command(path: Path) -> list[str]:
    executable = shutil.which("nnlint", path=str(Path(sys.executable).parent)) or "nnlint"
    return [executable, "--static", str(path)]


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print(f"{'model':<18} {'floor s':>8} {'nnlint s':>9} {'ratio':>6}   (medians of {options.repeat}, alternating)")
    for path in options.files:
        floors, lints = [], []
        seconds(floor_command(path))  # warm the file cache
        for _ in range(options.repeat):
            floors.append(seconds(floor_command(path)))
            lints.append(seconds(nnlint_command(path)))
        floor, lint = statistics.median(floors), statistics.median(lints)
        print(f"{path.stem:<18} {floor:>8.2f} {lint:>9.2f} {lint / floor:>6.2f}")


if __name__ == "__main__":
    main()
