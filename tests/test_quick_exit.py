"""The `nnlint` program ends without the interpreter's teardown once every file was linted in a
child process (nnlint/runtime/quick_exit.py): the report, the exit code, `--output` and the exit
handlers registered with `atexit` are as in a normal exit; a run that executed user code in this
process (`--no-isolation`) exits normally."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from expectations import FIXTURES

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the quick exit follows an isolated lint (POSIX)")

# The `nnlint` program, started with two markers: an `atexit` handler (run by every exit) and an
# object whose `__del__` runs only in the interpreter's teardown (the `__main__` module cleared).
_PROGRAM = textwrap.dedent(
    """
    import atexit, sys
    handler_marker, teardown_marker = sys.argv.pop(1), sys.argv.pop(1)
    atexit.register(lambda: open(handler_marker, "w").close())
    class TornDown:
        def __del__(self, open=open, path=teardown_marker):  # builtins are gone by then
            open(path, "w").close()
    kept_until_teardown = TornDown()
    from nnlint.cli import main
    sys.argv[0] = "nnlint"
    main()
    """
)


def _nnlint_program(tmp_path: Path, *args: object) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    handler, teardown = tmp_path / "atexit-ran", tmp_path / "teardown-ran"
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(handler), str(teardown), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    return done, handler, teardown


def test_an_isolated_lint_skips_the_teardown_and_keeps_report_exit_code_and_exit_handlers(tmp_path):
    done, handler, teardown = _nnlint_program(tmp_path, FIXTURES / "nn104_bias_before_batchnorm.py", "--static", "--format", "json")
    assert done.returncode == 1, done.stderr  # findings: exit 1, as sys.exit(1) gives
    report = json.loads(done.stdout)  # flushed whole
    codes = sorted((f["code"], f["location"]["line"]) for t in report["targets"] for f in t["findings"])
    assert codes == [("NN104", 12), ("NN104", 18)]
    assert handler.exists(), "the atexit handlers must run"
    assert not teardown.exists(), "the interpreter's teardown should have been skipped"


def test_the_report_written_to_output_is_complete_after_the_quick_exit(tmp_path):
    written = tmp_path / "report.json"
    done, handler, teardown = _nnlint_program(
        tmp_path, FIXTURES / "nn104_bias_before_batchnorm.py", "--static", "--format", "json", "--output", written
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert len(json.loads(written.read_text())["targets"]) == 1
    assert handler.exists() and not teardown.exists()


def test_a_lint_in_nnlints_own_process_exits_normally(tmp_path):
    """--no-isolation ran the user's code here: whatever it left for the teardown still runs."""
    done, handler, teardown = _nnlint_program(tmp_path, FIXTURES / "nn104_bias_before_batchnorm.py", "--static", "--no-isolation")
    assert done.returncode == 1, done.stderr
    assert handler.exists() and teardown.exists()


def test_an_option_error_exits_normally_with_code_2(tmp_path):
    """Nothing was linted: the run ends the ordinary way."""
    done, handler, teardown = _nnlint_program(tmp_path, FIXTURES / "nn104_bias_before_batchnorm.py", "--format", "nonsense")
    assert done.returncode == 2
    assert "nonsense" in done.stderr
    assert handler.exists() and teardown.exists()


def test_a_missing_file_keeps_its_exit_code_2_and_message_after_the_quick_exit(tmp_path):
    done, handler, _ = _nnlint_program(tmp_path, tmp_path / "missing.py")
    assert done.returncode == 2
    assert "missing.py" in done.stderr
    assert handler.exists()


@pytest.mark.parametrize(("code", "status", "stderr"), [(0, 0, ""), (1, 1, ""), (None, 0, ""), ("stopped", 1, "stopped\n")])
def test_exit_without_teardown_ends_as_sys_exit_would(code, status, stderr):
    program = textwrap.dedent(
        f"""
        import sys
        from nnlint.runtime.quick_exit import exit_without_teardown
        sys.stdout.write("unflushed, no newline")
        exit_without_teardown({code!r})
        print("never")
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (status, "unflushed, no newline", stderr)
