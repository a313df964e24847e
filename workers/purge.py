"""The purge: files and records past their expiration date are deleted.

Beat schedules it every few minutes. It is idempotent and safe to run twice or at
the same time as itself: objects are deleted before their record, deleting what is
already gone is not an error, and the record goes in one transaction with its
indexes, so a record is never left pointing at nothing, and nothing is left behind
once the record is gone.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task

from storage.stores import Stores
from workers.tasks import SqueezerTask

log = logging.getLogger("squeezer.worker")

PURGE = "squeezer.purge"
BATCH = 500


@shared_task(name=PURGE, base=SqueezerTask, bind=True, ignore_result=True)
def purge(self: SqueezerTask) -> int:
    """Delete every expired image; returns how many records it removed."""
    return purge_expired(self.stores, time.time())


def purge_expired(stores: Stores, now: float) -> int:
    """Delete the files and records of images that expired before `now`."""
    removed = 0
    while ids := stores.images.expired(now, BATCH):
        records = stores.images.many(ids)
        stores.objects.delete_many(
            key
            for record in records
            for key in (record.original_key, record.optimized_key)
        )
        for record in records:
            removed += stores.images.delete(record)
        # Ids whose record is already gone leave only their expiry entry.
        stores.images.drop_expiry(set(ids) - {record.id for record in records})
    if removed:
        log.info("purged %d expired images", removed)
    return removed
