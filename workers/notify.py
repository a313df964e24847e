"""Callbacks: the finished record POSTed to the client's `callback_url`, signed.

The body is signed with an HMAC-SHA256 under the account's secret. A receiver that
is down or answers 5xx is tried again with exponential back-off; a refused address
or a 4xx answer ends the delivery.
"""

from __future__ import annotations

import json
import logging

from celery import shared_task

from workers import fetching, wire
from workers.tasks import SqueezerTask

log = logging.getLogger("squeezer.worker")

NOTIFY = "squeezer.notify"
CALLBACK_TIMEOUT = 10.0
MAX_ATTEMPTS = 8
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 600.0


@shared_task(name=NOTIFY, base=SqueezerTask, bind=True, max_retries=MAX_ATTEMPTS)
def notify(self: SqueezerTask, image_id: int) -> None:
    """POST the record of a finished image to its callback URL."""
    stores = self.stores
    record = stores.images.get(image_id)
    account = stores.accounts.get(record.account_id) if record else None
    if record is None or account is None or not record.callback_url:
        return
    body = json.dumps(wire.image(record, stores.settings)).encode()
    try:
        fetching.post_callback(
            record.callback_url,
            body,
            account.api_secret,
            timeout=CALLBACK_TIMEOUT,
            allow_hosts=stores.settings.fetch_allow_hosts,
        )
    except fetching.CallbackRejected as error:
        log.warning("callback for image %s refused: %s", image_id, error.message)
    except fetching.CallbackTransient as error:
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self.request.retries)
        raise self.retry(exc=error, countdown=delay) from None
