"""Accepting a file for compression: limits, quota, storage, record, then the job.

The checks come before any work is queued and in the order a client can act on:
type (415), size (413), quota (403). The quota is reserved atomically, and given
back if anything after it fails, so a refused or failed upload counts nothing.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import replace

from api.multipart import Spooled
from api.services import Services
from api.uploads import UploadOptions
from storage.accounts import Account
from storage.errors import FileTooLarge, ObjectNotFound, QuotaExceeded, UnsupportedType
from storage.images import DONE, MEDIA_TYPES, ImageRecord, new_token
from workers.compress import COMPRESS, finish
from workers.optimizers import detect_format


def file_max_size(account: Account, services: Services) -> int:
    """The largest file this account may send."""
    settings = services.settings
    return min(
        account.file_max_size or settings.max_file_size, settings.max_upload_size
    )


def check_quota_left(account: Account, services: Services) -> None:
    """Refuse at once, before reading a body, when a quota is already used up."""
    for owner in _owners(account, services):
        if (
            owner.monthly_quota
            and services.usage.quota_used(owner) >= owner.monthly_quota
        ):
            raise QuotaExceeded()


def submit(
    services: Services,
    account: Account,
    upload: Spooled,
    options: UploadOptions,
    callback_url: str | None = None,
) -> ImageRecord:
    """Store the original, record it and queue its job (or reuse a result)."""
    fmt = detect_format(upload.head)
    if fmt is None:
        raise UnsupportedType()
    if upload.size > file_max_size(account, services):
        raise FileTooLarge()
    owners = _owners(account, services)
    parent = owners[1] if len(owners) > 1 else None
    if services.usage.reserve(account, parent, upload.size) is not None:
        raise QuotaExceeded()
    try:
        record = _new_record(services, account, upload, fmt, options, callback_url)
        services.objects.put(
            record.original_key, upload.file, upload.size, MEDIA_TYPES[fmt]
        )
        reused = _reuse(services, record)
        if reused is not None:
            return reused
        services.images.create(record)
    except BaseException:
        services.usage.release(account, parent, upload.size)
        raise
    services.enqueue(COMPRESS, record.id)
    return record


def _new_record(
    services: Services,
    account: Account,
    upload: Spooled,
    fmt: str,
    options: UploadOptions,
    callback_url: str | None,
) -> ImageRecord:
    now = int(time.time())
    digest = hashlib.sha256(f"{upload.sha256}:{options.to_json()}".encode()).hexdigest()
    name = uuid.uuid4().hex
    return ImageRecord(
        id=services.images.next_id(),
        account_id=account.id,
        main_account_id=account.parent_id or account.id,
        filename=upload.filename,
        type=fmt,
        compression_type=options.compression_type,
        options=options.to_json(),
        digest=digest,
        original_key=f"originals/{name}",
        optimized_key=f"optimized/{name}",
        original_token=new_token(),
        optimized_token=new_token(),
        size_before=upload.size,
        created_at=now,
        expires_at=now + services.settings.retention_days * 86_400,
        callback_url=callback_url or "",
    )


def _reuse(services: Services, record: ImageRecord) -> ImageRecord | None:
    """A finished record of the same customer with the same bytes and options
    gives its optimized copy to this one, which keeps it for its own retention."""
    earlier = services.images.reusable(record.main_account_id, record.digest)
    if earlier is None:
        return None
    try:
        with services.objects.open(earlier.optimized_key) as optimized:
            services.objects.put(
                record.optimized_key,
                optimized,
                earlier.size_after,
                MEDIA_TYPES.get(earlier.optimized_type, ""),
            )
    except ObjectNotFound:
        return None  # purged meanwhile: compress it again
    done = replace(
        record,
        status=DONE,
        optimized_type=earlier.optimized_type,
        size_after=earlier.size_after,
        width=earlier.width,
        height=earlier.height,
        pages=earlier.pages,
    )
    services.images.create(done)
    services.images.remember_for_reuse(done)
    finish(services, done)
    return done


def _owners(account: Account, services: Services) -> list[Account]:
    """The account, and its parent when it is a sub-account."""
    if account.is_main:
        return [account]
    parent = services.accounts.get(account.parent_id)
    return [account, parent] if parent else [account]
