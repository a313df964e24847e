"""The JSON shape of an image record, shared by the API's answers and callbacks."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from storage.images import DONE, EXTENSIONS, FAILED, OPTIMIZED, ORIGINAL, ImageRecord
from storage.settings import Settings


def image(record: ImageRecord, settings: Settings) -> dict[str, Any]:
    """An image record as the API shows it, with absolute download links."""
    done = record.status == DONE
    body: dict[str, Any] = {
        "id": record.id,
        "filename": record.filename,
        "width": record.width,
        "height": record.height,
        "size_before": record.size_before,
        "size_after": record.size_after if done else 0,
        "saved": saved(record) if done else 0.0,
        "time": _datetime(record.created_at),
        "origin_url": download_url(record, ORIGINAL, settings),
        "optimized_url": download_url(record, OPTIMIZED, settings),
        "expiration_date": _datetime(record.expires_at),
        "status": record.status,
        "type": record.type,
        "compression_type": record.compression_type,
    }
    if record.status == FAILED:
        body["error"] = record.error
    return body


def saved(record: ImageRecord) -> float:
    """The fraction saved, from 0 to 1."""
    if not record.size_before:
        return 0.0
    return round(max(0.0, 1 - record.size_after / record.size_before), 4)


def download_name(record: ImageRecord, which: str) -> str:
    """The file name of a download: the optimized one takes its new extension."""
    if which == ORIGINAL or record.optimized_type in ("", record.type):
        return record.filename
    stem = (
        record.filename.rsplit(".", 1)[0] if "." in record.filename else record.filename
    )
    return f"{stem}.{EXTENSIONS[record.optimized_type]}"


def download_url(record: ImageRecord, which: str, settings: Settings) -> str:
    token = record.original_token if which == ORIGINAL else record.optimized_token
    name = quote(download_name(record, which), safe="")
    return f"{settings.public_base_url}/v1/images/{which}/{token}/{name}"


def _datetime(moment: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
