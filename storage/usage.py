"""Quota counters and consumption history, per account, per UTC day and month.

Two kinds of counters, both in Redis:
- the quota counter of a month: bytes of originals accepted, reserved atomically
  before work is queued, so concurrent uploads cannot overshoot a quota;
- the usage history: bytes before, bytes after and files, added when a job finishes.
A sub-account's bytes count for itself and for its parent, in both.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import redis

from storage import keys
from storage.accounts import Account

HISTORY_DAYS = 30
HISTORY_MONTHS = 12

# Checks every counter against its limit, then adds to all of them, in one step.
# KEYS: quota counters; ARGV: size, ttl, then one limit per key (0 = unlimited).
# Returns 0, or the 1-based index of the first counter that would go over.
_RESERVE = """
local size = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 2])
  if limit > 0 and (tonumber(redis.call('GET', key) or '0') + size) > limit then
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('INCRBY', key, size)
  redis.call('EXPIRE', key, ARGV[2])
end
return 0
"""


@dataclass(frozen=True)
class Totals:
    """What one day or month counted."""

    size_before: int = 0
    size_after: int = 0
    files: int = 0


def month_of(moment: float) -> str:
    return time.strftime("%Y-%m", time.gmtime(moment))


def day_of(moment: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(moment))


def month_bounds(moment: float) -> tuple[int, int]:
    """The first and the last second (Unix time, UTC) of the month of `moment`."""
    when = time.gmtime(moment)
    start = calendar.timegm((when.tm_year, when.tm_mon, 1, 0, 0, 0))
    days = calendar.monthrange(when.tm_year, when.tm_mon)[1]
    return start, start + days * 86_400 - 1


class Usage:
    """The quota counters and consumption history of one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._reserve = client.register_script(_RESERVE)

    def quota_used(self, account: Account, now: float | None = None) -> int:
        """Bytes counted against the account's quota in the current month."""
        used = self.redis.get(keys.quota(account.id, month_of(_now(now))))
        return int(used or 0)

    def reserve(
        self,
        account: Account,
        parent: Account | None,
        size: int,
        now: float | None = None,
    ) -> Account | None:
        """Count `size` bytes against the account's quota and its parent's.

        Returns None when counted, or the account whose quota it would exceed, in
        which case nothing is counted.
        """
        month = month_of(_now(now))
        owners = [account] + ([parent] if parent else [])
        exceeded = self._reserve(
            keys=[keys.quota(owner.id, month) for owner in owners],
            args=[size, keys.QUOTA_TTL, *(owner.monthly_quota for owner in owners)],
        )
        return owners[int(exceeded) - 1] if exceeded else None

    def release(
        self,
        account: Account,
        parent: Account | None,
        size: int,
        now: float | None = None,
    ) -> None:
        """Give back a reservation for work that never started."""
        month = month_of(_now(now))
        with self.redis.pipeline(transaction=True) as pipe:
            for owner in [account] + ([parent] if parent else []):
                pipe.decrby(keys.quota(owner.id, month), size)
            pipe.execute()

    def reset_quota(self, account: Account, now: float | None = None) -> None:
        """Set the account's quota consumption of the current month to 0."""
        self.redis.delete(keys.quota(account.id, month_of(_now(now))))

    def record(
        self,
        account: Account,
        parent: Account | None,
        totals: Totals,
        now: float | None = None,
    ) -> None:
        """Add a finished file to the day's and month's history of both owners."""
        moment = _now(now)
        day, month = day_of(moment), month_of(moment)
        with self.redis.pipeline(transaction=True) as pipe:
            for owner in [account] + ([parent] if parent else []):
                for key, ttl in (
                    (keys.day_usage(owner.id, day), keys.DAY_USAGE_TTL),
                    (keys.month_usage(owner.id, month), keys.MONTH_USAGE_TTL),
                ):
                    pipe.hincrby(key, "before", totals.size_before)
                    pipe.hincrby(key, "after", totals.size_after)
                    pipe.hincrby(key, "files", totals.files)
                    pipe.expire(key, ttl)
            pipe.execute()

    def last_days(
        self, account: Account, now: float | None = None
    ) -> list[tuple[date, Totals]]:
        """The last HISTORY_DAYS days, oldest first, today included."""
        today = datetime.fromtimestamp(_now(now), UTC).date()
        days = [today - timedelta(days=n) for n in range(HISTORY_DAYS - 1, -1, -1)]
        rows = self._totals(keys.day_usage(account.id, d.isoformat()) for d in days)
        return list(zip(days, rows, strict=True))

    def last_months(
        self, account: Account, now: float | None = None
    ) -> list[tuple[date, Totals]]:
        """The last HISTORY_MONTHS months, oldest first, this month included."""
        current = datetime.fromtimestamp(_now(now), UTC).date().replace(day=1)
        months = []
        for _ in range(HISTORY_MONTHS):
            months.append(current)
            current = (current - timedelta(days=1)).replace(day=1)
        months.reverse()
        rows = self._totals(
            keys.month_usage(account.id, m.strftime("%Y-%m")) for m in months
        )
        return list(zip(months, rows, strict=True))

    def _totals(self, counter_keys: Iterable[str]) -> list[Totals]:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in counter_keys:
                pipe.hgetall(key)
            rows = pipe.execute()
        return [
            Totals(
                int(row.get("before", 0)),
                int(row.get("after", 0)),
                int(row.get("files", 0)),
            )
            for row in rows
        ]


def _now(now: float | None) -> float:
    return time.time() if now is None else now
