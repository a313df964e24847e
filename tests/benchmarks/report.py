"""Per-file results summed into the benchmark's table, its verdicts on the targets of
issue 3, and the chart of savings against score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import median

FLOOR = 70.0
MIB = 1 << 20


@dataclass
class FileResult:
    """What one tool did to one file in one mode, and how it measured."""

    file: str
    fmt: str
    mode: str
    tool: str
    bytes_in: int
    ok: bool
    bytes_out: int = 0
    seconds: float = 0.0
    error: str | None = None
    score: float | None = None
    score_error: str | None = None
    exact: bool | None = None
    pages_kept: bool | None = None
    text_kept: bool | None = None

    @property
    def kept_bytes(self) -> int:
        """The bytes a user keeps: the input when the output grew."""
        return min(self.bytes_in, self.bytes_out)


@dataclass(frozen=True)
class Summary:
    """One row of the table: one tool on one format in one mode."""

    fmt: str
    tool: str
    mode: str
    files: int
    ok: int
    bytes_in: int
    bytes_out: int
    bytes_kept: int
    larger: int
    median_seconds: float | None
    median_score: float | None
    worst_score: float | None
    below_floor: int
    exact: int
    pages_kept: int
    text_kept: int

    @property
    def savings(self) -> float:
        return savings(self.bytes_in, self.bytes_out)

    @property
    def savings_kept(self) -> float:
        return savings(self.bytes_in, self.bytes_kept)


def savings(bytes_in: int, bytes_out: int) -> float:
    """Percent of the input saved; negative when the output grew."""
    return 100.0 * (1.0 - bytes_out / bytes_in) if bytes_in else 0.0


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def summarize(results: list[FileResult]) -> Summary:
    """The row for one tool's results on one format and mode."""
    first = results[0]
    done = [r for r in results if r.ok]
    scores = [r.score for r in done if r.score is not None]
    unscored = sum(1 for r in done if r.mode == "lossy" and r.score is None)
    return Summary(
        fmt=first.fmt,
        tool=first.tool,
        mode=first.mode,
        files=len(results),
        ok=len(done),
        bytes_in=sum(r.bytes_in for r in done),
        bytes_out=sum(r.bytes_out for r in done),
        bytes_kept=sum(r.kept_bytes for r in done),
        larger=sum(1 for r in done if r.bytes_out > r.bytes_in),
        median_seconds=_median([r.seconds for r in done]),
        median_score=_median(scores),
        worst_score=min(scores) if scores else None,
        below_floor=sum(1 for s in scores if s < FLOOR) + unscored,
        exact=sum(1 for r in done if r.exact),
        pages_kept=sum(1 for r in done if r.pages_kept),
        text_kept=sum(1 for r in done if r.text_kept),
    )


def group(results: Iterable[FileResult]) -> dict[tuple[str, str, str], list]:
    """Results by (format, mode, tool), in the order they came."""
    groups: dict[tuple[str, str, str], list[FileResult]] = {}
    for result in results:
        groups.setdefault((result.fmt, result.mode, result.tool), []).append(result)
    return groups


COLUMNS = (
    "format",
    "tool",
    "mode",
    "files ok/n",
    "bytes in",
    "bytes out",
    "savings %",
    "savings % (never larger)",
    "outputs larger",
    "median s/file",
    "median SSIMULACRA2",
    "worst SSIMULACRA2",
    f"below {FLOOR:.0f}",
    "lossless check",
)


def _mib(count: int) -> str:
    """A byte count the way the table shows it: MiB, or KiB and bytes when small."""
    if count >= MIB:
        return f"{count / MIB:.2f} MiB"
    if count >= 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count} B"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def check_cell(row: Summary) -> str:
    """The lossless check column: exact files; for PDF pages (and text when lossy)."""
    if row.fmt == "pdf" and row.mode == "lossy":
        return f"pages {row.pages_kept}/{row.ok}, text {row.text_kept}/{row.ok}"
    if row.mode == "lossy":
        return ""
    prefix = "pages " if row.fmt == "pdf" else ""
    return f"{prefix}{row.exact}/{row.ok}"


