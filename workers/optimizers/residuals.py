"""Lossy truecolour PNG: snap each pixel so that its Up-filter residual is coarse.

A photograph keeps more of its look in truecolour than in 256 colours, but its
exact pixels compress poorly. Predicting each row from the row above as already
rebuilt, and rounding the difference to a multiple of a step, bounds every pixel's
error by half the step while leaving deflate few distinct residuals to code.
"""

from __future__ import annotations

import numpy as np


def snap_rows(pixels: np.ndarray, step: int) -> np.ndarray:
    """The pixels (height, width[, channels]) with Up residuals rounded to `step`.

    The first row is kept; each later row is predicted from the rebuilt row above,
    so errors never add up. A step of 1 returns the pixels unchanged.
    """
    if step <= 1:
        return pixels
    source = pixels.astype(np.int16)
    out = np.empty_like(source)
    out[0] = source[0]
    half = step // 2
    residual = np.empty_like(source[0])
    for row in range(1, source.shape[0]):
        above = out[row - 1]
        np.subtract(source[row], above, out=residual)
        residual += half
        np.floor_divide(residual, step, out=residual)
        residual *= step
        np.add(above, residual, out=out[row])
        np.clip(out[row], 0, 255, out=out[row])
    return out.astype(np.uint8)
