"""Each file linted in its own child process, the CLI's default (`--no-isolation` turns it off).

The CLI process is the fork server: it has imported torch and nnlint, and never runs the user's
code. Each file is linted by `nnlint.engine.lint_file` in a child forked from it, which sends its
result back as JSON (nnlint/wire.py) and leaves (nnlint/runtime/child.py). So nothing a file does
can end nnlint (`sys.exit`, `os._exit`, a signal, a crash), hang it past `--file-timeout`, write
into the report on stdout, or leave state behind for the next file (the default dtype or device,
the working directory, threads, modules): each child starts from the parent's state, and is gone
afterwards. A child that ends without a result is NN002 for its file, in one line that says how
it ended.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from nnlint.config import Config
from nnlint.engine import FileToLint, lint_file, unlintable_file
from nnlint.file_result import FileResult
from nnlint.findings import Location
from nnlint.loader import LoadedTarget, imports_outlive_files
from nnlint.runtime.child import Child, ChildRun, Send, can_fork, run_in_child, start_child, wait_for_children
from nnlint.runtime.lazy_dynamo import find_wrapped_functions
from nnlint.wire import WireError, decode_file_result, encode_file_result

if TYPE_CHECKING:
    from nnlint.script.lint import ScriptOptions

# What a lint may import that is slow to import: torch's symbolic shapes (with sympy, 0.3-0.8 s;
# reached by meta kernels outside nnlint's shape formulas, in about half of real model files), the
# probe's modules. Once a child says it imported one (with its result), this process imports it
# before the next fork, and every later child inherits it; a run whose files never need one never
# pays for it (it used to be imported before the second file whatever the files were).
_SLOW_IMPORTS = ("torch.fx.experimental.symbolic_shapes", "nnlint.probe.session", "numpy.random")
_WARM_UP_MODEL = Path(__file__).resolve().parent / "runtime" / "warm_up_model.py"
_warmed_up = False  # once per process: its caches last as long as it does
# With --jobs, how long the first child runs alone after the warm-up (its slow imports are then
# made once here, before the others are forked): about a small model file's whole lint.
_FIRST_ALONE_SECONDS = 1.0

_EXIT_FIX = (
    "keep exits out of the code nnlint runs (module level, constructors, forward, @nnlint.target functions): "
    'put a script\'s entry point under `if __name__ == "__main__":`'
)
_TIMEOUT_FIX = "make the forward finish, or raise --file-timeout (--probe-timeout bounds each forward), or pass --static"
_CRASH_FIX = "run the model once in Python to see the crash; --no-isolation lints in nnlint's own process, for debugging"
_CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE", "SIGILL"}


def isolation_unavailable() -> str | None:
    """Why files cannot be linted in child processes here, or None when they can."""
    if not can_fork():
        return "this platform cannot fork a process"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is already initialized in this process, and a forked child could not use it"
    return None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or `taskset`'s limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parallel_jobs(config: Config) -> int:
    """How many files are linted at once: `--jobs` (`jobs` in [tool.nnlint]), by default the CPUs
    this process may use, with --static; one at a time when the probe runs, because the probe
    plans its work by timing it (--probe-budget), and files sharing the CPUs would time slower
    and could plan less work (fewer findings) than on their own."""
    if not config.static:
        return 1
    return config.jobs if config.jobs is not None else available_cpus()


class IsolatedFileLinter:
    """`lint_file` in a child process; an `engine.FileLinter`.

    `fresh_process`: this process imported torch for this command, and has run no parallel torch
    operation since (its warm-up lint runs on one thread), so a child can use torch's intra-op
    threads. Otherwise (a process that imported torch before nnlint ran: a test session, a
    notebook) a child that started them would hang (GNU OpenMP's thread pool does not survive a
    fork), and each child runs torch on one thread; and since such a process lives on, it warms up
    before the first file, once for all the runs it will serve. The slow imports children report
    (_SLOW_IMPORTS) are made here before the next fork, in either kind of process.
    """

    def __init__(self, *, fresh_process: bool = False, jobs: int = 1) -> None:
        self.fresh_process = fresh_process
        self.jobs = jobs  # children at once in `lint_all`
        self._served = 0
        self._warmed_up = False
        self._children_imported: set[str] = set()  # of _SLOW_IMPORTS, what children said they imported

    def __call__(
        self, path: Path, config: Config, *, explicit: bool, chosen: Sequence[str] = (), script: ScriptOptions | None = None
    ) -> FileResult:
        self._before_fork()
        path = path.resolve()
        run = run_in_child(
            lambda send: self._lint_in_child(send, path, config, explicit, chosen, script),
            timeout=config.file_timeout,
            output=_captured_stderr(),
        )
        return self._result(run, path, config)

    def lint_all(self, files: Sequence[FileToLint], config: Config, *, script: ScriptOptions | None = None) -> list[FileResult]:
        """Every file, up to `jobs` children at once (an `engine.FilesLinter`); one after the other
        (as `__call__` does) when `jobs` is 1 or there is one file."""
        jobs = min(self.jobs, len(files))
        if jobs <= 1:
            return [self(file.path, config, explicit=file.explicit, chosen=file.chosen, script=script) for file in files]
        return self._lint_in_parallel(files, config, script, jobs)

    def _lint_in_parallel(self, files: Sequence[FileToLint], config: Config, script: ScriptOptions | None, jobs: int) -> list[FileResult]:
        """Up to `jobs` children at once, a new one forked as one ends; results in the order of
        `files`, and each child's output relayed in that order too (_OrderedOutput). The first
        child runs alone beside this process's warm-up, and a little after (_FIRST_ALONE_SECONDS):
        the slow imports it reports are then made here once for every later child (children
        forked beside it would each make them again)."""
        threads = self._threads_per_child(jobs)
        paths = [file.path.resolve() for file in files]
        results: list[FileResult | None] = [None] * len(files)
        stream = _captured_stderr() or sys.stderr  # None without a stderr (pythonw): children write to fd 2 as ever
        output = _OrderedOutput(len(files), stream) if stream is not None else None
        waiting = deque(range(len(files)))
        running: dict[Child, int] = {}
        alone = True  # the first child, until it ends or _FIRST_ALONE_SECONDS pass
        try:
            while waiting or running:
                while waiting and len(running) < (1 if alone else jobs):
                    index = waiting.popleft()
                    self._before_fork()
                    file = files[index]
                    work = functools.partial(
                        self._lint_in_child,
                        path=paths[index],
                        config=config,
                        explicit=file.explicit,
                        chosen=file.chosen,
                        script=script,
                        threads=threads,
                    )
                    child = start_child(work, timeout=config.file_timeout, output=output.part(index) if output is not None else None)
                    running[child] = index
                self._warm_up_when_due()  # beside the first child
                ended = wait_for_children(list(running), at_most=_FIRST_ALONE_SECONDS if alone else None)
                alone = False
                for child in ended:
                    index = running.pop(child)
                    results[index] = self._result(child.run, paths[index], config)
                    if output is not None:
                        output.finished(index)
        finally:
            for child in running:  # Ctrl-C: leave nothing running
                child.stop()
        return [result for result in results if result is not None]

    def _threads_per_child(self, jobs: int) -> int:
        """torch's intra-op threads for each of `jobs` children at once: this process's share of
        them, so that the children together do not ask for more threads than the cores allow."""
        import torch

        return max(1, torch.get_num_threads() // jobs) if self.fresh_process else 1

    def _before_fork(self) -> None:
        self._warm_up_when_due()
        _import_for_children(self._children_imported)
        self._served += 1

    def _warm_up_when_due(self) -> None:
        """Before the second child (the first, in a process that lives on), once."""
        if self._served == (1 if self.fresh_process else 0) and not self._warmed_up:
            self._warmed_up = True
            _warm_up_for_children()

    def _result(self, run: ChildRun, path: Path, config: Config) -> FileResult:
        self._children_imported.update(_slow_imports_reported(run))
        return _with_finished_targets(run, _file_result(run, path, config))

    def _lint_in_child(
        self,
        send: Send,
        path: Path,
        config: Config,
        explicit: bool,
        chosen: Sequence[str],
        script: ScriptOptions | None,
        threads: int | None = None,
    ) -> None:
        imports_outlive_files()  # this process ends with the file: nothing to take out of sys.modules
        if not self.fresh_process or threads is not None:
            import torch

            torch.set_num_threads(threads or 1)

        def started(loaded: LoadedTarget) -> None:
            send({"target": loaded.name, "location": [str(loaded.location.file), loaded.location.line] if loaded.location else None})

        try:
            # Only results cross back (as JSON); the arguments reach the child by fork.
            finished = _partial_sender(send)
            result = lint_file(path, config, explicit=explicit, chosen=chosen, script=script, on_target=started, on_linted=finished)
        except BaseException as error:  # noqa: B036 - SystemExit, GeneratorExit…: this file's failure, not nnlint's
            trace = "".join(traceback.format_exception(error))
            send({"failed": _escaped(error, path), "traceback": trace, "imported": _slow_imports_made()})
            return
        send({"result": encode_file_result(_with_leftover_threads(result)), "imported": _slow_imports_made()})


def _partial_sender(send: Send) -> Callable[[FileResult], None]:
    """What the child sends after each target: everything the file produced so far."""

    def send_partial(partial: FileResult) -> None:
        send({"partial": encode_file_result(partial)})

    return send_partial


def _with_finished_targets(run: ChildRun, result: FileResult) -> FileResult:
    """A child that ended without its result (out of time, killed, an exit in the user's code)
    still reports the targets it finished before (a file of five ResNet factories stopped in the
    last keeps the other four), before the NN002 of the target it was in."""
    if any(isinstance(message, dict) and "result" in message for message in run.messages):
        return result
    partial = _last_partial(run)
    if partial is None or not partial.reports:
        return result
    finished = len(partial.reports)
    note = f"{finished} target{'s' if finished > 1 else ''} of this file finished before and {'are' if finished > 1 else 'is'} reported"
    stopped = tuple(replace(report, notes=(*report.notes, note)) for report in result.reports)
    return replace(
        result,
        reports=(*partial.reports, *stopped),
        problems=(*partial.problems, *result.problems),
        tracebacks=(*partial.tracebacks, *result.tracebacks),
        ledger=partial.ledger,
    )


def _last_partial(run: ChildRun) -> FileResult | None:
    """The last everything-so-far the child sent that can be read, if any."""
    for message in reversed(run.messages):
        if isinstance(message, dict) and "partial" in message:
            try:
                return decode_file_result(message["partial"])
            except WireError:
                return None
    return None


class _OrderedOutput:
    """The output of children running at once, passed on in the order of their files, as when
    linted one after the other: the first unfinished file's as it comes, a later file's kept
    until every file before it has finished (then written at once), so that what each file
    prints stays together."""

    def __init__(self, count: int, destination: TextIO) -> None:
        self.destination = destination
        self.kept: list[list[str]] = [[] for _ in range(count)]
        self.done = [False] * count
        self.head = 0  # the first file not finished: its output goes straight through

    def part(self, index: int) -> _OutputPart:
        return _OutputPart(self, index)

    def write(self, index: int, text: str) -> None:
        if index == self.head:
            self.destination.write(text)
        else:
            self.kept[index].append(text)

    def flush(self, index: int) -> None:
        if index == self.head:
            self.destination.flush()

    def finished(self, index: int) -> None:
        self.done[index] = True
        while self.head < len(self.done) and self.done[self.head]:
            self.head += 1
            if self.head < len(self.kept) and self.kept[self.head]:
                with contextlib.suppress(Exception):  # a closed or failing stream loses output, not the run
                    self.destination.write("".join(self.kept[self.head]))
                self.kept[self.head].clear()
        with contextlib.suppress(Exception):
            self.destination.flush()


class _OutputPart:
    """One child's share of an `_OrderedOutput`, where its relay writes."""

    def __init__(self, output: _OrderedOutput, index: int) -> None:
        self.output = output
        self.index = index

    def write(self, text: str, /) -> int:
        self.output.write(self.index, text)
        return len(text)

    def flush(self) -> None:
        self.output.flush(self.index)


def _captured_stderr() -> TextIO | None:
    """sys.stderr when it is not this process's fd 2 (a caller captures it, as click's CliRunner
    does): the child's output is relayed there rather than written to fd 2."""
    stream = sys.stderr
    try:
        return None if stream is None or stream.fileno() == 2 else stream
    except (AttributeError, OSError, ValueError):
        return stream


def _warm_up_for_children() -> None:
    """Before the second file (the first, in a process that lives on): what every lint would
    otherwise do again in each child, done once here for every later child to inherit (a single
    file's child does its own, no more than this process would): torch's `_disable_dynamo`
    wrappers searched (50-150 ms per child otherwise), and one lint of a built-in model (`_warm_up`)."""
    find_wrapped_functions()
    _warm_up()
    _freeze_new_objects()


def _import_for_children(names: Iterable[str]) -> None:
    """Import here, before the next fork, the slow imports an earlier child made (_SLOW_IMPORTS)."""
    missing = [name for name in _SLOW_IMPORTS if name in names and name not in sys.modules]
    for name in missing:
        # A later torch that moved it, or this process's imports in a bad state (an import stopped
        # halfway by an earlier in-process lint): the children import what they need, or say why not.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    if missing:
        _freeze_new_objects()


def _freeze_new_objects() -> None:
    if gc.get_freeze_count():
        gc.freeze()  # as the CLI froze torch's own objects: a child's collections skip them


def _slow_imports_made() -> list[str]:
    """In a child: which of _SLOW_IMPORTS this process has (its parent then imports them too)."""
    return [name for name in _SLOW_IMPORTS if name in sys.modules]


def _slow_imports_reported(run: ChildRun) -> set[str]:
    """What a child said it imported, of _SLOW_IMPORTS only: nothing a child sends names a module
    for this process to import that nnlint does not list."""
    reported: set[str] = set()
    for message in run.messages:
        names = message.get("imported") if isinstance(message, dict) else None
        if isinstance(names, list):
            reported.update(name for name in names if isinstance(name, str) and name in _SLOW_IMPORTS)
    return reported


def _warm_up() -> None:
    """Lint a small built-in model here, statically, once: what a first lint fills (torch's
    dispatch caches, fx's generated code, nnlint's tables) is then inherited by every child instead
    of filled again in each (measured in bench/many_files.py). On one torch thread, so that no
    thread pool starts in this process (a child forked after one started would hang in its own),
    with the random generators put back, so that each child starts where a fresh process would;
    best effort: a failure here changes nothing but the children's speed."""
    import torch

    from nnlint.runtime.randomness import restore_rng, rng_states

    global _warmed_up
    if _warmed_up:
        return
    _warmed_up = True
    threads, generators = torch.get_num_threads(), rng_states()
    try:
        torch.set_num_threads(1)
        # A copy in a folder of its own: a file inside a package would have the loader put back
        # (remove from sys.modules) whatever of that package the lint imported.
        with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
            copy = shutil.copy(_WARM_UP_MODEL, Path(folder) / "warm_up_model.py")
            lint_file(Path(copy), Config(static=True), explicit=True)
    except Exception:  # noqa: S110 - see above: only the speed of later files depends on it
        pass
    finally:
        torch.set_num_threads(threads)
        restore_rng(generators)


def _file_result(run: ChildRun, path: Path, config: Config) -> FileResult:
    """The child's result, or NN002 saying how it ended without one."""
    name, location = path.name, None
    traceback_text: str | None = None
    for message in run.messages:
        if not isinstance(message, dict):
            continue
        if "result" in message:
            try:
                return decode_file_result(message["result"])
            except WireError as error:
                return unlintable_file(
                    path, config, name, location, f"the process linting it sent a result nnlint cannot read ({error})", _CRASH_FIX
                )
        if "target" in message:
            name, location = _started_target(message, name, location)
        if "failed" in message:
            traceback_text = message.get("traceback") if isinstance(message.get("traceback"), str) else None
            reason = f"{message['failed']} while it was being linted" if isinstance(message["failed"], str) else "it failed"
            return unlintable_file(path, config, name, location, reason, _EXIT_FIX, traceback_text)
    ending = run.ending
    if ending.timed_out is not None:
        reason = f"its lint {ending.describe()} (--file-timeout); the process linting it was stopped"
        return unlintable_file(path, config, name, location, reason, _TIMEOUT_FIX)
    if run.garbled is not None:
        return unlintable_file(path, config, name, location, f"the process linting it sent no usable result: {run.garbled}", _CRASH_FIX)
    reason = f"the process linting it {ending.describe()} before the lint finished"
    if ending.signal is not None:
        crashed = _signal_name(ending.signal) in _CRASH_SIGNALS
        return unlintable_file(path, config, name, location, reason + (" (a crash in native code)" if crashed else ""), _CRASH_FIX)
    return unlintable_file(path, config, name, location, reason + " (`os._exit` or an exit call in the model's code)", _EXIT_FIX)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return ""


def _started_target(message: dict[str, Any], name: str, location: Location | None) -> tuple[str, Location | None]:
    target, where = message.get("target"), message.get("location")
    if not isinstance(target, str):
        return name, location
    if isinstance(where, list) and len(where) == 2 and isinstance(where[0], str) and type(where[1]) is int:
        return target, Location(where[0], where[1])
    return target, None


def _escaped(error: BaseException, path: Path) -> str:
    """`called sys.exit(0) (line 9)`, `raised GeneratorExit (line 9)`: what left the lint, and where."""
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__) if Path(frame.filename) == path]
    where = f" (line {lines[-1]})" if lines else ""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r}){where}"
    detail = str(error).strip().splitlines()
    return f"raised {type(error).__name__}{': ' + detail[0] if detail else ''}{where}"


def _with_leftover_threads(result: FileResult) -> FileResult:
    """Say so when the file left threads running: they end with the child, but would have kept
    a plain `python` run (and an in-process lint) alive."""
    left = _running_threads(threading.enumerate())
    if not left or not result.reports:
        return result
    last = result.reports[-1]
    note = f"the file left {len(left)} thread{'s' if len(left) > 1 else ''} running ({', '.join(left)}); stopped when its lint ended"
    return replace(result, reports=(*result.reports[:-1], replace(last, notes=(*last.notes, note))))


def _running_threads(threads: Iterable[threading.Thread]) -> list[str]:
    return [f"`{thread.name}`" for thread in threads if thread is not threading.main_thread() and thread.is_alive() and not thread.daemon]
