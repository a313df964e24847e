"""Settings come from the environment, typed, with every bad value reported at once."""

from __future__ import annotations

import pytest

from storage.settings import MiB, Settings, SettingsError, parse_size


def test_defaults_without_environment():
    settings = Settings.from_env({})
    assert settings.redis_url is None
    assert settings.storage_url is None
    assert settings.retention_days == 30
    assert settings.max_file_size == 100 * MiB
    assert settings.default_monthly_quota == 0


def test_values_are_parsed_to_their_types():
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://redis:6379/0",
            "STORAGE_URL": "s3://bucket/prefix",
            "STORAGE_ENDPOINT_URL": "http://minio:9000",
            "PUBLIC_BASE_URL": "https://img.example.com/",
            "RETENTION_DAYS": "7",
            "MAX_FILE_SIZE": "20MiB",
            "DEFAULT_MONTHLY_QUOTA": "1GB",
            "FETCH_ALLOW_HOSTS": "Example.com, cdn.example.com",
            "FETCH_TOTAL_TIMEOUT": "2.5",
            "LOG_FORMAT": "TEXT",
        }
    )
    assert settings.public_base_url == "https://img.example.com"
    assert settings.retention_days == 7
    assert settings.max_file_size == 20 * MiB
    assert settings.default_monthly_quota == 1_000_000_000
    assert settings.fetch_allow_hosts == frozenset({"example.com", "cdn.example.com"})
    assert settings.fetch_total_timeout == 2.5
    assert settings.log_format == "text"


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "REDIS_URL": "http://not-redis",
                "RETENTION_DAYS": "0",
                "MAX_FILE_SIZE": "big",
                "STORAGE_URL": "s3://",
                "LOG_LEVEL": "loud",
                "FETCH_CONNECT_TIMEOUT": "-1",
                "MAX_PIXELS": "many",
            }
        )
    problems = caught.value.problems
    names = sorted(problem.split("=")[0] for problem in problems)
    assert names == sorted(
        [
            "REDIS_URL",
            "RETENTION_DAYS",
            "MAX_FILE_SIZE",
            "STORAGE_URL",
            "LOG_LEVEL",
            "FETCH_CONNECT_TIMEOUT",
            "MAX_PIXELS",
        ]
    )
    assert any("expected a number" in problem for problem in problems)


def test_empty_variables_count_as_unset():
    assert Settings.from_env({"RETENTION_DAYS": " "}).retention_days == 30


def test_overrides_replace_values():
    settings = Settings.from_env({"RETENTION_DAYS": "3"}, retention_days=9)
    assert settings.retention_days == 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1048576", 1 << 20), ("10MB", 10_000_000), ("1 GiB", 1 << 30), ("5k", 5000)],
)
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "-1", "1.5MB", "10 parsecs", "MB"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="byte count"):
        parse_size(text)


def test_every_setting_names_its_variable():
    names = [name for name, _ in Settings.variables()]
    assert len(names) == len(set(names))
    assert {"REDIS_URL", "STORAGE_URL", "PUBLIC_BASE_URL", "RETENTION_DAYS"} <= set(
        names
    )
    assert {"MAX_FILE_SIZE", "DEFAULT_MONTHLY_QUOTA"} <= set(names)
