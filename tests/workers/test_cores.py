"""A worker shares its cores among its processes, through the thread variables."""

from __future__ import annotations

import os
from types import SimpleNamespace

import cv2
import pytest
import threadpoolctl
from celery.signals import celeryd_after_setup, worker_process_init

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


@pytest.mark.parametrize(("configured", "expected"), [(0, None), (5, 5)])
def test_each_pool_process_takes_the_share_of_its_worker(
    monkeypatch, configured, expected
):
    monkeypatch.delenv(cores.SHARE, raising=False)
    for variable in (cores.RAYON_THREADS, *cores.BLAS_THREADS):
        monkeypatch.delenv(variable, raising=False)
    before = cv2.getNumThreads()
    settings = Settings(redis_url="redis://localhost:1/0", optimizer_threads=configured)
    app = create_celery(settings)
    cores.install(app)
    try:
        celeryd_after_setup.send(
            sender="worker@test", instance=SimpleNamespace(concurrency=2), conf=app.conf
        )
        assert cores.RAYON_THREADS not in os.environ, "only pool processes take it"
        worker_process_init.send(sender=None)
        share = expected or max(1, cores.available_cores() // 2)
        assert os.environ[cores.RAYON_THREADS] == str(share)
        assert cv2.getNumThreads() == share
        blas = threadpoolctl.threadpool_info()
        assert blas, "numpy and OpenCV bring OpenBLAS"
        assert {pool["num_threads"] for pool in blas} == {share}
    finally:
        cv2.setNumThreads(before)
        threadpoolctl.threadpool_limits(os.cpu_count())
