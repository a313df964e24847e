"""The connection to Redis, where accounts, image records and counters live."""

from __future__ import annotations

import redis

from storage.errors import ServiceUnavailable

# Errors that mean Redis cannot be reached right now, as opposed to a bad command.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


def connect(url: str) -> redis.Redis:
    """A client for `url` that decodes replies to str and fails fast when Redis is
    down, so a request answers 503 instead of hanging."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=3,
        socket_timeout=10,
        health_check_interval=30,
        retry_on_timeout=True,
    )


def check(client: redis.Redis) -> None:
    """Raise ServiceUnavailable unless Redis answers."""
    try:
        client.ping()
    except UNREACHABLE as error:
        raise ServiceUnavailable(detail=f"redis: {error}") from error
