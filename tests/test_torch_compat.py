"""Every shim in nnlint.runtime.torch_compat works against the installed torch, and no other module
reaches torch's private API: when torch moves a private name, this file says which one."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nnlint.runtime import torch_compat

ROOT = Path(__file__).resolve().parent.parent  # the checkout: its docs/ and rules/ (an installed nnlint has no docs/)
# torch's private names, as code reaches them: `torch._x`, `torch.utils._pytree`, `nn.modules.x._Base`,
# a module's `._parameters` / `._buffers` / `._modules`, `from torch.x import _Private`.
PRIVATE_TORCH = re.compile(
    r"\btorch(\.\w+)*\._(?!_)\w|\bnn\.modules\.\w+\._\w|\._(parameters|buffers|modules)\b"
    r"|^\s*from torch(\.\w+)* import .*\b_(?!_)\w"
)


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of code, without comments and docstrings (they may name torch internals they explain)."""
    lines, in_docstring = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        quotes = stripped.count('"""')
        if in_docstring or stripped.startswith('"""'):
            in_docstring = in_docstring != (quotes == 1)
            continue
        lines.append((number, line.split("  #")[0]))
    return lines


def test_only_torch_compat_reaches_private_torch_api():
    sources = [*sorted((ROOT / "nnlint").rglob("*.py")), *sorted((ROOT / "rules").glob("*.py"))]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path.name != "torch_compat.py"
        for number, line in _code_lines(path)
        if PRIVATE_TORCH.search(line)
    ]
    assert offenders == []


def test_private_base_classes_cover_their_families():
    assert isinstance(nn.BatchNorm2d(3), torch_compat.BatchNormBase) and isinstance(nn.SyncBatchNorm(3), torch_compat.BatchNormBase)
    assert isinstance(nn.InstanceNorm1d(3), torch_compat.InstanceNormBase)
    assert isinstance(nn.ConvTranspose2d(3, 3, 1), torch_compat.ConvBase) and isinstance(nn.Conv1d(3, 3, 1), torch_compat.ConvBase)
    assert isinstance(nn.Dropout2d(), torch_compat.DropoutBase) and isinstance(nn.Dropout(), torch_compat.DropoutBase)
    assert isinstance(nn.CrossEntropyLoss(), torch_compat.LossBase)
    assert torch_compat.TensorBase.add is torch.Tensor.add
    assert isinstance(iter(torch.utils.data.DataLoader(range(3))), torch_compat.DataLoaderIterBase)


def test_torch_function_mode_stack_depth_and_pop():
    depth = torch_compat.torch_function_mode_depth()
    mode = TorchFunctionMode()
    mode.__enter__()  # left entered on purpose, as an interrupted forward leaves it
    assert torch_compat.torch_function_mode_depth() == depth + 1
    torch_compat.pop_torch_function_modes(depth)
    assert torch_compat.torch_function_mode_depth() == depth


def test_disable_torch_function_skips_an_active_mode():
    seen = []

    class Watching(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    with Watching():
        with torch_compat.DisableTorchFunction():
            torch.ones(2).add(1)
        assert seen == []
        torch.ones(2).add(1)
    assert seen


def test_global_module_hooks_are_the_live_tables():
    tables = torch_compat.global_module_hooks()
    assert "_global_forward_hooks" in tables and "_global_forward_pre_hooks" in tables
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, output: None)
    try:
        assert handle.id in torch_compat.global_module_hooks()["_global_forward_hooks"]
    finally:
        handle.remove()
    assert handle.id not in tables["_global_forward_hooks"]


def test_stored_tensors_and_children_read_the_module_as_stored():
    layer = nn.Linear(2, 3, bias=False)
    parameters, buffers = torch_compat.stored_tensors(layer)
    assert parameters["weight"] is layer.weight and parameters["bias"] is None and dict(buffers) == {}
    assert dict(torch_compat.stored_tensors(nn.BatchNorm1d(2))[1]).keys() == {"running_mean", "running_var", "num_batches_tracked"}
    assert not torch_compat.children_of(layer) and list(torch_compat.children_of(nn.Sequential(layer))) == ["0"]


