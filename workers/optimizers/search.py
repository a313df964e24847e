"""The perceptual search: the cheapest encoder setting whose output holds a score.

Settings are ordered from the smallest output (lowest quality) to the largest, and
the score is assumed to rise along them. The search bisects on a cheap proxy (a
downscaled or cropped copy of the image), then confirms the pick once at full size,
stepping up by the shortfall the confirm measured until the full-size score holds.
Any format can use it: the caller supplies how to encode and how to score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Setting = TypeVar("Setting")


@dataclass(frozen=True)
class Found(Generic[Setting]):
    """The setting picked, its full-size output and score, and what it cost."""

    setting: Setting
    data: bytes
    score: float
    proxy_trials: int
    full_trials: int


def first_passing(
    settings: Sequence[Setting],
    score: Callable[[Setting], float],
    target: float,
    low: int = 0,
    *,
    start: int | None = None,
    stride: int = 2,
    slope: float | None = None,
    settle: int = 1,
    spare_last: bool = False,
) -> int | None:
    """The index of the first setting from `low` on that scores `target` or more.

    Without `start` it bisects, asking for about log2(len(settings) - low) scores.
    With a `start` guess it first steps out from the guess in strides doubling
    from `stride` until the answer is bracketed, then narrows the bracket by
    interpolating the scores at its ends, which takes fewer scores when the guess
    is near. With a `slope` too (score points per setting, a prior), it steps out
    by the score still missing over the slope the scores show, at most `stride`
    settings a step (see `_step_out`). Either way, scores that rise with the
    setting give the same answer. None when the answer is past the last setting.
    A bracket `settle` settings wide or less is not narrowed further: its
    passing end is the answer, for a caller that checks those below it its own
    way. With `spare_last` too, a step from a miss past the last setting
    answers None without scoring the last, for a caller that confirms it.
    """
    high = len(settings) - 1
    if low > high:
        return None
    if start is None:
        if score(settings[high]) < target:
            return None
        return _bisect(settings, score, target, low, high)
    known: dict[int, float] = {}

    def value(index: int) -> float:
        if index not in known:
            known[index] = score(settings[index])
        return known[index]

    start = min(max(start, low), high)
    if slope is not None:
        failing, passing = _step_out(
            value, known, target, (low, high), start, slope, stride, spare_last
        )
        if passing > high:
            return None
    elif value(start) >= target:
        passing, failing = start, low - 1
        while passing > low:
            probe = max(low, passing - stride)
            if value(probe) < target:
                failing = probe
                break
            passing, stride = probe, stride * 2
    else:
        failing, passing = start, high + 1
        while failing < high:
            probe = min(high, failing + stride)
            if value(probe) >= target:
                passing = probe
                break
            failing, stride = probe, stride * 2
        if passing > high:
            return None
    while passing - failing > settle:
        probe = _interpolate(known, failing, passing, target)
        if value(probe) >= target:
            passing = probe
        else:
            failing = probe
    return passing


def _step_out(
    value: Callable[[int], float],
    known: dict[int, float],
    target: float,
    bounds: tuple[int, int],
    start: int,
    slope: float,
    longest: int,
    spare_last: bool = False,
) -> tuple[int, int]:
    """The bracket (failing, passing) around the answer, stepping from `start`.

    Each step is the score still missing over the slope between the lowest and
    highest settings scored so far (`slope` until two are, or when theirs is
    under a quarter of it), at least one setting and at most `longest`. Once
    both ends are known, the caller's interpolation narrows the bracket.
    `failing` is low - 1 and `passing` high + 1 where no setting is known to be;
    with `spare_last`, `passing` is high + 1 also where a step from a miss would
    go past the last setting, which is then left unscored.
    """
    low, high = bounds
    failing, passing = low - 1, high + 1
    index = start
    while True:
        score = value(index)
        if score >= target:
            passing = index
        else:
            failing = index
        bracketed = failing >= low and passing <= high
        if bracketed or passing == low or failing == high:
            return failing, passing
        ends = sorted(known)
        measured = slope
        if len(ends) > 1:
            rise = known[ends[-1]] - known[ends[0]]
            measured = rise / (ends[-1] - ends[0])
        step = (target - score) / (measured if measured > slope / 4 else slope)
        step = max(-longest, min(longest, step))
        if score >= target:
            index = max(low, index + min(-1, math.floor(step)))
        elif spare_last and passing > high and index + step > high:
            return failing, passing
        else:
            index = min(high, index + max(1, math.ceil(step)))


def _bisect(
    settings: Sequence[Setting],
    score: Callable[[Setting], float],
    target: float,
    low: int,
    high: int,
) -> int:
    while low < high:
        middle = (low + high) // 2
        if score(settings[middle]) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def _interpolate(
    known: dict[int, float], failing: int, passing: int, target: float
) -> int:
    """The next index to try strictly inside (failing, passing)."""
    middle = (failing + passing) // 2
    if failing not in known or passing not in known:
        return middle
    low_score, high_score = known[failing], known[passing]
    if high_score <= low_score:
        return middle
    fraction = (target - low_score) / (high_score - low_score)
    guess = failing + math.ceil(fraction * (passing - failing))
    return min(max(guess, failing + 1), passing - 1)


def search(
    settings: Sequence[Setting],
    encode: Callable[[Setting], bytes],
    score: Callable[[bytes], float],
    target: float,
    proxy: Callable[[Setting], float] | None = None,
    max_confirms: int = 3,
    *,
    accept: float | None = None,
    start: int | None = None,
) -> Found[Setting] | None:
    """Find the first setting whose full-size output scores `target` or more.

    `encode` makes the full-size output of a setting and `score` rates it against
    the original; `proxy`, if given, rates a setting on a cheap copy and steers the
    bisection, so that the full size is encoded only to confirm. A confirm passes
    at `accept` (default: `target`), so a proxy aimed a little high need not cost
    a second confirm. `start` is a guess of the index (see `first_passing`). None
    when no setting holds within `max_confirms` full-size encodes.
    """
    accept = target if accept is None else accept
    proxy_scores: dict[int, float] = {}
    outputs: dict[int, tuple[bytes, float]] = {}

    def full(index: int) -> tuple[bytes, float]:
        if index not in outputs:
            data = encode(settings[index])
            outputs[index] = data, score(data)
        return outputs[index]

    def proxy_score(index: int) -> float:
        if proxy is None:
            return full(index)[1]
        if index not in proxy_scores:
            proxy_scores[index] = proxy(settings[index])
        return proxy_scores[index]

    indices = list(range(len(settings)))
    index = first_passing(indices, proxy_score, target, start=start)
    if index is None:
        index = len(settings) - 1
    for _ in range(max_confirms):
        data, value = full(index)
        if value >= accept:
            return Found(settings[index], data, value, len(proxy_scores), len(outputs))
        if proxy is None or index + 1 >= len(settings):
            return None
        # The proxy was optimistic by the shortfall: aim the proxy that much higher.
        aim = proxy_score(index) + (target - value)
        next_index = first_passing(
            indices, proxy_score, aim, low=index + 1, start=index + 1
        )
        index = index + 1 if next_index is None else next_index
    return None
