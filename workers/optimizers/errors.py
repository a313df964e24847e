"""The typed errors an optimizer raises for input it cannot or will not process.

Each carries the HTTP status it stands for and a message fit to show a client; the
layers above turn them into their own errors without knowing the optimizers' details.
"""


class OptimizeError(Exception):
    """The file cannot be optimized; `message` is safe to show to the client."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFormat(OptimizeError):
    """The bytes are not one of the formats Squeezer takes."""

    status = 415


class CorruptFile(OptimizeError):
    """The bytes claim a supported format but do not decode."""


class LimitExceeded(OptimizeError):
    """The file is over one of the configured limits (pixels, frames, pages, ...)."""
