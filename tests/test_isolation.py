"""Each file is linted in its own child process: nothing a model file does (exit, kill itself,
crash, hang, print to fd 1, change torch's defaults or the working directory) can end nnlint,
corrupt its report, or change the next file's result; Ctrl-C exits 130 with one line; folder
scans read regular files only, each file once.

Most tests run the CLI in this process (click's CliRunner), which forks this pytest process for
each file; the ones about file descriptors and signals run `nnlint` as a real process.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy
import pytest
import torch
from click.testing import CliRunner
from expectations import FIXTURES, ROOT

from nnlint.cli import main
from nnlint.config import Config, config_from_table
from nnlint.engine import lint_file
from nnlint.file_result import FileResult
from nnlint.findings import Finding, Location, Phase, Severity
from nnlint.loader import collect_model_files
from nnlint.render import OutputFormat, render
from nnlint.report import Report
from nnlint.runtime.child import _Frames, run_in_child
from nnlint.wire import WireError, decode_file_result, encode_file_result

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="isolation forks (POSIX)")


def nnlint(*args: object) -> tuple[int, str, str]:
    """The CLI in this process; (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def nnlint_process(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m nnlint` as its own process, as a shell or CI runs it."""
    return subprocess.run([sys.executable, "-m", "nnlint", *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False)


def model_file(folder: Path, name: str, *, forward: str = "return self.fc(x)", prelude: str = "", extra: str = "") -> Path:
    """A small classifier as model files define it (a module-level instance and an example
    input), with the hazard placed in `prelude` (module level), `forward` or `extra`."""
    source = textwrap.dedent(
        """\
        import os
        import signal
        import sys
        import threading
        import time

        import torch
        from torch import nn
        {prelude}

        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 3)

            def forward(self, x):
                {forward}


        model = Classifier()
        example_input = torch.randn(4, 8)
        {extra}
        """
    ).format(prelude=prelude, forward=forward, extra=extra)
    path = folder / name
    path.write_text(source)
    return path


FORWARD_LINE = 17  # in model_file: the line of `forward`'s body
MODEL_LINE = 20  # `model = Classifier()`


def targets(stdout: str) -> list[dict]:
    return json.loads(stdout)["targets"]


def only_finding(stdout: str) -> dict:
    (target,) = targets(stdout)
    (finding,) = target["findings"]
    return finding


# -- a file that ends its process --------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "expected"),
    [
        # argparse-style training scripts end with sys.exit(main()); here the call is reached from forward
        # (nnlint turns the SystemExit into NN002 before it reaches the child's exit: see runtime/escapes.py)
        ("sys.exit(0)", ["SystemExit: 0", f"model.py:{FORWARD_LINE}"]),
        # a generator-based forward's cleanup leaking GeneratorExit (a BaseException, like SystemExit)
        ("raise GeneratorExit", ["forward raised: GeneratorExit", f"model.py:{FORWARD_LINE}"]),
        ("os._exit(0)", ["exited with code 0", "before the lint finished"]),
        ("os._exit(3)", ["exited with code 3"]),
        ("os.kill(os.getpid(), signal.SIGKILL)", ["killed by signal SIGKILL (9)"]),
        ("import ctypes; ctypes.string_at(0)", ["killed by signal SIGSEGV (11)", "a crash in native code"]),
    ],
)
def test_a_forward_that_ends_the_process_is_nn002_for_its_file(tmp_path, forward, expected):
    path = model_file(tmp_path, "model.py", forward=forward)
    code, out, _ = nnlint(path, "--format", "json", "--static")
    finding = only_finding(out)
    assert code == 2
    assert finding["code"] == "NN002" and finding["message"].startswith("`model` cannot be linted: ")
    assert all(part in finding["message"] for part in expected), finding["message"]
    assert finding["location"] == {"file": str(path), "line": MODEL_LINE}  # the target it was in


def test_sys_exit_in_a_constructor_nnlint_calls_is_nn002_and_the_next_file_is_linted(tmp_path):
    """A class nnlint builds itself (its constructor needs no arguments), whose constructor exits
    when a config check fails, as command-line tools do."""
    broken = tmp_path / "a_exits.py"
    broken.write_text(
        textwrap.dedent(
            """\
            import sys

            from torch import nn


            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    sys.exit("no config file found")
            """
        )
    )
    clean = model_file(tmp_path, "b_clean.py")
    code, out, _ = nnlint(tmp_path, "--format", "json", "--static")
    first, second = targets(out)
    assert code == 2
    assert [f["code"] for f in first["findings"]] == ["NN002"]
    assert "SystemExit: no config file found (line 9)" in first["findings"][0]["message"]
    assert (second["name"], second["file"], second["findings"]) == ("model", str(clean), [])


def test_sys_exit_in_an_nnlint_target_function_is_nn002(tmp_path):
    path = tmp_path / "targets.py"
    path.write_text(
        textwrap.dedent(
            """\
            import sys

            import nnlint
            import torch
            from torch import nn


            @nnlint.target
            def small():
                if not torch.cuda.is_available():
                    sys.exit(0)
                return nn.Linear(4, 2)
            """
        )
    )
    code, out, _ = nnlint(path, "--format", "json", "--static")
    finding = only_finding(out)
    assert code == 2 and finding["code"] == "NN002"
    assert "SystemExit: 0 (line 11)" in finding["message"]


# -- a file that hangs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prelude", "forward"),
    [
        # Its own SIGALRM timer (a `Timeout` context manager, as in IRVLab/proteus_rcvm_loco
        # scripts/timeout.py): nnlint's timer is not free, and a watchdog cannot interrupt sleep.
        ("signal.signal(signal.SIGALRM, lambda signum, frame: None)", "time.sleep(60)"),
        # A retry loop whose bare `except:` swallows nnlint's timeout every time it is raised.
        ("", "while True:\n            try:\n                time.sleep(0.05)\n            except:  # noqa: E722\n                pass"),
    ],
    ids=["own-sigalrm-handler", "bare-except-retry-loop"],
)
def test_a_forward_that_never_returns_is_stopped_at_the_file_timeout(tmp_path, prelude, forward):
    path = model_file(tmp_path, "model.py", prelude=prelude, forward=forward)
    start = time.monotonic()
    code, out, _ = nnlint(path, "--format", "json", "--static", "--probe-timeout", "0.5", "--file-timeout", "3")
    assert time.monotonic() - start < 30
    finding = only_finding(out)
    assert code == 2 and finding["code"] == "NN002"
    assert "its lint did not finish within 3 s (--file-timeout)" in finding["message"]


def test_sleep_in_forward_is_still_stopped_by_the_probe_timeout(tmp_path):
    path = model_file(tmp_path, "model.py", forward="time.sleep(60)")
    code, out, _ = nnlint(path, "--format", "json", "--static", "--probe-timeout", "0.5", "--file-timeout", "20")
    finding = only_finding(out)
    assert code == 2 and "did not finish within 0.5 s" in finding["message"] and "(--probe-timeout)" in finding["message"]


def test_a_thread_left_running_ends_with_the_child_and_is_noted(tmp_path):
    """A prefetch thread started in forward (prefetch_generator's BackgroundGenerator pattern,
    justheuristic/prefetch_generator, here without daemon=True) would keep `python` alive."""
    path = model_file(
        tmp_path,
        "model.py",
        forward="threading.Thread(target=time.sleep, args=(600,), name='prefetch').start()\n        return self.fc(x)",
    )
    start = time.monotonic()
    code, out, _ = nnlint(path, "--format", "json", "--static")
    assert time.monotonic() - start < 60
    (target,) = targets(out)
    assert code == 0 and target["findings"] == []
    assert any("left 1 thread running (`prefetch`)" in note for note in target["notes"])


# -- output and state that must not leak ---------------------------------------------------------


def test_what_a_forward_writes_to_fd_1_goes_to_stderr_and_the_json_report_parses(tmp_path):
    """`os.system("nvidia-smi")`-style logging from inside a model writes to fd 1 directly."""
    forward = "os.system('echo from-a-subprocess')\n        print('from-print')\n        return self.fc(x)"
    path = model_file(tmp_path, "model.py", forward=forward)
    result = nnlint_process(path, "--format", "json", "--static")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["exit_code"] == 0
    assert "from-a-subprocess" in result.stderr and "from-print" in result.stderr


@pytest.mark.parametrize(
    "prelude",
    [
        # lasgroup/gosafeopt src/gosafeopt/__init__.py sets float64 for the whole library at import
        "torch.set_default_dtype(torch.float64)",
        "torch.set_default_device('meta')",
        # supplient/inpaint_streamlit_gui init.py: chdir to the file's own folder at import
        "os.chdir(os.path.dirname(os.path.abspath(__file__)))",
    ],
    ids=["default-dtype", "default-device", "chdir"],
)
def test_state_a_file_changes_at_import_does_not_reach_the_next_file_or_the_output_path(tmp_path, monkeypatch, prelude):
    folder = tmp_path / "models"
    folder.mkdir()
    changer = model_file(folder, "a_changes_state.py", prelude=prelude)
    clean = FIXTURES / "nn104_bias_before_batchnorm.py"
    monkeypatch.chdir(tmp_path)
    alone = nnlint(clean, "--format", "json")
    _, out, _ = nnlint(changer, clean, "--format", "json", "--output", "report.json")
    assert out == "" and alone[0] == 1
    report = json.loads(Path(tmp_path, "report.json").read_text())  # where it was asked for, not in models/
    assert report["targets"][0]["name"] == "model" and report["targets"][1:] == targets(alone[1])
    assert Path.cwd() == tmp_path


# -- folder scans --------------------------------------------------------------------------------


def within(seconds: float, function):
    """Call `function` in a thread; fail instead of hanging if it blocks."""
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(function()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_folder_scan_skips_a_fifo_and_a_symlink_to_a_device(tmp_path):
    model = model_file(tmp_path, "model.py")
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "zeros.py").symlink_to("/dev/zero")
    files, errors = within(30, lambda: collect_model_files([tmp_path]))
    assert (files, errors) == ([(model, False)], [])
    code, out, _ = within(60, lambda: nnlint(tmp_path, "--format", "json", "--static"))
    assert code == 0 and [t["file"] for t in targets(out)] == [str(model)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_named_fifo_is_an_error_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    code, _, err = within(60, lambda: nnlint(tmp_path / "pipe.py", "--static"))
    assert code == 2 and "pipe.py: not a regular file (a FIFO, device or socket): not read" in err


def test_a_file_reached_twice_is_linted_once(tmp_path):
    model = model_file(tmp_path, "model.py")
    (tmp_path / "same_model.py").symlink_to(model)
    code, out, _ = nnlint(tmp_path, model, model, "--format", "json", "--static")
    assert code == 0 and [t["file"] for t in targets(out)] == [str(model)]


# -- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--no-isolation"]], ids=["isolated", "in-process"])
def test_ctrl_c_exits_130_with_one_line_and_leaves_no_process(tmp_path, mode):
    started = tmp_path / "started"
    path = model_file(tmp_path, "model.py", forward=f"open({str(started)!r}, 'w').write(str(os.getpid()))\n        time.sleep(600)")
    process = subprocess.Popen(
        [sys.executable, "-m", "nnlint", str(path), "--static", "--probe-timeout", "900", *mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background (`pytest &`, nohup) inherits SIGINT
        # ignored, and Python then never raises KeyboardInterrupt (the test hung for that reason).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not (started.exists() and started.read_text()) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert started.exists(), process.communicate()[1]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (130, "", "nnlint: interrupted\n")
    forward_pid = int(started.read_text())
    if mode == []:  # the child that ran the forward is gone
        with pytest.raises(ProcessLookupError):
            os.kill(forward_pid, 0)


# -- the same results either way -----------------------------------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        [FIXTURES / "nn003_suppressions.py"],  # NN003: suppressions used and unused across targets
        [FIXTURES / "nn104_bias_before_batchnorm.py", FIXTURES / "clean_resnet.py", FIXTURES / "nn002_shape_mismatch.py"],
    ],
    ids=["suppressions", "three-files"],
)
def test_isolated_and_in_process_runs_report_the_same(paths, monkeypatch):
    monkeypatch.chdir(ROOT)
    isolated = nnlint(*paths, "--format", "json", "--static")
    in_process = nnlint(*paths, "--format", "json", "--static", "--no-isolation")
    assert isolated == in_process
    assert targets(isolated[1])


def test_a_file_result_crosses_as_json_and_renders_the_same(tmp_path):
    path = FIXTURES / "nn003_suppressions.py"
    result = lint_file(path, Config(static=True))
    evidence = {"norm": math.nan, "shape": (2, 3)}
    nan_finding = Finding("NN801", "x", Severity.WARNING, Phase.PROBE, "m", "fc", Location(str(path), 3), evidence)
    last = replace(result.reports[-1], findings=(*result.reports[-1].findings, nan_finding))
    result = FileResult(result.path, (*result.reports[:-1], last), result.problems, ("tb",), result.ledger)
    decoded = decode_file_result(json.loads(json.dumps(encode_file_result(result))))
    assert decoded.ledger == result.ledger and decoded.tracebacks == ("tb",)
    for output_format in OutputFormat:
        assert render(Report(decoded.reports), output_format) == render(Report(result.reports), output_format)


NOT_RESULTS = [None, [], {"path": 1}, {"path": "x", "reports": [{"name": 3}], "problems": [], "tracebacks": [], "ledger": {}}]


@pytest.mark.parametrize("garbage", NOT_RESULTS)
def test_a_result_that_is_not_one_is_a_wire_error(garbage):
    with pytest.raises(WireError):
        decode_file_result(garbage)


def test_garbled_frames_stop_the_reading_not_the_parent():
    messages: list = []
    frames = _Frames(messages)
    frames._feed((2).to_bytes(4, "big") + b"{}" + (3).to_bytes(4, "big") + b"{x}" + (2).to_bytes(4, "big") + b"[]")
    assert messages == [{}] and frames.garbled == "it sent a message that is not JSON"


def test_the_child_runner_reports_exit_codes_signals_and_timeouts():
    assert run_in_child(lambda send: send({"n": 1}), timeout=30).messages == [{"n": 1}]
    assert run_in_child(lambda send: os._exit(5), timeout=30).ending.describe() == "exited with code 5"
    killed = run_in_child(lambda send: os.kill(os.getpid(), signal.SIGTERM), timeout=30)
    assert killed.ending.describe() == "was killed by signal SIGTERM (15)"
    slow = run_in_child(lambda send: (send("started"), time.sleep(60)), timeout=0.5)
    assert (slow.messages, slow.ending.describe()) == (["started"], "did not finish within 0.5 s")


def test_without_fork_files_are_linted_in_process_with_a_note(monkeypatch):
    monkeypatch.setattr("nnlint.isolation.can_fork", lambda: False)
    code, out, err = nnlint(FIXTURES / "nn104_bias_before_batchnorm.py", "--format", "json", "--static")
    assert code == 1 and len(targets(out)) == 1
    assert err == "nnlint: note: linting in nnlint's own process: this platform cannot fork a process\n"


def test_file_timeout_is_a_setting():
    assert Config().file_timeout == 900
    assert config_from_table({"file-timeout": 30}).file_timeout == 30


def test_children_of_the_command_line_use_torch_threads_without_hanging(tmp_path):
    """The CLI process runs no parallel torch operation before it forks (its warm-up lint runs on
    one thread), so each child may start torch's OpenMP threads (a child forked after the parent
    had started them would hang in its first parallel operation)."""
    for name in ("a.py", "b.py"):  # the second child is forked after the parent's warm-up imports and lint
        record = f"open({str(tmp_path / name)!r} + '.threads', 'w').write(str(torch.get_num_threads()))"
        model_file(tmp_path, name, prelude=f"product = torch.randn(256, 256) @ torch.randn(256, 256)\n{record}")
    result = subprocess.run(
        # One child at a time, each with all the threads (at once, each gets its share: tests/test_isolation_jobs.py).
        [sys.executable, "-m", "nnlint", str(tmp_path), "--static", "--format", "json", "--file-timeout", "100", "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(tmp_path / f"{name}.threads").read_text() for name in ("a.py", "b.py")] == ["2", "2"]


def test_a_file_whose_model_is_nested_too_deep_for_torch_is_nn002_at_its_line(tmp_path):
    """A 1500-level model built by a loop: torch's own walks (`.parameters()`) raise RecursionError
    at Python's default limit, and so did nnlint's discovery of module-level models."""
    path = model_file(tmp_path, "model.py", extra="for _ in range(1500):\n    model = nn.Sequential(model)")
    code, out, _ = nnlint(path, "--format", "json", "--static")
    finding = only_finding(out)
    assert code == 2
    assert finding["code"] == "NN002" and "nested 1501 levels deep" in finding["message"]
    assert finding["location"] == {"file": str(path), "line": MODEL_LINE}


def test_the_fork_servers_warm_up_lint_leaves_its_process_as_it_was(monkeypatch):
    """The parent lints a built-in model once before forking (its caches then serve every child):
    the random generators, torch's thread count and the default dtype are as they were, no module
    was taken out of sys.modules (nnlint's own included), and a second call does nothing."""
    from nnlint import isolation

    monkeypatch.setattr(isolation, "_warmed_up", False)
    before = (torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy(), torch.get_num_threads())
    modules = dict(sys.modules)
    isolation._warm_up()
    assert all(sys.modules.get(name) is module for name, module in modules.items())
    after = (torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy(), torch.get_num_threads())
    assert torch.equal(before[0], after[0]) and before[1] == after[1] and (before[2] == after[2]).all() and before[3] == after[3]
    assert isolation._warmed_up and torch.get_default_dtype() is torch.float32
    monkeypatch.setattr(isolation, "lint_file", lambda *args, **kwargs: pytest.fail("warmed up twice"))
    isolation._warm_up()


@pytest.mark.parametrize("how", ["torch.jit.script(nn.Linear(8, 3))", "torch.jit.trace(nn.Linear(8, 3), example_input)"])
def test_a_module_level_torchscript_model_is_one_nn002_line_even_static(tmp_path, how):
    """`model = torch.jit.script(Net())` at module level (deployment code kept beside the model):
    one NN002 at its line saying what it is, not a traceback."""
    path = tmp_path / "model.py"
    path.write_text(f"import torch\nfrom torch import nn\n\nexample_input = torch.randn(4, 8)\nmodel = {how}\n")
    code, out, err = nnlint(path, "--format", "json", "--static")
    finding = only_finding(out)
    assert code == 2 and "Traceback" not in err
    assert finding["code"] == "NN002" and "it is a TorchScript module" in finding["message"]
    assert finding["location"] == {"file": str(path), "line": 5}


def test_a_slow_import_a_child_made_is_made_once_by_the_fork_server_before_the_next_fork(tmp_path, tmp_path_factory, monkeypatch):
    """The fork server imports a slow module (torch's symbolic shapes, sympy) only once a child
    has needed it, and then before the next fork, so that later children inherit it: the module
    runs in the first child and in this process, never again in a later child, and a run that
    ends after the first file never imports it here."""
    from nnlint import isolation

    marks = tmp_path / "imported_by.txt"
    library = tmp_path_factory.mktemp("site-packages")  # outside the model files' folder, as installed libraries are
    (library / "nnlint_test_slow_module.py").write_text(f"import os\nopen({str(marks)!r}, 'a').write(f'{{os.getpid()}}\\n')\n")
    monkeypatch.syspath_prepend(str(library))
    monkeypatch.setattr(isolation, "_SLOW_IMPORTS", (*isolation._SLOW_IMPORTS, "nnlint_test_slow_module"))
    monkeypatch.setattr(isolation, "_warmed_up", True)  # not what this test is about
    lint = isolation.IsolatedFileLinter()
    files = [model_file(tmp_path, f"model_{index}.py", prelude="import nnlint_test_slow_module") for index in range(3)]
    try:
        assert lint(files[0], Config(static=True), explicit=True).reports
        assert "nnlint_test_slow_module" not in sys.modules  # one file so far: nothing imported here
        first_child = marks.read_text().split()
        for path in files[1:]:
            assert lint(path, Config(static=True), explicit=True).reports
        assert "nnlint_test_slow_module" in sys.modules
        assert marks.read_text().split() == [*first_child, str(os.getpid())]  # later children inherited it
    finally:
        sys.modules.pop("nnlint_test_slow_module", None)


def test_the_fork_server_imports_only_listed_modules_whatever_a_child_says():
    """A child runs the user's code, so what it says it imported is filtered: only nnlint's list of
    slow imports is honoured, never a module a hostile child names."""
    from nnlint import isolation
    from nnlint.runtime.child import ChildRun

    listed = isolation._SLOW_IMPORTS[0]
    run = ChildRun(messages=[{"imported": ["os", "evil_module", listed, 3]}, {"imported": "numpy.random"}, ["imported"], None])
    assert isolation._slow_imports_reported(run) == {listed}


def test_a_child_keeps_the_modules_its_file_imported_and_lints_it_as_this_process_does(tmp_path):
    """A fork server's child ends with its file, so its loader leaves the file's modules in
    sys.modules (no snapshots of sys.modules to find them: ~500 page faults per child); the
    findings are the same, and a lint in this process still takes its sibling modules out."""
    (tmp_path / "blocks.py").write_text("from torch import nn\n\n\ndef head():\n    return nn.Linear(8, 3)\n")
    path = model_file(tmp_path, "model.py", prelude="import blocks", forward="return blocks.head()(x)")

    def lint_here_and_say_what_stayed(send):
        from nnlint.loader import imports_outlive_files

        imports_outlive_files()
        result = lint_file(path, Config(static=True))
        send({"stayed": "blocks" in sys.modules, "codes": sorted(f.code for r in result.reports for f in r.findings)})

    run = run_in_child(lint_here_and_say_what_stayed, timeout=120)
    in_process = lint_file(path, Config(static=True))
    assert run.messages == [{"stayed": True, "codes": sorted(f.code for r in in_process.reports for f in r.findings)}]
    assert "blocks" not in sys.modules
