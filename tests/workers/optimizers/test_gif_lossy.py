"""The lossy GIF searches score only copies that could beat the best so far."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.optimizers import gif_lossy
from workers.optimizers.gif_gifsicle import Deadline, gifsicle
from workers.optimizers.gif_lossy import Bound, Choice, _Search

TARGET = 85.0


class _Scorer:
    """Scores a copy by its length: the fewer bytes, the lower, as lossy copies do."""

    def __init__(self) -> None:
        self.scored: list[int] = []

    def score(self, data: bytes) -> float:
        self.scored.append(len(data))
        return 70.0 + len(data) / 10


class _Sizes(_Search):
    """A search whose settings make copies of the given sizes."""

    first = 2
    slack = 0.6

    def __init__(self, sizes: list[int], bound: Bound) -> None:
        super().__init__(bound, bytes(max(sizes)))
        self.settings = sizes
        self.made: list[int] = []

    def _make(self, index: int) -> bytes:
        self.made.append(index)
        return bytes(self.settings[index])

    def _choice(self, index: int) -> Choice:
        return Choice(b"", [], self.make(index))


def _bound(scorer: _Scorer) -> Bound:
    return Bound(scorer, TARGET, Deadline(60.0))  # type: ignore[arg-type]


def test_nothing_tried_when_the_floor_is_already_too_large() -> None:
    scorer = _Scorer()
    search = _Sizes([140, 150, 160, 170], _bound(scorer))
    assert search.search(under=140) is None
    assert search.made == [0], "only the strongest setting's copy is made"
    assert scorer.scored == []


def test_copies_no_smaller_than_the_best_are_not_scored() -> None:
    scorer = _Scorer()
    search = _Sizes([100, 120, 145, 152, 160, 175], _bound(scorer))
    found = search.search(under=155)
    assert found is not None
    assert len(found.data) == 152, "the smallest copy holding 85 under 155 bytes"
    assert all(size < 155 for size in scorer.scored), scorer.scored
    assert len(search.made) == len(set(search.made)), "each copy made once"


def test_none_when_nothing_under_the_bound_holds() -> None:
    scorer = _Scorer()
    search = _Sizes([100, 120, 140, 160, 180], _bound(scorer))
    assert search.search(under=145) is None


def test_the_first_search_makes_no_floor_copy() -> None:
    scorer = _Scorer()
    sizes = [100, 120, 145, 152, 160, 175]
    search = _Sizes(sizes, _bound(scorer))
    found = search.search(under=max(sizes))
    assert found is not None
    assert len(found.data) == 152
    assert 0 not in search.made, "nothing held yet: the floor tells nothing"


CHI = Path(__file__).resolve().parents[4] / "shared/corpus/images/gif/pillow_chi.gif"


def _colour_calls(monkeypatch: pytest.MonkeyPatch, reach: float) -> list[list[str]]:
    """The gifsicle calls that cut colours in a search of chi taken as large."""
    calls: list[list[str]] = []

    def recorded(data: bytes, arguments: list[str], deadline: Deadline) -> bytes:
        calls.append(arguments)
        return gifsicle(data, arguments, deadline)

    monkeypatch.setattr(gif_lossy, "gifsicle", recorded)
    monkeypatch.setattr(gif_lossy, "LARGE", 0)
    monkeypatch.setattr(gif_lossy, "COLOUR_REACH", reach)
    data = CHI.read_bytes()
    assert gif_lossy.lossy(data, data, TARGET, Deadline(60.0)) is not None
    return [arguments for arguments in calls if "--colors" in arguments]


def test_fewer_colours_are_searched_only_within_their_reach(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its tolerance copy holds in a tenth of the strongest level's bytes.
    assert _colour_calls(monkeypatch, gif_lossy.COLOUR_REACH) == []
    assert _colour_calls(monkeypatch, 0.0) != []
