"""`nnlint rules`, `nnlint explain CODE` and docs/rules.md: one documentation, from the rules' docstrings."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from expectations import ROOT

from nnlint.cli import main
from nnlint.docs import REGENERATE, catalogue_markdown
from nnlint.registry import DOC_SECTIONS, all_rules

RULES = all_rules()


def nnlint(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_rules_prints_the_catalogue_as_a_table():
    code, out, err = nnlint("rules")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split() == ["code", "name", "severity", "phase", "summary"]
    parsed = [re.split(r"\s{2,}", row.strip(), maxsplit=4) for row in rows]
    assert [(r.code, r.slug, r.severity.value, r.phase.value, r.summary) for r in RULES] == [tuple(row) for row in parsed]


def test_rules_as_json():
    code, out, _ = nnlint("rules", "--format", "json")
    entries = json.loads(out)
    assert code == 0
    assert [(e["code"], e["name"], e["severity"], e["phase"], e["summary"]) for e in entries] == [
        (r.code, r.slug, r.severity.value, r.phase.value, r.summary) for r in RULES
    ]
    for entry, rule in zip(entries, RULES, strict=True):
        assert entry["sections"] == {name: rule.sections[name] for name in DOC_SECTIONS}
        assert entry["thresholds"] == dict(rule.thresholds)
        assert entry["requires"] == sorted(rule.requires)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_explain_prints_all_five_sections_of_every_rule(rule):
    code, out, err = nnlint("explain", rule.code)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"# {rule.code} {rule.slug}"
    assert rule.summary in out
    headings = re.findall(r"^## (.+)$", out, flags=re.MULTILINE)
    assert headings == list(DOC_SECTIONS)
    for name in DOC_SECTIONS:
        body = out.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert body.strip(), f"{rule.code}: empty section {name!r}"
        assert rule.sections[name] in body


def test_explain_names_thresholds_and_requirements():
    _, out, _ = nnlint("explain", "NN105")
    assert "Runs only when the target gives: `batch_size`" in out
    assert "[tool.nnlint.thresholds.NN105]" in out and "= 16" in out


def test_explain_takes_a_slug_or_a_lower_case_code():
    by_code = nnlint("explain", "NN104")[1]
    assert nnlint("explain", "nn104")[1] == by_code
    assert nnlint("explain", "bias-before-batchnorm")[1] == by_code


def test_explain_an_unknown_rule_exits_2_on_stderr():
    code, out, err = nnlint("explain", "NN999")
    assert (code, out) == (2, "")
    assert err == "nnlint: no rule 'NN999': `nnlint rules` lists them\n"


def test_docs_rules_md_is_generated_from_the_rules():
    document = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert document == catalogue_markdown(), f"docs/rules.md is stale: run `{REGENERATE}`"
    assert nnlint("rules", "--format", "markdown")[1] == document


def test_docs_rules_md_documents_every_rule_with_its_sections():
    document = catalogue_markdown()
    for rule in RULES:
        anchor = f"{rule.code}-{rule.slug}".lower()
        assert f"](#{anchor})" in document  # the table links to the section below
        section = document.split(f"### {rule.code} {rule.slug}\n", 1)[1].split("\n### ", 1)[0]
        assert re.findall(r"^#### (.+)$", section, flags=re.MULTILINE) == list(DOC_SECTIONS)
