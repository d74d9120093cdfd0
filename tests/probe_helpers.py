"""Linting a model object (not a file) through the engine, and snapshots of everything the probe must not change."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

import numpy
import torch
from torch import nn

from nnlint.config import Config
from nnlint.engine import Linter
from nnlint.loader import LoadedTarget
from nnlint.report import Report
from nnlint.targets import Target

_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks")


def lint_model(model: nn.Module, config: Config | None = None, **target: Any) -> Report:
    linter = Linter(config or Config())
    linter.lint(LoadedTarget(Target(model, **target), "model", None, None))  # type: ignore[arg-type]
    return linter.report()


@dataclass
class Snapshot:
    """Everything of a model, its optimizer and the process that the probe must leave as it found it."""

    state: dict[str, torch.Tensor]
    grads: list[tuple[torch.Tensor | None, torch.Tensor | None]]  # (the .grad object, a copy of its values)
    training: list[bool]
    requires_grad: list[bool]
    hooks: list[int]
    attributes: list[set[str]]
    optimizer: dict[str, Any] | None
    rng: tuple[Any, ...]
    grad_enabled: bool

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Snapshot:
        return cls(
            state={name: value.detach().clone() for name, value in model.state_dict(keep_vars=True).items()},
            grads=[(p.grad, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()],
            training=[m.training for m in model.modules()],
            requires_grad=[p.requires_grad for p in model.parameters()],
            hooks=[sum(len(getattr(m, name)) for name in _MODULE_HOOKS) for m in model.modules()]
            + [len(torch.nn.modules.module._global_forward_hooks), len(torch.nn.modules.module._global_forward_pre_hooks)],
            attributes=[set(vars(m)) for m in model.modules()],
            optimizer=copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
            rng=(torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy()),
            grad_enabled=torch.is_grad_enabled(),
        )

    def assert_unchanged(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        after = Snapshot.take(model, optimizer)
        assert self.state.keys() == after.state.keys()
        for name, value in self.state.items():
            assert torch.equal(value, after.state[name]), f"{name} changed"
            assert value.dtype == after.state[name].dtype and value.device == after.state[name].device
        for (grad, values), parameter in zip(self.grads, model.parameters(), strict=True):
            assert parameter.grad is grad, "a .grad was replaced (None must stay None)"
            if values is not None:
                assert torch.equal(parameter.grad, values), "a .grad's values changed"
        assert after.training == self.training
        assert after.requires_grad == self.requires_grad
        assert after.hooks == self.hooks
        assert after.attributes == self.attributes
        assert torch.equal(after.rng[0], self.rng[0]) and after.rng[1] == self.rng[1]
        assert (after.rng[2] == self.rng[2]).all()
        assert after.grad_enabled == self.grad_enabled
        if self.optimizer is not None:
            _assert_same(self.optimizer, after.optimizer)


def _assert_same(expected: Any, actual: Any) -> None:
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor) and torch.equal(expected, actual)
    elif isinstance(expected, dict):
        assert expected.keys() == actual.keys()
        for key in expected:
            _assert_same(expected[key], actual[key])
    elif isinstance(expected, (list, tuple)):
        assert len(expected) == len(actual)
        for left, right in zip(expected, actual, strict=True):
            _assert_same(left, right)
    else:
        assert expected == actual
