"""The compression job: detect, check limits, optimize, store, record, signal.

It runs once per image record, by id. A redelivered job (its worker died) starts
over; a job whose record is finished or deleted does nothing. A file that keeps
killing its worker (out of memory, a hard time limit) fails after MAX_ATTEMPTS
starts instead of taking workers down for ever, and a job cut off by the hard time
limit marks its record failed from the worker's main process, since the process
that ran it is gone.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from storage.images import DONE, FAILED, MEDIA_TYPES, PROCESSING, ImageRecord
from storage.settings import Settings
from storage.stores import Stores
from storage.usage import Totals
from workers import metrics
from workers.optimizers import Limits, OptimizeError, Options, optimize
from workers.tasks import SqueezerTask
from workers.transient import TRANSIENT

log = logging.getLogger("squeezer.worker")

COMPRESS = "squeezer.compress"
NOTIFY = "squeezer.notify"
# Starts of one job after which its file is given up on: each start past the
# first means the worker running it died (or was stopped) in the middle.
MAX_ATTEMPTS = 3
TOO_LONG = "Compression took too long."
_GAVE_UP = (
    f"Compression stopped its worker {MAX_ATTEMPTS} times (out of memory or time); "
    "the original is kept."
)


class CompressTask(SqueezerTask):
    """The compression job, with what happens when its process is killed."""

    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Fail the record of a job that ended without finishing it.

        Celery calls this in the worker's main process after the hard time limit
        killed the pool process (every other error is handled in the job).
        """
        stores = self.stores
        record = stores.images.get(args[0] if args else kwargs["image_id"])
        if record is None or record.finished:
            return
        if isinstance(exc, TimeLimitExceeded):
            message, status = TOO_LONG, 400
        else:
            message, status = "Compression failed; the original is kept.", 500
        with suppress(LookupError):  # deleted meanwhile
            finish(stores, _fail(stores, record, message, status))


@shared_task(
    name=COMPRESS,
    base=CompressTask,
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def compress(self: SqueezerTask, image_id: int) -> None:
    """Optimize the original of one image record and store the optimized copy."""
    stores = self.stores
    record = stores.images.get(image_id)
    if record is None or record.finished:
        return
    try:
        if record.attempts >= MAX_ATTEMPTS:
            record = _fail(stores, record, _GAVE_UP, 400)
        else:
            record = stores.images.update(
                record, status=PROCESSING, attempts=record.attempts + 1
            )
            record = _optimize(stores, record)
    except LookupError:
        return  # deleted while it was being worked on
    except SoftTimeLimitExceeded:
        record = _fail(stores, record, TOO_LONG, 400)
    except TRANSIENT:
        if self.request.retries < self.max_retries:
            raise
        record = _fail(stores, record, "Storage was unavailable; try again.", 503)
    except Exception:
        # A bug, not the client's file: the record says so, the original stays.
        log.exception("compressing image %s failed", image_id)
        record = _fail(stores, record, "Compression failed; the original is kept.", 500)
    finish(stores, record)


def finish(stores: Stores, record: ImageRecord) -> None:
    """Count a finished file, wake whoever waits for it, and queue its callback."""
    account = stores.accounts.get(record.account_id)
    if account is not None:
        parent = None
        if record.main_account_id != record.account_id:
            parent = stores.accounts.get(record.main_account_id)
        after = record.size_after if record.status == DONE else record.size_before
        stores.usage.record(account, parent, Totals(record.size_before, after, 1))
    metrics.IMAGES.labels(record.type, record.status).inc()
    if record.status == DONE:
        metrics.BYTES_IN.inc(record.size_before)
        metrics.BYTES_OUT.inc(record.size_after)
    stores.images.publish_finished(record)
    if record.callback_url:
        compress.app.send_task(NOTIFY, args=[record.id])


def _optimize(stores: Stores, record: ImageRecord) -> ImageRecord:
    original = stores.objects.read(record.original_key)
    try:
        result = optimize(original, options_of(record), limits_of(stores.settings))
    except OptimizeError as error:
        return _fail(stores, record, error.message, error.status)
    del original
    stores.objects.write(
        record.optimized_key, result.data, MEDIA_TYPES.get(result.format, "")
    )
    record = stores.images.update(
        record,
        status=DONE,
        optimized_type=result.format,
        size_after=len(result.data),
        width=result.width,
        height=result.height,
        pages=result.pages or 0,
    )
    stores.images.remember_for_reuse(record)
    return record


def _fail(
    stores: Stores, record: ImageRecord, message: str, status: int
) -> ImageRecord:
    log.info("image %s failed: %s", record.id, message)
    return stores.images.update(
        record, status=FAILED, error=message, error_status=status, size_after=0
    )


def options_of(record: ImageRecord) -> Options:
    """The optimizer's options from the options stored with the record."""
    stored = record.options_dict()
    width, height = stored.get("resize_width", 0), stored.get("resize_height", 0)
    return Options(
        lossless=stored.get("compression_type") == "lossless",
        resize=(width, height) if width or height else None,
        preserve=frozenset(stored.get("preserve_metas", ())),
        convert=stored.get("convert") or None,
    )


def limits_of(settings: Settings) -> Limits:
    """The optimizer's limits from the settings."""
    return Limits(
        max_pixels=settings.max_pixels,
        max_frames=settings.max_frames,
        max_total_pixels=settings.max_total_pixels,
        max_pdf_pages=settings.max_pdf_pages,
        max_decoded_stream_bytes=settings.max_decoded_stream_bytes,
        time_limit=settings.optimize_time_limit,
    )
