"""Running the nnlint of a given checkout, whatever the venv installed.

`PYTHONPATH=CHECKOUT` alone is not enough: the wheel layout maps the checkout's top-level rules/ to
`nnlint.rules`, and an editable install's finder answers `nnlint.rules` with *its* checkout's
rules — a base checkout then runs the new rules (one of them read a Target field the base lacks).
Appending the checkout to `nnlint.__path__` makes Python's own path finder, which runs before the
editable finder, find the checkout's rules/.

nnlint then starts as the `nnlint` program does (`main()` reads sys.argv), so a bench times what a
user waits for, to the end of the process.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BOOT = """
import sys
checkout = sys.argv.pop(1)
sys.path.insert(0, checkout)
import nnlint
nnlint.__path__.append(checkout)
PRELUDE
from nnlint.cli import main
sys.argv[0] = "nnlint"
main()
"""


def nnlint_in(checkout: Path, *arguments: str, prelude: str = "") -> list[str]:
    """The command that runs `nnlint ARGUMENTS` with `checkout`'s nnlint and rules; `prelude`:
    Python lines run first, once that nnlint is importable (a bench's clocks)."""
    return [sys.executable, "-c", _BOOT.replace("PRELUDE", prelude), str(checkout), *arguments]
