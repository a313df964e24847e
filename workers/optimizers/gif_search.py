"""The lossy level search for GIF: each pick predicted, then scored in full.

Scoring the sampled frames of a long screen recording is most of the time spent
on it, and a proxy over fewer frames reads a point or more off and unsteadily
there, so every score here is a full one and the search keeps their number low
by predicting where the target lies. The loss (100 - score) grows about as a
power of the lossy level: one score predicts the level with the power 1/2, two
give this file's own power, and a pick that lands within a little slack above
the target ends the search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

# Full scores a search may spend; how far above the target a level may score and
# end the search; how far above the target the predictions aim, so that they
# land inside that slack more often than below the target.
CONFIRMS = 6
SLACK = 0.6
AIM = 0.25
# The power of the level the loss grows with: assumed before a second score,
# and the range a fitted one is held to (the scores of neighbouring levels are
# noisy, which can make a fit from two close levels wild).
POWER = 0.5
POWERS = (0.1, 1.2)
PERFECT = 100.0


def predicted_search(
    levels: Sequence[int],
    score: Callable[[int], float],
    target: float,
    first: int,
    slack: float = SLACK,
) -> int | None:
    """The index of the strongest level found whose score holds `target`.

    `levels` run from the strongest lossy level (the smallest output) to the
    weakest; `score` rates the level at an index; a level scoring less than
    `slack` above the target ends the search. None when no level scored holds
    the target.
    """
    known: dict[int, float] = {}
    index: int | None = first
    for _ in range(CONFIRMS):
        if index is None or index in known:
            break
        known[index] = score(index)
        passing = [i for i, value in known.items() if value >= target]
        best = min(passing) if passing else None
        if best is not None and known[best] < target + slack:
            break
        index = _next(levels, known, target, best)
    passing = [i for i, value in known.items() if value >= target]
    return min(passing) if passing else None


def _next(
    levels: Sequence[int], known: dict[int, float], target: float, best: int | None
) -> int | None:
    """The next index to score, None once the failing and passing ones meet.

    The model is fitted to the closest failing and passing scores when both are
    known, else to the two scores nearest the target. Where it points outside
    the open bracket or at a known index (neighbouring levels can score a point
    apart either way), the power 1/2 from the nearest score takes over, and then
    the next untried level past the last failing one, or the bracket's middle.
    A level that counts as holding unscored, as a copy too large to win does,
    ends the search where the failing level's model puts the target past it.
    """
    failing = [i for i, value in known.items() if value < target]
    above = max(failing) if failing else -1
    below = best if best is not None else len(levels)
    if below - above <= 1:
        return None
    aim = target + AIM
    # A `best` not scored (its copy too large to win) where the failing level
    # puts the target at or past it: nothing between is expected to hold.
    unscored = best is not None and known[best] >= PERFECT
    if (
        failing
        and unscored
        and _index(levels, _level(levels, known, [above], aim)) >= below
    ):
        return None
    if failing and best is not None:
        fits = [above, below]
    else:
        fits = sorted(known, key=lambda i: abs(known[i] - aim))[:2]
    for points in (fits, fits[:1]):
        index = _index(levels, _level(levels, known, points, aim))
        if above < index < below and index not in known:
            return index
    if best is None:
        return above + 1
    return (above + below) // 2


def _level(
    levels: Sequence[int], known: dict[int, float], points: list[int], target: float
) -> float:
    """The level the power model of the scores at `points` puts `target` at."""
    usable = [(levels[i], PERFECT - known[i]) for i in points if known[i] < PERFECT]
    if not usable:
        return float(levels[0])
    level, loss = usable[0]
    power = POWER
    if len(usable) > 1:
        other_level, other_loss = usable[1]
        if other_level != level and other_loss != loss:
            fitted = math.log(other_loss / loss) / math.log(other_level / level)
            power = min(max(fitted, POWERS[0]), POWERS[1])
    return level * ((PERFECT - target) / max(loss, 1e-6)) ** (1 / power)


def _index(levels: Sequence[int], level: float) -> int:
    """The index of the level nearest `level`, in ratio."""
    ratios = [abs(math.log(value / max(level, 1e-6))) for value in levels]
    return ratios.index(min(ratios))
