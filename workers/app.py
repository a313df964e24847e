"""The Celery application: broker, serialization and the reliability settings.

Jobs carry ids, never objects, as JSON. A job is acknowledged only once it has run,
so a worker killed in the middle of one leaves it to another worker; each child
process is replaced after a number of jobs to contain leaks in native libraries.
"""

from __future__ import annotations

from celery import Celery

from storage.settings import Settings

TASK_MODULES = ["workers.compress", "workers.purge", "workers.notify"]

# Seconds between two runs of the purge of expired files.
PURGE_EVERY = 300.0


def create_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`, with the tasks of `workers.tasks` registered."""
    if not settings.redis_url:
        raise ValueError("REDIS_URL is required to run a worker or the scheduler")
    app = Celery("squeezer", broker=settings.redis_url, include=TASK_MODULES)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A job cut off by a lost broker connection goes back to the queue.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=200,
        task_soft_time_limit=settings.optimize_time_limit + 30,
        task_time_limit=settings.optimize_time_limit + 60,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.task_visibility_timeout,
            # Sweep for jobs of dead workers a few times per visibility timeout.
            "unacked_restore_interval": max(1, settings.task_visibility_timeout / 4),
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            "purge-expired": {"task": "squeezer.purge", "schedule": PURGE_EVERY},
        },
    )
    app.conf.squeezer_settings = settings
    return app
