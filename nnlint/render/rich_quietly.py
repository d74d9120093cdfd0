"""rich, imported without touching the user's random numbers.

rich.style draws from Python's `random` when it is first imported: printing a report from the API
(`nnlint.audit(model).print()`, `.to_json()`) would change the user's next random numbers.
"""

from __future__ import annotations

import random

_users_random = random.getstate()
try:
    from rich.console import Console
    from rich.text import Text
finally:
    random.setstate(_users_random)

__all__ = ["Console", "Text"]
