"""The time limit on native work: answers, typed errors, crashes and hangs."""

from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing import util

import pytest

from workers.optimizers.deadline import ChildFailed, run_with_time_limit
from workers.optimizers.errors import CorruptFile, LimitExceeded


def _double(value: bytes) -> bytes:
    return value * 2


def _refuse() -> None:
    raise CorruptFile("not a pdf")


def _break() -> None:
    raise KeyError("bug")


def _die() -> None:
    os._exit(3)


def _hang() -> None:
    time.sleep(60)


def test_the_childs_answer_comes_back_whole():
    big = os.urandom(3 << 20)
    assert run_with_time_limit(10, _double, big) == big * 2


@pytest.mark.parametrize(
    ("work", "expected"),
    [(_refuse, CorruptFile), (_break, ChildFailed), (_die, ChildFailed)],
    ids=["typed refusal", "bug", "crash"],
)
def test_failures_in_the_child_become_typed_errors(work, expected):
    with pytest.raises(expected):
        run_with_time_limit(10, work)


def test_a_hang_is_cut_at_the_limit():
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"0\.5 s time limit"):
        run_with_time_limit(0.5, _hang)
    assert time.monotonic() - started < 5, "the limit was not kept"


def _in_a_daemon(answers: multiprocessing.Queue) -> None:
    # kombu registers hooks like this one; they must not run in our child.
    util.register_after_fork(answers, lambda _: time.sleep(60))
    answers.put(run_with_time_limit(10, _double, b"ab"))


def test_works_inside_a_daemonic_pool_process_with_after_fork_hooks():
    """A Celery pool process is daemonic and carries kombu's after-fork hooks."""
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    process = context.Process(target=_in_a_daemon, args=(answers,), daemon=True)
    process.start()
    try:
        assert answers.get(timeout=30) == b"abab"
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
