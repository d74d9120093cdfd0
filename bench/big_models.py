"""Lint LLaMA-shaped decoders built on the meta device: wall time and peak RSS, next to the floor.

The floor is what any tool must pay: importing torch and building the model on meta. Each run is a
fresh process, so peak RSS is that process's alone.

    python bench/big_models.py            # 7b and 70b
    python bench/big_models.py tiny 7b
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "scale" / "llama.py"

FLOOR = """
import json, resource, runpy, sys, time
start = time.perf_counter()
runpy.run_path(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

LINT = """
import json, resource, sys, time
start = time.perf_counter()
from pathlib import Path
from nnlint.config import Config
from nnlint.engine import lint_paths
report = lint_paths([Path(sys.argv[1])], Config(static=True))
assert not report.problems and report.targets[0].graph is not None, report
print(json.dumps({"seconds": time.perf_counter() - start, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "graph": report.targets[0].graph.value, "findings": len(report.findings)}))
"""


def measure(script: str, size: str) -> dict:
    env = {**os.environ, "LLAMA_SIZE": size}
    started = __import__("time").perf_counter()
    result = subprocess.run([sys.executable, "-c", script, str(FIXTURE)], capture_output=True, text=True, env=env, check=True)
    outcome = json.loads(result.stdout.splitlines()[-1])
    outcome["wall"] = __import__("time").perf_counter() - started  # includes interpreter start and `import torch`
    return outcome


def main(sizes: list[str]) -> None:
    print(f"{'model':>6} {'floor wall s':>12} {'nnlint wall s':>13} {'ratio':>6} {'floor RSS MiB':>13} {'nnlint RSS MiB':>14}  graph")
    for size in sizes:
        floor, lint = measure(FLOOR, size), measure(LINT, size)
        print(
            f"{size:>6} {floor['wall']:>12.2f} {lint['wall']:>13.2f} {lint['wall'] / floor['wall']:>6.2f} "
            f"{floor['peak_kib'] / 1024:>13.0f} {lint['peak_kib'] / 1024:>14.0f}  {lint['graph']}"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["7b", "70b"])
