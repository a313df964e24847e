"""Accounts to call the API with."""

from __future__ import annotations

import pytest

from storage.accounts import Account, Accounts


@pytest.fixture
def accounts(redis_client) -> Accounts:
    return Accounts(redis_client)


@pytest.fixture
def main(accounts: Accounts) -> Account:
    """A main account, as the operator creates it."""
    return accounts.create(title="Main", monthly_quota=5_000_000)


@pytest.fixture
def other_main(accounts: Accounts) -> Account:
    """A second customer."""
    return accounts.create(title="Other")


@pytest.fixture
def sub(accounts: Accounts, main: Account) -> Account:
    return accounts.create(parent=main, title="Shop", monthly_quota=1_000)
