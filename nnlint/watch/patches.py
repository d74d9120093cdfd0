"""Temporary replacement of attributes (class methods, module functions), undone in reverse order."""

from __future__ import annotations

import contextlib
from typing import Any

_MISSING = object()


class Patches:
    """Every attribute replaced through `replace` is put back, exactly, by `undo` (own attribute or inherited)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        """Set `owner.name = value`; return what calls should forward to (the attribute as it resolved)."""
        original = getattr(owner, name)
        own = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        self._saved.append((owner, name, own))
        setattr(owner, name, value)
        return original

    def undo(self) -> None:
        while self._saved:
            owner, name, own = self._saved.pop()
            if own is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, own)
