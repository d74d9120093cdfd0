"""Inline suppressions: `# nnlint: ignore[NN104]` on the construction line or the line above,
and `# nnlint: ignore-file[NN104]` anywhere in a file. One that matched nothing is NN003."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache

from nnlint.findings import Finding, Location

_COMMENT = re.compile(r"#\s*nnlint:\s*(ignore|ignore-file)\[([^\]]*)\]")


@dataclass(frozen=True)
class Suppression:
    location: Location
    codes: tuple[str, ...]
    whole_file: bool


@dataclass
class SuppressionLedger:
    """Tracks which suppressions matched a finding during one run, across all its targets."""

    used: set[tuple[Suppression, str]] = field(default_factory=set)
    # Every file whose comments were consulted, with the first target (by index) that did.
    consulted_by: dict[str, int] = field(default_factory=dict)
    # The comments of each consulted file, as read when it was first consulted: a ledger merged
    # from a child process judges them without reading the user's files again.
    comments: dict[str, tuple[Suppression, ...]] = field(default_factory=dict)

    def consult(self, file: str, target_index: int) -> None:
        self.consulted_by.setdefault(file, target_index)
        if file not in self.comments:
            self.comments[file] = suppressions_in(file)

    def absorb(self, other: SuppressionLedger, first_target: int) -> None:
        """Take in the ledger of one file linted on its own, whose targets are numbered from
        `first_target` in this run: the merged ledger is the one a single pass would have kept."""
        self.used |= other.used
        for file, index in other.consulted_by.items():
            self.consulted_by.setdefault(file, first_target + index)
        for file, comments in other.comments.items():
            self.comments.setdefault(file, comments)

    def suppresses(self, finding: Finding, target_file: str | None, target_index: int) -> bool:
        """Whether a comment silences `finding`, remembering the comment as used if so."""
        candidates: list[Suppression] = []
        if finding.location is not None:
            self.consult(finding.location.file, target_index)
            line = finding.location.line
            candidates += [s for s in suppressions_in(finding.location.file) if s.whole_file or s.location.line in (line, line - 1)]
        if target_file is not None and target_file != (finding.location.file if finding.location else None):
            self.consult(target_file, target_index)
            candidates += [s for s in suppressions_in(target_file) if s.whole_file]
        matched = False
        for suppression in candidates:
            for code in suppression.codes:
                if finding.code.startswith(code):
                    self.used.add((suppression, code))
                    matched = True
        return matched

    def unused(self) -> list[tuple[Suppression, str]]:
        return [
            (s, code)
            for file in sorted(self.consulted_by)
            for s in self.comments.get(file, ())
            for code in s.codes
            if (s, code) not in self.used
        ]


@lru_cache(maxsize=256)
def suppressions_in(file: str) -> tuple[Suppression, ...]:
    """The suppression comments in a file (real comments only, not text inside strings), read in
    the encoding the file declares (PEP 263: `# -*- coding: latin-1 -*-`), as Python reads it."""
    try:
        with tokenize.open(file) as stream:
            source = stream.read()
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, UnicodeDecodeError, tokenize.TokenError, SyntaxError):
        return ()
    found = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        for match in _COMMENT.finditer(token.string):
            codes = tuple(code.strip().upper() for code in match.group(2).split(",") if code.strip())
            found.append(Suppression(Location(file, token.start[0]), codes, match.group(1) == "ignore-file"))
    return tuple(found)
