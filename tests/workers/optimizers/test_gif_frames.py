"""Runs of frames that barely change are scored as one."""

from __future__ import annotations

import numpy as np

from workers.optimizers.gif_frames import still_runs


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
