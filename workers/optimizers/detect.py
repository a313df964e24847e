"""Format detection from the leading bytes of a file, never from its name or type."""

from __future__ import annotations

FORMATS = ("jpeg", "png", "gif", "webp", "pdf")

# A PDF header may follow some junk; readers accept it within the first kilobyte.
_PDF_HEADER_WINDOW = 1024


def detect_format(head: bytes) -> str | None:
    """Name the format of a file from its first bytes, or None if it is not ours."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
        return "pdf"
    return None
