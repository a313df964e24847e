"""Waiting for a job to finish, for synchronous uploads and pending downloads."""

from __future__ import annotations

import time

from storage import keys
from storage.images import ImageRecord
from storage.stores import Stores


def wait_finished(stores: Stores, image_id: int, timeout: float) -> ImageRecord | None:
    """The record once its job has finished, or as it is when `timeout` runs out;
    None if it was deleted.

    The worker saves the record before it publishes, and this reads the record
    after subscribing, so a job that finishes at any moment is never missed.
    """
    deadline = time.monotonic() + timeout
    with stores.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(keys.image_done(image_id))
        while True:
            record = stores.images.get(image_id)
            remaining = deadline - time.monotonic()
            if record is None or record.finished or remaining <= 0:
                return record
            pubsub.get_message(timeout=min(remaining, 1.0))
