"""What keeps `nnlint --static` near the floor (import torch, build the model): see bench/RESULTS.md.

A static run must not pay for imports it does not use — torch._dynamo (0.8 s, pulled in by meta
kernels), numpy.random (0.13 s), the probe — and must leave torch and NumPy as a first import would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import torch
from expectations import ROOT
from torch import nn

from nnlint.graph import build_graph
from nnlint.runtime.lazy_dynamo import _CACHE, _wrapped_by_disable_dynamo, dynamo_import_deferred
from nnlint.sources import ModuleLocator

# BatchNorm, LayerNorm, GELU, ReLU, mean and adaptive pooling all have Python meta kernels.
MODEL = textwrap.dedent(
    """\
    import numpy as np
    import torch
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.LayerNorm(128), nn.Linear(128, 16), nn.GELU(), nn.Linear(16, 2),
    )
    example_input = torch.randn(4, 3, 10, 10)
    """
)

STATIC_RUN = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path
    from nnlint.config import Config
    from nnlint.engine import lint_paths
    report = lint_paths([Path(sys.argv[1])], Config(static=True))
    assert not report.problems and report.targets[0].graph is not None, report
    print(json.dumps({name: name in sys.modules for name in ("torch._dynamo", "numpy.random", "nnlint.probe.session")}))
    """
)


