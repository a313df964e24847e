"""Peak memory of Squeezer's optimizers beside the peers', on large corpus files.

Run as `make bench-memory` (or `python -m tests.benchmarks.memory`). Each tool runs
on one file in a process of its own, on one core. That process reports its own
peak resident memory (ru_maxrss), where the work runs in Python (ours, oxipng,
mozjpeg), and a peer's programs are run under GNU time, which reports theirs: a
child's own ru_maxrss would count the Python process it was forked from. Ours
start children too (gifsicle, jpegtran, the PDF work): their column is the
children's ru_maxrss, which counts the pages shared with the worker at the fork,
an upper bound. The same run measures a process that only imports what the
tools import, the floor under every Python figure. Writes bench-results/memory.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import peers
from tests.benchmarks.optimizers import pin_to_one_core
from tests.benchmarks.peers import Tool
from workers.optimizers import Options, optimize

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
BASELINE = "python and imports"
TIME = "/usr/bin/time"
CONVERT = "convert"
# The largest files of the corpus by pixels or frames, in the modes where our
# work grows with them.
CASES = (
    ("png", "lossy", "images/png/rich_features.png"),
    ("png", "lossy", "images/png/ocrmypdf_typewriter.png"),
    ("jpeg", "lossy", "images/jpeg/exif-samples_HMD_Nokia_8.3_5G.jpg"),
    ("webp", CONVERT, "images/jpeg/exif-samples_HMD_Nokia_8.3_5G.jpg"),
    ("webp", "lossy", "images/webp/libwebp_bryce.webp"),
    ("gif", "lossy", "images/gif/rich_table_movie.gif"),
    ("gif", "lossy", "images/gif/vhs_demo.gif"),
    ("pdf", "lossy", "pdf/pdfjs_freeculture.pdf"),
)


@dataclass(frozen=True)
class Peak:
    """What one tool's process reported: megabytes at peak (its own, and its
    children's), seconds, bytes out."""

    tool: str
    process_mb: float
    children_mb: float
    seconds: float
    bytes_out: int


def _tools(fmt: str, mode: str) -> list[Tool]:
    """Ours and the peers for a format and mode; to convert, ours and cwebp -q 80
    (which reads the JPEG itself)."""
    if mode != CONVERT:
        return peers.select([fmt], [mode], list(peers.FAMILIES))

    def convert(data: bytes, workdir: Path) -> bytes:
        return optimize(data, Options(convert=fmt)).data

    ours = Tool("ours", f"squeezer convert={fmt}", fmt, mode, convert)
    cwebp = next(tool for tool in peers.PEERS if tool.label == "cwebp -q 80")
    return [ours, cwebp]


def child(label: str, fmt: str, mode: str, path: Path) -> None:
    """Run one tool on one file (or, for BASELINE, only import) and print a Peak."""
    pin_to_one_core()
    programs = _programs_timed()
    tools = _tools(fmt, mode)
    seconds, size = 0.0, 0
    if label != BASELINE:
        tool = next(tool for tool in tools if tool.label == label)
        data = path.read_bytes()
        with tempfile.TemporaryDirectory(prefix="squeezer-memory-") as workdir:
            start = time.perf_counter()
            size = len(tool.run(data, Path(workdir)))
            seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if label == BASELINE or programs:
        children = max(programs, default=0)
    peak = Peak(label, own, children, seconds, size)
    print(json.dumps(peak.__dict__))


def _programs_timed() -> list[float]:
    """Run the peers' programs under GNU time from now on; the list their peaks
    (in megabytes) are appended to."""
    peaks: list[float] = []
    run_program = peers.run_program

    def timed(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
        with tempfile.NamedTemporaryFile(prefix="squeezer-time-") as report:
            code = run_program([TIME, "-f", "%M", "-o", report.name, *args], ok_codes)
            peaks.append(int(Path(report.name).read_text().split()[-1]) / 1024)
        return code

    peers.run_program = timed
    return peaks


def measure(label: str, fmt: str, mode: str, path: Path) -> Peak:
    """One tool on one file in a fresh process."""
    command = [sys.executable, "-m", "tests.benchmarks.memory", "--child", label]
    command += [fmt, mode, str(path)]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=True, timeout=900
    )
    return Peak(**json.loads(done.stdout.strip().splitlines()[-1]))


def table(rows: list[tuple[str, str, Peak]]) -> str:
    """The results as a Markdown table, a row per tool and file."""
    lines = [
        "| file | mode | tool | Python process MB | children MB | s | bytes out |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, mode, peak in rows:
        children = f"{peak.children_mb:.0f}" if peak.children_mb else ""
        lines.append(
            f"| {name} | {mode} | {peak.tool} | {peak.process_mb:.0f} | {children} "
            f"| {peak.seconds:.2f} | {peak.bytes_out} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("TOOL", "FMT", "MODE", "PATH"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    args = parser.parse_args(argv)
    if args.child:
        label, fmt, mode, path = args.child
        child(label, fmt, mode, Path(path))
        return 0

    rows = []
    floor = measure(BASELINE, "png", "lossy", args.corpus / CASES[0][2])
    rows.append(("", "", floor))
    print(f"{BASELINE}: {floor.process_mb:.0f} MB", flush=True)
    for fmt, mode, name in CASES:
        path = args.corpus / name
        for tool in _tools(fmt, mode):
            peak = measure(tool.label, fmt, mode, path)
            rows.append((Path(name).name, mode, peak))
            print(
                f"{Path(name).name:40} {mode:8} {tool.label:32} "
                f"process {peak.process_mb:6.0f} MB  children {peak.children_mb:6.0f}"
                f" MB  {peak.seconds:6.2f} s",
                flush=True,
            )
    text = table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.md").write_text(
        "# Peak memory, ours and the peers'\n\n" + __doc__ + "\n" + text + "\n"
    )
    print(f"\nwrote {args.out / 'memory.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
