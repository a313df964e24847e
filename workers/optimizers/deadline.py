"""Run native work that can hang in a child process, and give up on it in time.

A hostile PDF can keep qpdf or pdfium busy inside one C call, where no Python
signal reaches; a forked child can be killed from outside at the time limit. The
child hands back its result, or the typed error it raised, through a pipe.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TypeVar

from workers.optimizers.errors import LimitExceeded, OptimizeError

T = TypeVar("T")


class ChildFailed(RuntimeError):
    """The child crashed or raised something other than an OptimizeError."""


def run_with_time_limit(seconds: float, work: Callable[..., T], *args: object) -> T:
    """Call `work(*args)` in a forked child; LimitExceeded if it runs past `seconds`.

    An OptimizeError raised by the work is raised again here; any other failure,
    a crash of the child included, becomes ChildFailed.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, work, args), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            raise LimitExceeded(
                f"Optimizing this file took longer than the {seconds:g} s time limit."
            )
        try:
            outcome, value = receiver.recv()
        except EOFError:
            died = f"the optimizer's process died ({child.exitcode})"
            raise ChildFailed(died) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if outcome == "ok":
        return value
    if outcome == "refused":
        raise value
    raise ChildFailed(value)


def _child(sender: Connection, work: Callable[..., object], args: tuple) -> None:
    try:
        result: tuple[str, object] = ("ok", work(*args))
    except OptimizeError as error:
        result = ("refused", error)
    except BaseException:  # every failure, crash or exit, must reach the parent
        result = ("failed", traceback.format_exc())
    sender.send(result)
    sender.close()
