"""What the probe costs next to plain training: N plain steps vs the probe's N steps, one run.

    python bench/probe_overhead.py [--device cpu|cuda] [--batch 32] [--steps 3] [--repeats 5]

Model: a ResNet-18-style CNN in plain torch (BasicBlocks 64-128-256-512, BatchNorm, ReLU) on
64x64 images, batch 32. Plain step: forward, cross-entropy, backward, SGD step. The probe: the
whole `run_probe` (copies of the weights, N instrumented steps, and every check a default
`nnlint` run does: evaluation-mode determinism and sample mixing, BatchNorm calibration for
train/eval, one optimizer step) — and, on its own line, the N instrumented steps without the
extra checks. Runs alternate plain/probe; each ratio is the median of the ratios of adjacent runs,
because a shared machine is noisy. CPU time (this process, all threads) is shown beside wall time.
Target: whole probe ≤ 2x the plain steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from nnlint.probe import ProbeSettings, run_probe  # noqa: E402
from nnlint.targets import Target  # noqa: E402


class BasicBlock(nn.Module):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes: int = 100, widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        blocks, channels = [], widths[0]
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            blocks += [BasicBlock(channels, width, stride), BasicBlock(width, width, 1)]
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def plain_steps(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer, steps: int) -> Timing:
    loss_fn = nn.CrossEntropyLoss()

    def train() -> None:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), labels).backward()
            optimizer.step()

    return timed(inputs.device, train)


def probe(model: nn.Module, target: Target, inputs: torch.Tensor, settings: ProbeSettings) -> Timing:
    return timed(inputs.device, lambda: run_probe(model, inputs, target, settings))


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def timed(device: torch.device, work: Callable[[], object]) -> Timing:
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64, help="image side")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = ResNet18().to(device)
    inputs = torch.randn(args.batch, 3, args.size, args.size, device=device)
    labels = torch.randint(0, 100, (args.batch,), device=device)
    trained = ResNet18().to(device)  # the plain steps train their own copy: the probed model stays fresh
    trained.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.01, momentum=0.9)
    target = Target(
        model, example_batch=(inputs, labels), loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01)
    )
    whole = ProbeSettings(device=args.device, steps=args.steps, timeout=None)
    steps_only = ProbeSettings(device=args.device, steps=args.steps, timeout=None, measures=frozenset())
    plain_steps(trained, inputs, labels, optimizer, 1)  # warm-up: allocator, kernels
    probe(model, target, inputs, steps_only)
    plain, whole_probe, bare_probe = [], [], []
    for _ in range(args.repeats):
        plain.append(plain_steps(trained, inputs, labels, optimizer, args.steps))
        whole_probe.append(probe(model, target, inputs, whole))
        bare_probe.append(probe(model, target, inputs, steps_only))
    print(
        f"model: ResNet-18-style CNN, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters; "
        f"batch {args.batch}x3x{args.size}x{args.size}; {args.steps} steps; median of {args.repeats} alternating runs"
    )
    print(
        f"device: {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; "
        f"torch threads: {torch.get_num_threads()}"
    )
    print(f"{'':34}{'wall':>10}{'ratio':>8}{'CPU time':>12}{'ratio':>8}   (ratios: median of per-run ratios)")
    for name, runs in (
        (f"{args.steps} plain training steps", plain),
        ("probe: steps + all checks", whole_probe),
        ("probe: steps only", bare_probe),
    ):
        wall, cpu = statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs)
        wall_ratio = statistics.median(t[0] / p[0] for t, p in zip(runs, plain, strict=True))
        cpu_ratio = statistics.median(t[1] / p[1] for t, p in zip(runs, plain, strict=True))
        print(f"{name:34}{wall:>9.3f}s{wall_ratio:>7.2f}x{cpu:>11.3f}s{cpu_ratio:>7.2f}x")


if __name__ == "__main__":
    main()
