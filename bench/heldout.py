"""Recall and false alarms on a folder of model files that state what they expect.

A measurement, not a test. Each file marks its offending lines the way the fixtures do
(`nn.BatchNorm2d(64, 0.8),  # expect: NN109`); a file with no marks is a clean twin that should
get no warning. This lints every file in its own nnlint process (as a user would:
`nnlint FILE --format json`, probe included unless `--static`), then compares:

- found: an expected code reported at its expected line;
- missed: an expected code not reported at that line (if the code was reported on another line
  of the file, that line is shown);
- false alarm: a finding of warning or error severity at a (code, line) nobody expected,
  including an NN002 (the file could not be linted). Information findings are not counted.

Expectations are compared as sets of (code, line): a code written twice on one line (a helper
called twice) counts once.

    python bench/heldout.py FOLDER
    python bench/heldout.py FOLDER --static --nnlint "nnlint" --json out.json

Prints one line per file, the misses and false alarms, and the totals: recall (found of
expected) and false alarms, on buggy files and on clean twins separately. Exit code 0 when the
run completed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The same marker the fixtures use (tests/expectations.py); kept here so that bench/ does not
# import the test suite.
EXPECT = re.compile(r"#\s*expect:\s*(NN\d{3}(?:\s*,\s*NN\d{3})*)")
COUNTED_SEVERITIES = ("warning", "error")
DEFAULT_TIMEOUT = 300.0

Key = tuple[str, int]


@dataclass
class FileResult:
    """One file's comparison of expected and reported findings."""

    file: str
    expected: list[Key] = field(default_factory=list)
    found: list[Key] = field(default_factory=list)
    missed: list[Key] = field(default_factory=list)
    false_alarms: list[Key] = field(default_factory=list)
    elsewhere: dict[str, list[int]] = field(default_factory=dict)  # missed code -> lines it was reported on
    exit_code: int | None = None
    error: str = ""
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.expected


def expected_findings(path: Path) -> set[Key]:
    expected: set[Key] = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for match in EXPECT.finditer(line):
            expected.update((code.strip(), number) for code in match.group(1).split(","))
    return expected


def reported_findings(report: dict[str, Any], path: Path) -> tuple[set[Key], set[Key]]:
    """All reported (code, line) pairs, and those of warning or error severity. A finding with no
    location, or located in another file, has line 0: the user still sees it."""
    every: set[Key] = set()
    counted: set[Key] = set()
    for target in report.get("targets", []):
        for finding in target.get("findings", []):
            location = finding.get("location") or {}
            located_here = bool(location.get("file")) and Path(location["file"]).name == path.name
            key = (finding["code"], int(location.get("line") or 0) if located_here else 0)
            every.add(key)
            if finding.get("severity") in COUNTED_SEVERITIES:
                counted.add(key)
    return every, counted


def lint(path: Path, nnlint: list[str], static: bool, timeout: float) -> tuple[dict[str, Any] | None, int | None, str]:
    with tempfile.TemporaryDirectory(prefix="heldout-") as scratch:
        report_file = Path(scratch) / "report.json"
        argv = [*nnlint, path.name, "--format", "json", "--output", str(report_file), *(["--static"] if static else [])]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            process = subprocess.run(
                argv, cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return None, None, f"timed out after {timeout:.0f} s"
        stderr = next((line.strip() for line in process.stderr.splitlines() if line.strip()), "")
        if not report_file.exists():
            return None, process.returncode, stderr
        try:
            return json.loads(report_file.read_text()), process.returncode, stderr if process.returncode == 2 else ""
        except json.JSONDecodeError:
            return None, process.returncode, "the JSON report does not parse"


def compare(path: Path, nnlint: list[str], static: bool, timeout: float) -> FileResult:
    expected = expected_findings(path)
    started = time.perf_counter()
    report, exit_code, error = lint(path, nnlint, static, timeout)
    result = FileResult(path.name, expected=sorted(expected), exit_code=exit_code, error=error)
    result.seconds = round(time.perf_counter() - started, 1)
    if report is None:
        result.missed = sorted(expected)
        return result
    every, counted = reported_findings(report, path)
    result.found = sorted(expected & every)
    result.missed = sorted(expected - every)
    result.false_alarms = sorted(counted - expected)
    for code, _ in result.missed:
        lines = sorted(line for reported_code, line in every if reported_code == code)
        if lines:
            result.elsewhere[code] = lines
    return result


# -- printing -----------------------------------------------------------------------------------


def describe(keys: list[Key]) -> str:
    return ", ".join(f"{code}@{line}" for code, line in keys) or "-"


def file_line(result: FileResult) -> str:
    kind = "clean" if result.clean else "buggy"
    text = (
        f"{result.file:48} {kind:5} found {len(result.found)}/{len(result.expected)}  "
        f"false alarms {len(result.false_alarms)}  {result.seconds:5.1f}s"
    )
    if result.missed:
        text += f"  missed: {describe(result.missed)}"
        if result.elsewhere:
            text += " (reported elsewhere: " + "; ".join(f"{code} at {lines}" for code, lines in result.elsewhere.items()) + ")"
    if result.false_alarms:
        text += f"  false alarms: {describe(result.false_alarms)}"
    if result.error:
        text += f"  [{result.error[:160]}]"
    return text


def totals(results: list[FileResult]) -> str:
    buggy = [result for result in results if not result.clean]
    clean = [result for result in results if result.clean]
    expected = sum(len(result.expected) for result in buggy)
    found = sum(len(result.found) for result in buggy)
    recall = f"{100 * found / expected:.0f} %" if expected else "n/a"
    lines = [
        f"recall: {found} of {expected} expected findings ({recall}) in {len(buggy)} buggy files",
        f"false alarms: {sum(len(r.false_alarms) for r in buggy)} in buggy files, "
        f"{sum(len(r.false_alarms) for r in clean)} in {len(clean)} clean twins "
        f"({sum(1 for r in clean if r.false_alarms)} clean twins with any)",
        f"files not linted (no report or NN002): {sum(1 for r in results if r.exit_code == 2 or r.exit_code is None)}",
    ]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="Folder of model files with `# expect:` marks.")
    parser.add_argument(
        "--nnlint", default=f"{shlex.quote(sys.executable)} -m nnlint", help="The nnlint command to run (default: this Python's nnlint)."
    )
    parser.add_argument("--static", action="store_true", help="Lint with --static (no probe).")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=f"Seconds per file (default {DEFAULT_TIMEOUT:.0f}).")
    parser.add_argument("--json", type=Path, dest="json_out", help="Write every file's result and the totals to this file.")
    arguments = parser.parse_args(argv)
    if not arguments.folder.is_dir():
        parser.error(f"{arguments.folder} is not a folder")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    nnlint = shlex.split(arguments.nnlint)
    results = []
    for path in sorted(arguments.folder.resolve().glob("*.py")):
        result = compare(path, nnlint, arguments.static, arguments.timeout)
        print(file_line(result), flush=True)
        results.append(result)
    print()
    print(totals(results))
    if arguments.json_out:
        payload = {"static": arguments.static, "totals": totals(results), "files": [asdict(result) for result in results]}
        arguments.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
