"""The one perceptual metric every tool is scored with, and how a file pair is scored.

SSIMULACRA2 on RGB with alpha composited over white, the mean over frames (over the
first pages for a PDF, rendered at 72 dpi), as ../shared/corpus/BASELINE.md measures.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Callable, Iterator
from statistics import fmean

import numpy as np
import ssimulacra2 as reference_ssimulacra2
from PIL import Image

from tests.benchmarks import pixels
from workers.optimizers import metric

# Frames scored per animation and pages per PDF: the metric takes about a second a
# megapixel on one core, and the longest recording here has 706 frames.
MAX_SCORED_FRAMES = 24
MAX_SCORED_PAGES = 10


class ScoreFailed(Exception):
    """The pair cannot be scored: different frame counts or sizes, or unreadable."""


def _reference_package(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 by the `ssimulacra2` package, which reads images from files."""
    return float(
        reference_ssimulacra2.compute_ssimulacra2(_png(reference), _png(distorted))
    )


def _png(rgb: np.ndarray) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, "PNG", compress_level=0)
    buffer.seek(0)
    return buffer


def _squeezer_metric(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 by workers.optimizers.metric, the vectorised one ours search with."""
    return float(metric.Reference(reference).score(distorted))


# The metric in use; switching implementations is this one line.
METRIC: Callable[[np.ndarray, np.ndarray], float] = _squeezer_metric


def metric_id() -> str:
    """Names the metric and its sampling, so that cached scores follow a switch."""
    name = f"{METRIC.__module__}.{METRIC.__qualname__}"
    return f"{name}/frames{MAX_SCORED_FRAMES}/pages{MAX_SCORED_PAGES}"


def ssimulacra2(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 of two RGB uint8 arrays of one size; 100 for identical pixels."""
    if reference.shape != distorted.shape:
        raise ScoreFailed(f"size changed: {reference.shape} -> {distorted.shape}")
    if np.array_equal(reference, distorted):
        return 100.0
    return METRIC(reference, distorted)


# Rendering may round a page's size either way: pages this close are cropped to match.
PAGE_SIZE_SLACK = 2


def crop_to_common(a: np.ndarray, b: np.ndarray, slack: int) -> tuple:
    """Both arrays cropped to their common size when they differ by `slack` or less."""
    height, width = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    if max(a.shape[0], b.shape[0]) - height > slack:
        return a, b
    if max(a.shape[1], b.shape[1]) - width > slack:
        return a, b
    return a[:height, :width], b[:height, :width]


def _mean_score(
    references: Iterator[np.ndarray], outputs: Iterator[np.ndarray], slack: int = 0
) -> float:
    scores = []
    for reference, output in zip(references, outputs, strict=True):
        scores.append(ssimulacra2(*crop_to_common(reference, output, slack)))
    if not scores:
        raise ScoreFailed("nothing to score")
    return fmean(scores)


def matching_frames(original: bytes, output: bytes) -> tuple[list[int], list[int]]:
    """Sampled frames of the original, and the output's frames shown at their starts.

    With equal frame counts frame i is compared with frame i; otherwise (frames merged)
    with whichever output frame is on screen when the original's frame starts.
    """
    starts = pixels.frame_starts(original)
    chosen = pixels.frame_sample(len(starts), MAX_SCORED_FRAMES)
    output_starts = pixels.frame_starts(output)
    if len(output_starts) == len(starts):
        return chosen, chosen
    shown = [max(bisect_right(output_starts, starts[i]) - 1, 0) for i in chosen]
    return chosen, shown


def score_pair(fmt: str, original: bytes, output: bytes) -> float:
    """The score of `output` against `original`: mean over frames or first pages."""
    if output == original:
        return 100.0
    try:
        if fmt == "pdf":
            if pixels.pdf_page_count(original) != pixels.pdf_page_count(output):
                raise ScoreFailed("page count changed")
            return _mean_score(
                pixels.rendered_pages(original, MAX_SCORED_PAGES),
                pixels.rendered_pages(output, MAX_SCORED_PAGES),
                slack=PAGE_SIZE_SLACK,
            )
        chosen, shown = matching_frames(original, output)
        return _mean_score(
            pixels.displayed_frames(original, chosen),
            pixels.displayed_frames(output, shown),
        )
    except pixels.DecodeFailed as error:
        raise ScoreFailed(str(error)) from error
    except ValueError as error:
        raise ScoreFailed(f"frames do not pair: {error}") from error
