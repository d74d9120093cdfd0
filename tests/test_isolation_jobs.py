"""`--jobs N`: up to N files linted at once with --static, each in its own child process.

What a user relies on: the report is the one `--jobs 1` prints (files in the same order, the same
findings, byte for byte), what each file prints reaches stderr in the order of the files, a file
that hangs or exits is NN002 for that file alone, Ctrl-C still exits 130 with one line and leaves
no child running, and the probe (which plans its work by timing it) still runs one file at a time.
The CLI runs as a real process here, as a shell runs it: a fresh process, whose children may use
torch's threads.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from expectations import FIXTURES

from nnlint.config import Config, ConfigError, config_from_table
from nnlint.isolation import available_cpus, parallel_jobs

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="isolation forks (POSIX)")

# A subset of fixtures/ that covers what a report holds: clean files, findings of every static
# family, a file whose model cannot be built (NN002), suppression comments, several targets in
# one file, a recurrent model (warnings printed by torch at construction) and a training script
# found in a folder (its definitions only).
SAMPLE = (
    "clean_resnet.py",
    "clean_lstm_tagger.py",
    "demo_mistakes.py",
    "nn002_shape_mismatch.py",
    "nn003_suppressions.py",
    "nn101_lstm_batchnorm.py",
    "nn104_bias_before_batchnorm.py",
    "nn203_dropout_rates.py",
    "nn303_sigmoid_bce.py",
    "nn401_symmetric_init.py",
    "nn405_plain_list_layers.py",
    "nn502_decay_on_norm_bias.py",
    "train_mnist_style.py",
)


def nnlint_process(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnlint", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def sample_folder(folder: Path) -> Path:
    for name in SAMPLE:
        shutil.copy(FIXTURES / name, folder / name)
    return folder


@pytest.mark.slow  # two to four nnlint processes: 15-50 s
@pytest.mark.parametrize("output_format", ["json", "text"])
def test_two_jobs_print_the_report_of_one(tmp_path, output_format):
    folder = sample_folder(tmp_path)
    serial = nnlint_process(folder, "--static", "--jobs", "1", "--format", output_format)
    parallel = nnlint_process(folder, "--static", "--jobs", "2", "--format", output_format)
    assert serial.returncode == 2, serial.stderr  # nn002_shape_mismatch.py's NN002
    assert (parallel.returncode, parallel.stdout) == (serial.returncode, serial.stdout)
    assert parallel.stderr == serial.stderr
    if output_format == "json":
        files = [target["file"] for target in json.loads(parallel.stdout)["targets"]]
        assert files == sorted(files, key=lambda name: Path(name).name)  # in the order of the files, not of their ends
        assert {Path(name).name for name in files} == set(SAMPLE)


def printing_model(folder: Path, name: str, seconds: float) -> Path:
    """A model file that prints at import, then takes `seconds` before defining its model."""
    path = folder / name
    path.write_text(
        textwrap.dedent(
            f"""\
            import sys
            import time

            from torch import nn

            print("{name} starts", file=sys.stderr)
            time.sleep({seconds})
            print("{name} ends")
            model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
            """
        )
    )
    return path


def test_output_of_files_at_once_reaches_stderr_in_the_order_of_the_files(tmp_path):
    # a.py takes longest: b.py and c.py end first, and their output waits for a.py's.
    printing_model(tmp_path, "a.py", 3)
    printing_model(tmp_path, "b.py", 0)
    printing_model(tmp_path, "c.py", 0)
    result = nnlint_process(tmp_path, "--static", "--jobs", "3", "--format", "json")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.endswith(("starts", "ends"))]
    assert lines == ["a.py starts", "a.py ends", "b.py starts", "b.py ends", "c.py starts", "c.py ends"]
    assert [Path(target["file"]).name for target in json.loads(result.stdout)["targets"]] == ["a.py", "b.py", "c.py"]


@pytest.mark.slow  # two to four nnlint processes: 15-50 s
def test_a_file_that_hangs_or_exits_is_nn002_for_that_file_alone(tmp_path):
    printing_model(tmp_path, "a_fine.py", 0)
    (tmp_path / "b_hangs.py").write_text("import time\nfrom torch import nn\ntime.sleep(600)\nmodel = nn.Linear(2, 2)\n")
    (tmp_path / "c_exits.py").write_text("import os\nfrom torch import nn\nmodel = nn.Linear(2, 2)\nos._exit(3)\n")
    printing_model(tmp_path, "d_fine.py", 0)
    start = time.monotonic()
    result = nnlint_process(tmp_path, "--static", "--jobs", "2", "--file-timeout", "20", "--format", "json")
    assert time.monotonic() - start < 300
    report = json.loads(result.stdout)
    by_file = {Path(target["file"]).name: [finding["code"] for finding in target["findings"]] for target in report["targets"]}
    assert result.returncode == 2
    assert by_file["b_hangs.py"] == ["NN002"] and by_file["c_exits.py"] == ["NN002"]
    assert "NN002" not in by_file["a_fine.py"] + by_file["d_fine.py"]
    assert list(by_file) == ["a_fine.py", "b_hangs.py", "c_exits.py", "d_fine.py"]


@pytest.mark.slow  # two to four nnlint processes: 15-50 s
def test_ctrl_c_stops_every_child_and_exits_130_with_one_line(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(
            f"import os, time\nfrom torch import nn\nopen(os.path.join({str(started)!r}, str(os.getpid())), 'w').close()\n"
            "time.sleep(600)\nmodel = nn.Linear(2, 2)\n"
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "nnlint", str(tmp_path / "a.py"), str(tmp_path / "b.py"), "--static", "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal (see tests/test_isolation.py: a background suite inherits SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 180
        while len(list(started.iterdir())) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        if len(list(started.iterdir())) < 2:  # both files at once, or the test fails (without waiting for a.py's 600 s)
            process.kill()
            pytest.fail(f"not both files at once: {process.communicate()[1]}")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert (process.returncode, out, err) == (130, "", "nnlint: interrupted\n")
    for pid in (int(path.name) for path in started.iterdir()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_children_at_once_share_torch_threads(tmp_path):
    """Each of N children at once gets its share of the threads one child alone would get, so
    that together they ask for no more threads than the cores (torch caps its default at them)."""
    names = ("a.py", "b.py", "c.py")
    for name in names:
        (tmp_path / name).write_text(
            f"import torch\nfrom torch import nn\nopen({str(tmp_path / name)!r} + '.threads', 'w').write(str(torch.get_num_threads()))\n"
            "model = nn.Linear(2, 2)\n"
        )

    def threads(jobs: int) -> list[int]:
        result = nnlint_process(tmp_path, "--static", "--jobs", jobs, env={"OMP_NUM_THREADS": "4"})
        assert result.returncode == 0, result.stderr
        return [int((tmp_path / f"{name}.threads").read_text()) for name in names]

    alone = threads(1)
    assert len(set(alone)) == 1 and alone[0] >= 1
    assert threads(2) == [max(1, alone[0] // 2)] * 3


def test_the_probe_runs_one_file_at_a_time():
    assert parallel_jobs(Config(jobs=4)) == 1
    assert parallel_jobs(Config(static=True, jobs=4)) == 4
    assert parallel_jobs(Config(static=True)) == available_cpus() == len(os.sched_getaffinity(0))


def test_jobs_with_the_probe_says_files_are_probed_one_at_a_time(tmp_path):
    printing_model(tmp_path, "a.py", 0)
    result = nnlint_process(tmp_path / "a.py", "--jobs", "2", "--probe-steps", "1")
    assert result.returncode in (0, 1), result.stderr
    assert "nnlint: note: the probe times its work, so files are probed one at a time; --static lints them in parallel" in result.stderr


def test_jobs_in_the_config():
    assert config_from_table({"jobs": 3}).jobs == 3
    for bad in (0, -1, "4", True):
        with pytest.raises(ConfigError, match="jobs: expected a positive integer"):
            config_from_table({"jobs": bad})
