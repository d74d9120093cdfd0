"""`nnlint.audit(model, ...)` keeps the user's objects: whatever the forward, the loss or the
inputs do, the model, the loss, the inputs, every tensor and generator they reach and the process's
torch and Python state are as they were (tests/invariants.py `Snapshot`), and the report is right.

Each model is the smallest form of a pattern from real code (the provenance is in its docstring).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy
import pytest
import torch
import torch.nn.functional as F
from invariants import Snapshot
from torch import nn
from torch.utils.checkpoint import checkpoint

import nnlint
from nnlint.config import Config
from nnlint.engine import lint_paths


def audited(model: nn.Module, example_input: object = None, **options: object) -> nnlint.Report:
    """`nnlint.audit` with the full snapshot compared before and after; the JSON must parse."""
    loss_fn, optimizer, batch = options.get("loss_fn"), options.get("optimizer"), options.get("example_batch")
    before = Snapshot.take(model, optimizer, loss_fn=loss_fn, inputs=(example_input, batch))
    report = nnlint.audit(model, example_input, **options)  # type: ignore[arg-type]
    before.assert_unchanged(model, optimizer, loss_fn=loss_fn, inputs=(example_input, batch))
    json.loads(report.to_json())
    return report


def unusable(report: nnlint.Report) -> list[str]:
    return [f.message for f in report.findings if f.code == "NN002"]


def assert_linted(report: nnlint.Report) -> None:
    """A report on the model itself: no NN002, no internal error."""
    assert not unusable(report), unusable(report)
    assert not report.problems, report.problems


# -- weights written in place by a forward, on real values ------------------------------------------
class RenormalizedEmbedding(nn.Module):
    """`nn.Embedding(max_norm=...)` renormalizes the rows it looks up, in place, on every forward
    (the torch docs' warning; fairseq and OpenNMT expose `max_norm` options). The `.item()` makes
    the graph be recorded on one real sample."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, max_norm=1.0)
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            self.embed.weight.mul_(10)  # rows longer than max_norm: a lookup would shrink them

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.max().item() >= self.embed.num_embeddings:
            raise ValueError("token out of range")
        return self.head(self.embed(tokens).mean(1))


class ClampedCritic(nn.Module):
    """WGAN's weight clipping, moved into the critic's forward (the reference implementation,
    martinarjovsky/WassersteinGAN main.py, clamps `p.data` before each critic step)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.parameters():
            p.data.clamp_(-0.01, 0.01)
        if x.abs().sum().item() == 0:  # values read: the graph is recorded on a real sample
            return x.new_zeros(x.shape[0], 1)
        return self.net(x)


@pytest.mark.parametrize("probe", [False, True])
def test_a_forward_renormalizing_its_embedding_leaves_the_users_weights(probe):
    report = audited(RenormalizedEmbedding(), torch.randint(0, 20, (4, 5)), probe=probe)
    assert_linted(report)


@pytest.mark.parametrize("probe", [False, True])
def test_a_forward_clamping_its_parameters_leaves_the_users_weights(probe):
    report = audited(ClampedCritic(), torch.randn(4, 6), probe=probe)
    assert_linted(report)


# -- torch.utils.checkpoint: the recomputation during backward ---------------------------------------
class CheckpointedBlocks(nn.Module):
    """Activation checkpointing per block, as Hugging Face models do with
    `gradient_checkpointing_enable()` (non-reentrant) and older code with the reentrant default."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(checkpoint(self.block, self.stem(x), use_reentrant=self.reentrant))


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_checkpointed_forwards_are_probed_on_the_copies(reentrant):
    model = CheckpointedBlocks(reentrant)
    report = audited(model, torch.randn(8, 6), probe_budget=None)  # every step: without a budget none is left out as a repeat
    assert_linted(report)
    assert any(note.startswith("probe: 3 training steps") for note in report.targets[0].notes)
    # The recomputation ran on the copies: the user's BatchNorm counted no batch.
    assert int(model.block[1].num_batches_tracked) == 0


# -- the loss function --------------------------------------------------------------------------------
class CenteredDistillationLoss(nn.Module):
    """A loss with an EMA buffer updated in its forward (DINO's `DINOLoss.center`,
    facebookresearch/dino main_dino.py) and a learnable temperature (CLIP's `logit_scale`)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(1, classes))
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.center.mul_(0.9).add_(logits.mean(0, keepdim=True), alpha=0.1)
        return F.cross_entropy((logits - self.center) * self.log_temperature.exp(), targets)


def test_a_loss_with_a_parameter_and_an_ema_buffer_is_left_as_it_was():
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    loss_fn = CenteredDistillationLoss(4)
    batch = (torch.randn(8, 6), torch.randint(0, 4, (8,)))
    report = audited(model, example_batch=batch, loss_fn=loss_fn)
    assert_linted(report)
    assert report.targets[0].notes  # the probe ran with the user's loss
    assert torch.equal(loss_fn.center, torch.zeros(1, 4)) and loss_fn.log_temperature.grad is None


class RunningLoss:
    """A loss written as a plain class, keeping a step count and a running mean of its values in
    attributes (the loss-balancing helpers of multi-task code are often plain objects)."""

    def __init__(self) -> None:
        self.steps = 0
        self.running = torch.zeros(())

    def __call__(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = F.mse_loss(output, targets)
        self.steps += 1
        self.running = 0.9 * self.running + 0.1 * loss.detach()
        return loss


def test_a_plain_object_loss_keeps_its_attributes():
    model, loss_fn = nn.Sequential(nn.Linear(6, 2)), RunningLoss()
    report = audited(model, example_batch=(torch.randn(8, 6), torch.randn(8, 2)), loss_fn=loss_fn)
    assert_linted(report)
    assert loss_fn.steps == 0 and float(loss_fn.running) == 0


def test_a_loss_closing_over_the_model_never_accumulates_into_the_users_grad():
    """L2 regularization written into the loss (`loss + wd * sum(p.pow(2).sum() for p in
    model.parameters())`, common in tutorials), with `.grad` left from the user's last step."""
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))

    def loss_fn(output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        penalty = sum(p.pow(2).sum() for p in model.parameters())
        return F.cross_entropy(output, targets) + 1e-4 * penalty

    batch = (torch.randn(8, 6), torch.randint(0, 4, (8,)))
    loss_fn(model(batch[0]), batch[1]).backward()  # the user's last training step
    report = audited(model, example_batch=batch, loss_fn=loss_fn)
    assert_linted(report)


# -- tensors and generators outside parameters() and buffers() ----------------------------------------
class UnregisteredState(nn.Module):
    """State a forward writes that `state_dict()` does not hold: layers in a plain list (the
    classic `self.layers = [nn.Linear(...)]` instead of nn.ModuleList), a plain tensor counter, a
    dict cache of the last activation, and a `torch.Generator` for its own noise."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(6, 8)
        self.layers = [nn.Linear(8, 8), nn.Linear(8, 8)]
        self.calls = torch.zeros(())
        self.cache = {"last": torch.zeros(8)}
        self.noise = torch.Generator().manual_seed(1234)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        h = self.first(x)
        for layer in self.layers:
            h = torch.relu(layer(h))
        self.cache["last"].copy_(h.detach()[0])
        return h + 0.01 * torch.randn(h.shape, generator=self.noise)


def test_tensors_and_generators_reachable_from_attributes_are_put_back():
    model = UnregisteredState()
    layer = model.layers[0]
    layer.weight.grad = torch.ones_like(layer.weight)  # a gradient the user had
    report = audited(model, torch.randn(8, 6))
    assert not report.problems, report.problems
    assert float(model.calls) == 0 and torch.equal(layer.weight.grad, torch.ones_like(layer.weight))


class NormalizesInPlace(nn.Module):
    """`im /= 255` on the input tensor itself, as YOLOv5's val.py and detect.py scale images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images /= 255
        return self.head(self.conv(images).mean((2, 3)))


def test_a_forward_writing_its_input_is_linted_and_the_input_is_left_alone():
    images = torch.randint(0, 256, (4, 3, 8, 8)).float()
    batch = (images.clone(), torch.randint(0, 2, (4,)))
    report = audited(NormalizesInPlace(), images, example_batch=batch, loss_fn=nn.CrossEntropyLoss())
    assert_linted(report)
    assert float(images.max()) > 1  # still pixels


# -- process-wide state a forward changes -------------------------------------------------------------
GLOBAL_CHANGES = {
    "default dtype": "torch.set_default_dtype(torch.float64)",
    "default device": "torch.set_default_device('meta')",
    "working directory": "os.chdir(tempfile.gettempdir())",
    "cudnn.benchmark": "torch.backends.cudnn.benchmark = True",
    "cudnn.deterministic": "torch.backends.cudnn.deterministic = True",
    "thread count": "torch.set_num_threads(3)",
    "anomaly mode": "torch.autograd.set_detect_anomaly(True)",
    "deterministic algorithms": "torch.use_deterministic_algorithms(True)",
    "matmul precision": "torch.set_float32_matmul_precision('medium')",
    "grad mode": "torch.set_grad_enabled(True)",
    "python random": "random.random()",
    "numpy random": "numpy.random.rand()",
    "torch random": "torch.rand(1)",
}


class ChangesTheProcess(nn.Module):
    """A forward with a process-wide side effect: set-up code that belongs in the training script
    (`torch.backends.cudnn.benchmark = True`, `torch.set_default_dtype`, `os.chdir` to the data)
    but was put where the model runs, or a draw from a global random generator."""

    def __init__(self, statement: str) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.statement = compile(statement, "<forward>", "exec")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        exec(self.statement, {"torch": torch, "os": os, "tempfile": tempfile, "random": random, "numpy": numpy})
        return self.fc(x)


@pytest.mark.parametrize("statement", list(GLOBAL_CHANGES.values()), ids=list(GLOBAL_CHANGES))
def test_global_state_a_forward_changes_is_put_back(statement):
    report = audited(ChangesTheProcess(statement), torch.randn(4, 6))
    assert not report.problems, report.problems


@pytest.mark.slow  # a fresh interpreter importing torch: about 10 s on a busy machine
def test_printing_a_report_draws_no_random_number():
    """rich draws from Python's `random` when imported; the first `.print()` or `.to_json()` of a
    report must not (a fresh interpreter, so that nothing imported rich before)."""
    script = textwrap.dedent(
        """
        import random, numpy, torch, nnlint
        model, x = torch.nn.Linear(4, 2), torch.randn(3, 4)
        states = random.getstate(), numpy.random.get_state()[1].copy(), torch.get_rng_state()
        report = nnlint.audit(model, x)
        report.to_json()
        report.print()
        after = random.getstate(), numpy.random.get_state()[1], torch.get_rng_state()
        print(states[0] == after[0], bool((states[1] == after[1]).all()), bool(torch.equal(states[2], after[2])))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "True True True"


# -- BaseExceptions from the user's code --------------------------------------------------------------
class ExitsInForward(nn.Module):
    """`sys.exit()` where a script would stop on a bad input (argparse-era code moved into a model)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            sys.exit("expected a sequence batch")
        return self.fc(x)


class GeneratorExitInForward(nn.Module):
    """GeneratorExit escaping a forward that consumes a generator of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise GeneratorExit


@pytest.mark.parametrize("model_class", [ExitsInForward, GeneratorExitInForward])
def test_a_forward_raising_systemexit_or_generatorexit_is_nn002_naming_the_line(model_class):
    model = model_class()
    report = audited(model, torch.randn(4, 6))
    (message,) = unusable(report)
    exception, statement = (
        ("SystemExit: expected a sequence batch", 'sys.exit("expected')
        if model_class is ExitsInForward
        else ("GeneratorExit", "raise GeneratorExit")
    )
    line = next(n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if statement in text)
    assert exception in message and f"test_isolation_api.py:{line}" in message, message
    assert report.exit_code == 2  # NN002: the model could not be linted


def test_ctrl_c_in_a_forward_propagates_after_everything_is_put_back():
    class Interrupted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.set_default_dtype(torch.float64)
            raise KeyboardInterrupt

    model, x = Interrupted(), torch.randn(4, 6)
    before = Snapshot.take(model, inputs=(x,))
    with pytest.raises(KeyboardInterrupt):
        nnlint.audit(model, x)
    before.assert_unchanged(model, inputs=(x,))


EXITING_FILES = {
    "constructor": (
        """
        import sys
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                if not torch.cuda.is_available():
                    sys.exit("this model needs a GPU")
                self.fc = nn.Linear(4, 2)
        """,
        "`Net()` raised SystemExit: this model needs a GPU (line 9)",
    ),
    "target function": (
        """
        import torch
        import nnlint

        @nnlint.target
        def model():
            raise GeneratorExit
        """,
        "@nnlint.target function `model` raised GeneratorExit (line 6)",
    ),
}


@pytest.mark.parametrize("source, message", list(EXITING_FILES.values()), ids=list(EXITING_FILES))
def test_an_exit_building_the_model_is_nn002_with_the_line(tmp_path, source, message):
    path = tmp_path / "exits.py"
    path.write_text(textwrap.dedent(source).lstrip())
    report = lint_paths([path], Config())
    (finding,) = report.findings
    assert finding.code == "NN002" and message in finding.message, finding.message
    assert report.exit_code == 2


def test_generatorexit_at_import_is_an_error_with_the_line(tmp_path):
    path = tmp_path / "exits_on_import.py"
    path.write_text("import torch\n\nraise GeneratorExit\n")
    report = lint_paths([path], Config())
    assert [p.message for p in report.problems] == ["raised GeneratorExit (line 3) while being imported"]


# -- models nnlint used to reject ---------------------------------------------------------------------
def test_dataparallel_is_unwrapped_with_a_note():
    """`model = nn.DataParallel(model)` before training, as most multi-GPU scripts of the
    pytorch/examples era do (imagenet/main.py)."""
    inner = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    report = audited(nn.DataParallel(inner), torch.randn(4, 6))
    assert_linted(report)
    assert "the model is wrapped in nn.DataParallel: nnlint linted the module it wraps (Sequential)" in report.targets[0].notes


def test_a_compiled_model_is_linted_as_its_original_module():
    """`model = torch.compile(model)` (PyTorch 2 training scripts, e.g. karpathy/nanoGPT train.py)."""
    inner = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    report = audited(torch.compile(inner), torch.randn(4, 6))
    assert_linted(report)
    assert any("wrapped in torch.compile" in note for note in report.targets[0].notes)


def test_distributed_data_parallel_is_unwrapped(tmp_path):
    """DDP in a one-process gloo group, as a single-node launch of a DDP script builds it."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        inner = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
        report = audited(nn.parallel.DistributedDataParallel(inner), torch.randn(4, 6))
    finally:
        dist.destroy_process_group()
    assert_linted(report)
    assert any("wrapped in DistributedDataParallel" in note for note in report.targets[0].notes)


@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("probe", [True, False])
def test_a_torchscript_module_gets_one_line_saying_so(how, probe):
    """A module-level `model = torch.jit.script(Net())` / `torch.jit.trace(...)` (deployment code)."""
    net, x = nn.Sequential(nn.Linear(6, 2)), torch.randn(4, 6)
    model = torch.jit.script(net) if how == "script" else torch.jit.trace(net, x)
    report = nnlint.audit(model, x, probe=probe)
    assert [f.code for f in report.findings] == ["NN002"] and not report.problems
    assert "is a TorchScript module" in report.findings[0].message and "lint the original nn.Module" in report.findings[0].message


class Nested(nn.Module):
    """A model that nests one module per layer (recursive builders: `Block(depth - 1)`, U-Net
    and tree-structured models built by recursion)."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.inner = Nested(depth - 1) if depth else nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def test_a_model_nested_200_deep_is_linted():
    report = audited(Nested(200), torch.randn(4, 6))
    assert_linted(report)


@pytest.mark.parametrize("built", ["in float64", "in float32, before the switch"])
def test_a_float64_default_dtype_works(built):
    """`torch.set_default_dtype(torch.float64)` at the top of a scientific-computing script, or
    after the model is built (the fuzz campaign's case: the probe's own buffers followed the
    default dtype and met the model's float32 outputs)."""
    saved = torch.get_default_dtype()
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 2))
    torch.set_default_dtype(torch.float64)
    try:
        if built == "in float64":
            model = model.double()
        example = torch.randn(16, 6, dtype=model[0].weight.dtype)
        report = audited(model, example, batch_size=4)  # batch 4 of 16: NN902 runs in chunks
        assert torch.get_default_dtype() is torch.float64
    finally:
        torch.set_default_dtype(saved)
    assert_linted(report)


def test_an_input_dict_with_non_string_keys_is_a_clear_error():
    report = audited(nn.Linear(6, 2), {1: torch.randn(4, 6)})
    (message,) = unusable(report)
    assert "`example_input` is a dict with the key 1 (int)" in message and "\n" not in message


def nested_in_a_loop(depth: int) -> nn.Module:
    """The same nesting built by a loop (`block = Wrapper(block)` per layer), so that building it
    needs no recursion: only walking it does."""
    inner: nn.Module = nn.Linear(6, 6)
    for _ in range(depth):
        inner = nn.Sequential(inner)
    return inner


def test_a_model_nested_deeper_than_torch_can_walk_is_nn002_naming_the_depth():
    """1500 levels: torch's own `.parameters()` raises RecursionError at the default limit (checked:
    `SGD(model.parameters())` works at 991 levels and fails at 992), so the model cannot be trained
    as written; the report says so, with the depth and the limit, instead of an internal error."""
    model, limit = nested_in_a_loop(1500), sys.getrecursionlimit()
    assert limit == 1000
    report = nnlint.audit(model, torch.randn(4, 6))
    json.loads(report.to_json())
    assert not report.problems, report.problems
    (message,) = unusable(report)
    assert "nested 1500 levels deep" in message and "recursion limit (1000)" in message and "\n" not in message
    assert sys.getrecursionlimit() == limit and report.exit_code == 2


@pytest.mark.slow  # about a minute: the graph of 1500 nested calls
def test_a_model_nested_deep_is_linted_where_the_user_raised_the_recursion_limit():
    """The same model where the script raised the limit first (as deep recursive models do): torch
    can train it, so nnlint lints it, and leaves the model and the limit as they were."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(5000)
    try:
        report = audited(nested_in_a_loop(1500), torch.randn(4, 6), probe=False)  # the probe: slow, and no different here
        assert sys.getrecursionlimit() == 5000
    finally:
        sys.setrecursionlimit(saved)
    assert_linted(report)
