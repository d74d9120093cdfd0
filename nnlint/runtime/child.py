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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_HEADER = 4  # bytes of big-endian frame length
_MAX_BYTES = 256 * 1024 * 1024  # everything a child may send: a report of thousands of findings is a few MB
_POLL_SECONDS = 0.02  # how often to look for the child's end where the OS has no pidfd
_CHILD_FAILED = 70  # the child's exit code when the function itself raised (EX_SOFTWARE)
_PR_SET_PDEATHSIG = 1

Send = Callable[[Any], None]


class Output(Protocol):
    """Where a child's output is relayed: a text stream, or anything that writes text."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


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


def run_in_child(work: Callable[[Send], None], *, timeout: float | None, output: Output | None = None) -> ChildRun:
    """Fork; in the child, call `work(send)` and leave; in the parent, collect what it sent.

    `timeout` (seconds, None for none) is the hard deadline: the child's process group is killed
    with SIGKILL when it passes. KeyboardInterrupt in the parent kills it too, then propagates.
    `output`: where the child's stdout and stderr go when that is not this process's fd 2 (a
    caller that captures sys.stderr): relayed through a pipe. By default they share fd 2.
    """
    child = start_child(work, timeout=timeout, output=output)
    try:
        while not child.ended:
            wait_for_children([child])
    finally:
        child.stop()  # interrupted (Ctrl-C): leave nothing running
    return child.run


def start_child(work: Callable[[Send], None], *, timeout: float | None, output: Output | None = None) -> Child:
    """Fork a child that calls `work(send)` and leaves; `run_in_child` without the waiting, so that
    a caller can watch several at once (`wait_for_children`). The caller must see each to its end,
    or `stop` it."""
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
    relay = _Relay(relay_read, output) if relay_read is not None and output is not None else None
    return Child(pid, read_end, relay, timeout)


class Child:
    """A forked child, watched from the parent: what it sent so far (`run`), and whether it ended."""

    def __init__(self, pid: int, read_end: int, relay: _Relay | None, timeout: float | None) -> None:
        self.pid = pid
        self.read_end = read_end
        self.relay = relay
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.run = ChildRun()
        self.ended = False
        self.frames = _Frames(self.run.messages)
        self.pidfd = _pidfd(pid)
        self.open_fds = {read_end, *([relay.fd] if relay is not None else [])}  # until their end of file

    def read(self, fd: int) -> None:
        more = self.frames.read(fd) if fd == self.read_end else self.relay.read()  # type: ignore[union-attr]
        if not more:
            self.open_fds.discard(fd)  # end of file: wait for the child's end alone

    def finish(self, *, timed_out: bool = False) -> None:
        """Reap it (killed first at its deadline) and read what is left; `run` is then complete."""
        if timed_out:
            _kill_group(self.pid)
            os.waitpid(self.pid, 0)
            _drain(self.frames, self.read_end, self.relay)
            self.run.ending = Ending(timed_out=self.timeout)
        else:
            _drain(self.frames, self.read_end, self.relay)
            _kill_group(self.pid)  # what it started and left running (it is not reaped yet: its group stays valid)
            self.run.ending = _ending(os.waitpid(self.pid, 0)[1])
        self.run.garbled = self.frames.garbled
        self._close()

    def stop(self) -> None:
        """Kill it and what it started, and reap it, if it has not ended (Ctrl-C); close its pipes."""
        if self.ended:
            return
        _kill_group(self.pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._close()

    def _close(self) -> None:
        self.ended = True
        if self.pidfd is not None:
            os.close(self.pidfd)
        os.close(self.read_end)
        if self.relay is not None:
            self.relay.close()


def wait_for_children(children: Sequence[Child], *, at_most: float | None = None) -> list[Child]:
    """Wait until at least one of `children` (none ended yet) ends or passes its deadline, reading
    what they send meanwhile; finish those and return them. `at_most`: seconds, after which none
    may have ended (an empty list)."""
    given_up = None if at_most is None else time.monotonic() + at_most
    with selectors.DefaultSelector() as selector:
        for child in children:
            for fd in child.open_fds:
                selector.register(fd, selectors.EVENT_READ, child)
            if child.pidfd is not None:
                selector.register(child.pidfd, selectors.EVENT_READ, child)
        polling = any(child.pidfd is None for child in children)
        while True:
            now = time.monotonic()
            late = [child for child in children if child.deadline is not None and child.deadline <= now]
            for child in late:
                child.finish(timed_out=True)
            if late:
                return late
            if given_up is not None and given_up <= now:
                return []
            deadlines = [child.deadline - now for child in children if child.deadline is not None]
            deadlines += [given_up - now] if given_up is not None else []
            wait = min(deadlines) if deadlines else None
            if polling:
                wait = _POLL_SECONDS if wait is None else min(wait, _POLL_SECONDS)
            ended: list[Child] = []
            for key, _ in selector.select(wait):
                child = key.data
                if key.fd == child.pidfd:
                    ended.append(child)
                else:
                    child.read(key.fd)
                    if key.fd not in child.open_fds:
                        selector.unregister(key.fd)
            ended += [child for child in children if child.pidfd is None and child not in ended and _has_ended(child.pid)]
            for child in ended:
                child.finish()
            if ended:
                return ended


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

    def __init__(self, fd: int, output: Output) -> None:
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
