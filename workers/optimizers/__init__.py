"""Format optimizers: bytes and options in, bytes and facts out.

`optimize` is the one entry point: it detects the format from the bytes, picks the
optimizer from the registry, and guarantees the result is never larger than the input.
"""

from workers.optimizers.base import Limits, Optimizer, Options, Result
from workers.optimizers.detect import FORMATS, detect_format
from workers.optimizers.errors import (
    CorruptFile,
    LimitExceeded,
    OptimizeError,
    UnsupportedFormat,
)
from workers.optimizers.registry import optimize, optimizer_for

__all__ = [
    "FORMATS",
    "CorruptFile",
    "LimitExceeded",
    "Limits",
    "OptimizeError",
    "Optimizer",
    "Options",
    "Result",
    "UnsupportedFormat",
    "detect_format",
    "optimize",
    "optimizer_for",
]
