"""`nnlint watch`: watch a whole training run and explain it (findings NN601–NN610).

    with nnlint.watch(model, optimizer) as run:
        for epoch in range(epochs):
            ...
            nnlint.watch.log("val_loss", val_loss)    # optional: a metric the heuristics cannot see

`nnlint.watch` is this module and it is callable: `nnlint.watch(model, optimizer, ...)` opens a
`Watch` (nnlint/watch/session.py); `nnlint watch train.py` runs a script under one.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from nnlint.watch.session import Watch, log

__all__ = ["Watch", "log"]


class _CallableModule(types.ModuleType):
    def __call__(self, model: Any = None, optimizer: Any = None, **options: Any) -> Watch:
        return Watch(model, optimizer, **options)


sys.modules[__name__].__class__ = _CallableModule
