"""How deep a model's modules nest, found without recursion.

torch walks a model recursively (`named_modules`, and through it `.parameters()`, `.modules()`,
`state_dict()`): one Python frame per level. A model nested deeper than Python's recursion limit
(1000 by default) cannot be walked by torch at all, so it cannot be trained as written (building its
optimizer raises RecursionError). nnlint walks it here with an explicit stack instead, so it can say
so, with the depth, rather than fail in the same recursion.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from torch import nn

# Frames building an optimizer needs beyond one per level (`SGD(model.parameters())` at a script's
# top level, measured with torch 2.13 at the default limit of 1000: 991 levels work, 992 raise).
_WALK_MARGIN = 8


def submodules(module: nn.Module) -> Iterator[nn.Module]:
    """The module and every submodule, each once, as `module.modules()` gives them, but iteratively."""
    seen: set[int] = set()
    stack = [module]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(reversed([child for child in current.children() if child is not None]))


def nesting_depth(module: nn.Module) -> int:
    """Levels of submodules below `module` (0 for a module without children)."""
    deepest = 0
    seen: set[int] = set()
    stack = [(module, 0)]
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in current.children() if child is not None)
    return deepest


def too_deep_for_torch(module: nn.Module) -> str | None:
    """Why torch itself cannot walk `module` at this process's recursion limit, or None when it can."""
    limit = sys.getrecursionlimit()
    depth = nesting_depth(module)
    if depth + _WALK_MARGIN < limit:
        return None
    return (
        f"its modules are nested {depth} levels deep, and torch walks them recursively (`.parameters()`, "
        f"`.modules()`, `state_dict()`, the forward), one Python frame or more per level: past Python's "
        f"recursion limit ({limit}) they raise RecursionError, so the model cannot be trained as written: keep the "
        f"layers side by side in one nn.Sequential or nn.ModuleList, or raise the limit (sys.setrecursionlimit) first"
    )
