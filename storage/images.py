"""Image records in Redis, with the indexes that find them: by account, by expiry,
by download token, and by content for reuse.

A record is created with all of its indexes in one transaction and deleted the same
way, so no index ever points at a record that is half there.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import redis

from storage import keys

QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"
MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "pdf": "application/pdf",
}
EXTENSIONS = {
    "jpeg": "jpg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "avif": "avif",
    "pdf": "pdf",
}
STATUSES = (QUEUED, PROCESSING, DONE, FAILED)
ORIGINAL, OPTIMIZED = "original", "optimized"

_INT_FIELDS = (
    "id",
    "account_id",
    "main_account_id",
    "size_before",
    "size_after",
    "width",
    "height",
    "pages",
    "created_at",
    "expires_at",
    "error_status",
    "attempts",
)


@dataclass(frozen=True)
class ImageRecord:
    """One uploaded file and what became of it.

    `type` is the detected format of the original; `optimized_type` that of the
    optimized copy (different after `convert`). `options` holds the parsed options
    as JSON, as the worker needs them.
    """

    id: int
    account_id: int
    main_account_id: int
    filename: str
    type: str
    compression_type: str
    options: str
    digest: str
    original_key: str
    optimized_key: str
    original_token: str
    optimized_token: str
    size_before: int
    created_at: int
    expires_at: int
    status: str = QUEUED
    optimized_type: str = ""
    size_after: int = 0
    width: int = 0
    height: int = 0
    pages: int = 0
    error: str = ""
    error_status: int = 0
    callback_url: str = ""
    attempts: int = 0

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    def options_dict(self) -> dict[str, Any]:
        return json.loads(self.options)


def new_token() -> str:
    """A download token: 128 random bits, hex."""
    return secrets.token_hex(16)


class Images:
    """The image records of one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def next_id(self) -> int:
        return int(self.redis.incr(keys.image_next_id()))

    def create(self, record: ImageRecord) -> ImageRecord:
        """Save a new record with its account, expiry and token indexes."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.image(record.id), mapping=_to_hash(record))
            pipe.zadd(keys.account_images(record.account_id), {record.id: record.id})
            pipe.zadd(keys.image_expiry(), {record.id: record.expires_at})
            pipe.set(keys.download_token(record.original_token), record.id)
            pipe.set(keys.download_token(record.optimized_token), record.id)
            pipe.execute()
        return record

    def get(self, image_id: int) -> ImageRecord | None:
        return _from_hash(self.redis.hgetall(keys.image(image_id)))

    def of_account(self, account_id: int, image_id: int) -> ImageRecord | None:
        """The record if it belongs to this account, else None."""
        record = self.get(image_id)
        return record if record and record.account_id == account_id else None

    def by_token(self, token: str) -> tuple[ImageRecord, str] | None:
        """The record a download token opens, and which file it opens."""
        image_id = self.redis.get(keys.download_token(token))
        record = self.get(int(image_id)) if image_id else None
        if record is None or record.expires_at <= time.time():
            return None
        if secrets.compare_digest(token, record.original_token):
            return record, ORIGINAL
        return record, OPTIMIZED

    def update(self, record: ImageRecord, **changes: Any) -> ImageRecord:
        """Change fields of a record that still exists; None if it was deleted."""
        changed = replace(record, **changes)
        values = {name: _to_hash(changed)[name] for name in changes}
        # Only if the record is still there: a deleted image must not come back.
        script = self.redis.register_script(_UPDATE_IF_EXISTS)
        if not script(keys=[keys.image(record.id)], args=_flatten(values)):
            raise LookupError(f"image {record.id} was deleted")
        return changed

    def count(self, account_id: int) -> int:
        return int(self.redis.zcard(keys.account_images(account_id)))

    def page(self, account_id: int, offset: int, limit: int) -> list[ImageRecord]:
        """An account's records, newest first."""
        ids = self.redis.zrevrange(
            keys.account_images(account_id), offset, offset + limit - 1
        )
        return self.many(int(i) for i in ids)

    def all_ids(self, account_id: int) -> list[int]:
        return [
            int(i) for i in self.redis.zrange(keys.account_images(account_id), 0, -1)
        ]

    def many(self, ids: Iterable[int]) -> list[ImageRecord]:
        with self.redis.pipeline(transaction=False) as pipe:
            for image_id in ids:
                pipe.hgetall(keys.image(image_id))
            rows = pipe.execute()
        return [r for r in map(_from_hash, rows) if r is not None]

    def delete(self, record: ImageRecord) -> bool:
        """Remove a record and its indexes; False if it was already gone."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.image(record.id))
            pipe.zrem(keys.account_images(record.account_id), record.id)
            pipe.zrem(keys.image_expiry(), record.id)
            pipe.delete(keys.download_token(record.original_token))
            pipe.delete(keys.download_token(record.optimized_token))
            removed = pipe.execute()[0]
        self.forget_reuse(record)
        return bool(removed)

    def expired(self, now: float, limit: int) -> list[int]:
        """Ids of records whose expiration time has passed, oldest first."""
        ids = self.redis.zrangebyscore(keys.image_expiry(), "-inf", now, 0, limit)
        return [int(i) for i in ids]

    def drop_expiry(self, image_ids: Iterable[int]) -> None:
        """Forget expiry entries whose records no longer exist."""
        ids = list(image_ids)
        if ids:
            self.redis.zrem(keys.image_expiry(), *ids)

    def reusable(self, main_account_id: int, digest: str) -> ImageRecord | None:
        """A finished record of this customer with the same content and options."""
        image_id = self.redis.get(keys.reuse(main_account_id, digest))
        record = self.get(int(image_id)) if image_id else None
        if record is None or record.status != DONE or record.digest != digest:
            return None
        return record

    def remember_for_reuse(self, record: ImageRecord) -> None:
        """Let later uploads of the same content and options reuse this result."""
        ttl = max(1, record.expires_at - int(time.time()))
        self.redis.set(
            keys.reuse(record.main_account_id, record.digest), record.id, ex=ttl
        )

    def forget_reuse(self, record: ImageRecord) -> None:
        """Stop offering this record for reuse, if it is the one offered."""
        key = keys.reuse(record.main_account_id, record.digest)
        self.redis.register_script(_DELETE_IF_EQUAL)(keys=[key], args=[record.id])

    def publish_finished(self, record: ImageRecord) -> None:
        """Tell whoever waits on this image that its job has finished."""
        self.redis.publish(keys.image_done(record.id), record.status)


_UPDATE_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _flatten(values: dict[str, str]) -> list[str]:
    return [item for pair in values.items() for item in pair]


def _to_hash(record: ImageRecord) -> dict[str, str]:
    return {name: str(value) for name, value in asdict(record).items()}


def _from_hash(row: dict[str, str]) -> ImageRecord | None:
    if not row:
        return None
    values: dict[str, Any] = dict(row)
    for name in _INT_FIELDS:
        values[name] = int(row.get(name, 0))
    return ImageRecord(**values)
