"""Running gifsicle on bytes: an argument list, no shell, and a deadline.

gifsicle reads the GIF on stdin and writes the result on stdout, so no file names
reach its command line. It exits 1 on input it cannot read, which is reported as
GifsicleFailed for the caller to decide what the input deserves.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from functools import cache

from workers.optimizers.errors import LimitExceeded

PROGRAM = "gifsicle"


class GifsicleFailed(Exception):
    """gifsicle refused the input or crashed; the message is its last line."""


class OutOfTime(LimitExceeded):
    """The time limit passed before the work on the file was done."""


class Deadline:
    """The moment the work on one file must end, from the limits' time limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; LimitExceeded once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> OutOfTime:
        return OutOfTime(
            f"Optimizing this file took longer than the {self.seconds:g} s time limit."
        )


def gifsicle(data: bytes, arguments: list[str], deadline: Deadline) -> bytes:
    """The GIF gifsicle writes for `data` with these arguments.

    LimitExceeded past the deadline; GifsicleFailed when gifsicle exits with an
    error or writes nothing.
    """
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments are ours
            [_program(), "--no-warnings", *arguments],
            input=data,
            capture_output=True,
            timeout=deadline.remaining(),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise deadline.exceeded() from error
    if done.returncode != 0 or not done.stdout:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise GifsicleFailed(lines[-1] if lines else f"exit {done.returncode}")
    return done.stdout


@cache
def _program() -> str:
    """The full path of gifsicle, which deploy/install-system-packages.sh installs."""
    path = shutil.which(PROGRAM)
    if path is None:
        raise GifsicleFailed(f"{PROGRAM} is not installed")
    return path
