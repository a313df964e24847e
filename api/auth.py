"""Who is calling: the `auth` parameter or HTTP Basic, checked against Redis.

`auth` is a JSON object `{"key": ..., "secret": ...}` found in the query string, a
form body or a JSON body; HTTP Basic carries the key as user name and the secret as
password. Anything missing or malformed is a 401, like a wrong secret.
"""

from __future__ import annotations

from typing import Any

from flask import g, request

from api import inputs
from api.services import services
from storage.accounts import Account
from storage.errors import Forbidden, Unauthorized


def credentials() -> tuple[str, str]:
    """The (key, secret) the request carries; Unauthorized if none or malformed."""
    value = inputs.raw_value("auth")
    if value is None:
        if request.authorization and request.authorization.type == "basic":
            basic = request.authorization
            return basic.username or "", basic.password or ""
        raise Unauthorized("Missing credentials: send auth or HTTP Basic.")
    return _parse(value)


def current_account() -> Account:
    """The authenticated account of this request (cached for the request)."""
    if "account" not in g:
        key, secret = credentials()
        g.account = services().accounts.authenticate(key, secret)
    return g.account


def main_account() -> Account:
    """The caller, who must be a main account (sub-accounts manage no others)."""
    account = current_account()
    if not account.is_main:
        raise Forbidden("A sub-account cannot manage sub-accounts.")
    return account


def _parse(value: Any) -> tuple[str, str]:
    if isinstance(value, str):
        try:
            value = inputs.decode_json(value)
        except ValueError:
            raise Unauthorized(
                "Malformed auth: expected JSON key and secret."
            ) from None
    if not isinstance(value, dict):
        raise Unauthorized("Malformed auth: expected JSON key and secret.")
    key, secret = value.get("key"), value.get("secret")
    if not isinstance(key, str) or not isinstance(secret, str) or not key:
        raise Unauthorized("Malformed auth: expected JSON key and secret.")
    return key.strip(), secret.strip()
