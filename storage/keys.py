"""The layout of every Redis key Squeezer uses; no other module spells a key.

| key | type | holds |
| --- | --- | --- |
| sq:account:next_id | string | the last account id handed out |
| sq:account:{id} | hash | an account or sub-account record |
| sq:account:by_key:{api_key} | string | the account id of an API key |
| sq:accounts:main | sorted set | main account ids, by creation time |
| sq:account:{id}:subs | set | a main account's sub-account ids |
| sq:quota:{id}:{yyyy-mm} | string | bytes counted against the quota |
| sq:usage:{id}:day:{yyyy-mm-dd} | hash | before, after, files of one day |
| sq:usage:{id}:month:{yyyy-mm} | hash | before, after, files of one month |
| sq:image:next_id | string | the last image id handed out |
| sq:image:{id} | hash | an image record |
| sq:account:{id}:images | sorted set | an account's image ids, by time |
| sq:images:expiry | sorted set | image ids, by expiration time |
| sq:token:{token} | string | the image id of a download token |
| sq:reuse:{main id}:{digest} | string | an image id whose result is reused |
| sq:image:{id}:done | channel | published when a job finishes |
| sq:serve:demo_account | string | the demo account of `serve` |
| sq:lock:{name} | string | a short-lived lock (the purge) |

Quota and usage counters carry expiries (they only count); account and image records
do not: an image record goes when the purge removes it.
"""

from __future__ import annotations

PREFIX = "sq"

# How long counters outlive the period they count, in seconds.
QUOTA_TTL = 70 * 86_400
DAY_USAGE_TTL = 400 * 86_400
MONTH_USAGE_TTL = 800 * 86_400


def account_next_id() -> str:
    return f"{PREFIX}:account:next_id"


def account(account_id: int) -> str:
    return f"{PREFIX}:account:{account_id}"


def account_by_key(api_key: str) -> str:
    return f"{PREFIX}:account:by_key:{api_key}"


def main_accounts() -> str:
    return f"{PREFIX}:accounts:main"


def sub_accounts(parent_id: int) -> str:
    return f"{PREFIX}:account:{parent_id}:subs"


def quota(account_id: int, month: str) -> str:
    return f"{PREFIX}:quota:{account_id}:{month}"


def day_usage(account_id: int, day: str) -> str:
    return f"{PREFIX}:usage:{account_id}:day:{day}"


def month_usage(account_id: int, month: str) -> str:
    return f"{PREFIX}:usage:{account_id}:month:{month}"


def image_next_id() -> str:
    return f"{PREFIX}:image:next_id"


def image(image_id: int) -> str:
    return f"{PREFIX}:image:{image_id}"


def account_images(account_id: int) -> str:
    return f"{PREFIX}:account:{account_id}:images"


def image_expiry() -> str:
    return f"{PREFIX}:images:expiry"


def download_token(token: str) -> str:
    return f"{PREFIX}:token:{token}"


def reuse(main_account_id: int, digest: str) -> str:
    return f"{PREFIX}:reuse:{main_account_id}:{digest}"


def image_done(image_id: int) -> str:
    return f"{PREFIX}:image:{image_id}:done"


def demo_account() -> str:
    return f"{PREFIX}:serve:demo_account"


def lock(name: str) -> str:
    return f"{PREFIX}:lock:{name}"
