"""The tools Squeezer is measured against, and Squeezer itself, as one kind of thing.

Each tool takes the bytes of one file and gives the bytes a user of that tool would
keep. Programs run with an argument list, never a shell, under a time limit.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import mozjpeg_lossless_optimization
import oxipng
from mozjpeg_lossless_optimization import COPY_MARKERS
from PIL import Image

from workers.optimizers import OptimizeError, Options, optimize

PEER_TIMEOUT = 300.0


class ToolFailed(Exception):
    """The tool refused the file, failed, or ran past its time limit."""


class PeerMissing(Exception):
    """A peer the benchmark needs is not installed on this machine."""


@dataclass(frozen=True)
class Tool:
    """One tool in one mode: `family` is its name on the command line."""

    family: str
    label: str
    fmt: str
    mode: str
    run: Callable[[bytes, Path], bytes]
    programs: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    cached: bool = True

    @property
    def is_ours(self) -> bool:
        return self.family == "ours"

    def version(self) -> str:
        """The versions of the programs and packages the tool runs: the cache key."""
        parts = [program_version(program) for program in self.programs]
        parts += [f"{module}-{metadata.version(module)}" for module in self.modules]
        return " ".join(parts)


def run_program(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run a program without a shell under the peers' time limit; its exit code."""
    try:
        done = subprocess.run(
            args, capture_output=True, timeout=PEER_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ToolFailed(f"{args[0]} ran past {PEER_TIMEOUT:.0f} s") from error
    if done.returncode not in ok_codes:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        last = message[-1] if message else "no message"
        raise ToolFailed(f"{args[0]} exited {done.returncode}: {last}")
    return done.returncode


_VERSION_ARGS = {
    "jpegoptim": ["--version"],
    "optipng": ["-v"],
    "pngquant": ["--version"],
    "gifsicle": ["--version"],
    "cwebp": ["-version"],
    "qpdf": ["--version"],
    "gs": ["--version"],
}


@cache
def program_version(program: str) -> str:
    """The first line a program prints about its version."""
    path = shutil.which(program)
    if path is None:
        raise PeerMissing(program)
    done = subprocess.run(
        [path, *_VERSION_ARGS[program]], capture_output=True, timeout=30, check=False
    )
    lines = (done.stdout or done.stderr).decode(errors="replace").splitlines()
    return f"{program}-{lines[0].strip() if lines else 'unknown'}"


def missing_peers(tools: list[Tool]) -> list[str]:
    """Programs and Python packages the chosen tools need and this machine lacks."""
    missing = []
    for tool in tools:
        missing += [p for p in tool.programs if shutil.which(p) is None]
        for module in tool.modules:
            try:
                metadata.version(module)
            except metadata.PackageNotFoundError:
                missing.append(module)
    return sorted(set(missing))


def _in_out(workdir: Path, data: bytes, suffix: str) -> tuple[Path, Path]:
    source = workdir / f"in{suffix}"
    source.write_bytes(data)
    return source, workdir / f"out{suffix}"


def jpegoptim(*flags: str) -> Callable[[bytes, Path], bytes]:
    def run(data: bytes, workdir: Path) -> bytes:
        source, _ = _in_out(workdir, data, ".jpg")
        run_program(["jpegoptim", *flags, "--quiet", str(source)])
        return source.read_bytes()

    return run


def mozjpeg_lossless(data: bytes, workdir: Path) -> bytes:
    try:
        return mozjpeg_lossless_optimization.optimize(data, COPY_MARKERS.ALL)
    except ValueError as error:
        raise ToolFailed(f"mozjpeg-lossless-optimization: {error}") from error


def pillow_q85_mozjpeg(data: bytes, workdir: Path) -> bytes:
    """Pillow at quality 85 keeping the colour profile and EXIF, as a user would."""
    buffer = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        metadata_kept = {
            name: image.info[name]
            for name in ("icc_profile", "exif")
            if name in image.info
        }
        image.save(buffer, "JPEG", quality=85, **metadata_kept)
    return mozjpeg_lossless(buffer.getvalue(), workdir)


def optipng(data: bytes, workdir: Path) -> bytes:
    source, target = _in_out(workdir, data, ".png")
    run_program(["optipng", "-o2", "-quiet", "-out", str(target), str(source)])
    return target.read_bytes()


def oxipng_level(level: int) -> Callable[[bytes, Path], bytes]:
    def run(data: bytes, workdir: Path) -> bytes:
        try:
            return oxipng.optimize_from_memory(data, level=level)
        except oxipng.PngError as error:
            raise ToolFailed(f"oxipng: {error}") from error

    return run


# pngquant's exit code when it cannot reach the minimum quality: the user keeps the
# original, as with --skip-if-larger.
PNGQUANT_QUALITY_TOO_LOW = 99


def pngquant_oxipng(data: bytes, workdir: Path) -> bytes:
    source, target = _in_out(workdir, data, ".png")
    args = ["pngquant", "--quality=65-80", "--output", str(target), "--", str(source)]
    code = run_program(args, ok_codes=(0, PNGQUANT_QUALITY_TOO_LOW))
    quantized = data if code == PNGQUANT_QUALITY_TOO_LOW else target.read_bytes()
    return oxipng_level(2)(quantized, workdir)


def gifsicle(*flags: str) -> Callable[[bytes, Path], bytes]:
    def run(data: bytes, workdir: Path) -> bytes:
        source, target = _in_out(workdir, data, ".gif")
        run_program(["gifsicle", *flags, "-o", str(target), str(source)])
        return target.read_bytes()

    return run


def cwebp(*flags: str) -> Callable[[bytes, Path], bytes]:
    def run(data: bytes, workdir: Path) -> bytes:
        source, target = _in_out(workdir, data, ".webp")
        run_program(["cwebp", "-quiet", *flags, str(source), "-o", str(target)])
        return target.read_bytes()

    return run


# qpdf exits 3 when it succeeded with warnings.
QPDF_WARNINGS = 3


def qpdf(data: bytes, workdir: Path) -> bytes:
    source, target = _in_out(workdir, data, ".pdf")
    args = [
        "qpdf",
        "--object-streams=generate",
        "--recompress-flate",
        "--compression-level=9",
        str(source),
        str(target),
    ]
    run_program(args, ok_codes=(0, QPDF_WARNINGS))
    return target.read_bytes()


def ghostscript_ebook(data: bytes, workdir: Path) -> bytes:
    source, target = _in_out(workdir, data, ".pdf")
    args = [
        "gs",
        "-q",
        "-dSAFER",
        "-dNOPAUSE",
        "-dBATCH",
        "-sDEVICE=pdfwrite",
        "-dCompatibilityLevel=1.4",
        "-dPDFSETTINGS=/ebook",
        f"-sOutputFile={target}",
        str(source),
    ]
    run_program(args)
    return target.read_bytes()


def ours(lossless: bool) -> Callable[[bytes, Path], bytes]:
    def run(data: bytes, workdir: Path) -> bytes:
        try:
            return optimize(data, Options(lossless=lossless)).data
        except OptimizeError as error:
            raise ToolFailed(f"{type(error).__name__}: {error.message}") from error

    return run


MOZJPEG = ("mozjpeg-lossless-optimization",)

PEERS: tuple[Tool, ...] = (
    Tool(
        "jpegoptim",
        "jpegoptim --strip-none",
        "jpeg",
        "lossless",
        jpegoptim("--strip-none"),
        programs=("jpegoptim",),
    ),
    Tool(
        "mozjpeg-lossless",
        "mozjpeg-lossless-optimization",
        "jpeg",
        "lossless",
        mozjpeg_lossless,
        modules=MOZJPEG,
    ),
    Tool(
        "jpegoptim",
        "jpegoptim --max=85",
        "jpeg",
        "lossy",
        jpegoptim("--max=85"),
        programs=("jpegoptim",),
    ),
    Tool(
        "pillow-q85",
        "Pillow q85 + mozjpeg-lossless",
        "jpeg",
        "lossy",
        pillow_q85_mozjpeg,
        modules=("pillow", *MOZJPEG),
    ),
    Tool("optipng", "optipng -o2", "png", "lossless", optipng, programs=("optipng",)),
    Tool(
        "oxipng",
        "oxipng level 4",
        "png",
        "lossless",
        oxipng_level(4),
        modules=("pyoxipng",),
    ),
    Tool(
        "pngquant",
        "pngquant 65-80 + oxipng 2",
        "png",
        "lossy",
        pngquant_oxipng,
        programs=("pngquant",),
        modules=("pyoxipng",),
    ),
    Tool(
        "gifsicle",
        "gifsicle -O3",
        "gif",
        "lossless",
        gifsicle("-O3"),
        programs=("gifsicle",),
    ),
    Tool(
        "gifsicle",
        "gifsicle -O3 --lossy=80",
        "gif",
        "lossy",
        gifsicle("-O3", "--lossy=80"),
        programs=("gifsicle",),
    ),
    Tool(
        "cwebp",
        "cwebp -lossless",
        "webp",
        "lossless",
        cwebp("-lossless"),
        programs=("cwebp",),
    ),
    Tool(
        "cwebp", "cwebp -q 80", "webp", "lossy", cwebp("-q", "80"), programs=("cwebp",)
    ),
    Tool("qpdf", "qpdf objstm + flate 9", "pdf", "lossless", qpdf, programs=("qpdf",)),
    Tool(
        "gs", "gs pdfwrite /ebook", "pdf", "lossy", ghostscript_ebook, programs=("gs",)
    ),
)

OURS: tuple[Tool, ...] = tuple(
    Tool("ours", "squeezer", fmt, mode, ours(mode == "lossless"), cached=False)
    for fmt in ("jpeg", "png", "gif", "webp", "pdf")
    for mode in ("lossless", "lossy")
)

TOOLS: tuple[Tool, ...] = OURS + PEERS
FAMILIES = tuple(dict.fromkeys(tool.family for tool in TOOLS))


def select(formats: list[str], modes: list[str], families: list[str]) -> list[Tool]:
    """The tools for these formats, modes and families, ours first in each group."""
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown tools {unknown}; known: {', '.join(FAMILIES)}")
    return [
        tool
        for tool in TOOLS
        if tool.fmt in formats and tool.mode in modes and tool.family in families
    ]
