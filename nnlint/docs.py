"""Rule documentation as Markdown, from the rules' own docstrings.

One source serves every place a rule's documentation appears: `nnlint explain CODE`,
`nnlint rules --format markdown` (which writes docs/rules.md), and SARIF's help text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nnlint.formatting import exact_number
from nnlint.registry import DOC_SECTIONS, Rule, all_rules, rules_by_code

# The catalogue's families (the headings of docs/rules.md); a rule belongs to the family of its first three characters.
FAMILIES = {
    "NN0": "the tool itself",
    "NN1": "normalization",
    "NN2": "dropout and regularization",
    "NN3": "activations, output head and loss",
    "NN4": "parameters and structure",
    "NN5": "optimizer and schedule",
    "NN6": "training run (`nnlint watch`)",
    "NN7": "probe: inputs",
    "NN8": "probe: gradients and numerics",
    "NN9": "probe: training behaviour",
}

REGENERATE = "nnlint rules --format markdown > docs/rules.md"


class UnknownRuleError(LookupError):
    pass


def find_rule(code_or_slug: str) -> Rule:
    """A rule by its code (`NN104`, any case) or its slug (`bias-before-batchnorm`)."""
    wanted = code_or_slug.strip()
    rule = rules_by_code().get(wanted.upper()) or next((r for r in all_rules() if r.slug == wanted.lower()), None)
    if rule is None:
        raise UnknownRuleError(f"no rule {code_or_slug!r}: `nnlint rules` lists them")
    return rule


def facts(rule: Rule) -> list[str]:
    """One line each: severity and phase, what the rule needs, its thresholds and how to change them."""
    lines = [f"Severity: {rule.severity.value} · phase: {rule.phase.value}"]
    needs = sorted(rule.requires - {"graph"})
    if needs:
        lines.append(f"Runs only when the target gives: {', '.join(f'`{need}`' for need in needs)}")
    if rule.thresholds:
        values = ", ".join(f"`{name} = {exact_number(value)}`" for name, value in rule.thresholds.items())
        lines.append(f"Thresholds (override in `[tool.nnlint.thresholds.{rule.code}]`): {values}")
    return lines


def rule_markdown(rule: Rule, level: int = 1) -> str:
    """The rule's whole documentation; its title at heading `level`, its sections one level below."""
    title, section = "#" * level, "#" * (level + 1)
    parts = [f"{title} {rule.code} {rule.slug}", rule.summary, "\n".join(f"{line}  " for line in facts(rule)).rstrip()]
    parts += [f"{section} {name}\n\n{body}" for name, body in rule.sections.items()]
    return "\n\n".join(parts) + "\n"


def catalogue_markdown(rules: Iterable[Rule] | None = None) -> str:
    """docs/rules.md: a table of every rule, then each rule's documentation."""
    rules = list(all_rules() if rules is None else rules)
    lines = [
        "# nnlint rules",
        "",
        f"<!-- Generated from the rules' docstrings by `{REGENERATE}`; do not edit by hand. -->",
        "",
        "Each rule's documentation is also printed by `nnlint explain CODE` and carried in SARIF output.",
        "Select rules by code or prefix with `--select` / `--ignore` (`NN1`, `NN104`, `ALL`).",
        "",
    ]
    for family, members in _by_family(rules):
        lines += [
            f"## {family} — {FAMILIES.get(family, 'other')}",
            "",
            "| code | name | severity | phase | summary |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| [{r.code}](#{_anchor(r)}) | {r.slug} | {r.severity.value} | {r.phase.value} | {_cell(r.summary)} |" for r in members]
        lines.append("")
    lines += ["---", ""]
    body = "\n".join(lines) + "\n" + "\n".join(rule_markdown(r, level=3) for r in rules)
    return body


def rule_summary(rule: Rule) -> dict[str, Any]:
    """The catalogue entry of `nnlint rules --format json`."""
    return {
        "code": rule.code,
        "name": rule.slug,
        "severity": rule.severity.value,
        "phase": rule.phase.value,
        "summary": rule.summary,
        "requires": sorted(rule.requires),
        "thresholds": dict(rule.thresholds),
        "sections": {name: rule.sections.get(name, "") for name in DOC_SECTIONS},
    }


def _by_family(rules: list[Rule]) -> list[tuple[str, list[Rule]]]:
    families: dict[str, list[Rule]] = {}
    for r in rules:
        families.setdefault(r.code[:3], []).append(r)
    return list(families.items())


def _anchor(rule: Rule) -> str:
    # GitHub's heading anchors: lower case, spaces to hyphens, punctuation dropped.
    return f"{rule.code}-{rule.slug}".lower()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
