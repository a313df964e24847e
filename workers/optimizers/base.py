"""The one interface every format optimizer implements, and the values it trades in.

An optimizer takes the bytes of one file and the caller's options, and gives back the
bytes of the optimized copy with the facts the image record needs. Optimizers import
nothing else of Squeezer's, so they can be tested, benchmarked and fuzzed on bytes
alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

PRESERVABLE_METAS = frozenset(
    {"orientation", "icc", "copyright", "datetime", "location"}
)
CONVERT_TARGETS = frozenset({"webp", "avif"})


@dataclass(frozen=True)
class Options:
    """What the client asked for, already validated by the caller.

    `resize` is a box (width, height) where 0 means no bound on that side; None means
    no resize. `preserve` holds names from PRESERVABLE_METAS; empty means strip all.
    """

    lossless: bool = False
    resize: tuple[int, int] | None = None
    preserve: frozenset[str] = field(default_factory=frozenset)
    convert: str | None = None


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one file may cause, checked before the work they bound."""

    max_pixels: int = 100_000_000
    max_frames: int = 1_000
    max_total_pixels: int = 1_000_000_000
    max_pdf_pages: int = 2_000
    max_decoded_stream_bytes: int = 1 << 30
    time_limit: float = 120.0


@dataclass(frozen=True)
class Result:
    """The optimized copy and the facts about it.

    `format` is the format of `data` (it differs from the input's after `convert`).
    `width` and `height` are those of the optimized image; for a PDF, of its first
    page in points. `pages` is set for PDFs only.
    """

    data: bytes
    format: str
    width: int
    height: int
    pages: int | None = None


class Optimizer(Protocol):
    """One format's optimizer: which formats it takes, and bytes in, bytes out."""

    formats: ClassVar[frozenset[str]]

    def probe(self, data: bytes, limits: Limits) -> Result:
        """Read the facts of `data` without optimizing it (its own bytes as `data`).

        Reads headers only where it can, checks the limits, and raises an
        OptimizeError for input that is over a limit or does not parse.
        """
        ...

    def optimize(self, data: bytes, options: Options, limits: Limits) -> Result:
        """Return the optimized copy of `data`; raise an OptimizeError if it is bad."""
        ...
