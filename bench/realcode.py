"""nnlint on real code written by other people: does it get a report without edits?

A measurement, not a test. The corpus is public model files and training scripts (pytorch/examples,
nanoGPT, minGPT, PyTorch-GAN, Lightning, Hugging Face Trainer scripts, ...), each in its own folder
with the siblings it imports and the small data files it reads. It is other people's code, so it is
kept outside the repository; `bench/realcode_manifest.json` records where each case comes from
(repository, paths, commit) and the command a new user would type to lint it.

For each case this runs that command as a new user would — in a scratch copy of the case's folder,
in a subprocess, with `--format json` — and records the exit code, how many targets the report has
and how many got a graph, the codes found, the first stderr line when nnlint exits 2, the seconds
it took, and which files the run wrote (a script trained at import when it wrote a checkpoint).

A case counts as *linted* when the JSON report parses and at least one target has a graph and no
NN002 finding.

    python bench/realcode.py --corpus /path/to/realcode/public
    python bench/realcode.py --only makemore,nanogpt-model --nnlint "nnlint"
    python bench/realcode.py --include-holdout --json results.json

The cases marked `holdout` in the manifest are left out unless `--include-holdout` is given: they
are run once, at the end, so that nobody tunes to them. The corpus folder can also come from the
environment variable NNLINT_REALCODE_CORPUS.

Exit code 0 when the run completed (whatever the count), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parent / "realcode_manifest.json"
DEFAULT_TIMEOUT = 300.0
CORPUS_VARIABLE = "NNLINT_REALCODE_CORPUS"
# How many of the files a run wrote are listed: enough to see a checkpoint or a dataset download.
LISTED_WRITES = 5
# What nnlint's start-up (Python, torch, nnlint's own imports) takes before a file's time starts.
STARTUP_SECONDS = 15.0


@dataclass(frozen=True)
class Case:
    """One manifest entry: where the code comes from and how a user lints it."""

    id: str
    repo: str
    paths: list[str]
    commit: str
    kind: str
    command: str
    notes: str = ""
    holdout: bool = False
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    prepare: str = ""


@dataclass
class Outcome:
    """What one nnlint run on one case gave."""

    id: str
    exit_code: int | None
    report_parsed: bool = False
    targets: int = 0
    targets_with_graph: int = 0
    linted: bool = False
    codes: dict[str, int] = field(default_factory=dict)
    first_stderr_line: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    user_stdout_bytes: int = 0
    files_written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)  # the NN002 messages: why a target could not be linted


def load_cases(manifest: Path) -> list[Case]:
    fields = set(Case.__dataclass_fields__)
    return [Case(**{key: value for key, value in entry.items() if key in fields}) for entry in json.loads(manifest.read_text())]


def select_cases(cases: list[Case], only: list[str] | None, include_holdout: bool) -> list[Case]:
    if only:
        unknown = sorted(set(only) - {case.id for case in cases})
        if unknown:
            raise SystemExit(f"realcode: no case named {', '.join(unknown)} in the manifest")
        return [case for case in cases if case.id in only]
    return [case for case in cases if include_holdout or not case.holdout]


# -- one run ------------------------------------------------------------------------------------


def nnlint_argv(case: Case, nnlint: list[str], report_file: Path, timeout: float | None = None) -> list[str]:
    """The case's command with its `nnlint` replaced by the chosen executable and the JSON report
    sent to a file (a script's own prints on stdout must not break the report), placed before
    `--` so that they stay nnlint's options and not the script's. With `timeout`, nnlint is told
    the time it has (`--file-timeout`, less its start-up), as a user with a CI time limit would
    tell it: a slow training script is then linted from what it built before the limit."""
    words = shlex.split(case.command)
    if not words or words[0] != "nnlint":
        raise SystemExit(f"realcode: {case.id}: the command must start with 'nnlint': {case.command!r}")
    ours = ["--format", "json", "--output", str(report_file)]
    if timeout is not None and "--file-timeout" not in words:
        ours += ["--file-timeout", f"{max(timeout - STARTUP_SECONDS, timeout / 2):g}"]
    rest = words[1:]
    if "--" in rest:
        cut = rest.index("--")
        rest = [*rest[:cut], *ours, *rest[cut:]]
    else:
        rest = [*rest, *ours]
    return [*nnlint, *rest]


def case_environment(case: Case, root: Path) -> dict[str, str]:
    """The user's environment plus the case's own variables; relative paths in them (PYTHONPATH=.)
    mean the case's folder. One thread and a non-interactive matplotlib, so that a script's
    `plt.show()` cannot wait for a window."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    for name, value in case.env.items():
        env[name] = os.pathsep.join(str((root / part).resolve()) if not os.path.isabs(part) else part for part in value.split(os.pathsep))
    return env


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def run_case(case: Case, corpus: Path, nnlint: list[str], timeout: float) -> Outcome:
    source = corpus / case.id
    if not source.is_dir():
        return Outcome(case.id, exit_code=None, errors=[f"no folder {source}"])
    with tempfile.TemporaryDirectory(prefix=f"realcode-{case.id}-") as scratch:
        root = Path(scratch) / case.id
        shutil.copytree(source, root, symlinks=True)
        before = snapshot(root)
        report_file = Path(scratch) / "report.json"
        argv = nnlint_argv(case, nnlint, report_file, timeout)
        started = time.perf_counter()
        exit_code, stdout, stderr, timed_out = run_with_timeout(argv, root / case.cwd, case_environment(case, root), timeout)
        seconds = time.perf_counter() - started
        outcome = Outcome(case.id, exit_code=exit_code, seconds=round(seconds, 1), timed_out=timed_out, user_stdout_bytes=len(stdout))
        outcome.files_written = sorted(snapshot(root) - before)[:LISTED_WRITES]
        if exit_code == 2 or exit_code is None:
            outcome.first_stderr_line = first_line(stderr)
        if report_file.exists():
            read_report(report_file.read_text(errors="replace"), outcome)
    return outcome


def run_with_timeout(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int | None, bytes, str, bool]:
    """Run in a new session so that a timeout ends the whole process group (a script's DataLoader
    workers too)."""
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        return None, stdout, stderr.decode(errors="replace"), True
    return process.returncode, stdout, stderr.decode(errors="replace"), False


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def read_report(text: str, outcome: Outcome) -> None:
    try:
        report: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        return
    outcome.report_parsed = True
    targets = report.get("targets") or []
    outcome.targets = len(targets)
    codes: Counter[str] = Counter()
    for target in targets:
        target_codes = [finding["code"] for finding in target.get("findings", [])]
        codes.update(target_codes)
        outcome.unusable += [
            f"{target.get('name')}: {finding.get('message', '')}"[:300]
            for finding in target.get("findings", [])
            if finding["code"] == "NN002"
        ]
        if target.get("graph"):
            outcome.targets_with_graph += 1
            if "NN002" not in target_codes:
                outcome.linted = True
    outcome.codes = dict(sorted(codes.items()))
    outcome.errors = [problem.get("message", "") for problem in report.get("errors", [])]


# -- the table ----------------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    header = f"{'case':24} {'exit':>4} {'tgt':>3} {'graph':>5} {'linted':>6} {'secs':>6}  codes / first stderr line"
    lines = [header, "-" * len(header)]
    for outcome in outcomes:
        exit_text = "T/O" if outcome.timed_out else ("-" if outcome.exit_code is None else str(outcome.exit_code))
        codes = " ".join(f"{code}x{count}" if count > 1 else code for code, count in outcome.codes.items())
        detail = codes or outcome.first_stderr_line or "; ".join(outcome.errors)
        if outcome.unusable:
            detail += f"  ({outcome.unusable[0][:160]})"
        if outcome.files_written:
            detail += f"  [wrote {', '.join(outcome.files_written)}]"
        lines.append(
            f"{outcome.id:24} {exit_text:>4} {outcome.targets:>3} {outcome.targets_with_graph:>5} "
            f"{'yes' if outcome.linted else 'no':>6} {outcome.seconds:>6.1f}  {detail}"
        )
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> str:
    linted = sum(outcome.linted for outcome in outcomes)
    return f"{linted} of {len(outcomes)} linted without edits"


# -- command line -------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus", type=Path, default=os.environ.get(CORPUS_VARIABLE), help=f"Folder of case folders (default: ${CORPUS_VARIABLE})."
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="The cases (default: bench/realcode_manifest.json).")
    parser.add_argument(
        "--nnlint", default=f"{shlex.quote(sys.executable)} -m nnlint", help="The nnlint command to run (default: this Python's nnlint)."
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"Seconds per case (default {DEFAULT_TIMEOUT:.0f}).")
    parser.add_argument("--only", help="Comma-separated case ids (holdout ones included when named).")
    parser.add_argument("--include-holdout", action="store_true", help="Also run the held-out cases.")
    parser.add_argument("--json", type=Path, dest="json_out", help="Write every outcome and the summary to this file.")
    arguments = parser.parse_args(argv)
    if arguments.corpus is None:
        parser.error(f"give --corpus or set {CORPUS_VARIABLE}")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    only = [name.strip() for name in arguments.only.split(",") if name.strip()] if arguments.only else None
    cases = select_cases(load_cases(arguments.manifest), only, arguments.include_holdout)
    nnlint = shlex.split(arguments.nnlint)
    outcomes = []
    for case in cases:
        outcome = run_case(case, arguments.corpus.resolve(), nnlint, arguments.timeout)
        print(table([outcome]).splitlines()[-1], flush=True)
        outcomes.append(outcome)
    print()
    print(table(outcomes))
    print(summary(outcomes))
    if arguments.json_out:
        payload = {"nnlint": arguments.nnlint, "summary": summary(outcomes), "outcomes": [asdict(outcome) for outcome in outcomes]}
        arguments.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
