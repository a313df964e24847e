"""The errors that mean "try again later": a backing service that did not answer."""

from __future__ import annotations

from storage.database import UNREACHABLE
from storage.errors import ServiceUnavailable

TRANSIENT: tuple[type[Exception], ...] = (ServiceUnavailable, *UNREACHABLE)
