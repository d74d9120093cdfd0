"""Running the nnlint of a given checkout, whatever the venv installed.

`PYTHONPATH=CHECKOUT` alone is not enough: the wheel layout maps the checkout's top-level rules/ to
`nnlint.rules`, and an editable install's finder answers `nnlint.rules` with *its* checkout's
rules — a base checkout then runs the new rules (one of them read a Target field the base lacks).
Appending the checkout to `nnlint.__path__` makes Python's own path finder, which runs before the
editable finder, find the checkout's rules/.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BOOT = (
    "import sys; checkout = sys.argv.pop(1); sys.path.insert(0, checkout); import nnlint; "
    "nnlint.__path__.append(checkout); from nnlint.cli import main; sys.argv[0] = 'nnlint'; main()"
)


def nnlint_in(checkout: Path, *arguments: str) -> list[str]:
    """The command that runs `nnlint ARGUMENTS` with `checkout`'s nnlint and rules."""
    return [sys.executable, "-c", _BOOT, str(checkout), *arguments]
