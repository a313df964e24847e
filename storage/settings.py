"""Every setting of Squeezer, read from the environment into one typed object.

Each field names its environment variable and carries its default beside it. Reading
the environment checks every variable and reports all bad values in one error, so an
operator fixes a deployment in one pass. Tests build `Settings(...)` with explicit
values instead of patching globals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

MiB = 1 << 20
GiB = 1 << 30

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": MiB,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": GiB,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


class SettingsError(ValueError):
    """One or more environment variables are invalid; `problems` lists each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


def parse_size(text: str) -> int:
    """A byte count: `1048576`, `10MB`, `1 GiB` (decimal and binary units)."""
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError("expected a byte count such as 1048576, 10MB or 1GiB")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a number of seconds above 0")
    return value


def _redis_url(text: str) -> str:
    if urlsplit(text).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected redis://, rediss:// or unix:// URL")
    return text


def _http_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return text.rstrip("/")


def _storage_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme == "s3" and not parts.netloc:
        raise ValueError("an s3:// URL needs a bucket: s3://bucket[/prefix]")
    if parts.scheme not in ("s3", "file", ""):
        raise ValueError("expected s3://bucket[/prefix], file:///path or a directory")
    return text


def _host_set(text: str) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in text.split(",") if h.strip())


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return value

    return parse


def _text(text: str) -> str:
    return text


def setting(env: str, default: Any, parse: Callable[[str], Any]) -> Any:
    """A settings field read from the environment variable `env`."""
    return field(default=default, metadata={"env": env, "parse": parse})


@dataclass(frozen=True)
class Settings:
    """The configuration of every Squeezer process (API, worker, scheduler, CLI)."""

    # Where state lives. Unset, `squeezer serve` starts a private Redis and uses disk.
    redis_url: str | None = setting("REDIS_URL", None, _redis_url)
    storage_url: str | None = setting("STORAGE_URL", None, _storage_url)
    storage_endpoint_url: str | None = setting("STORAGE_ENDPOINT_URL", None, _http_url)
    storage_region: str | None = setting("STORAGE_REGION", None, _text)
    public_base_url: str = setting(
        "PUBLIC_BASE_URL", "http://localhost:8080", _http_url
    )

    # Accounts and their limits.
    retention_days: int = setting("RETENTION_DAYS", 30, _positive)
    max_file_size: int = setting("MAX_FILE_SIZE", 100 * MiB, parse_size)
    max_upload_size: int = setting("MAX_UPLOAD_SIZE", GiB, parse_size)
    default_monthly_quota: int = setting("DEFAULT_MONTHLY_QUOTA", 0, parse_size)

    # Limits on the work one file may cause (API.md, "Adding an image").
    max_pixels: int = setting("MAX_PIXELS", 100_000_000, _positive)
    max_frames: int = setting("MAX_FRAMES", 1_000, _positive)
    max_total_pixels: int = setting("MAX_TOTAL_PIXELS", 1_000_000_000, _positive)
    max_pdf_pages: int = setting("MAX_PDF_PAGES", 2_000, _positive)
    max_decoded_stream_bytes: int = setting("MAX_DECODED_STREAM_BYTES", GiB, parse_size)
    optimize_time_limit: float = setting("OPTIMIZE_TIME_LIMIT", 120.0, _seconds)
    # Threads one worker process may give an optimizer; 0 shares the worker's
    # cores evenly among its processes.
    optimizer_threads: int = setting("OPTIMIZER_THREADS", 0, _natural)

    # Fetching a client's `url`, and posting callbacks.
    fetch_connect_timeout: float = setting("FETCH_CONNECT_TIMEOUT", 5.0, _seconds)
    fetch_total_timeout: float = setting("FETCH_TOTAL_TIMEOUT", 30.0, _seconds)
    fetch_allow_hosts: frozenset[str] = setting(
        "FETCH_ALLOW_HOSTS", frozenset(), _host_set
    )

    # Seconds a job may stay unacknowledged before Redis gives it to another
    # worker; it must outlast the longest job, or a slow job would run twice.
    task_visibility_timeout: float = setting(
        "TASK_VISIBILITY_TIMEOUT", 3_600.0, _seconds
    )

    # How long a synchronous upload waits for its optimized copy.
    sync_wait_timeout: float = setting("SYNC_WAIT_TIMEOUT", 120.0, _seconds)

    # Logging: JSON lines in production, readable text in development.
    log_level: str = setting(
        "LOG_LEVEL", "info", _choice("debug", "info", "warning", "error")
    )
    log_format: str = setting("LOG_FORMAT", "json", _choice("json", "text"))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Read every setting from `environ` (default: the process environment).

        Raises SettingsError naming every variable that is malformed. Empty
        variables count as unset. `overrides` replace values after reading.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for spec in fields(cls):
            name = spec.metadata["env"]
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                values[spec.name] = spec.metadata["parse"](raw)
            except ValueError as error:
                problems.append(f"{name}={raw!r}: {_reason(error)}")
        if problems:
            raise SettingsError(problems)
        return replace(cls(**values), **overrides)

    @classmethod
    def variables(cls) -> list[tuple[str, Any]]:
        """Each environment variable with its default, for documentation."""
        return [(spec.metadata["env"], spec.default) for spec in fields(cls)]


def _reason(error: ValueError) -> str:
    text = str(error)
    if text.startswith(("invalid literal", "could not convert")):
        return "expected a number"
    return text
