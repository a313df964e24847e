"""The frames of a GIF as a viewer shows them, and a candidate's score against them.

An animation is scored as the benchmark scores it: SSIMULACRA2 of each frame with
alpha over white, the mean over a sample of frames spread evenly, and where the
candidate merged frames, whichever of its frames is on screen when the original's
frame starts. The scorer decodes and prepares the original's frames once, and
scores a run of sampled frames that barely change by its middle one.
"""

from __future__ import annotations

import io
import warnings
from bisect import bisect_right
from itertools import accumulate
from statistics import fmean

import cv2
import numpy as np
from PIL import Image

from workers.optimizers import gif_blocks, gif_canvas
from workers.optimizers.errors import CorruptFile
from workers.optimizers.imaging import DECODE_ERRORS
from workers.optimizers.metric import Reference, kept_bytes, rgb_over_white

_SUM_OF_CHANNELS = np.ones((1, 3), dtype=np.float32)
# The bytes of references a scorer keeps whole (about 43 a pixel); the frames
# past them get references that keep a seventh of that and remake the rest at
# each score, in about 1.5 times the time. On the corpus, rich_table_movie's
# 21 references took 870 MB (its search peaked at 1182 MB, now 596 MB, 5%
# slower); the other recordings' 266 and 390 MB.
KEPT_REFERENCES = 256 << 20


def starts(layout: gif_blocks.Layout) -> list[int]:
    """When each frame starts showing, in hundredths of a second."""
    return [0, *accumulate(frame.delay for frame in layout.frames)][:-1]


def sample(count: int, limit: int) -> list[int]:
    """Indices of up to `limit` of `count` frames spread evenly, first and last."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    step = (count - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def stratified(count: int, frames: int, benchmark: int) -> list[int]:
    """`frames` indices standing for the `benchmark` spread evenly over `count`.

    Each index is the middle one of its share of the evenly spread sample, so that
    no frame stands for more of the animation than its share: the first frame of
    a recording often shows little and would weigh too much if always taken.
    """
    spread = sample(count, benchmark)
    if len(spread) <= frames:
        return spread
    return [spread[(2 * i + 1) * len(spread) // (2 * frames)] for i in range(frames)]


def shown_frames(data: bytes, indices: list[int]) -> dict[int, np.ndarray]:
    """The frames at `indices` as shown (disposal applied), RGB over white.

    Composed a rectangle at a time where gif_canvas can, else by Pillow frame by
    frame; CorruptFile if the pixels do not decode.
    """
    composed = gif_canvas.shown_frames(data, indices)
    if composed is not None:
        return composed
    wanted = sorted(set(indices))
    shown = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                for index in wanted:
                    image.seek(index)
                    shown[index] = rgb_over_white(image)
    except DECODE_ERRORS as error:
        raise CorruptFile("The GIF image data is truncated or corrupt.") from error
    return shown


def still_runs(shown: list[np.ndarray], changed: float) -> list[list[int]]:
    """Positions of `shown` grouped into runs of frames that barely change.

    A run goes on while a frame differs from the run's first in at most the
    `changed` fraction of its pixels: a screen recording's cursor blinking or a
    prompt filling in.
    """
    runs: list[list[int]] = []
    for position, frame in enumerate(shown):
        if runs and _changed_share(shown[runs[-1][0]], frame) <= changed:
            runs[-1].append(position)
            continue
        runs.append([position])
    return runs


def _changed_share(first: np.ndarray, frame: np.ndarray) -> float:
    """The share of pixels that differ on any channel: their absolute differences
    summed, saturating at 255, are not zero."""
    summed = cv2.transform(cv2.absdiff(first, frame), _SUM_OF_CHANNELS)
    return cv2.countNonZero(summed) / summed.size


def _references(frames: list[np.ndarray]) -> list[Reference]:
    """A reference of each frame, kept whole while they fit in KEPT_REFERENCES."""
    references, kept = [], 0
    for frame in frames:
        cost = kept_bytes(*frame.shape[:2])
        keep = kept + cost <= KEPT_REFERENCES
        references.append(Reference(frame, remake=not keep))
        kept += cost if keep else 0
    return references


class FrameScorer:
    """Scores candidates against frames of an original, whole frames only.

    Of the `benchmark` frames spread evenly over the animation (as the benchmark
    takes them), `frames` stand for the rest; of those, a run of frames that
    barely change is scored by its middle frame, weighed by the run's length.
    Whole frames: crops or a downscaled copy would score another image.
    """

    def __init__(
        self,
        data: bytes,
        layout: gif_blocks.Layout,
        frames: int,
        benchmark: int,
        changed: float = 0.0,
    ) -> None:
        self.count = len(layout.frames)
        sampled = stratified(self.count, frames, benchmark)
        shown = shown_frames(data, sampled)
        runs = still_runs([shown[index] for index in sampled], changed)
        self.indices = [sampled[run[len(run) // 2]] for run in runs]
        self.weights = [len(run) for run in runs]
        frame_starts = starts(layout)
        self.times = [frame_starts[index] for index in self.indices]
        self.references = _references([shown[index] for index in self.indices])

    def shown_indices(self, layout: gif_blocks.Layout) -> list[int]:
        """The candidate's frames to compare with the scored originals."""
        if len(layout.frames) == self.count:
            return self.indices
        frame_starts = starts(layout)
        return [max(bisect_right(frame_starts, t) - 1, 0) for t in self.times]

    def score(self, candidate: bytes) -> float:
        """The weighted mean score of the candidate's frames against the originals."""
        indices = self.shown_indices(gif_blocks.read_layout(candidate))
        shown = shown_frames(candidate, indices)
        scores = [
            reference.score(shown[index])
            for reference, index in zip(self.references, indices, strict=True)
        ]
        return fmean(scores, weights=self.weights)
