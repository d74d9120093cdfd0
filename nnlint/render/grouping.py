"""Repeated findings as one entry, for the text report: the same mistake on `layers.0` … `layers.79`.

Findings group when they say the same thing about modules that differ only in their numbers: same
code, severity and file, and the same module, message and fix once every numeric part of a module
path is blanked — `layers.3.conv` and `layers.41.conv` both read `layers.#.conv`. Only path parts
are blanked: in the message those are the dotted names between backticks (how rules quote
modules and parameters), so "bias (32 parameters)" and "bias (64 parameters)", or two different
std values, stay apart. A group shows each blanked number as the set it takes, `layers.{0..79}.conv`.

Only the text report groups; JSON, SARIF, GitHub and JUnit keep every finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from nnlint.findings import Finding

_QUOTED = re.compile(r"`[^`\n]*`")
# A number that is a whole component of a dotted path: `3` in `layers.3.conv`, `0` in `0.weight`.
_PATH_NUMBER = re.compile(r"(?<![^.`])\d+(?![^.`])")
_HOLE = "\x00"  # stands for a blanked number in a template; never in rule text
_MOST_RUNS = 6  # `{0..3,5,7,9,11,…}`: past this many runs, the rest is elided
_MOST_NAMED = 3  # modules named in a group whose names differ in more than one number


@dataclass(frozen=True)
class FindingGroup:
    """Findings that differ only in module numbers, in report order; one member renders as before."""

    members: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.members[0]

    @property
    def message(self) -> str:
        return _merged([finding.message for finding in self.members], _message_template)

    @property
    def fix(self) -> str:
        return _merged([finding.fix for finding in self.members], _message_template)

    @property
    def modules(self) -> str | None:
        """The members' modules compactly: `layers.{0..79}.attn`, or the first few and a count."""
        paths = [finding.module for finding in self.members if finding.module]
        if not paths:
            return None
        unique = list(dict.fromkeys(paths))
        if len(unique) == 1:
            return unique[0]
        varying = [values for values in zip(*(_path_template(path)[1] for path in unique), strict=True) if len(set(values)) > 1]
        if len(varying) == 1:
            return _merged(unique, _path_template)
        return f"{', '.join(unique[:_MOST_NAMED])}, … ({len(unique)} modules)"

    @property
    def lines(self) -> list[int]:
        """The distinct lines the members point at, in order."""
        return list(dict.fromkeys(finding.location.line for finding in self.members if finding.location))


def group_findings(findings: Iterable[Finding]) -> list[FindingGroup]:
    """Findings grouped by what they say with module numbers blanked; each group where its first member was."""
    groups: dict[tuple, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(_key(finding), []).append(finding)
    return [FindingGroup(tuple(members)) for members in groups.values()]


def compact_numbers(values: Sequence[int]) -> str:
    """Integers as ranges: [0, 1, 2, 3, 5, 7, 8, 9] -> `0..3,5,7..9`."""
    ordered = sorted(set(values))
    runs: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        runs.append(str(start) if start == previous else f"{start},{previous}" if previous == start + 1 else f"{start}..{previous}")
        if value is not None:
            start = previous = value
    if len(runs) > _MOST_RUNS:
        runs = [*runs[:_MOST_RUNS], "…"]
    return ",".join(runs)


def _key(finding: Finding) -> tuple:
    file = finding.location.file if finding.location else None
    module = _path_template(finding.module)[0] if finding.module else None
    return (finding.code, finding.severity, file, module, _message_template(finding.message)[0], _message_template(finding.fix)[0])


def _path_template(path: str) -> tuple[str, list[str]]:
    numbers = _PATH_NUMBER.findall(path)
    return _PATH_NUMBER.sub(_HOLE, path), numbers


def _message_template(text: str) -> tuple[str, list[str]]:
    """`text` with the numbers of quoted dotted paths blanked, and those numbers in order."""
    numbers: list[str] = []

    def blank(quoted: re.Match[str]) -> str:
        template, found = _path_template(quoted.group())
        numbers.extend(found)
        return template

    return _QUOTED.sub(blank, text), numbers


def _merged(texts: list[str], template_of: Callable[[str], tuple[str, list[str]]]) -> str:
    """The shared template with each blank filled by the value it takes in every text (`3`) or the set (`{0..79}`)."""
    if len(set(texts)) == 1:
        return texts[0]  # one finding, or the same text in each: shown as it is
    template = template_of(texts[0])[0]
    columns = zip(*(template_of(text)[1] for text in texts), strict=True)
    fills = [values[0] if len(set(values)) == 1 else "{" + compact_numbers([int(v) for v in values]) + "}" for values in columns]
    pieces = template.split(_HOLE)
    return "".join(piece + fill for piece, fill in zip(pieces, [*fills, ""], strict=True))
