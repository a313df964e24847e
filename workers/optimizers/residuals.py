"""Lossy truecolour PNG: snap each pixel so that its filter residual is coarse.

A photograph keeps more of its look in truecolour than in 256 colours, but its
exact pixels compress poorly. Predicting each pixel the way a PNG filter will
(from the pixels already rebuilt) and rounding the difference to a multiple of a
step bounds every visible pixel's error by half the step, while leaving deflate
only a few distinct residuals to code. The caller encodes the result with that
filter on every row.

Two predictors: Up (the pixel above), which suits screenshots with long rows of
one colour, and Average (the mean of the left and upper pixels), which suits
photographs. Alpha is snapped too, but 0 and 255 stay exact so that nothing
hidden appears and nothing opaque becomes see-through; the colour of a fully
transparent pixel is whatever the filter predicts, which costs nothing.
"""

from __future__ import annotations

import numpy as np

UP = "up"
AVERAGE = "average"
PREDICTORS = (UP, AVERAGE)


def snap(pixels: np.ndarray, step: float, predictor: str = AVERAGE) -> np.ndarray:
    """The pixels (height, width[, channels]) with residuals rounded to `step`.

    Two or four channels means the last is alpha. Every visible pixel stays
    within step / 2 + 1/2 of the original; a step of 1 or less returns the
    pixels unchanged.
    """
    if step <= 1:
        return pixels
    values = pixels if pixels.ndim == 3 else pixels[:, :, None]
    has_alpha = values.shape[2] in (2, 4)
    if predictor == UP:
        out = _snap_up(values, step, has_alpha)
    elif predictor == AVERAGE:
        out = _snap_average(values, step, has_alpha)
    else:
        raise ValueError(f"unknown predictor {predictor!r}")
    return out.reshape(pixels.shape)


def _rounded(
    source: np.ndarray, prediction: np.ndarray, step: float, has_alpha: bool
) -> np.ndarray:
    """The rebuilt pixels for one run of `source` given their predictions."""
    residual = source - prediction
    snapped = np.rint(np.rint(residual / step) * step).astype(np.int16)
    out = np.clip(prediction + snapped, 0, 255)
    if has_alpha:
        alpha = source[..., -1]
        ends = (alpha == 0) | (alpha == 255)
        out[..., -1] = np.where(ends, alpha, out[..., -1])
        hidden = out[..., -1] == 0
        out[..., :-1] = np.where(hidden[..., None], prediction[..., :-1], out[..., :-1])
    return out


def _snap_up(values: np.ndarray, step: float, has_alpha: bool) -> np.ndarray:
    """Each row predicted from the rebuilt row above, so errors never add up."""
    source = values.astype(np.int16)
    out = np.empty_like(source)
    above = np.zeros_like(source[0])
    for row in range(source.shape[0]):
        out[row] = _rounded(source[row], above, step, has_alpha)
        above = out[row]
    return out.astype(np.uint8)


def _snap_average(values: np.ndarray, step: float, has_alpha: bool) -> np.ndarray:
    """Average prediction, computed one anti-diagonal at a time.

    A pixel depends on its left and upper neighbours, both on the anti-diagonal
    before its own; storing the image sheared (diagonal k holds the pixels with
    row + column = k, indexed by row) makes each diagonal a slice of the last.
    """
    height, width, channels = values.shape
    rows = np.arange(height)[:, None]
    diagonal = rows + np.arange(width)[None, :]
    sheared = np.zeros((height + width - 1, height, channels), np.int16)
    sheared[diagonal, rows] = values
    # Row index 0 of `rebuilt` stands for the row above the image (all zero).
    rebuilt = np.zeros((height + width - 1, height + 1, channels), np.int16)
    previous = np.zeros((height + 1, channels), np.int16)
    for k in range(height + width - 1):
        first, last = max(0, k - width + 1), min(height - 1, k)
        left = previous[first + 1 : last + 2]
        up = previous[first : last + 1]
        prediction = (left + up) >> 1
        rebuilt[k, first + 1 : last + 2] = _rounded(
            sheared[k, first : last + 1], prediction, step, has_alpha
        )
        previous = rebuilt[k]
    return rebuilt[diagonal, rows + 1].astype(np.uint8)
