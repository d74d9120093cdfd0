"""Run a function in a forked child process that nothing it does can take the parent down with it.

The parent forks, then only waits: for the child's messages (JSON, framed, on a pipe), for the child
to end, or for the hard deadline, whichever comes first. The child:
- runs in its own process group, so that the group (the child and whatever it started) is killed
  at the deadline, on Ctrl-C, and once the child has ended;
- dies with the parent (Linux: PR_SET_PDEATHSIG), so that a killed nnlint leaves nothing running;
- reads stdin from /dev/null, and writes fd 1 to fd 2: what it prints, and what processes it
  starts print, goes to stderr and never into the report on stdout;
- ends with `os._exit`, whatever the function did: threads it left behind (even non-daemon ones)
  end with it, and no `atexit` handler or buffered output of the parent runs twice.

Nothing a child sends is trusted: messages are JSON (decoding cannot run code), bounded in size,
and a garbled one ends the reading rather than the parent.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import json
import os
import selectors
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

_HEADER = 4  # bytes of big-endian frame length
_MAX_BYTES = 256 * 1024 * 1024  # everything a child may send: a report of thousands of findings is a few MB
_POLL_SECONDS = 0.02  # how often to look for the child's end where the OS has no pidfd
_CHILD_FAILED = 70  # the child's exit code when the function itself raised (EX_SOFTWARE)
_PR_SET_PDEATHSIG = 1

Send = Callable[[Any], None]


@dataclass(frozen=True)
class Ending:
    """How the child ended: `exit_code` or `signal`, or killed at the deadline (`timed_out`)."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: float | None = None  # the deadline, in seconds

    def describe(self) -> str:
        if self.timed_out is not None:
            return f"did not finish within {self.timed_out:g} s"
        if self.signal is not None:
            return f"was killed by signal {_signal_name(self.signal)}"
        return f"exited with code {self.exit_code}"


@dataclass
class ChildRun:
    messages: list[Any] = field(default_factory=list)
    ending: Ending = field(default_factory=Ending)
    garbled: str | None = None  # why the messages stopped being readable, if they did


def can_fork() -> bool:
    return hasattr(os, "fork") and hasattr(os, "setpgid")


def run_in_child(work: Callable[[Send], None], *, timeout: float | None, output: TextIO | None = None) -> ChildRun:
    """Fork; in the child, call `work(send)` and leave; in the parent, collect what it sent.

    `timeout` (seconds, None for none) is the hard deadline: the child's process group is killed
    with SIGKILL when it passes. KeyboardInterrupt in the parent kills it too, then propagates.
    `output`: where the child's stdout and stderr go when that is not this process's fd 2 (a
    caller that captures sys.stderr): relayed through a pipe. By default they share fd 2.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # or the child would inherit unwritten output and might write it again
    parent = os.getpid()
    read_end, write_end = os.pipe()  # close-on-exec: processes the child starts do not hold it
    relay_read, relay_write = os.pipe() if output is not None else (None, None)
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking a process with other threads: torch's idle native threads
        # here. The child uses none of them (and nothing they hold: it starts no torch operation
        # that the parent had begun).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(work, write_end, parent, relay_write, (read_end, relay_read))
    for fd in (write_end, relay_write):
        if fd is not None:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also from this side, so that the group exists before any kill
    run = ChildRun()
    reaped = False
    relay = _Relay(relay_read, output) if relay_read is not None and output is not None else None
    try:
        run.ending, run.garbled = _collect(pid, read_end, timeout, run.messages, relay)
        reaped = True
    finally:
        os.close(read_end)
        if relay is not None:
            relay.close()
        if not reaped:  # interrupted (Ctrl-C): leave nothing running
            _kill_group(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return run


# -- the child -----------------------------------------------------------------------------------


def _child(work: Callable[[Send], None], write_end: int, parent: int, relay_write: int | None, parent_ends: tuple[int | None, ...]) -> None:
    code = _CHILD_FAILED
    try:
        for fd in parent_ends:
            if fd is not None:
                os.close(fd)
        _detach(parent, relay_write)
        work(lambda message: _send(write_end, message))
        code = 0
    except BaseException:  # noqa: B036 - whatever escaped, the child must end here, by os._exit
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _detach(parent: int, relay_write: int | None) -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(_CHILD_FAILED)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if relay_write is not None:
        os.dup2(relay_write, 2)
        os.close(relay_write)
    os.dup2(2, 1)
    # Python's own streams too, whatever they were in the parent (a caller's capture buffer).
    stream = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
    sys.stdout = sys.stderr = stream


def _send(write_end: int, message: Any) -> None:
    """One frame, written whole: signals (the user's SIGALRM handler) wait until it is out."""
    payload = json.dumps(message, ensure_ascii=True, allow_nan=True).encode("ascii")
    frame = memoryview(len(payload).to_bytes(_HEADER, "big") + payload)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals()) if hasattr(signal, "pthread_sigmask") else None
    try:
        while frame:
            frame = frame[os.write(write_end, frame) :]
    finally:
        if blocked is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


