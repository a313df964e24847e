"""What the service adds to the optimizers: overhead per file and throughput.

    python -m tests.benchmarks.api [--formats jpeg,png] [--clients 4] [--limit N]

In one run over ../shared/corpus it times the optimizers alone, in this process,
on every file; then starts the service as production runs it (a redis-server,
gunicorn, a Celery worker with 1 and then 2 processes, files on local disk) and
uploads the same files through HTTP. It prints the total and median time of the
optimizers beside the service's, and the throughput of each worker count.

Every optimizer runs one thread here and in each worker process, as in a pod given
one CPU, so that the times compare and the scaling is that of adding processes;
a last run shows one process free to thread over every core, for comparison.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from storage.accounts import Accounts
from storage.database import connect
from storage.embedded_redis import EmbeddedRedis, free_port
from tests.e2e.client import Client
from tests.e2e.conftest import Process, Worker
from workers.cores import limit_threads
from workers.optimizers import Options, optimize

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "bench-results"


def corpus_files(formats: set[str] | None, limit: int | None) -> list[Path]:
    files = sorted(p for p in (CORPUS / "images").rglob("*") if p.is_file())
    files += sorted((CORPUS / "pdf").glob("*.pdf"))
    if formats:
        files = [p for p in files if _format(p) in formats]
    return files[:limit] if limit else files


def _format(path: Path) -> str:
    folder = path.parent.name
    return {"kodak": "png", "pdf": "pdf"}.get(folder, folder)


def time_optimizers(files: list[Path]) -> dict[Path, float]:
    """Seconds the optimizer alone takes on each file, in this process, once the
    first file of each format has loaded what its optimizer needs (as the
    service's worker has by the time it is measured)."""
    for path in {_format(p): p for p in reversed(files)}.values():
        optimize(path.read_bytes(), Options())
    seconds = {}
    for path in files:
        data = path.read_bytes()
        started = time.perf_counter()
        optimize(data, Options())
        seconds[path] = time.perf_counter() - started
    return seconds


def optimizers_in_parallel(files: list[Path], processes: int) -> float:
    """Files per second the optimizers alone reach in `processes` processes of one
    thread each, taking the files in the same order as the uploads: how far the
    machine itself lets the service scale, tail of the batch included."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=limit_threads, initargs=(1,)) as pool:
        pool.map(_optimize_file, files[:processes], chunksize=1)  # warm imports
        started = time.perf_counter()
        for _ in pool.imap_unordered(_optimize_file, files, chunksize=1):
            pass
        return len(files) / (time.perf_counter() - started)


def _optimize_file(path: Path) -> None:
    optimize(path.read_bytes(), Options())


class Service:
    """Redis, gunicorn and one Celery worker of `processes` processes, whose
    optimizers run `threads` threads each (0: the worker's share of the cores)."""

    def __init__(self, work: Path, processes: int, threads: int = 1) -> None:
        self.redis = EmbeddedRedis(work / "redis")
        self.port = free_port()
        self.work, self.processes, self.threads = work, processes, threads

    def __enter__(self) -> Service:
        self.redis.start()
        env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "STORAGE_URL": str(self.work / "objects"),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "LOG_LEVEL": "warning",
            "SYNC_WAIT_TIMEOUT": "600",
            "OPTIMIZER_THREADS": str(self.threads),
        }
        self.api = Process(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
             "--workers", "2", "--threads", "8", "--worker-class", "gthread",
             "api.wsgi:app"],
            env, self.work / "api.log",
        )  # fmt: skip
        self.worker = Worker(env, self.work / "worker.log", f"bench{self.processes}")
        self.worker.command[self.worker.command.index("--concurrency") + 1] = str(
            self.processes
        )
        self.api.start()
        self.worker.start()
        _wait_http(f"http://127.0.0.1:{self.port}/healthz")
        self.fresh_account()
        return self

    def fresh_account(self) -> None:
        """Upload as a new customer from now on: no result of an earlier upload
        can be reused, so every file is really compressed."""
        account = Accounts(connect(self.redis.url)).create(title="bench")
        self.client = Client(
            f"http://127.0.0.1:{self.port}", account.api_key, account.api_secret
        )

    def __exit__(self, *exc: object) -> None:
        self.api.stop()
        self.worker.stop()
        self.redis.stop()

    def upload(self, path: Path) -> float:
        started = time.perf_counter()
        answer = self.client.upload(path.read_bytes(), path.name)
        elapsed = time.perf_counter() - started
        if answer.status != 201:
            raise RuntimeError(f"{path.name}: {answer.status} {answer.body[:200]!r}")
        return elapsed


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run(files: list[Path], clients: int) -> dict[str, object]:
    alone = time_optimizers(files)
    report: dict[str, object] = {
        "files": len(files),
        "optimizers_2_processes": optimizers_in_parallel(files, 2),
    }
    with tempfile.TemporaryDirectory() as scratch:
        with Service(Path(scratch) / "one", 1) as service:
            service.upload(files[0])  # warm the worker's imports
            service.fresh_account()
            latency = {path: service.upload(path) for path in files}
            service.fresh_account()
            one = _throughput(service, files, clients)
        with Service(Path(scratch) / "two", 2) as service:
            service.upload(files[0])
            service.fresh_account()
            two = _throughput(service, files, clients)
        with Service(Path(scratch) / "shared", 1, threads=0) as service:
            service.upload(files[0])
            service.fresh_account()
            one_all_cores = _throughput(service, files, clients)
    overhead = [latency[p] - alone[p] for p in files]
    report.update(
        optimizer_total_s=sum(alone.values()),
        service_total_s=sum(latency.values()),
        optimizer_median_s=statistics.median(alone.values()),
        service_median_s=statistics.median(latency.values()),
        overhead_median_s=statistics.median(overhead),
        overhead_share=sum(overhead) / sum(alone.values()),
        throughput_1=one,
        throughput_2=two,
        throughput_1_all_cores=one_all_cores,
        scaling=two / one,
        optimizers_scaling=report["optimizers_2_processes"]
        * sum(alone.values())
        / len(files),
    )
    return report


