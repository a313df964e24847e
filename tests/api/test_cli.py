"""The operator's `squeezer` command, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.accounts import Accounts

SQUEEZER = str(Path(sys.executable).with_name("squeezer"))


def squeezer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUEEZER, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_create_prints_the_account_with_its_secret(redis_server, redis_client):
    env = {"REDIS_URL": redis_server.url}
    done = squeezer(
        "accounts", "create", "--title", "Shop", "--quota", "2GB",
        "--file-max-size", "5MiB", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["title"] == "Shop"
    assert created["monthly_quota"] == 2_000_000_000
    assert created["file_max_size"] == 5 << 20
    assert len(created["api_key"]) == 32
    assert len(created["api_secret"]) == 64, "256 bits of hex"
    stored = Accounts(redis_client).authenticate(
        created["api_key"], created["api_secret"]
    )
    assert stored.id == created["id"]
    assert created["api_secret"] not in done.stderr, "secrets are never logged"

    listed = squeezer("accounts", "list", env=env)
    assert [row["id"] for row in json.loads(listed.stdout)] == [created["id"]]
    assert "api_secret" not in listed.stdout
    shown = squeezer("accounts", "list", "--show-secrets", env=env)
    assert json.loads(shown.stdout)[0]["api_secret"] == created["api_secret"]


def test_default_quota_comes_from_settings(redis_server):
    env = {"REDIS_URL": redis_server.url, "DEFAULT_MONTHLY_QUOTA": "1MiB"}
    created = json.loads(squeezer("accounts", "create", "--title", "T", env=env).stdout)
    assert created["monthly_quota"] == 1 << 20


@pytest.mark.parametrize(
    ("args", "env", "status", "message"),
    [
        (["accounts", "list"], {"REDIS_URL": ""}, 1, "REDIS_URL"),
        (["accounts", "list", "--data-dir", "/nonexistent"], {}, 1, "no `squeezer"),
        (
            ["accounts", "list"],
            {"REDIS_URL": "http://x", "RETENTION_DAYS": "soon"},
            2,
            "RETENTION_DAYS",
        ),
        (["accounts", "create", "--title", "T", "--quota", "-5"], {}, 2, "--quota"),
        (["accounts", "list"], {"REDIS_URL": "redis://127.0.0.1:1/0"}, 1, "Redis"),
    ],
    ids=["no redis", "no serve", "bad settings", "bad quota", "redis down"],
)
def test_operator_mistakes_get_a_clear_message(args, env, status, message):
    done = squeezer(*args, env=env)
    assert done.returncode == status, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
