"""Script mode's cost: time to nnlint's report on a training script vs the script's own time to
its first optimizer step plus the probe, side by side in one run.

    python bench/script_mode.py [--repeats 5] [--script bench/models/cnn_train.py] [--compare OTHER_CHECKOUT]

Each repeat runs, alternating, in fresh processes:
- **script**: `python cnn_train.py` up to its first optimizer step (a step pre-hook ends the
  process there): interpreter start, imports, dataset, model, one forward and backward;
- **nnlint**: `nnlint cnn_train.py --format json`, in a process that also clocks the probe
  (`nnlint.probe.run_probe`, wrapped) and reports its seconds.
Target: nnlint's wall time ≤ the script's time to its first step + the probe's time (medians).
`--compare` also runs another checkout's nnlint (on PYTHONPATH) in each repeat, and checks that
both report the same findings.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = ROOT / "bench" / "models" / "cnn_train.py"

_TO_FIRST_STEP = """
import os, runpy, sys
from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(lambda *_: os._exit(0))
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
os._exit(3)  # never stepped
"""

# The probe runs in the child process nnlint lints the file in (forked from this one, so it
# inherits the wrapper): each run appends its seconds to the file named in argv[2].
_NNLINT_TIMING_THE_PROBE = """
import os, sys, time
import nnlint
if os.environ.get("NNLINT_BENCH_CHECKOUT"):  # that checkout's rules/ as nnlint.rules (bench/checkout.py says why)
    nnlint.__path__.append(os.environ["NNLINT_BENCH_CHECKOUT"])
import nnlint.probe
times = sys.argv[2]  # read now: sys.argv is the script's own while it runs
original = nnlint.probe.run_probe
def timed(*args, **kwargs):
    start = time.perf_counter()
    try:
        return original(*args, **kwargs)
    finally:
        with open(times, "a") as spent:
            spent.write(f"{time.perf_counter() - start}\\n")
nnlint.probe.run_probe = timed
from nnlint.cli import main
main([sys.argv[1], "--format", "json"], standalone_mode=False)
"""


def _wall(command: list[str], cwd: str, pythonpath: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    given = {"PYTHONPATH": str(pythonpath), "NNLINT_BENCH_CHECKOUT": str(pythonpath)} if pythonpath else {}
    env = os.environ | {"OMP_NUM_THREADS": "1"} | given
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - start, done


def _nnlint(script: Path, scratch: str, spent: Path, checkout: Path | None = None) -> tuple[float, float, list[tuple[str, int]]]:
    """nnlint's wall time, the probe's seconds and the findings (code, line), from `checkout` if given."""
    seconds, done = _wall([sys.executable, "-c", _NNLINT_TIMING_THE_PROBE, str(script), str(spent)], scratch, checkout)
    report = json.loads(done.stdout)
    if not report["targets"] or any(f["code"] == "NN002" for t in report["targets"] for f in t["findings"]):
        sys.exit(f"nnlint did not lint the script:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if not spent.exists():
        sys.exit("nnlint's report came without a probe run")
    found = sorted((f["code"], f["location"]["line"]) for t in report["targets"] for f in t["findings"])
    return seconds, sum(float(line) for line in spent.read_text().split()), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--compare", type=Path, help="another nnlint checkout (its root) to run in the same alternation")
    args = parser.parse_args()
    script = args.script.resolve()
    first_steps, nnlint_walls, probes, compared = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as probe_times:  # scratch: the script's cwd
        for repeat in range(args.repeats):
            seconds, done = _wall([sys.executable, "-c", _TO_FIRST_STEP, str(script)], scratch)
            if done.returncode != 0:
                sys.exit(f"the script did not reach its first step: exit {done.returncode}\n{done.stderr[-2000:]}")
            first_steps.append(seconds)
            seconds, probe, found = _nnlint(script, scratch, Path(probe_times) / f"probe-{repeat}.txt")
            nnlint_walls.append(seconds)
            probes.append(probe)
            line = f"repeat {repeat + 1}: script to first step {first_steps[-1]:.2f} s, nnlint {seconds:.2f} s (probe {probe:.2f} s)"
            if args.compare:
                other, other_probe, other_found = _nnlint(script, scratch, Path(probe_times) / f"compared-{repeat}.txt", args.compare)
                compared.append(other)
                line += f", {args.compare.name} {other:.2f} s (probe {other_probe:.2f} s)"
                if other_found != found:
                    sys.exit(f"the findings differ: {found} here, {other_found} in {args.compare}")
            print(f"{line}, load {os.getloadavg()[0]:.1f}")
        if os.listdir(scratch):
            sys.exit(f"a run wrote files: {os.listdir(scratch)}")
    first, wall, probe = statistics.median(first_steps), statistics.median(nnlint_walls), statistics.median(probes)
    budget = first + probe
    verdict = "met" if wall <= budget else "not met"
    print(
        f"median: script to first step {first:.2f} s + probe {probe:.2f} s = {budget:.2f} s; "
        f"nnlint report {wall:.2f} s ({wall / budget:.2f}x): target {verdict}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if compared:
        other = statistics.median(compared)
        print(f"median: {args.compare} {other:.2f} s ({other / budget:.2f}x the budget); this checkout {wall / other:.2f}x its time")


if __name__ == "__main__":
    main()
