"""What a request handler reaches through the app: the stores and the job queue."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import current_app

from storage.stores import Stores


@dataclass
class Services(Stores):
    """The long-lived objects of one API process, built once by the app factory."""

    queue: Celery | None = None

    def enqueue(self, task_name: str, *args: object) -> None:
        """Queue a job by name: the API never imports the task code."""
        assert self.queue is not None, "the app was built without a queue"
        self.queue.send_task(task_name, args=list(args))


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions["squeezer"]
