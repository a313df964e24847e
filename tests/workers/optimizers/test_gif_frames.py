"""Runs of frames that barely change are scored as one; references fit a budget."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.optimizers import gif_blocks, gif_frames
from workers.optimizers.gif_frames import FrameScorer, still_runs
from workers.optimizers.metric import kept_bytes

CHI = Path(__file__).resolve().parents[4] / "shared/corpus/images/gif/pillow_chi.gif"


def _screen(cursor: int, text: int = 0) -> np.ndarray:
    """A 100x100 screen: `text` rows of text and a cursor at `cursor`."""
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    frame[:text] = 200
    frame[90, cursor] = 255
    return frame


def test_a_blinking_cursor_stays_in_one_run() -> None:
    frames = [_screen(0), _screen(40, text=30), _screen(41, text=30), _screen(2, 30)]
    assert still_runs(frames, changed=0.01) == [[0], [1, 2, 3]]


def test_every_frame_is_its_own_run_without_a_tolerance() -> None:
    frames = [_screen(0), _screen(1), _screen(1)]
    assert still_runs(frames, changed=0.0) == [[0], [1, 2]]


def _worse(data: bytes) -> bytes:
    """The animation with every frame's colours cut to 16."""
    with Image.open(io.BytesIO(data)) as image:
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(image.convert("RGB").quantize(16))
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], loop=0)
    return buffer.getvalue()


def test_references_past_the_budget_remake_their_scales_and_score_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = CHI.read_bytes()
    layout = gif_blocks.read_layout(data)
    whole = FrameScorer(data, layout, 4, 4)
    frame_bytes = kept_bytes(layout.height, layout.width)
    monkeypatch.setattr(gif_frames, "KEPT_REFERENCES", 2 * frame_bytes)
    budgeted = FrameScorer(data, layout, 4, 4)
    candidate = _worse(data)

    assert [reference.remade for reference in whole.references] == [0, 0, 0, 0]
    assert [bool(reference.remade) for reference in budgeted.references] == [
        False,
        False,
        True,
        True,
    ]
    assert whole.score(candidate) < 99.0
    assert budgeted.score(candidate) == pytest.approx(whole.score(candidate), abs=1e-4)
