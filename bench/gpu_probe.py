"""The probe on a GPU: time against plain training steps, first-call overhead, and the CUDA tests.

    python bench/gpu_probe.py [--steps 3] [--repeats 5] [--device cuda] [--skip-tests]

Plain torch, no torchvision: the models of bench/models — a ResNet-50-sized CNN (Bottleneck
blocks 3-4-6-3, 25.6M parameters) on 224x224 images and a 12-layer transformer encoder
(BERT-base sizes: width 768, 12 heads, 30 522-token vocabulary) on 128 tokens — at batch 32. For each it prints, in one table:

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
import importlib.util
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


# -- models: the ones bench/static_overhead.py lints (bench/models) --------------------------------
def _model_class(file: str, name: str) -> type[nn.Module]:
    spec = importlib.util.spec_from_file_location(f"bench_models_{Path(file).stem}", Path(__file__).resolve().parent / "models" / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


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
    bare = ProbeSettings(device=args.device, steps=args.steps, timeout=None, measures=frozenset())

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
            _model_class("resnet50.py", "ResNet50"),
            torch.randn(args.batch, 3, 224, 224, device=device),
            torch.randint(0, 1000, (args.batch,), device=device),
            args,
        ),
        measure(
            "12-layer transformer, 128 tokens",
            _model_class("transformer12.py", "Encoder"),
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