def test_parse_to_returns_the_requested_dtype_and_memory_format():
    assert torch_compat.parse_to(torch.float16) == (torch.float16, None)
    assert torch_compat.parse_to("cpu") == (None, None)
    assert torch_compat.parse_to("cpu", torch.float64, memory_format=torch.channels_last) == (torch.float64, torch.channels_last)


def test_foreach_norm_and_sub():
    tensors = [torch.tensor([3.0, 4.0]), torch.ones(2, 2)]
    assert [float(n) for n in torch_compat.foreach_norm(tensors)] == [5.0, 2.0]
    difference = torch_compat.foreach_sub(tensors, [torch.ones(2), torch.ones(2, 2)])
    assert difference[0].tolist() == [2.0, 3.0] and difference[1].abs().sum() == 0


def test_pytree_helpers():
    leaves, _ = torch_compat.tree_flatten({"a": (torch.ones(1), 2)})
    assert len(leaves) == 2
    doubled = torch_compat.tree_map_only(torch.Tensor, lambda t: t * 2, [torch.ones(1), "x"])
    assert doubled[0].item() == 2.0 and doubled[1] == "x"


def test_fx_patcher_exit_and_meta_nonzero():
    assert callable(torch_compat.fx_patcher_exit())
    with torch_compat.meta_nonzero_assumed():
        selected = torch.empty(4, 3, device="meta")[torch.empty(4, 3, device="meta") > 0]
    assert selected.shape == (12,)


def test_disable_dynamo_lookups_find_torchs_wrapper():
    import torch._decomp  # noqa: F401 - what meta kernels load; the search starts from it

    inner = torch_compat.disable_dynamo_wrapper_code()
    assert isinstance(inner, types.CodeType) and "fn" in inner.co_freevars
    assert torch_compat.disable_dynamo_cache_attribute() == "__dynamo_disable"
    assert any(isinstance(root, types.FunctionType) for root in torch_compat.meta_kernel_roots())
    assert torch_compat.dynamo_imported() == ("torch._dynamo" in sys.modules)


def test_a_global_forward_hook_with_kwargs_is_removed_completely():
    before = {name: dict(table) for name, table in torch_compat.global_module_hooks().items()}
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, kwargs, output: None, with_kwargs=True)
    torch_compat.remove_global_module_hook(handle)
    assert {name: dict(table) for name, table in torch_compat.global_module_hooks().items()} == before


def test_default_device_context_follows_set_default_device():
    assert torch_compat.default_device_context() is None
    torch.set_default_device("meta")
    try:
        context = torch_compat.default_device_context()
        assert context is not None and torch.empty(1).is_meta
    finally:
        torch.set_default_device(None)
    assert torch_compat.default_device_context() is None


def test_set_version_counters_gives_back_a_version():
    tensor = torch.zeros(3)
    before = tensor._version
    tensor.add_(1)
    assert tensor._version != before
    torch_compat.set_version_counters([tensor], [before])
    if hasattr(torch._C._autograd, "_unsafe_set_version_counter"):
        assert tensor._version == before


def test_compiled_module_class_is_dynamos_wrapper_once_imported():
    compiled = torch_compat.compiled_module_class()
    if "torch._dynamo.eval_frame" in sys.modules:
        assert compiled is sys.modules["torch._dynamo.eval_frame"].OptimizedModule
    else:
        assert compiled is None


def test_training_roots_and_the_optimizer_step_shims_find_torchs_pieces():
    roots = list(torch_compat.training_roots())
    assert torch.optim.Optimizer.add_param_group in roots and torch.optim.Optimizer.zero_grad in roots
    assert torch_compat._use_grad_code() is not None  # else the probe's optimizer step imports torch._dynamo again
    tables = torch_compat.global_optimizer_hooks()
    assert set(tables) == {"_global_optimizer_pre_hooks", "_global_optimizer_post_hooks"}
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(lambda *args: None)
    assert handle.id in tables["_global_optimizer_pre_hooks"]
    handle.remove()
    assert torch_compat.is_dynamo_package("torch._dynamo") and not torch_compat.is_dynamo_package("torch._dynamo.utils")
