"""Prometheus metrics of the jobs: how many ran, how they ended, how long they took,
and the bytes that went through the optimizers."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TASK_RUNS = Counter(
    "squeezer_task_runs_total", "Jobs run, by task and outcome", ["task", "outcome"]
)
TASK_SECONDS = Histogram(
    "squeezer_task_seconds",
    "Time one job took, by task",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
IMAGES = Counter(
    "squeezer_images_total",
    "Images finished, by format and status",
    ["format", "status"],
)
BYTES_IN = Counter("squeezer_bytes_before_total", "Bytes of originals optimized")
BYTES_OUT = Counter("squeezer_bytes_after_total", "Bytes of the optimized copies")
