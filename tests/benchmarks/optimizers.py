"""Squeezer's optimizers against the tools a user would pick instead, on the corpus.

Runs every tool on every file of ../shared/corpus, one file at a time on one core,
measures bytes, time, exactness or SSIMULACRA2, and prints the table and the verdicts
on issue 3's targets; writes them with a chart to bench-results/.
Run as `python -m tests.benchmarks.optimizers --help`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks import pixels, quality, report
from tests.benchmarks.cache import ResultCache, digest
from tests.benchmarks.peers import (
    FAMILIES,
    PeerMissing,
    Tool,
    ToolFailed,
    missing_peers,
    select,
)
from workers.cores import limit_threads
from workers.optimizers.detect import FORMATS, detect_format

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
MODES = ("lossless", "lossy")
# Part of the cache key of every check: raise it when a check changes.
CHECKS = "/checks-2"
INSTALL_HINT = "run `bash tests/benchmarks/install_peers.sh` (or `make bench`)"


def corpus_files(root: Path, formats: list[str]) -> dict[str, list[Path]]:
    """The corpus's images and PDFs by the format their bytes show, in name order."""
    files: dict[str, list[Path]] = {fmt: [] for fmt in formats}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            fmt = detect_format(handle.read(1024))
        if fmt in files:
            files[fmt].append(path)
    return files


def pin_to_one_core() -> int:
    """Keep this process, and so every program it starts, on one core.

    Affinity binds only the calling thread and those it starts later: the
    OpenBLAS threads numpy started on import are told to stand down instead.
    """
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    limit_threads(1)
    return core


class Bench:
    """One benchmark run: the tools, the cache, and every file's results."""

    def __init__(self, tools: list[Tool], cache: ResultCache) -> None:
        self.tools = tools
        self.cache = cache
        self.versions = {tool.label: tool.version() for tool in tools if tool.cached}
        self.results: list[report.FileResult] = []

    def run_file(self, path: Path, fmt: str, name: str) -> None:
        data = path.read_bytes()
        source = digest(data)
        for tool in (t for t in self.tools if t.fmt == fmt):
            result, output = self._run_tool(tool, name, data, source)
            if output is not None:
                self._measure(result, data, source, output)
            self.results.append(result)
            _progress(result)

    def _run_tool(
        self, tool: Tool, name: str, data: bytes, source: str
    ) -> tuple[report.FileResult, bytes | None]:
        result = report.FileResult(
            name, tool.fmt, tool.mode, tool.label, len(data), False
        )
        record = None
        if tool.cached:
            record = self.cache.load_run(tool.label, self.versions[tool.label], source)
        if record is None:
            record = _timed_run(tool, data)
            if tool.cached:
                self.cache.store_run(
                    tool.label, self.versions[tool.label], source, record
                )
        result.ok = record["ok"]
        result.seconds = record["seconds"]
        result.error = record.get("error")
        output = record.get("data")
        if output is not None:
            result.bytes_out = len(output)
        return result, output

    def _measure(
        self, result: report.FileResult, data: bytes, source: str, output: bytes
    ) -> None:
        target = digest(output)

        def measured(measure: str, compute):
            value = self.cache.load_measure(measure, source, target)
            if value is None:
                value = compute()
                self.cache.store_measure(measure, source, target, value)
            return value

        fmt = result.fmt
        if result.mode == "lossless":
            check = _same_pages if fmt == "pdf" else _same_pixels
            result.exact = measured(f"exact-{fmt}{CHECKS}", lambda: check(data, output))
            return
        scored = measured(
            quality.metric_id() + CHECKS, lambda: _score(fmt, data, output)
        )
        result.score = scored.get("score")
        result.score_error = scored.get("error")
        if fmt == "pdf":
            result.pages_kept = measured(
                f"pdf-pages{CHECKS}", lambda: _pages_kept(data, output)
            )
            result.text_kept = measured(
                f"pdf-text{CHECKS}", lambda: _text_kept(data, output)
            )


def _timed_run(tool: Tool, data: bytes) -> dict:
    with tempfile.TemporaryDirectory(prefix="squeezer-bench-") as workdir:
        start = time.perf_counter()
        try:
            output = tool.run(data, Path(workdir))
        except ToolFailed as error:
            seconds = time.perf_counter() - start
            return {"ok": False, "seconds": seconds, "error": str(error)}
        seconds = time.perf_counter() - start
    return {"ok": True, "seconds": seconds, "data": output}


def _same_pixels(original: bytes, output: bytes) -> bool:
    if output == original:
        return True
    try:
        return pixels.same_image_pixels(original, output)
    except pixels.DecodeFailed:
        return False


def _same_pages(original: bytes, output: bytes) -> bool:
    if output == original:
        return True
    try:
        return pixels.same_pdf_pages(original, output)
    except pixels.DecodeFailed:
        return False


def _pages_kept(original: bytes, output: bytes) -> bool:
    try:
        return pixels.pdf_page_count(original) == pixels.pdf_page_count(output)
    except pixels.DecodeFailed:
        return False


# A PDF keeps its text when pdfium still finds this share of its characters.
TEXT_KEPT_SHARE = 0.9


