"""The base class of every Squeezer task: log context and timing in one place."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task

log = logging.getLogger("squeezer.worker")


class SqueezerTask(Task):
    """Logs each run with its task id and the image id it works on, and how long
    it took, so every line of a job can be found by either id."""

    abstract = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        context = {"task_id": self.request.id, "image_id": _image_id(args, kwargs)}
        started = time.perf_counter()
        try:
            result = super().__call__(*args, **kwargs)
        except Exception:
            log.exception("%s failed", self.name, extra=context)
            raise
        log.info(
            "%s done",
            self.name,
            extra=context
            | {"duration_ms": round((time.perf_counter() - started) * 1000, 1)},
        )
        return result


def _image_id(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if "image_id" in kwargs:
        return kwargs["image_id"]
    return args[0] if args else None
