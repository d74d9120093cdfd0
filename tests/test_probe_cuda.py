"""The probe on a GPU: runs on cuda, restores the CUDA random state, falls back to the CPU.
Skipped without CUDA; bench/gpu_probe.py runs these on the device machine."""

from __future__ import annotations

import pytest
import torch
from invariants import Snapshot
from torch import nn

from nnlint.probe import ProbeSettings, run_probe
from nnlint.targets import Target

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


def test_a_cpu_model_is_probed_on_cuda_and_left_on_the_cpu_untouched():
    model, inputs = _net(), torch.randn(16, 3, 32, 32)
    torch.cuda.init()
    cuda_rng = torch.cuda.get_rng_state()
    before = Snapshot.take(model)
    result = run_probe(model, inputs, Target(model), ProbeSettings(device="auto"))
    assert result.device.startswith("cuda") and result.layers
    before.assert_unchanged(model)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)


def test_a_cuda_model_is_probed_where_it_lives():
    model = _net().cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(16, 3, 32, 32, device="cuda")).sum().backward()
    optimizer.step()
    inputs = torch.randn(16, 3, 32, 32, device="cuda")
    before = Snapshot.take(model, optimizer)
    result = run_probe(model, inputs, Target(model, optimizer=optimizer), ProbeSettings(device="auto", deep=True))
    assert result.device.startswith("cuda") and result.update_ratios and result.overfit is not None
    before.assert_unchanged(model, optimizer)


def test_cuda_and_cpu_probes_agree():
    model, inputs = _net(), torch.randn(16, 3, 32, 32)
    on_cpu = run_probe(model, inputs, Target(model), ProbeSettings(device="cpu"))
    on_cuda = run_probe(model, inputs, Target(model), ProbeSettings(device="cuda"))
    for cpu_layer, cuda_layer in zip(on_cpu.layers, on_cuda.layers, strict=True):
        assert cuda_layer.grad_norm == pytest.approx(cpu_layer.grad_norm, rel=1e-2)


class _CudaOutOfMemory(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.fc(x)


def test_out_of_memory_on_cuda_falls_back_to_the_cpu():
    model = _CudaOutOfMemory()
    result = run_probe(model, torch.randn(8, 4), Target(model), ProbeSettings(device="cuda"))
    assert result.device == "cpu" and any("ran out of memory on cuda" in note for note in result.notes)


class _HeldOnCpu(nn.Module):
    """Holds a plain tensor attribute (not a buffer): `.to("cuda")` would not move it either."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.mask = torch.ones(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.mask


def test_a_forward_that_mixes_devices_is_probed_on_its_own_device():
    model = _HeldOnCpu()
    result = run_probe(model, torch.randn(8, 4), Target(model), ProbeSettings(device="cuda"))
    assert result.device == "cpu" and any("mixed devices" in note for note in result.notes)
