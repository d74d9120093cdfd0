"""The marginal cost of one more model file: `nnlint --static` on 50 files in one call versus one.

torch is imported once per process, so 50 files should cost far less than 50 runs.

    python bench/many_files.py [--files N] [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = Path(__file__).resolve().parent / "models" / "small_cnn.py"


def seconds(paths: list[Path]) -> float:
    executable = shutil.which("nnlint", path=str(Path(sys.executable).parent)) or "nnlint"
    start = time.perf_counter()
    subprocess.run([executable, "--static", *map(str, paths)], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(options.files):
            path = Path(folder) / f"model_{index:03d}.py"
            shutil.copy(MODEL, path)
            paths.append(path)
        one, many = [], []
        for _ in range(options.repeat):
            one.append(seconds(paths[:1]))
            many.append(seconds([Path(folder)]))
    one_s, many_s = statistics.median(one), statistics.median(many)
    marginal = (many_s - one_s) / (options.files - 1)
    print(
        f"1 file: {one_s:.2f} s   {options.files} files: {many_s:.2f} s   marginal per file: {marginal * 1000:.0f} ms "
        f"({marginal / one_s:.1%} of a one-file run)"
    )


if __name__ == "__main__":
    main()
