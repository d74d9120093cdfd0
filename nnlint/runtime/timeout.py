"""`--probe-timeout`: stop a run of the user's forward that never returns (the probe, and the
trace or recording that builds the graph).

On the main thread a SIGALRM timer raises `ProbeTimeout` at the next bytecode, which also
interrupts `time.sleep` and blocking waits. Elsewhere (the API called from a worker thread, or
SIGALRM already in use) a watchdog thread raises it asynchronously in the probing thread; that
one waits for a blocking C call such as `time.sleep` to return. The exception is a
`BaseException`, so a forward's `except Exception:` cannot swallow it, and it is raised again
every second until the probe gives up.

It is never raised inside the code that restores the user's state: while a function registered
with `protect()` (the state guards' context managers, contextlib's `__exit__`) is anywhere on the
interrupted thread's stack, the timeout waits for the next tick.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_REPEAT_SECONDS = 1.0
_PROTECTED: set[types.CodeType] = set()


class ProbeTimeout(BaseException):  # noqa: N818 - raised into user code; must not look like an Exception
    """The probe ran past its deadline."""


def protect(*functions: Callable[..., object]) -> None:
    """Never interrupt the probe while one of these functions (or generators) is running."""
    for function in functions:
        function = getattr(function, "__wrapped__", function)
        _PROTECTED.add(function.__code__)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise `ProbeTimeout` inside the block once it has run for `seconds` (None: no limit)."""
    if seconds is None or seconds <= 0:
        yield
        return
    state = _State()
    stop = _arm_alarm(state, seconds) if _alarm_is_free() else _arm_watchdog(state, seconds)
    try:
        yield
    finally:
        state.armed = False
        stop()
    if state.fired:
        raise ProbeTimeout  # it fired during the last instructions of the block, which then completed


def _alarm_is_free() -> bool:
    """SIGALRM works on the main thread only, and is not ours to take when someone else uses it
    (pytest-timeout's signal method, the user's own timer)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return False
    return signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)


class _State:
    def __init__(self) -> None:
        self.armed = True
        self.fired = False


def _is_protected(frame: types.FrameType | None) -> bool:
    """Whether the interrupted thread is inside protected code (anywhere up its stack)."""
    while frame is not None:
        if frame.f_code in _PROTECTED:
            return True
        frame = frame.f_back
    return False


def _arm_alarm(state: _State, seconds: float) -> Callable[[], None]:
    def on_alarm(signum: int, frame: types.FrameType | None) -> None:
        if state.armed and not _is_protected(frame):
            state.fired = True
            raise ProbeTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, _REPEAT_SECONDS)

    def stop() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    return stop


def _arm_watchdog(state: _State, seconds: float) -> Callable[[], None]:
    lock = threading.Lock()
    target = threading.get_ident()
    stopped = threading.Event()

    def watch() -> None:
        wait = seconds
        while not stopped.wait(wait):
            wait = 0.05
            with lock:
                if not state.armed:
                    return
                if _is_protected(sys._current_frames().get(target)):
                    continue
                state.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(ProbeTimeout))
            wait = _REPEAT_SECONDS

    threading.Thread(target=watch, name="nnlint-probe-timeout", daemon=True).start()

    def stop() -> None:
        with lock:
            stopped.set()
            # An exception sent but not raised yet would surface later, outside the probe: cancel it.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)

    return stop


protect(deadline, contextlib._GeneratorContextManager.__exit__, contextlib.ExitStack.__exit__)
# Nor inside an import: the first meta run imports torch's symbolic shapes and sympy (seconds on a
# loaded machine), and an import stopped halfway leaves submodules without their parent's
# attributes (`module 'sympy' has no attribute 'core'`) for the rest of the process.
protect(importlib._bootstrap._find_and_load)  # type: ignore[attr-defined]
