"""What script mode's look-up for a directly called `forward` costs per outermost module call.

At every outermost module call the capture walks the Python frames up to nnlint's own, looking for
a running `forward` of a module that contains the called one (`self.forward(x)` in a Lightning
`training_step`). This times a plain loop of outermost calls of a small model, `model(x)` and
`model.forward(x)`, with the capture installed, the look-up on and off (replaced by one that finds
nothing), alternating, and prints microseconds per outermost call.

    python bench/direct_forward_walk.py [--calls 2000] [--rounds 5] [--depth 20]

`--depth`: extra Python frames between the loop and nnlint's own (Lightning's trainer adds ~30).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnlint.script.capture import Capture


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def nested(depth: int, work: Any) -> float:
    return nested(depth - 1, work) if depth else work()


def timed(capture: Capture, direct: bool, calls: int, depth: int) -> float:
    model, x = Net(), torch.randn(4, 8)
    run = model.forward if direct else model

    def work() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            run(x)
        return time.perf_counter() - start

    with capture.installed(), torch.no_grad():
        seconds = nested(depth, work)
    outermost = calls * (2 if direct else 1)
    return seconds / outermost * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--depth", type=int, default=20)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.2f}; {arguments.calls} calls x {arguments.rounds} rounds, {arguments.depth} extra frames")
    for direct in (False, True):
        on: list[float] = []
        off: list[float] = []
        for _ in range(arguments.rounds):
            capture = Capture(Path.cwd(), stop_at_first_step=False)
            on.append(timed(capture, direct, arguments.calls, arguments.depth))
            capture = Capture(Path.cwd(), stop_at_first_step=False)
            capture._direct_forward = lambda module, frame: None  # type: ignore[method-assign]
            off.append(timed(capture, direct, arguments.calls, arguments.depth))
        name = "model.forward(x)" if direct else "model(x)"
        a, b = statistics.median(on), statistics.median(off)
        print(f"{name:18} look-up on {a:7.2f} us/call   off {b:7.2f} us/call   ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
