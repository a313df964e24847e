"""The base class of every Squeezer task: log context, metrics and the stores."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Retry

from storage.stores import Stores
from workers import metrics

log = logging.getLogger("squeezer.worker")

_stores: dict[int, Stores] = {}


class SqueezerTask(Task):
    """Logs each run with its task id and the image id it works on, and how long
    it took, so every line of a job can be found by either id. `stores` connects
    once per worker process, after the fork."""

    abstract = True

    @property
    def stores(self) -> Stores:
        key = id(self.app)
        if key not in _stores:
            _stores[key] = Stores.build(self.app.conf.squeezer_settings)
        return _stores[key]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        context = {"task_id": self.request.id, "image_id": _image_id(args, kwargs)}
        started = time.perf_counter()
        try:
            result = super().__call__(*args, **kwargs)
        except Exception as error:
            outcome = "retry" if isinstance(error, Retry) else "error"
            metrics.TASK_RUNS.labels(self.name, outcome).inc()
            log.warning("%s raised", self.name, exc_info=True, extra=context)
            raise
        finally:
            metrics.TASK_SECONDS.labels(self.name).observe(
                time.perf_counter() - started
            )
        metrics.TASK_RUNS.labels(self.name, "ok").inc()
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        log.info("%s done", self.name, extra=context | {"duration_ms": elapsed})
        return result


def _image_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if "image_id" in kwargs:
        return kwargs["image_id"]
    return args[0] if args else None