def _throughput(service: Service, files: list[Path], clients: int) -> float:
    """Files per second with `clients` uploading at once."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(service.upload, files))
    return len(files) / (time.perf_counter() - started)


def render(report: dict[str, object]) -> str:
    r = report
    return "\n".join(
        [
            f"files: {r['files']}",
            "| measure | optimizers alone | through the service |",
            "| --- | --- | --- |",
            f"| total seconds, one at a time | {r['optimizer_total_s']:.2f} "
            f"| {r['service_total_s']:.2f} |",
            f"| median seconds per file | {r['optimizer_median_s']:.3f} "
            f"| {r['service_median_s']:.3f} |",
            "",
            f"service overhead: median {r['overhead_median_s'] * 1000:.0f} ms per "
            f"file, {r['overhead_share'] * 100:.1f}% of the optimizers' time "
            f"(goal: under 10%) -> {'PASS' if r['overhead_share'] < 0.10 else 'FAIL'}",
            f"throughput: 1 worker process {r['throughput_1']:.2f} files/s, "
            f"2 processes {r['throughput_2']:.2f} files/s, x{r['scaling']:.2f} "
            f"(goal: x1.8) -> {'PASS' if r['scaling'] >= 1.8 else 'FAIL'}",
            f"  the optimizers alone, no service: 1 process "
            f"{r['files'] / r['optimizer_total_s']:.2f} files/s, 2 processes "
            f"{r['optimizers_2_processes']:.2f} files/s, "
            f"x{r['optimizers_scaling']:.2f}: what this machine allows",
            "  (one optimizer thread per worker process, as in a pod given one CPU;",
            f"  1 process free to thread over all {os.cpu_count()} cores: "
            f"{r['throughput_1_all_cores']:.2f} files/s)",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", help="comma-separated: jpeg,png,gif,webp,pdf")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    formats = set(args.formats.split(",")) if args.formats else None
    limit_threads(1)  # before any optimizer starts its threads
    report = run(corpus_files(formats, args.limit), args.clients)
    text = render(report)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.md").write_text(text + "\n")
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
