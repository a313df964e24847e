"""What a request handler reaches through the app: settings, Redis and the stores."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from storage.accounts import Accounts
from storage.settings import Settings
from storage.usage import Usage


@dataclass
class Services:
    """The long-lived objects of one API process, built once by the app factory."""

    settings: Settings
    redis: redis.Redis
    accounts: Accounts
    usage: Usage

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis) -> Services:
        return cls(settings, client, Accounts(client), Usage(client))


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions["squeezer"]