def _text_kept(original: bytes, output: bytes) -> bool:
    try:
        before = pixels.pdf_characters(original)
        return pixels.pdf_characters(output) >= TEXT_KEPT_SHARE * before
    except pixels.DecodeFailed:
        return False


def _score(fmt: str, original: bytes, output: bytes) -> dict:
    try:
        return {"score": quality.score_pair(fmt, original, output)}
    except quality.ScoreFailed as error:
        return {"error": str(error)}


def _progress(result: report.FileResult) -> None:
    if not result.ok:
        outcome = f"failed: {result.error}"
    else:
        outcome = f"{result.bytes_in} -> {result.bytes_out} B {result.seconds:.3f} s"
        if result.score is not None:
            outcome += f" score {result.score:.1f}"
        if result.score_error:
            outcome += f" unscored: {result.score_error}"
        if result.exact is False:
            outcome += " NOT EXACT"
    print(
        f"  {result.fmt} {result.mode:8} {result.tool:32} {result.file}: {outcome}",
        file=sys.stderr,
        flush=True,
    )


def verdict_lines(results: list[report.FileResult], formats, modes) -> list[str]:
    """PASS/FAIL for each target of issue 3, then one line per format and mode."""
    groups = report.group(results)
    details, overall = [], []
    for fmt in formats:
        for mode in modes:
            ours = groups.get((fmt, mode, "squeezer"))
            if ours is None:
                continue
            peer = groups.get((fmt, mode, report.TARGETS[(fmt, mode)].peer))
            verdicts = report.judge(fmt, mode, ours, peer)
            details += [v.line() for v in verdicts]
            overall.append(report.overall(fmt, mode, verdicts))
    return [*details, "", *overall] if details else []


def method_notes(core: int) -> list[str]:
    return [
        f"- Every tool ran on one core (CPU {core}), one file at a time; peer results "
        "come from the cache when tool, version and file are unchanged.",
        "- Score: SSIMULACRA2 on RGB with alpha composited over white, the displayed "
        "image (EXIF orientation applied, ICC profile converted to sRGB); the mean "
        "over "
        f"up to {quality.MAX_SCORED_FRAMES} frames spread evenly over an animation, "
        f"and over the first {quality.MAX_SCORED_PAGES} pages of a PDF at 72 dpi.",
        f"- Metric: {quality.metric_id()}.",
        "- Lossless check: every frame decodes to the same pixels (JPEG: same samples "
        "from the same decoder; a fully transparent pixel's colour does not count); "
        "PDF: same page count and every page renders the same with pdfium at 72 dpi.",
        "- Lossy PDF check: same page count, and pdfium still finds at least "
        f"{TEXT_KEPT_SHARE:.0%} of the text characters.",
        "- Savings % (never larger) counts a file whose output grew as kept unchanged.",
    ]


def _row_order(tools: list[Tool]):
    """Sort key for table rows: by format, then mode, then ours before the peers."""
    position = {(t.fmt, t.mode, t.label): i for i, t in enumerate(tools)}

    def key(group: tuple[str, str, str]) -> tuple[int, int, int]:
        fmt, mode, _ = group
        return FORMATS.index(fmt), MODES.index(mode), position[group]

    return key


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.optimizers", description=__doc__
    )
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tools", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--only",
        default="",
        help="run only files whose path contains one of these, comma-separated",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore the cache of earlier runs"
    )
    return parser.parse_args(argv)


def _csv(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; known: {', '.join(allowed)}")
    return [item for item in allowed if item in chosen]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    formats = _csv(args.formats, FORMATS, "formats")
    modes = _csv(args.modes, MODES, "modes")
    families = _csv(args.tools, FAMILIES, "tools")
    tools = select(formats, modes, families)
    missing = missing_peers(tools)
    if missing:
        print(f"missing peers: {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2

    core = pin_to_one_core()
    try:
        bench = Bench(tools, ResultCache(args.out / "cache", fresh=args.fresh))
    except PeerMissing as error:
        print(f"missing peer: {error}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    files = corpus_files(args.corpus, formats)
    only = [part for part in args.only.split(",") if part]
    for fmt in formats:
        for path in files[fmt]:
            name = path.relative_to(args.corpus).as_posix()
            if not only or any(part in name for part in only):
                bench.run_file(path, fmt, name)

    groups = report.group(bench.results)
    rows = [
        report.summarize(groups[key]) for key in sorted(groups, key=_row_order(tools))
    ]
    table = report.markdown_table(rows)
    verdicts = verdict_lines(bench.results, formats, modes)
    print(table)
    print()
    print("\n".join(verdicts))
    args.out.mkdir(parents=True, exist_ok=True)
    document = [
        "# Squeezer's optimizers against their peers",
        "",
        table,
        "",
        *method_notes(core),
        "",
        "## Targets of issue 3",
        "",
        "```",
        *verdicts,
        "```",
        "",
    ]
    (args.out / "optimizers.md").write_text("\n".join(document))
    report.chart(rows, args.out / "optimizers.png")
    print(f"\nwrote {args.out / 'optimizers.md'} and {args.out / 'optimizers.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
