from __future__ import annotations

import os
import sys

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture
def process_state():
    """Script mode's promise: sys.argv, sys.path, the working directory, environment and default dtype, checked unchanged."""

    def state():
        # pytest's own variable changes per phase; torch sets TORCHINDUCTOR_CACHE_DIR once, the first time
        # its inductor runtime is imported (by whichever code imports it first): neither is the script's doing.
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "TORCHINDUCTOR_CACHE_DIR")}
        return list(sys.argv), list(sys.path), os.getcwd(), environ, torch.get_default_dtype(), sys.modules["__main__"]

    before = state()
    yield set(sys.modules)
    assert state() == before
