"""Run native work that can hang in a child process, and give up on it in time.

A hostile PDF can keep qpdf or pdfium busy inside one C call, where no Python
signal reaches; a forked child can be killed from outside at the time limit. The
child hands back its result, or the typed error it raised, through a pipe.

The child is made with a bare `os.fork`, not `multiprocessing`: a Celery worker's
pool process is daemonic, and multiprocessing refuses it children; and its
after-fork hooks would run the parent's cleanups (kombu closes the parent's broker
connections, blocking on a read) inside the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

from workers.optimizers.errors import LimitExceeded, OptimizeError

T = TypeVar("T")
_READ_SIZE = 1 << 20


class ChildFailed(RuntimeError):
    """The child crashed or raised something other than an OptimizeError."""


def run_with_time_limit(seconds: float, work: Callable[..., T], *args: object) -> T:
    """Call `work(*args)` in a forked child; LimitExceeded if it runs past `seconds`.

    An OptimizeError raised by the work is raised again here; any other failure,
    a crash of the child included, becomes ChildFailed.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        os.close(reader)
        _child(writer, work, args)
    os.close(writer)
    try:
        payload = _read_all(reader, time.monotonic() + seconds)
    finally:
        os.close(reader)
        _reap(pid)
    if payload is None:
        raise LimitExceeded(
            f"Optimizing this file took longer than the {seconds:g} s time limit."
        )
    if not payload:
        raise ChildFailed("the optimizer's process died without an answer")
    outcome, value = pickle.loads(payload)  # noqa: S301 - our own child's bytes
    if outcome == "ok":
        return value
    if outcome == "refused":
        raise value
    raise ChildFailed(value)


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Everything written to `fd` until it closes, or None past the deadline."""
    parts = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        part = os.read(fd, _READ_SIZE)
        if not part:
            return b"".join(parts)
        parts.append(part)


def _reap(pid: int) -> None:
    """Kill the child if it still runs, and collect it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _child(writer: int, work: Callable[..., object], args: tuple) -> None:
    code = 0
    try:
        try:
            result: tuple[str, object] = ("ok", work(*args))
        except OptimizeError as error:
            result = ("refused", error)
        except BaseException:  # every failure, crash or exit, must reach the parent
            result = ("failed", traceback.format_exc())
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(writer, "wb") as out:
            out.write(payload)
    except BaseException:  # the parent sees an empty answer
        code = 1
    finally:
        # Skip the parent's atexit handlers and buffered output: they are not ours.
        os._exit(code)
