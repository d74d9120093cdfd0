"""Reliability: the bugs the fuzzer (tests/test_fuzz.py) found, each pinned by a small test."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nnlint.inputs import example_input_for
from nnlint.loader import LoadedTarget
from nnlint.targets import Target


@pytest.mark.parametrize(
    ("model", "input_shape"),
    [
        (nn.Sequential(nn.Linear(4, 2)), None),
        (nn.Sequential(nn.Embedding(10, 4)), None),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (2, 3, 8, 8)),
        (nn.Sequential(nn.Embedding(10, 4)), (2, 5)),
    ],
)
def test_made_up_inputs_leave_the_users_random_state_alone_and_repeat(model, input_shape):
    loaded = LoadedTarget(Target(model), "model", None, None)  # type: ignore[arg-type]
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    first, _ = example_input_for(loaded, input_shape)
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    torch.manual_seed(1234)  # whatever the user's generator says, the made-up input is the same
    second, _ = example_input_for(loaded, input_shape)
    assert torch.equal(first, second)
