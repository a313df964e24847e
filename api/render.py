"""The wire shapes of the API: how accounts and their usage become JSON bodies.

The shape of an image record lives in workers.wire, since callbacks send it too.
"""

from __future__ import annotations

import calendar
import time
from datetime import date
from typing import Any

from storage.accounts import Account
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
