"""A file whose lint runs out of `--file-timeout` in one target still reports the targets finished
before it: the child sends everything linted so far after each target, and the parent reports it
with one NN002 that names the target that ran out of time and the limit."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from click.testing import CliRunner

from nnlint.cli import main

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="isolation forks (POSIX)")

# kuangliu/pytorch-cifar models/resnet.py: one ResNet class and a factory per depth (ResNet18() …
# ResNet152()), each a target. The deepest one's forward stands for a lint that needs more time
# than the file has: it never returns, and swallows the probe's own timeout (a bare `except:`).
FACTORIES = """\
    import time

    import torch.nn as nn
    import torch.nn.functional as F


    class ResNet(nn.Module):
        def __init__(self, num_blocks, num_classes=10):
            super().__init__()
            self.num_blocks = num_blocks
            self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.linear = nn.Linear(8, num_classes)

        def forward(self, x):
            while sum(self.num_blocks) > 40:
                try:
                    time.sleep(0.05)
                except:  # noqa: E722
                    pass
            out = F.relu(self.bn1(self.conv1(x)))
            out = F.adaptive_avg_pool2d(out, 1).flatten(1)
            return self.linear(out)


    def ResNet18():
        return ResNet([2, 2, 2, 2])


    def ResNet34():
        return ResNet([3, 4, 6, 3])


    def ResNet152():
        return ResNet([3, 8, 36, 3])
    """


@pytest.mark.slow  # waits out an 8 s --file-timeout
def test_targets_finished_before_the_file_timeout_are_reported(tmp_path):
    path = tmp_path / "resnet.py"
    path.write_text(textwrap.dedent(FACTORIES))
    result = CliRunner().invoke(
        main, [str(path), "--format", "json", "--static", "--probe-timeout", "0.5", "--file-timeout", "8"], catch_exceptions=False
    )
    assert result.exit_code == 2
    targets = json.loads(result.stdout)["targets"]
    assert [t["name"] for t in targets] == ["ResNet18", "ResNet34", "ResNet152"]
    assert [t["graph"] for t in targets] == ["fx", "fx", None]
    assert [[f["code"] for f in t["findings"]] for t in targets[:2]] == [[], []]
    (stopped,) = targets[2]["findings"]
    line = textwrap.dedent(FACTORIES).splitlines().index("def ResNet152():") + 1
    assert stopped["code"] == "NN002" and stopped["location"]["line"] == line == 34
    assert stopped["message"].startswith("`ResNet152` cannot be linted: its lint did not finish within 8 s (--file-timeout)")
    assert "2 targets of this file finished before and are reported" in targets[2]["notes"]