def row_cells(row: Summary) -> list[str]:
    lossy = row.mode == "lossy"
    return [
        row.fmt,
        row.tool,
        row.mode,
        f"{row.ok}/{row.files}",
        _mib(row.bytes_in),
        _mib(row.bytes_out),
        f"{row.savings:.1f}",
        f"{row.savings_kept:.1f}",
        str(row.larger),
        _number(row.median_seconds, 3),
        _number(row.median_score, 1) if lossy else "",
        _number(row.worst_score, 1) if lossy else "",
        str(row.below_floor) if lossy else "",
        check_cell(row),
    ]


def markdown_table(rows: list[Summary]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """What issue 3 asks of our result on one format and mode, against one peer."""

    peer: str
    bytes_ratio: float = 1.0
    kept: bool = False
    median_floor: float = FLOOR
    worst_floor: float = FLOOR
    never_larger: bool = False
    text: bool = False
    time_ratio: float = 3.0


TARGETS: dict[tuple[str, str], Target] = {
    ("jpeg", "lossless"): Target("mozjpeg-lossless-optimization"),
    ("png", "lossless"): Target("oxipng level 4"),
    ("gif", "lossless"): Target("gifsicle -O3"),
    ("webp", "lossless"): Target("cwebp -lossless", kept=True, never_larger=True),
    ("pdf", "lossless"): Target("qpdf objstm + flate 9"),
    ("jpeg", "lossy"): Target("jpegoptim --max=85", bytes_ratio=0.85),
    ("png", "lossy"): Target("pngquant 65-80 + oxipng 2", median_floor=77.0),
    ("gif", "lossy"): Target("gifsicle -O3 --lossy=80"),
    ("webp", "lossy"): Target("cwebp -q 80", kept=True),
    ("pdf", "lossy"): Target(
        "gs pdfwrite /ebook", bytes_ratio=1.2, median_floor=80.0, text=True
    ),
}


@dataclass(frozen=True)
class Verdict:
    """One target met or missed (None: it cannot be judged from this run)."""

    fmt: str
    mode: str
    criterion: str
    detail: str
    passed: bool | None

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "N/A "}[self.passed]
        return f"{mark} {self.fmt} {self.mode} {self.criterion}: {self.detail}"


def judge(
    fmt: str, mode: str, ours: list[FileResult], peer: list[FileResult] | None
) -> list[Verdict]:
    """Our results against the target for this format and mode."""
    target = TARGETS[(fmt, mode)]

    def verdict(criterion: str, detail: str, passed: bool | None) -> Verdict:
        return Verdict(fmt, mode, criterion, detail, passed)

    done = [r for r in ours if r.ok]
    verdicts = [
        verdict("files", f"{len(done)}/{len(ours)} optimized", len(done) == len(ours))
    ]
    if mode == "lossless":
        exact = sum(1 for r in done if r.exact)
        what = "pages rendering the same" if fmt == "pdf" else "pixels exact"
        verdicts.append(
            verdict("exact", f"{exact}/{len(ours)} {what}", exact == len(ours))
        )
    else:
        verdicts += _quality_floor(fmt, mode, done, len(ours), target)
    if target.never_larger:
        grown = sum(1 for r in done if r.bytes_out > r.bytes_in)
        verdicts.append(verdict("never larger", f"{grown} outputs larger", grown == 0))
    if peer is None:
        verdicts.append(verdict("peer", f"{target.peer} was not run", None))
        return verdicts
    return verdicts + _against_peer(fmt, mode, done, peer, target)


def _quality_floor(
    fmt: str, mode: str, done: list[FileResult], total: int, target: Target
) -> list[Verdict]:
    scores = [r.score for r in done if r.score is not None]
    worst = min(scores) if scores else None
    low = sum(1 for s in scores if s < target.worst_floor) + len(done) - len(scores)
    detail = f"worst {_number(worst, 1) or 'n/a'}, {low} below {target.worst_floor:.0f}"
    verdicts = [
        Verdict(fmt, mode, "floor", detail, bool(scores) and low == 0 and total > 0)
    ]
    if target.text:
        kept = sum(1 for r in done if r.text_kept and r.pages_kept)
        verdicts.append(
            Verdict(
                fmt, mode, "text", f"{kept}/{total} keep pages and text", kept == total
            )
        )
    return verdicts


