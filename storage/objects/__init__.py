"""Object storage for originals and optimized copies, on S3 or on local disk.

`open_store(url)` picks the implementation from the URL, so every process of a
deployment reaches the same objects from the one STORAGE_URL setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from storage.objects.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectNotFound,
    ObjectStore,
    SizeMismatch,
    StorageUnavailable,
    check_key,
)
from storage.objects.local import LocalStore
from storage.objects.s3 import S3Store

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "LocalStore",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "SizeMismatch",
    "StorageUnavailable",
    "check_key",
    "open_store",
]


def open_store(url: str, **options: Any) -> ObjectStore:
    """The store `url` names: `s3://bucket[/prefix]` an S3Store, given `options`
    such as endpoint_url, region or part_size; `file:///path` or a plain path a
    LocalStore. Options left as None are ignored; others with a local URL are an
    error, since they would be silently lost."""
    options = {name: value for name, value in options.items() if value is not None}
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"an s3:// URL needs a bucket: {url!r}")
        return S3Store(parts.netloc, unquote(parts.path), **options)
    if options:
        raise ValueError(
            f"{', '.join(sorted(options))} only apply to s3:// stores, not {url!r}"
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"a file:// URL must name a local path: {url!r}")
        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme == "" and url:
        return LocalStore(Path(url))
    raise ValueError(f"expected s3://bucket[/prefix], file:///path or a path: {url!r}")
