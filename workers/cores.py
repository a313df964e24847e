"""The CPU cores of a worker, shared among its pool processes.

oxipng (through rayon) and libimagequant (through OpenMP) start a thread per core
they see. In a worker of N processes each would start one per core of the machine,
N times over: processes fight for cores, and a second process adds little. So the
worker gives each process its share of the cores it may use (its CPU affinity, and
the quota of its cgroup, which is what a Kubernetes CPU limit sets), or the number
OPTIMIZER_THREADS asks for, through the variables those libraries read when they
first start their threads: after the fork, in each process.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup

# The variables the native libraries read for the size of their thread pools.
THREAD_VARIABLES = ("RAYON_NUM_THREADS", "OMP_NUM_THREADS")
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


def install(app: Celery) -> None:
    """Share the worker's cores among its processes when a worker of `app` starts.

    Installing again replaces the handler: one worker runs one app.
    """

    def share_cores(sender: Any, instance: Any, **_: Any) -> None:
        settings = app.conf.squeezer_settings
        threads = threads_per_process(
            settings.optimizer_threads, instance.concurrency, available_cores()
        )
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)

    celeryd_after_setup.disconnect(dispatch_uid=__name__)
    celeryd_after_setup.connect(share_cores, weak=False, dispatch_uid=__name__)