def test_a_static_run_imports_neither_dynamo_nor_numpy_random_nor_the_probe(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    result = subprocess.run([sys.executable, "-c", STATIC_RUN, str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"torch._dynamo": False, "numpy.random": False, "nnlint.probe.session": False}


def test_meta_runs_leave_torchs_dynamo_wrappers_as_they_were(monkeypatch):
    wrapped = _wrapped_by_disable_dynamo()
    assert wrapped, "torch's _disable_dynamo wrappers were not found: meta runs import torch._dynamo again"
    before = {id(fn) for fn in wrapped if _CACHE in fn.__dict__}
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.BatchNorm1d(8))
    graph = build_graph(model, torch.randn(4, 8), ModuleLocator(model))
    assert graph.shape(graph.output_node().args[0]) == (4, 8)
    if "torch._dynamo" in sys.modules:  # an earlier test imported it: torch fills its own caches as kernels run
        assert not [fn for fn in wrapped if fn.__dict__.get(_CACHE) is fn]
        before = {id(fn) for fn in wrapped if _CACHE in fn.__dict__}
    assert {id(fn) for fn in wrapped if _CACHE in fn.__dict__} == before
    # As in a fresh process, where torch._dynamo is not imported yet (an earlier test may have imported it).
    monkeypatch.delitem(sys.modules, "torch._dynamo", raising=False)
    with dynamo_import_deferred():
        assert all(fn.__dict__.get(_CACHE) is fn for fn in wrapped if id(fn) not in before)
    assert {id(fn) for fn in wrapped if _CACHE in fn.__dict__} == before


NUMPY_MODEL = textwrap.dedent(
    """\
    import numpy as np
    import torch
    from torch import nn

    model = nn.Linear(4, 4)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(np.random.randn(4, 4)))
    example_input = torch.randn(2, 4)
    """
)

NUMPY_RUN = textwrap.dedent(
    """\
    import sys
    from pathlib import Path
    import numpy
    from nnlint.loader import loaded_model_file
    assert "numpy.random" not in sys.modules
    with loaded_model_file(Path(sys.argv[1])) as loaded:  # the file's stdout goes to stderr meanwhile
        value = float(loaded.targets[0].target.model.weight[0, 0])
    print(value)
    """
)


def test_a_model_file_drawing_from_numpy_random_gets_the_same_weights_in_every_run(tmp_path):
    import numpy as np

    path = tmp_path / "numpy_model.py"
    path.write_text(NUMPY_MODEL)
    runs = [
        subprocess.run([sys.executable, "-c", NUMPY_RUN, str(path)], capture_output=True, text=True, cwd=ROOT, check=False)
        for _ in range(2)
    ]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr
    values = [float(run.stdout.splitlines()[-1]) for run in runs]
    assert values[0] == values[1] == float(np.float32(np.random.RandomState(0).randn()))


# -- script mode: a training script's optimizer and the probe's optimizer step ------------------
SCRIPT_RUN = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path
    from nnlint.config import Config
    from nnlint.engine import lint_paths
    from nnlint.runtime.lazy_dynamo import _CACHE, _wrapped_for_training
    report = lint_paths([Path(sys.argv[1])], Config())
    assert not report.problems, report.problems
    left = [fn.__qualname__ for fn in _wrapped_for_training() if fn.__dict__.get(_CACHE) is fn]
    codes = sorted(f.code for t in report.targets for f in t.findings)
    notes = [n for t in report.targets for n in t.notes if n.startswith("probe:")]
    print(json.dumps({"dynamo": "torch._dynamo" in sys.modules, "left": left, "codes": codes, "notes": notes}))
    """
)


def test_script_mode_never_imports_dynamo_for_a_script_that_does_not_compile(tmp_path):
    """Building an optimizer imports torch._dynamo (about 2 s) in a plain `python train.py`; script
    mode runs the script, the graph and the probe (its optimizer step included) without it."""
    script = tmp_path / "mnist_main.py"
    script.write_text((ROOT / "tests" / "scripts" / "mnist_main.py").read_text())
    result = subprocess.run([sys.executable, "-c", SCRIPT_RUN, str(script)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["dynamo"] is False and outcome["left"] == []
    assert outcome["codes"] == ["NN205", "NN302"]  # as tests/test_script_mode.py expects of this script
    # The probe ran (one step: the script's model draws no random number, so more would repeat it).
    assert outcome["notes"] and outcome["notes"][0].startswith("probe: 1 training step on cpu")


COMPILING = textwrap.dedent(
    """\
    import sys
    import torch
    from nnlint.runtime.lazy_dynamo import _CACHE, _wrapped_for_training, dynamo_import_deferred_for_training
    wrapped = _wrapped_for_training()
    add_param_group = torch.optim.Optimizer.add_param_group.__wrapped__
    assert add_param_group in wrapped
    with dynamo_import_deferred_for_training():
        assert all(fn.__dict__.get(_CACHE) is fn for fn in wrapped)
        import torch._dynamo  # what torch.compile does first
        assert not [fn for fn in wrapped if fn.__dict__.get(_CACHE) is fn]
        torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        assert add_param_group.__dict__[_CACHE] is not add_param_group  # torch's own disable(fn)
    print("ok")
    """
)


def test_a_script_that_imports_dynamo_gets_torchs_real_wrappers_from_then_on():
    result = subprocess.run([sys.executable, "-c", COMPILING], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_optimizer_step_without_the_dynamo_import_updates_as_step_does():
    from nnlint.runtime.torch_compat import step_without_dynamo_import

    for make in (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4), lambda p: torch.optim.AdamW(p, lr=1e-3)):
        torch.manual_seed(0)
        models = [nn.Linear(4, 3), nn.Linear(4, 3)]
        models[1].load_state_dict(models[0].state_dict())
        initial = models[0].weight.detach().clone()
        optimizers = [make(list(model.parameters())) for model in models]
        seen: list[torch.optim.Optimizer] = []
        optimizers[1].register_step_pre_hook(lambda optimizer, args, kwargs, seen=seen: seen.append(optimizer))
        x = torch.randn(8, 4)
        for model in models:
            model(x).square().mean().backward()
        optimizers[0].step()
        step_without_dynamo_import(optimizers[1])
        assert seen == [optimizers[1]]  # the step hooks still run
        assert torch.is_grad_enabled()  # the grad mode the step ran in is put back
        assert not torch.equal(models[1].weight, initial)
        for mine, theirs in zip(models[1].parameters(), models[0].parameters(), strict=True):
            assert torch.equal(mine, theirs)
