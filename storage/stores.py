"""Everything a process keeps state in, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from storage import database
from storage.accounts import Accounts
from storage.images import Images
from storage.objects import ObjectStore, open_store
from storage.settings import Settings
from storage.usage import Usage


@dataclass
class Stores:
    """Redis records and counters, and the object store, of one deployment."""

    settings: Settings
    redis: redis.Redis
    accounts: Accounts
    usage: Usage
    images: Images
    objects: ObjectStore

    @classmethod
    def build(
        cls,
        settings: Settings,
        client: redis.Redis | None = None,
        objects: ObjectStore | None = None,
    ) -> Stores:
        """Connect to what `settings` names; `client` and `objects` override."""
        if client is None:
            if not settings.redis_url:
                raise ValueError("REDIS_URL is required")
            client = database.connect(settings.redis_url)
        if objects is None:
            objects = open_object_store(settings)
        return cls(
            settings,
            client,
            Accounts(client),
            Usage(client),
            Images(client),
            objects,
        )


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store STORAGE_URL names."""
    if not settings.storage_url:
        raise ValueError("STORAGE_URL is required")
    if settings.storage_url.startswith("s3://"):
        return open_store(
            settings.storage_url,
            endpoint_url=settings.storage_endpoint_url,
            region=settings.storage_region,
        )
    return open_store(settings.storage_url)
