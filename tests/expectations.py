"""Fixture files state what they expect, next to the offending line:

    nn.Conv2d(3, 32, 3),  # expect: NN104

and, in a header comment, which rules they are the clean twin for:

    # clean: NN101, NN102

A header `# options: deep` lints the fixture with that setting on (opt-in checks such as NN904).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from nnlint.config import Config
from nnlint.engine import lint_paths
from nnlint.report import Report

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

_EXPECT = re.compile(r"#\s*expect:\s*(NN\d{3}(?:\s*,\s*NN\d{3})*)")
_CLEAN = re.compile(r"^#\s*clean:\s*(.+)$", re.MULTILINE)
_OPTIONS = re.compile(r"^#\s*options:\s*(.+)$", re.MULTILINE)


def rule_fixtures() -> list[Path]:
    return sorted(FIXTURES.glob("*.py"))


def expected_findings(path: Path) -> Counter[tuple[str, int]]:
    expected: Counter[tuple[str, int]] = Counter()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for match in _EXPECT.finditer(line):
            expected.update((code.strip(), number) for code in match.group(1).split(","))
    return expected


def clean_for(path: Path) -> list[str]:
    """The codes or prefixes a fixture is the clean twin for."""
    return [code.strip() for match in _CLEAN.finditer(path.read_text()) for code in match.group(1).split(",") if code.strip()]


def expected_by_default(path: Path) -> Counter[tuple[str, int]]:
    """The marked findings a run with default settings reports: without the ones only a fixture's
    `# options:` turn on (NN904 needs `deep`)."""
    from nnlint.registry import rules_by_code

    opt_in = {code for code, rule in rules_by_code().items() if "deep" in rule.requires}
    return Counter({key: n for key, n in expected_findings(path).items() if key[0] not in opt_in})


_WHEN_RUN = re.compile(r"#\s*expect:[^#]*\bwhen run\b")


def expected_in_a_folder(path: Path) -> Counter[tuple[str, int]]:
    """What linting the fixture's folder reports for it: a training script found in a folder is
    not run, so the findings marked `# expect: NN105 (when run)` (what only running it shows: its
    DataLoader, its real batch) are left out."""
    expected = expected_by_default(path)
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if _WHEN_RUN.search(line):
            for code in _EXPECT.search(line).group(1).split(","):  # type: ignore[union-attr]
                expected[(code.strip(), number)] -= 1
    return +expected


def options_for(path: Path) -> dict[str, bool]:
    """Boolean settings a fixture turns on in its `# options:` header."""
    return {name.strip(): True for match in _OPTIONS.finditer(path.read_text()) for name in match.group(1).split(",") if name.strip()}


def lint(path: Path, **settings: object) -> Report:
    return lint_paths([path], Config(**(options_for(path) | settings)))  # type: ignore[arg-type]


def found_findings(report: Report) -> Counter[tuple[str, int]]:
    return Counter((f.code, f.location.line if f.location else 0) for f in report.findings)
