"""Every fixture yields exactly the findings written next to its lines — from both graphs."""

from __future__ import annotations

import pytest
from expectations import clean_for, expected_findings, found_findings, lint, rule_fixtures

from nnlint.findings import GraphMethod, Severity
from nnlint.registry import all_rules

FIXTURES = rule_fixtures()
# Training scripts for `nnlint watch` (NN6), run to their end by tests/test_watch_findings.py (kept out of
# fixtures/, whose files are linted as model files).
WATCH_FIXTURES = sorted((FIXTURES[0].parent.parent / "tests" / "data" / "watch").glob("*.py"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_auto_graph_yields_exactly_the_marked_findings(path):
    report = lint(path)
    expected = expected_findings(path)
    assert found_findings(report) == expected
    methods = {target.graph for target in report.targets if target.graph is not None}
    if expected["NN001", _first_line(expected, "NN001")]:
        assert methods == {GraphMethod.RECORDED}
    elif methods:
        assert methods == {GraphMethod.FX}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_recorded_graph_yields_the_same_findings(path):
    report = lint(path, graph="recorded")
    expected = expected_findings(path)
    # NN001 reports a fallback; forcing the recorder is not one.
    expected = +type(expected)({key: n for key, n in expected.items() if key[0] != "NN001"})
    assert found_findings(report) == expected
    assert all(target.graph in (GraphMethod.RECORDED, None) for target in report.targets)


@pytest.mark.parametrize("path", [p for p in FIXTURES if p.stem.startswith("clean_")], ids=lambda p: p.stem)
def test_clean_models_have_no_warning(path):
    report = lint(path)
    assert [f for f in report.findings if f.severity is not Severity.INFO] == []
    assert report.exit_code == 0


def test_every_rule_has_a_positive_and_a_negative_fixture():
    positive = {code for path in [*FIXTURES, *WATCH_FIXTURES] for code, _ in expected_findings(path)}
    negative = [prefix for path in [*FIXTURES, *WATCH_FIXTURES] for prefix in clean_for(path)]
    for rule in all_rules():
        assert rule.code in positive, f"no fixture marks `# expect: {rule.code}`"
        if rule.code not in ("NN001", "NN002", "NN003"):  # tool rules: every clean fixture is their twin
            assert any(rule.code.startswith(prefix) for prefix in negative), f"no fixture is the clean twin of {rule.code}"


def _first_line(expected, code):
    return next((line for c, line in expected if c == code), 0)
