"""A worker shares its cores among its processes, through the thread variables."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from celery.signals import celeryd_after_setup

from storage.settings import Settings
from workers import cores
from workers.app import create_celery


@pytest.mark.parametrize(
    ("configured", "concurrency", "available", "threads"),
    [
        (0, 1, 2, 2),
        (0, 2, 2, 1),
        (0, 3, 8, 2),
        (0, 4, 2, 1),
        (3, 2, 2, 3),
    ],
)
def test_threads_per_process(configured, concurrency, available, threads):
    assert cores.threads_per_process(configured, concurrency, available) == threads


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1)],
)
def test_cgroup_quota_caps_the_affinity(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    wanted = affinity if expected is None else min(affinity, expected)
    assert cores.available_cores(path) == wanted


def test_no_cgroup_means_the_affinity(tmp_path):
    missing = tmp_path / "absent"
    assert cores.available_cores(missing) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("configured", "expected"), [(0, None), (5, "5")])
def test_a_starting_worker_sets_the_thread_variables(monkeypatch, configured, expected):
    for name in cores.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(redis_url="redis://localhost:1/0", optimizer_threads=configured)
    app = create_celery(settings)
    cores.install(app)
    celeryd_after_setup.send(
        sender="worker@test", instance=SimpleNamespace(concurrency=2), conf=app.conf
    )
    share = str(max(1, cores.available_cores() // 2))
    for name in cores.THREAD_VARIABLES:
        assert os.environ[name] == (expected or share)
