"""Script mode's cost: time to nnlint's report on a training script vs the script's own time to
its first optimizer step plus the probe, side by side in one run.

    python bench/script_mode.py [--repeats 5] [--script bench/models/cnn_train.py] [--compare OTHER_CHECKOUT]

Each repeat runs, alternating, in fresh processes:
- **script**: `python cnn_train.py` up to its first optimizer step (a step pre-hook ends the
  process there): interpreter start, imports, dataset, model, one forward and backward;
- **nnlint**: `nnlint cnn_train.py --format json`, in a process that also clocks the probe
  (`nnlint.probe.run_probe`, wrapped) and reports its seconds.
Target: nnlint's wall time ≤ the script's time to its first step + the probe's time (medians).
CPU seconds (user + system, with the child processes) are printed beside them: on a shared
machine they move less than wall time.
Both nnlints start as the `nnlint` program does and are timed to the end of their process
(bench/checkout.py runs a checkout's own nnlint and rules). `--compare` also runs another
checkout's nnlint in each repeat, and checks that both report the same findings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from checkout import nnlint_in  # bench/checkout.py: a checkout's nnlint and its rules

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

# The probe runs in the child process nnlint lints the file in (forked from the one this prelude
# runs in, so it inherits the wrapper): each run appends its seconds to the file named in
# NNLINT_BENCH_PROBE_TIMES (read now: the script may change the environment while it runs), wall
# and CPU seconds.
_PROBE_CLOCK = """
import os, time
import nnlint.probe
times = os.environ["NNLINT_BENCH_PROBE_TIMES"]
original = nnlint.probe.run_probe
def timed(*args, **kwargs):
    start, cpu = time.perf_counter(), time.process_time()
    try:
        return original(*args, **kwargs)
    finally:
        with open(times, "a") as spent:
            spent.write(f"{time.perf_counter() - start} {time.process_time() - cpu}\\n")
nnlint.probe.run_probe = timed
"""


def _wall(command: list[str], cwd: str, probe_times: Path | None = None) -> tuple[Seconds, subprocess.CompletedProcess[str]]:
    """Wall and CPU seconds (user + system, the process and the children it waited for: nnlint's
    child), and the result."""
    given = {"NNLINT_BENCH_PROBE_TIMES": str(probe_times)} if probe_times else {}
    env = os.environ | {"OMP_NUM_THREADS": "1"} | given
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Seconds(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime), done


@dataclass(frozen=True)
class Seconds:
    wall: float
    cpu: float


def _nnlint(script: Path, scratch: str, spent: Path, checkout: Path) -> tuple[Seconds, Seconds, list[tuple[str, int]]]:
    """`checkout`'s nnlint's time, the probe's and the findings (code, line)."""
    seconds, done = _wall(nnlint_in(checkout, str(script), "--format", "json", prelude=_PROBE_CLOCK), scratch, spent)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        sys.exit(f"nnlint printed no JSON report (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if not report["targets"] or any(f["code"] == "NN002" for t in report["targets"] for f in t["findings"]):
        sys.exit(f"nnlint did not lint the script:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    if not spent.exists():
        sys.exit("nnlint's report came without a probe run")
    found = sorted((f["code"], f["location"]["line"]) for t in report["targets"] for f in t["findings"])
    clocked = [line.split() for line in spent.read_text().splitlines() if line.strip()]
    return seconds, Seconds(sum(float(w) for w, _ in clocked), sum(float(c) for _, c in clocked)), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--compare", type=Path, help="another nnlint checkout (its root) to run in the same alternation")
    args = parser.parse_args()
    script = args.script.resolve()
    first_steps: list[Seconds] = []
    nnlint_runs: list[Seconds] = []
    probes: list[Seconds] = []
    compared: list[Seconds] = []
    with tempfile.TemporaryDirectory() as scratch, tempfile.TemporaryDirectory() as probe_times:  # scratch: the script's cwd
        for repeat in range(args.repeats):
            first, done = _wall([sys.executable, "-c", _TO_FIRST_STEP, str(script)], scratch)
            if done.returncode != 0:
                sys.exit(f"the script did not reach its first step: exit {done.returncode}\n{done.stderr[-2000:]}")
            first_steps.append(first)
            run, probe, found = _nnlint(script, scratch, Path(probe_times) / f"probe-{repeat}.txt", ROOT)
            nnlint_runs.append(run)
            probes.append(probe)
            line = (
                f"repeat {repeat + 1}: script to first step {first.wall:.2f} s (cpu {first.cpu:.2f}), "
                f"nnlint {run.wall:.2f} s (cpu {run.cpu:.2f}; probe {probe.wall:.2f} s, cpu {probe.cpu:.2f})"
            )
            if args.compare:
                other, other_probe, other_found = _nnlint(script, scratch, Path(probe_times) / f"compared-{repeat}.txt", args.compare)
                compared.append(other)
                line += f", {args.compare.name} {other.wall:.2f} s (cpu {other.cpu:.2f}; probe {other_probe.wall:.2f} s)"
                if other_found != found:
                    sys.exit(f"the findings differ: {found} here, {other_found} in {args.compare}")
            print(f"{line}, load {os.getloadavg()[0]:.1f}", flush=True)
        if os.listdir(scratch):
            sys.exit(f"a run wrote files: {os.listdir(scratch)}")
    for clock in ("wall", "cpu"):
        first_median, run_median, probe_median = (
            statistics.median(getattr(s, clock) for s in runs) for runs in (first_steps, nnlint_runs, probes)
        )
        budget = first_median + probe_median
        verdict = "met" if run_median <= budget else "not met"
        print(
            f"median {clock}: script to first step {first_median:.2f} s + probe {probe_median:.2f} s = {budget:.2f} s; "
            f"nnlint report {run_median:.2f} s ({run_median / budget:.2f}x): target {verdict}"
            + (f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores" if clock == "wall" else "")
        )
        if compared:
            other = statistics.median(getattr(s, clock) for s in compared)
            than_other = f"this checkout {run_median / other:.2f}x its time"
            print(f"median {clock}: {args.compare} {other:.2f} s ({other / budget:.2f}x the budget); {than_other}")


if __name__ == "__main__":
    main()
