"""The wire shapes of the API: how records become JSON bodies."""

from __future__ import annotations

import calendar
import time
from datetime import date
from typing import Any
from urllib.parse import quote

from storage.accounts import Account
from storage.images import DONE, EXTENSIONS, FAILED, OPTIMIZED, ORIGINAL, ImageRecord
from storage.settings import Settings
from storage.usage import Totals, Usage, month_bounds


def file_max_size(account: Account, settings: Settings) -> int:
    """The account's own limit, or the service default when it has none."""
    return account.file_max_size or settings.max_file_size


def quota(account: Account, usage: Usage, settings: Settings) -> dict[str, Any]:
    """The quota fields shared by /accounts/mine and sub-account objects."""
    start, end = month_bounds(time.time())
    return {
        "quota_start": start,
        "quota_end": end,
        "quota_current": usage.quota_used(account),
        "quota_allowed": account.monthly_quota,
        "file_max_size": file_max_size(account, settings),
    }


def sub_account(account: Account, usage: Usage, settings: Settings) -> dict[str, Any]:
    """A sub-account object, with the size limit under both of its names."""
    fields = quota(account, usage, settings)
    return {
        "id": account.id,
        "title": account.title,
        "description": account.description,
        **fields,
        "quota_file_max_size": fields["file_max_size"],
        "api_key": account.api_key,
        "api_secret": account.api_secret,
    }


def consumption(
    last_days: list[tuple[date, Totals]], last_months: list[tuple[date, Totals]]
) -> dict[str, Any]:
    """Both shapes of the usage history that versions of the document describe."""
    return {
        "consumption": {
            "last_days": [
                {
                    "date": {"year": d.year, "month": d.month, "day": d.day},
                    **_totals(totals),
                }
                for d, totals in last_days
            ],
            "last_months": [
                {"date": {"year": m.year, "month": m.month}, **_totals(totals)}
                for m, totals in last_months
            ],
        },
        "consumptions": [
            {"date": calendar.timegm(d.timetuple()), "consumption": totals.size_before}
            for d, totals in last_days
        ],
    }


def _totals(totals: Totals) -> dict[str, int]:
    return {
        "total_size_before": totals.size_before,
        "total_size_after": totals.size_after,
        "files_count": totals.files,
    }


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
