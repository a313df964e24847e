"""Accounts and sub-accounts kept in Redis, with the index from API key to account.

A main account is made by the operator; it makes sub-accounts. Every change that
touches more than one key runs in one MULTI/EXEC transaction, so an account never
exists without its key index or its place in its parent's set.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import redis

from storage import keys
from storage.errors import NotFound, Unauthorized

MAIN = 0  # the parent_id of a main account

_INT_FIELDS = ("id", "parent_id", "monthly_quota", "file_max_size", "created_at")


@dataclass(frozen=True)
class Account:
    """An account record. `monthly_quota` 0 is unlimited; `file_max_size` 0 is the
    service default."""

    id: int
    parent_id: int
    title: str
    description: str
    api_key: str
    api_secret: str
    monthly_quota: int
    file_max_size: int
    created_at: int

    @property
    def is_main(self) -> bool:
        return self.parent_id == MAIN

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks that print the record.
        return (
            f"Account(id={self.id}, parent_id={self.parent_id}, title={self.title!r})"
        )


def new_api_key() -> str:
    """A fresh API key: 128 random bits, hex."""
    return secrets.token_hex(16)


def new_api_secret() -> str:
    """A fresh API secret: 256 random bits, hex."""
    return secrets.token_hex(32)


class Accounts:
    """The account records of one Redis database."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def create(
        self,
        *,
        title: str,
        description: str = "",
        monthly_quota: int = 0,
        file_max_size: int = 0,
        parent: Account | None = None,
    ) -> Account:
        """Create a main account, or a sub-account of `parent`."""
        account = Account(
            id=int(self.redis.incr(keys.account_next_id())),
            parent_id=parent.id if parent else MAIN,
            title=title,
            description=description,
            api_key=new_api_key(),
            api_secret=new_api_secret(),
            monthly_quota=monthly_quota,
            file_max_size=parent.file_max_size if parent else file_max_size,
            created_at=int(time.time()),
        )
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.account(account.id), mapping=_to_hash(account))
            pipe.set(keys.account_by_key(account.api_key), account.id)
            if parent:
                pipe.sadd(keys.sub_accounts(parent.id), account.id)
            else:
                pipe.zadd(keys.main_accounts(), {str(account.id): account.created_at})
            pipe.execute()
        return account

    def get(self, account_id: int) -> Account | None:
        """The account with this id, or None."""
        return _from_hash(self.redis.hgetall(keys.account(account_id)))

    def authenticate(self, api_key: str, api_secret: str) -> Account:
        """The account owning this key, if the secret matches; else Unauthorized."""
        account_id = self.redis.get(keys.account_by_key(api_key)) if api_key else None
        account = self.get(int(account_id)) if account_id else None
        # Compare even when the key is unknown, so timing does not tell keys apart.
        expected = account.api_secret if account else new_api_secret()
        if (
            not hmac.compare_digest(expected.encode(), api_secret.encode())
            or not account
        ):
            raise Unauthorized()
        return account

    def main_accounts(self) -> list[Account]:
        """Every main account, oldest first."""
        ids = self.redis.zrange(keys.main_accounts(), 0, -1)
        return self._many(int(i) for i in ids)

    def sub_accounts(self, parent: Account) -> list[Account]:
        """The sub-accounts of `parent`, by id."""
        ids = sorted(int(i) for i in self.redis.smembers(keys.sub_accounts(parent.id)))
        return self._many(ids)

    def sub_account(self, parent: Account, sub_id: int) -> Account:
        """One sub-account of `parent`; NotFound for any other id."""
        account = None
        if self.redis.sismember(keys.sub_accounts(parent.id), sub_id):
            account = self.get(sub_id)
        if account is None or account.parent_id != parent.id:
            raise NotFound("No sub-account with this id.")
        return account

    def update(self, account: Account, **changes: str | int) -> Account:
        """Change title, description or monthly_quota of an account."""
        changed = replace(account, **changes)
        fields = {name: _to_hash(changed)[name] for name in changes}
        if fields:
            self.redis.hset(keys.account(account.id), mapping=fields)
        return changed

    def reset_secret(self, account: Account) -> Account:
        """Give the account a new secret; the old one stops working at once."""
        return self.update(account, api_secret=new_api_secret())

    def delete(self, account: Account) -> None:
        """Delete an account record with its key index and set membership."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.account(account.id))
            pipe.delete(keys.account_by_key(account.api_key))
            if account.is_main:
                pipe.zrem(keys.main_accounts(), account.id)
            else:
                pipe.srem(keys.sub_accounts(account.parent_id), account.id)
            pipe.execute()

    def _many(self, ids: Iterable[int]) -> list[Account]:
        with self.redis.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.hgetall(keys.account(account_id))
            rows = pipe.execute()
        return [a for a in map(_from_hash, rows) if a is not None]


def _to_hash(account: Account) -> dict[str, str]:
    return {name: str(value) for name, value in asdict(account).items()}


def _from_hash(row: dict[str, str]) -> Account | None:
    if not row:
        return None
    values: dict[str, str | int] = dict(row)
    for name in _INT_FIELDS:
        values[name] = int(row[name])
    return Account(**values)  # type: ignore[arg-type]