# -- the parent ----------------------------------------------------------------------------------


def _collect(pid: int, read_end: int, timeout: float | None, messages: list[Any], relay: _Relay | None) -> tuple[Ending, str | None]:
    """Read frames until the child ends or the deadline passes; reap the child; how it ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    frames = _Frames(messages)
    pidfd = _pidfd(pid)
    with selectors.DefaultSelector() as selector:
        selector.register(read_end, selectors.EVENT_READ, "pipe")
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, "ended")
        if relay is not None:
            selector.register(relay.fd, selectors.EVENT_READ, "output")
        try:
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    _kill_group(pid)
                    os.waitpid(pid, 0)
                    _drain(frames, read_end, relay)
                    return Ending(timed_out=timeout), frames.garbled
                if pidfd is None:
                    wait = _POLL_SECONDS if wait is None else min(wait, _POLL_SECONDS)
                ended = False
                for key, _ in selector.select(wait):
                    if key.data == "ended":
                        ended = True
                    elif not (frames.read(read_end) if key.data == "pipe" else relay.read()):  # type: ignore[union-attr]
                        selector.unregister(key.fd)  # end of file: wait for the child's end alone
                if ended or (pidfd is None and _has_ended(pid)):
                    _drain(frames, read_end, relay)
                    _kill_group(pid)  # what it started and left running (it is not reaped yet: its group stays valid)
                    return _ending(os.waitpid(pid, 0)[1]), frames.garbled
        finally:
            if pidfd is not None:
                os.close(pidfd)


def _drain(frames: _Frames, read_end: int, relay: _Relay | None) -> None:
    """Everything still in the pipes once the child has ended (a process it started may hold them
    open, so there may be no end of file)."""
    frames.drain(read_end)
    if relay is not None:
        relay.drain()


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the child ends, without reaping it (Linux 5.3+)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _has_ended(pid: int) -> bool:
    """Elsewhere: poll, again without reaping (the deadline still ends a child where neither works)."""
    if hasattr(os, "waitid"):
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    return False


class _Relay:
    """The child's output, passed on to `output` as it comes."""

    def __init__(self, fd: int, output: TextIO) -> None:
        self.fd = fd
        self.output = output
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")

    def read(self) -> bool:
        data = os.read(self.fd, 1 << 16)
        with contextlib.suppress(Exception):  # a closed or failing caller stream loses output, not the run
            self.output.write(self.decoder.decode(data, final=not data))
        return bool(data)

    def drain(self) -> None:
        os.set_blocking(self.fd, False)
        with contextlib.suppress(BlockingIOError):
            while self.read():
                pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.output.flush()
        os.close(self.fd)


class _Frames:
    """Length-prefixed JSON messages, decoded as they arrive."""

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages
        self.buffer = bytearray()
        self.received = 0
        self.garbled: str | None = None

    def read(self, fd: int) -> bool:
        """Read what is there; False at end of file."""
        data = os.read(fd, 1 << 16)
        self._feed(data)
        return bool(data)

    def drain(self, fd: int) -> None:
        os.set_blocking(fd, False)
        with contextlib.suppress(BlockingIOError):
            while self.read(fd):
                pass

    def _feed(self, data: bytes) -> None:
        if self.garbled is not None or not data:
            return
        self.received += len(data)
        if self.received > _MAX_BYTES:
            self.garbled = f"it sent more than {_MAX_BYTES // (1024 * 1024)} MiB"
            self.buffer.clear()
            return
        self.buffer += data
        while len(self.buffer) >= _HEADER:
            size = int.from_bytes(self.buffer[:_HEADER], "big")
            if len(self.buffer) < _HEADER + size:
                return
            payload = bytes(self.buffer[_HEADER : _HEADER + size])
            del self.buffer[: _HEADER + size]
            try:
                self.messages.append(json.loads(payload))
            except (ValueError, RecursionError):
                self.garbled = "it sent a message that is not JSON"
                self.buffer.clear()
                return


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _ending(status: int) -> Ending:
    if os.WIFSIGNALED(status):
        return Ending(signal=os.WTERMSIG(status))
    return Ending(exit_code=os.WEXITSTATUS(status))


def _signal_name(number: int) -> str:
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)
