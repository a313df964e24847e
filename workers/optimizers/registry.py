"""The registry of optimizers keyed by detected format, and the guarded entry point."""

from __future__ import annotations

import logging
from dataclasses import replace

from workers.optimizers import convert
from workers.optimizers.base import Limits, Optimizer, Options, Result
from workers.optimizers.detect import detect_format
from workers.optimizers.errors import OptimizeError, UnsupportedFormat
from workers.optimizers.gif import GifOptimizer
from workers.optimizers.jpeg import JpegOptimizer
from workers.optimizers.pdf import PdfOptimizer
from workers.optimizers.png import PngOptimizer
from workers.optimizers.webp import WebpOptimizer

log = logging.getLogger(__name__)

_OPTIMIZERS: tuple[Optimizer, ...] = (
    JpegOptimizer(),
    PngOptimizer(),
    GifOptimizer(),
    WebpOptimizer(),
    PdfOptimizer(),
)
REGISTRY: dict[str, Optimizer] = {
    fmt: optimizer for optimizer in _OPTIMIZERS for fmt in optimizer.formats
}


def optimizer_for(fmt: str) -> Optimizer:
    """The optimizer registered for a detected format."""
    try:
        return REGISTRY[fmt]
    except KeyError:
        raise UnsupportedFormat("This file type is not supported.") from None


def optimize(data: bytes, options: Options, limits: Limits | None = None) -> Result:
    """Optimize one file of any supported format.

    Input the optimizer rejects raises an OptimizeError. Any other failure inside an
    optimizer is logged and answered with the input unchanged, as is a result that
    came out larger than the input.

    With `convert`, a raster image comes back in that format when the conversion
    can be done as asked and comes out smaller than the input; otherwise (and for
    a PDF) it is optimized in its own format, and the Result's `format` says so.
    """
    limits = limits or Limits()
    fmt = detect_format(data[:1024])
    if fmt is None:
        raise UnsupportedFormat("This file type is not supported.")
    optimizer = optimizer_for(fmt)
    if options.convert not in (None, fmt) and fmt != "pdf":
        converted = _converted(data, fmt, options, limits)
        if converted is not None:
            return converted
        options = replace(options, convert=None)
    try:
        result = optimizer.optimize(data, options, limits)
    except OptimizeError:
        raise
    except Exception:
        log.exception("optimizer for %s failed; keeping the original", fmt)
        return _unchanged(optimizer, data, limits)
    if len(result.data) > len(data):
        return _unchanged(optimizer, data, limits)
    return result


def _converted(
    data: bytes, fmt: str, options: Options, limits: Limits
) -> Result | None:
    """The conversion `options` asks for, if it can be made and is smaller."""
    try:
        result = convert.convert(data, options, limits)
    except OptimizeError:
        raise
    except Exception:
        log.exception("converting %s to %s failed", fmt, options.convert)
        return None
    if result is None or len(result.data) >= len(data):
        return None
    return result


def _unchanged(optimizer: Optimizer, data: bytes, limits: Limits) -> Result:
    """The input as its own optimized copy, with the facts the optimizer reads."""
    facts = optimizer.probe(data, limits)
    return Result(data, facts.format, facts.width, facts.height, facts.pages)
