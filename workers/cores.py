"""The CPU cores of a worker, shared among its pool processes.

oxipng (through rayon), OpenCV (the metric's filters) and the OpenBLAS builds
inside numpy and OpenCV (the metric's colour matrices) start a thread per core they
see, and OpenBLAS's threads spin while they wait for work. In a worker of N
processes each would start one per core of the machine, N times over: processes
fight for cores, and a second process adds little. So the worker gives each process
its share of the cores it may use (its CPU affinity, and the quota of its cgroup,
which is what a Kubernetes CPU limit sets), or the number OPTIMIZER_THREADS asks
for. Each pool process applies it after the fork, before its first job starts any
thread.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import threadpoolctl
from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_init

# rayon reads it when it first starts its threads.
RAYON_THREADS = "RAYON_NUM_THREADS"
# OpenBLAS and OpenMP read them when they load: children of a pool process.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
# How the worker's main process hands the share to its pool processes.
SHARE = "SQUEEZER_OPTIMIZER_THREADS"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its affinity, capped by its cgroup quota."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()
        cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota ("max"), or not in a cgroup at all
    return cores


def threads_per_process(configured: int, concurrency: int, cores: int) -> int:
    """Threads one pool process may run: `configured`, or its share of `cores`."""
    if configured > 0:
        return configured
    return max(1, cores // max(1, concurrency))


def limit_threads(threads: int) -> None:
    """Let the optimizers of this process run at most `threads` threads each."""
    os.environ[RAYON_THREADS] = str(threads)
    for variable in BLAS_THREADS:  # for the child processes this one starts
        os.environ[variable] = str(threads)
    cv2.setNumThreads(threads)
    threadpoolctl.threadpool_limits(threads)


def install(app: Celery) -> None:
    """Share the worker's cores among its processes when a worker of `app` starts.

    Installing again replaces the handlers: one worker runs one app.
    """

    def share_cores(sender: Any, instance: Any, **_: Any) -> None:
        settings = app.conf.squeezer_settings
        threads = threads_per_process(
            settings.optimizer_threads, instance.concurrency, available_cores()
        )
        os.environ[SHARE] = str(threads)

    def take_share(**_: Any) -> None:
        if SHARE in os.environ:
            limit_threads(int(os.environ[SHARE]))

    for signal, handler in (
        (celeryd_after_setup, share_cores),
        (worker_process_init, take_share),
    ):
        signal.disconnect(dispatch_uid=__name__)
        signal.connect(handler, weak=False, dispatch_uid=__name__)