def _against_peer(
    fmt: str,
    mode: str,
    done: list[FileResult],
    peer: list[FileResult],
    target: Target,
) -> list[Verdict]:
    peer_done = {r.file: r for r in peer if r.ok}
    pairs = [(r, peer_done[r.file]) for r in done if r.file in peer_done]
    if not pairs:
        return [
            Verdict(fmt, mode, "peer", f"no file done by both and {target.peer}", None)
        ]
    verdicts = []
    ours_bytes = sum(r.bytes_out for r, _ in pairs)
    if target.kept:
        peer_bytes = sum(p.kept_bytes for _, p in pairs)
    else:
        peer_bytes = sum(p.bytes_out for _, p in pairs)
    bound = target.bytes_ratio * peer_bytes
    ratio = "" if target.bytes_ratio == 1.0 else f"{target.bytes_ratio:g} x "
    kept = " (grown kept)" if target.kept else ""
    detail = (
        f"{_mib(ours_bytes)} <= {ratio}{_mib(peer_bytes)}{kept}"
        f" of {target.peer} on {len(pairs)} files"
    )
    verdicts.append(Verdict(fmt, mode, "bytes", detail, ours_bytes <= bound))
    if mode == "lossy":
        verdicts.append(_median_verdict(fmt, mode, pairs, target))
    ours_time = median(r.seconds for r, _ in pairs)
    peer_time = median(p.seconds for _, p in pairs)
    detail = (
        f"median {ours_time:.3f} s <= {target.time_ratio:g} x {peer_time:.3f} s"
        f" of {target.peer}"
    )
    passed = ours_time <= target.time_ratio * peer_time
    verdicts.append(Verdict(fmt, mode, "time", detail, passed))
    return verdicts


def _median_verdict(
    fmt: str, mode: str, pairs: list[tuple[FileResult, FileResult]], target: Target
) -> Verdict:
    ours_scores = [r.score for r, _ in pairs if r.score is not None]
    peer_scores = [p.score for _, p in pairs if p.score is not None]
    if not ours_scores or not peer_scores:
        return Verdict(fmt, mode, "median", "no scores to compare", None)
    ours_median = median(ours_scores)
    peer_median = median(peer_scores)
    bound = max(peer_median - 1.0, target.median_floor)
    detail = (
        f"{ours_median:.1f} >= max({peer_median:.1f} - 1, {target.median_floor:.0f})"
        f" of {target.peer}"
    )
    passed = ours_median >= bound and len(ours_scores) == len(pairs)
    return Verdict(fmt, mode, "median", detail, passed)


def overall(fmt: str, mode: str, verdicts: list[Verdict]) -> str:
    """The one line per format and mode the team reads first."""
    missed = [v.criterion for v in verdicts if v.passed is False]
    unjudged = [v.criterion for v in verdicts if v.passed is None]
    if missed:
        return f"FAIL {fmt} {mode}: missed {', '.join(missed)}"
    if unjudged:
        return f"N/A  {fmt} {mode}: cannot judge {', '.join(unjudged)}"
    return f"PASS {fmt} {mode}: every target met"


def chart(rows: list[Summary], path: Path) -> None:
    """Savings against median score per tool, one panel per format.

    A lossless tool keeps every pixel, so it stands at a score of 100.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    formats = list(dict.fromkeys(row.fmt for row in rows))
    columns = min(3, len(formats))
    lines = -(-len(formats) // columns)
    figure, axes = pyplot.subplots(
        lines, columns, figsize=(5.0 * columns, 4.2 * lines), squeeze=False
    )
    for axis in axes.flat[len(formats) :]:
        axis.set_visible(False)
    for axis, fmt in zip(axes.flat, formats, strict=False):
        for row in (r for r in rows if r.fmt == fmt):
            lossless = row.mode == "lossless"
            score = 100.0 if lossless else row.median_score
            if score is None:
                continue
            ours = row.tool == "squeezer"
            axis.scatter(
                score,
                row.savings_kept,
                marker="s" if lossless else "o",
                color="tab:red" if ours else "tab:blue",
                s=60 if ours else 30,
            )
            label = f"{row.tool} ({row.mode})" if ours else row.tool
            axis.annotate(
                label,
                (score, row.savings_kept),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        axis.set_title(fmt)
        axis.set_xlabel("median SSIMULACRA2 (lossless = 100)")
        axis.set_ylabel("savings % (grown files kept)")
        axis.axvline(FLOOR, color="grey", linewidth=0.5, linestyle="--")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
