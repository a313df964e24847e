"""One beat scheduler at a time: a lock in Redis that a beat process holds.

A second beat (a rolling update, a replica too many) waits as a standby until the
lock is free, so scheduled jobs are never sent twice. The holder renews the lock
while it runs and gives it up when it stops; a holder that dies loses it when its
time runs out.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import signal
import threading
import time

import redis
from celery import Celery
from celery.signals import beat_init

from storage import database, keys

log = logging.getLogger("squeezer.beat")

LOCK_TTL = 30
RENEW_EVERY = 10.0
RETRY_EVERY = 2.0

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SchedulerLock:
    """The lock that makes one beat process the scheduler."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.token = secrets.token_hex(8)
        self.key = keys.lock("beat")
        self._stop = threading.Event()

    def acquire(self) -> None:
        """Block until this process holds the lock, then keep it renewed."""
        waiting = False
        while not self.redis.set(self.key, self.token, nx=True, ex=LOCK_TTL):
            if not waiting:
                log.warning("another beat holds the scheduler lock; standing by")
                waiting = True
            time.sleep(RETRY_EVERY)
        log.info("holding the scheduler lock")
        threading.Thread(target=self._renew, name="beat-lock", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        self.redis.eval(_RELEASE, 1, self.key, self.token)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY):
            try:
                if not self.redis.eval(_RENEW, 1, self.key, self.token, LOCK_TTL):
                    log.error("lost the scheduler lock; stopping")
                    _exit_now()
            except database.UNREACHABLE:
                log.warning("cannot renew the scheduler lock: Redis unreachable")


def _exit_now() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def install(app: Celery) -> None:
    """Make every beat process of `app` take the scheduler lock before it runs."""

    @beat_init.connect(weak=False)
    def take_lock(sender: object, **_: object) -> None:
        settings = app.conf.squeezer_settings
        lock = SchedulerLock(database.connect(settings.redis_url))
        lock.acquire()
        atexit.register(lock.release)
