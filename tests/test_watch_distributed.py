"""`nnlint watch` under torchrun: two processes (DDP, gloo, CPU) each watch their rank; rank 0 alone
writes the report, and a rank whose loss went non-finite first is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "data" / "watch_ddp_train.py"


@pytest.mark.slow
def test_rank_0_writes_one_report_naming_the_rank_that_went_non_finite(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = [*torchrun, "-m", "nnlint", "watch", "--format", "json", str(SCRIPT)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment)
    report = json.loads(result.stdout)  # one JSON document: rank 1 printed nothing on stdout
    (target,) = report["targets"]
    run = target["training_run"]
    assert run["world_size"] == 2 and run["steps"] == 18 and run["epochs"] == 3
    (divergence,) = [f for f in target["findings"] if f["code"] == "NN604"]
    # Rank 1's loss was NaN at its 9th step (epoch 2, third batch: 6 + 2); rank 0's only one step later.
    assert divergence["evidence"]["rank"] == 1 and divergence["evidence"]["step"] == 8
    assert "on rank 1" in divergence["message"]
    assert "rank 1 epoch 2" in result.stderr and "rank 0 epoch 2" in result.stderr
    assert result.returncode == 1
