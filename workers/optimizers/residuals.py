"""Lossy truecolour PNG: snap each pixel so that its filter residual is coarse.

A photograph keeps more of its look in truecolour than in 256 colours, but its
exact pixels compress poorly. Predicting each pixel the way a PNG filter will
(from the pixels already rebuilt, so errors never add up) and rounding the
difference to a multiple of a step bounds every visible pixel's error by about
half the step, while leaving deflate only a few distinct residuals to code. The
caller encodes the result with that filter on every row.

Two predictors: Average (the mean of the left and upper pixels), which suits
photographs, and Up (the pixel above), which suits screenshots. On screenshots
an error made at the edge of a glyph would run on down the flat background
below it, so `keep_flat` rebuilds exactly every pixel that equals the ones it is
predicted from; photographs have few such pixels and gain nothing from it.
Alpha is snapped too, but 0 and 255 stay exact, so that nothing hidden appears
and nothing opaque becomes see-through; the colour of a fully transparent pixel
is whatever the filter predicts, which costs nothing.
"""

from __future__ import annotations

import numpy as np

UP = "up"
AVERAGE = "average"
PREDICTORS = (UP, AVERAGE)
JITTER_SEED = 2024
# The side of the square tile of jitter repeated over the image.
PATTERN = 64
# Average snapping works on bands of rows stored sheared, of about this many
# values each (a few tens of megabytes).
BAND_ELEMENTS = 4_000_000


def snap(
    pixels: np.ndarray,
    step: float,
    predictor: str = AVERAGE,
    keep_flat: bool = False,
) -> np.ndarray:
    """The pixels (height, width[, channels]) with residuals rounded to `step`.

    Two or four channels means the last is alpha. Every visible pixel stays
    within step / 2 + 1 of the original; a step of 1 or less returns the pixels
    unchanged.
    """
    if step <= 1:
        return pixels
    values = pixels if pixels.ndim == 3 else pixels[:, :, None]
    has_alpha = values.shape[2] in (2, 4)
    if predictor == UP:
        out = _snap_up(values, step, has_alpha, keep_flat)
    elif predictor == AVERAGE:
        out = _snap_average(values, step, has_alpha, keep_flat)
    else:
        raise ValueError(f"unknown predictor {predictor!r}")
    return out.reshape(pixels.shape)


def _rounded(
    source: np.ndarray,
    prediction: np.ndarray,
    step: float,
    has_alpha: bool,
    flat: np.ndarray | None,
    offset: np.ndarray,
) -> np.ndarray:
    """The rebuilt pixels (int16) for one run of `source` given their predictions.

    `offset` is the run's jitter over the step plus a half, so that the floor
    rounds. Where `flat` (the source pixel equals the ones it is predicted from),
    the pixel is rebuilt exactly, so that an error made at an edge does not run
    on through the flat area beyond it.
    """
    levels = (source - prediction) * np.float32(1 / step)
    levels += offset
    np.floor(levels, out=levels)
    levels *= np.float32(step)
    out = prediction + np.rint(levels).astype(np.int16)
    np.clip(out, 0, 255, out=out)
    if flat is not None:
        out[flat] = source[flat]
    if has_alpha:
        alpha = source[..., -1]
        ends = (alpha == 0) | (alpha == 255)
        out[ends, -1] = alpha[ends]
        hidden = out[..., -1] == 0
        out[hidden, :-1] = prediction[hidden, :-1]
    return out


def _snap_up(
    values: np.ndarray, step: float, has_alpha: bool, keep_flat: bool
) -> np.ndarray:
    """Each row predicted from the rebuilt row above, so errors never add up."""
    height, width, channels = values.shape
    out = np.empty_like(values)
    above = np.zeros((width, channels), np.int16)
    offsets = _offsets(step)
    columns = np.arange(width) % PATTERN
    for row in range(height):
        source = values[row].astype(np.int16)
        flat = None
        if keep_flat and row > 0:
            flat = (values[row] == values[row - 1]).all(axis=1)
        offset = offsets[row % PATTERN, columns, :channels]
        rebuilt = _rounded(source, above, step, has_alpha, flat, offset)
        out[row] = rebuilt
        above = rebuilt
    return out


def _snap_average(
    values: np.ndarray, step: float, has_alpha: bool, keep_flat: bool
) -> np.ndarray:
    """Average prediction, computed one anti-diagonal at a time, band by band.

    A pixel depends on its left and upper neighbours, both on the anti-diagonal
    before its own. Within a band of rows stored sheared (diagonal k holds the
    band's pixels with row + column = k, by row), each diagonal is a slice of
    the last; a band's first row is predicted from the rebuilt row above it.
    """
    height, width, channels = values.shape
    out = np.empty_like(values)
    tile = _offsets(step)
    flat = np.zeros((height, width), bool)
    if keep_flat:
        same_as_up = (values[1:, 1:] == values[:-1, 1:]).all(axis=2)
        flat[1:, 1:] = same_as_up & (values[1:, 1:] == values[1:, :-1]).all(axis=2)
    band = max(1, min(height, BAND_ELEMENTS // ((height + width) * channels)))
    above = np.zeros((width, channels), np.int16)
    for top in range(0, height, band):
        bottom = min(height, top + band)
        rows = np.arange(bottom - top)[:, None]
        columns = np.arange(width)[None, :]
        diagonal = rows + columns
        shape = (bottom - top + width - 1, bottom - top)
        source = np.zeros((*shape, channels), np.int16)
        source[diagonal, rows] = values[top:bottom]
        offset = np.zeros((*shape, channels), np.float32)
        offset[diagonal, rows] = tile[
            (top + rows) % PATTERN, columns % PATTERN, :channels
        ]
        kept = None
        if keep_flat:
            kept = np.zeros(shape, bool)
            kept[diagonal, rows] = flat[top:bottom]
        rebuilt = _snap_band(source, offset, kept, above, step, has_alpha)
        out[top:bottom] = rebuilt[diagonal, rows + 1]
        above = out[bottom - 1].astype(np.int16)
    return out


def _snap_band(
    source: np.ndarray,
    offset: np.ndarray,
    flat: np.ndarray | None,
    above: np.ndarray,
    step: float,
    has_alpha: bool,
) -> np.ndarray:
    """One sheared band snapped; row index 0 of the result is the row above."""
    diagonals, height, channels = source.shape
    width = diagonals - height + 1
    rebuilt = np.zeros((diagonals, height + 1, channels), np.int16)
    previous = np.zeros((height + 1, channels), np.int16)
    for k in range(diagonals):
        first, last = max(0, k - width + 1), min(height - 1, k)
        if k < width:
            previous[0] = above[k]
        left = previous[first + 1 : last + 2]
        up = previous[first : last + 1]
        rebuilt[k, first + 1 : last + 2] = _rounded(
            source[k, first : last + 1],
            (left + up) >> 1,
            step,
            has_alpha,
            None if flat is None else flat[k, first : last + 1],
            offset[k, first : last + 1],
        )
        previous = rebuilt[k]
    return rebuilt


def _offsets(step: float) -> np.ndarray:
    """A tile of rounding offsets: jitter under one unit, over the step, plus 1/2.

    Residuals are whole numbers, so without jitter the zero band of the rounding
    would widen a whole unit at a time and the score fall in steps; with it a
    fraction of the residuals at the band's edge go each way, and the score
    follows the step smoothly. Seeded and tiled, so that a step always gives
    one output.
    """
    jitter = np.random.default_rng(JITTER_SEED).uniform(
        -0.5, 0.5, (PATTERN, PATTERN, 4)
    )
    return (jitter / step + 0.5).astype(np.float32)
