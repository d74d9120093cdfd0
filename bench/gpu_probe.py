"""The probe on a GPU: time against plain training steps, first-call overhead, and the CUDA tests.

    python bench/gpu_probe.py [--steps 3] [--repeats 5] [--device cuda] [--skip-tests]

Self-contained (plain torch, no torchvision): a ResNet-50-sized CNN (Bottleneck blocks 3-4-6-3,
25.6M parameters) on 224x224 images and a 12-layer transformer encoder (BERT-base sizes: width
768, 12 heads, FFN 3072, 30 522-token vocabulary, 110M parameters) on 128 tokens, both at batch
32. For each it prints, in one table:

- plain: N training steps (forward, cross-entropy, backward, SGD step), median of the repeats;
- probe: the whole `run_probe` a default `nnlint` run does (weight copies, N instrumented steps,
  evaluation-mode determinism and sample mixing, BatchNorm calibration, one optimizer step);
- probe, steps only: the N instrumented steps without the extra checks;
- first call: the very first probe in this process, CUDA context creation and kernel selection
  included, and what it costs over a warm probe.

Then it runs tests/test_probe_cuda.py (which skips without CUDA). Everything is measured in one
process on one device, runs alternating plain/probe; only the ratios are meant to be compared.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, installed or not

from nnlint.probe import ProbeSettings, run_probe  # noqa: E402
from nnlint.targets import Target  # noqa: E402


# -- models ------------------------------------------------------------------------------------
class Bottleneck(nn.Module):
    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        outputs = 4 * width
        self.conv1 = nn.Conv2d(inputs, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outputs, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outputs)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, channels = [], 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
            for index in range(count):
                blocks.append(Bottleneck(channels, width, 2 if index == 0 and stage > 0 else 1))
                channels = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class EncoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.up = nn.Linear(width, hidden)
        self.down = nn.Linear(hidden, width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, x, x, need_weights=False)[0]))
        return self.norm2(x + self.dropout(self.down(nn.functional.gelu(self.up(x)))))


class Transformer12(nn.Module):
    def __init__(self, vocab: int = 30522, width: int = 768, heads: int = 12, hidden: int = 3072, depth: int = 12, length: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Embedding(length, width)
        self.norm = nn.LayerNorm(width)
        self.layers = nn.ModuleList(EncoderLayer(width, heads, hidden) for _ in range(depth))
        self.head = nn.Linear(width, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.norm(self.embed(tokens) + self.position(positions))
        for layer in self.layers:
            x = layer(x)
        return self.head(x[:, 0])


# -- timing ------------------------------------------------------------------------------------
def timed(device: torch.device, work: Callable[[], object]) -> float:
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    start = time.perf_counter()
    work()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    return time.perf_counter() - start


def measure(name: str, build: Callable[[], nn.Module], inputs: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    model = build().to(device)
    trained = build().to(device)
    trained.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    target = Target(model, example_batch=(inputs, labels), loss_fn=loss_fn, optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    whole = ProbeSettings(device=args.device, steps=args.steps, timeout=None)
    bare = ProbeSettings(device=args.device, steps=args.steps, timeout=None, checks=frozenset())

    def plain() -> None:
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            loss_fn(trained(inputs), labels).backward()
            optimizer.step()

    first_call = timed(device, lambda: run_probe(model, inputs, target, whole))  # cold: kernels, allocator, autotuning
    timed(device, plain)
    plains, wholes, bares = [], [], []
    for _ in range(args.repeats):
        plains.append(timed(device, plain))
        wholes.append(timed(device, lambda: run_probe(model, inputs, target, whole)))
        bares.append(timed(device, lambda: run_probe(model, inputs, target, bare)))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else math.nan
    base = statistics.median(plains)
    return {
        "model": name,
        "params": sum(p.numel() for p in model.parameters()) / 1e6,
        "plain": base,
        "probe": statistics.median(wholes),
        "bare": statistics.median(bares),
        "first": first_call,
        "peak": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.init()
        torch.zeros(1, device=device)
    cuda_init = time.perf_counter() - start
    torch.manual_seed(0)
    rows = [
        measure(
            "ResNet-50-sized CNN, 224x224",
            ResNet50,
            torch.randn(args.batch, 3, 224, 224, device=device),
            torch.randint(0, 1000, (args.batch,), device=device),
            args,
        ),
        measure(
            "12-layer transformer, 128 tokens",
            Transformer12,
            torch.randint(0, 30522, (args.batch, 128), device=device),
            torch.randint(0, 2, (args.batch,), device=device),
            args,
        ),
    ]
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {card}; torch {torch.__version__}; batch {args.batch}; {args.steps} steps; median of {args.repeats}")
    print(f"CUDA context creation: {cuda_init:.2f} s")
    print()
    print("| model | params | plain steps | probe (all checks) | ratio | probe (steps only) | ratio | first probe | over warm | peak GPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['params']:.1f}M | {r['plain']:.3f} s | {r['probe']:.3f} s | {r['probe'] / r['plain']:.2f}x "
            f"| {r['bare']:.3f} s | {r['bare'] / r['plain']:.2f}x | {r['first']:.2f} s | {r['first'] - r['probe']:+.2f} s "
            f"| {r['peak']:.1f} GiB |"
        )
    if not args.skip_tests:
        root = Path(__file__).resolve().parent.parent
        print()
        sys.stdout.flush()
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", str(root / "tests" / "test_probe_cuda.py")], cwd=root)
        sys.exit(code)


if __name__ == "__main__":
    main()
