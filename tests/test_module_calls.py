"""The one module-call tracker the graph recorder and the probe's instrument share: the stack of the
model's running modules, leaf depth, the busy guard, and nothing left installed afterwards."""

from __future__ import annotations

import torch
from torch import nn

from nnlint.runtime.module_calls import ModuleCallTracker, ModuleFrame
from nnlint.runtime.torch_compat import global_module_hooks


class Block(nn.Module):
    """A block that builds a module inside forward (outside the model), as some code does."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return nn.ReLU()(self.linear(x))


class Recording(ModuleCallTracker):
    def __init__(self, model: nn.Module) -> None:
        super().__init__(model, lambda module, path: isinstance(module, nn.Linear))
        self.events: list[tuple[str, str, bool, bool]] = []

    def _entered(self, module, frame: ModuleFrame, inside_leaf: bool, args) -> None:
        self.events.append(("enter", frame.path, frame.outermost_leaf, inside_leaf))

    def _exited(self, module, frame: ModuleFrame, args, kwargs, output):
        self.events.append(("exit", frame.path, frame.outermost_leaf, self._leaf_depth > 0))
        return None


def test_the_tracker_follows_model_modules_only_and_removes_its_hooks():
    model = nn.Sequential(Block(), nn.Linear(4, 2))
    tracker = Recording(model)
    before = {name: dict(table) for name, table in global_module_hooks().items()}
    tracker.start_tracking()
    try:
        model(torch.randn(3, 4))
    finally:
        tracker.stop_tracking()
    assert {name: dict(table) for name, table in global_module_hooks().items()} == before
    assert tracker.events == [
        ("enter", "", False, False),
        ("enter", "0", False, False),
        ("enter", "0.linear", True, False),
        ("exit", "0.linear", True, False),
        ("exit", "0", False, False),  # the ReLU built in forward is not the model's: no frame
        ("enter", "1", True, False),
        ("exit", "1", True, False),
        ("exit", "", False, False),
    ]
    assert tracker.running_module() is None  # the forward returned: nothing is running


def test_a_busy_tracker_ignores_the_modules_its_own_work_runs():
    model = nn.Sequential(nn.Linear(4, 4))
    tracker = Recording(model)
    tracker.start_tracking()
    try:
        tracker._busy = True
        model(torch.randn(2, 4))
    finally:
        tracker._busy = False
        tracker.stop_tracking()
    assert tracker.events == []


def test_running_module_names_the_innermost_model_module_of_a_forward_that_raised():
    class Failing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4))

        def forward(self, x):
            return self.inner(x.reshape(3, 5))

    model = Failing()
    tracker = Recording(model)
    tracker.start_tracking()
    try:
        model(torch.randn(2, 4))
    except RuntimeError:
        pass
    finally:
        tracker.stop_tracking()
    assert tracker.running_module() == ""  # the root: the reshape failed before `inner` ran
    tracker.reset_stack()
    assert tracker.running_module() is None
