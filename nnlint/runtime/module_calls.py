"""Following the model's module calls during one of its forwards: the graph recorder and the probe's
instrument both see the forward this way.

Two global module hooks (torch's `register_module_forward_pre_hook` / `_forward_hook`) keep a stack
of the model's modules that are running. A leaf module (what the graph shows as one `call_module`
node) hides what runs inside it: `leaf_depth` counts the leaves entered, so calls inside one can be
told apart. While the tracker does work of its own (`busy`), the modules that work runs are not the
user's and are ignored. Modules outside the model (a loss module, one built inside `forward`) get no
frame: what they run belongs to the model module that called them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from nnlint.runtime.torch_compat import remove_global_module_hook


@dataclass
class ModuleFrame:
    """One running call of one of the model's modules."""

    path: str
    leaf: bool  # a leaf module: what runs inside is not the model's structure
    outermost_leaf: bool  # a leaf not inside another leaf: a node of the graph, a layer of the probe


class ModuleCallTracker:
    """The stack of the model's running modules. Subclasses react to calls in `_entered`/`_exited`."""

    def __init__(self, model: nn.Module, is_leaf: Callable[[nn.Module, str], bool]) -> None:
        self._paths = {id(module): path for path, module in model.named_modules()}
        self._is_leaf = is_leaf
        self._stack: list[ModuleFrame] = []
        self._leaf_depth = 0
        self._busy = False
        self._module_hooks: list[Any] = []

    def start_tracking(self) -> None:
        self._module_hooks = [
            nn.modules.module.register_module_forward_pre_hook(self._before_module),
            nn.modules.module.register_module_forward_hook(self._after_module, with_kwargs=True),
        ]

    def stop_tracking(self) -> None:
        for hook in self._module_hooks:
            remove_global_module_hook(hook)
        self._module_hooks = []

    def reset_stack(self) -> None:
        """Forget the calls of a forward that ended (or raised) before its modules returned."""
        self._stack.clear()
        self._leaf_depth = 0

    def running_module(self) -> str | None:
        """The innermost model module running now (for a forward that raised or ran out of time):
        a named submodule before the root."""
        return next((frame.path for frame in reversed(self._stack) if frame.path), self._stack[0].path if self._stack else None)

    def _new_frame(self, module: nn.Module, path: str, leaf: bool, outermost_leaf: bool) -> ModuleFrame:
        return ModuleFrame(path, leaf, outermost_leaf)

    def _entered(self, module: nn.Module, frame: ModuleFrame, inside_leaf: bool, args: Any) -> None:
        """A model module was entered (its frame is on the stack); `inside_leaf`: within another leaf."""

    def _exited(self, module: nn.Module, frame: ModuleFrame, args: Any, kwargs: Any, output: Any) -> Any:
        """A model module returned; a result other than None replaces its output."""
        return None

    def _before_module(self, module: nn.Module, args: Any) -> None:
        if self._busy:
            return
        path = self._paths.get(id(module))
        if path is None:
            return
        leaf = self._is_leaf(module, path)
        inside_leaf = self._leaf_depth > 0
        frame = self._new_frame(module, path, leaf, leaf and not inside_leaf)
        self._stack.append(frame)
        self._leaf_depth += leaf
        self._entered(module, frame, inside_leaf, args)

    def _after_module(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> Any:
        if self._busy or id(module) not in self._paths or not self._stack:
            return None
        frame = self._stack.pop()
        self._leaf_depth -= frame.leaf
        return self._exited(module, frame, args, kwargs, output)
