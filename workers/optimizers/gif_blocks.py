"""The block structure of a GIF file, read without decoding a pixel.

Walking the blocks tells the logical screen, every frame's rectangle and the loop
count, so that the limits are checked before any decoder or program allocates a
canvas; it finds truncated and garbled files; and it drops metadata blocks
(comments, XMP and other application extensions) byte for byte, which cannot change
a pixel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from workers.optimizers.errors import CorruptFile

_HEADERS = (b"GIF87a", b"GIF89a")
_SCREEN = struct.Struct("<HHBBB")
_DESCRIPTOR = struct.Struct("<HHHHB")
EXTENSION = 0x21
IMAGE = 0x2C
_TRAILER = 0x3B
_COMMENT = 0xFE
CONTROL = 0xF9
_APPLICATION = 0xFF
# Application identifiers (name and authentication code) of the blocks kept as
# part of the image rather than metadata: the loop count and a colour profile.
LOOP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
ICC_APP = b"ICCRGBG1012"
XMP_APP = b"XMP DataXMP"


@dataclass(frozen=True)
class Frame:
    """Where one frame's image sits on the logical screen, and how long it shows
    (in hundredths of a second, 0 without a graphic control extension)."""

    left: int
    top: int
    width: int
    height: int
    delay: int = 0

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class Block:
    """One top-level block: its kind, its bytes in the file, and for an extension
    its label and (for an application extension) its identifier."""

    kind: int
    start: int
    end: int
    label: int | None = None
    application: bytes | None = None


@dataclass(frozen=True)
class Layout:
    """What the blocks of a GIF say, before any pixel is decoded.

    `loop` is the loop count (0 is forever), None without a loop extension;
    `header_end` is where the blocks start, after the global colour table.
    """

    width: int
    height: int
    frames: tuple[Frame, ...]
    blocks: tuple[Block, ...]
    header_end: int
    loop: int | None

    @property
    def canvas(self) -> tuple[int, int]:
        """The size a decoder draws on: the screen, grown to hold every frame."""
        width = max([self.width, *(frame.right for frame in self.frames)])
        height = max([self.height, *(frame.bottom for frame in self.frames)])
        return width, height


def read_layout(data: bytes) -> Layout:
    """The layout of a GIF file; CorruptFile if its blocks are cut short or garbled.

    A file that ends cleanly between blocks without its trailer is accepted, as
    every decoder does; garbage after the trailer is ignored.
    """
    if len(data) < 6 + _SCREEN.size or data[:6] not in _HEADERS:
        raise CorruptFile("The file is not a GIF image.")
    width, height, packed, _, _ = _SCREEN.unpack_from(data, 6)
    offset = 6 + _SCREEN.size + _colour_table(packed)
    header_end = offset
    if offset > len(data):
        raise CorruptFile("The GIF file is truncated in its colour table.")
    frames: list[Frame] = []
    blocks: list[Block] = []
    loop = None
    delay = 0
    while offset < len(data):
        kind = data[offset]
        if kind == _TRAILER:
            break
        if kind == EXTENSION:
            block, loop_count = _extension(data, offset)
            loop = loop_count if loop_count is not None else loop
            if block.label == CONTROL:
                delay = _delay(data, offset)
        elif kind == IMAGE:
            block, frame = _image(data, offset, delay)
            frames.append(frame)
            delay = 0
        else:
            raise CorruptFile("The GIF file holds an unknown block.")
        blocks.append(block)
        offset = block.end
    if not frames:
        raise CorruptFile("The GIF file holds no image.")
    return Layout(width, height, tuple(frames), tuple(blocks), header_end, loop)


def _colour_table(packed: int) -> int:
    """The byte length of the colour table a packed field announces."""
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def _sub_blocks(data: bytes, offset: int) -> int:
    """The offset just past the chain of sub-blocks starting at `offset`."""
    while True:
        if offset >= len(data):
            raise CorruptFile("The GIF file is truncated inside a block.")
        size = data[offset]
        offset += 1 + size
        if size == 0:
            return offset


def _extension(data: bytes, start: int) -> tuple[Block, int | None]:
    if start + 2 > len(data):
        raise CorruptFile("The GIF file is truncated inside a block.")
    label = data[start + 1]
    end = _sub_blocks(data, start + 2)
    application = None
    loop = None
    if label == _APPLICATION:
        size = data[start + 2]
        application = data[start + 3 : start + 3 + size]
        if application in LOOP_APPS:
            loop = _loop_count(data, start + 3 + size)
    return Block(EXTENSION, start, end, label, application), loop


def _loop_count(data: bytes, offset: int) -> int | None:
    """The loop count in the sub-block after an animation identifier, if it is one."""
    sub = data[offset : offset + 4]
    if len(sub) == 4 and sub[0] == 3 and sub[1] == 1:
        return int.from_bytes(sub[2:4], "little")
    return None


def _delay(data: bytes, start: int) -> int:
    """The delay a graphic control extension at `start` gives the next frame."""
    sub = data[start + 2 : start + 6]
    return int.from_bytes(sub[2:4], "little") if len(sub) == 4 and sub[0] >= 4 else 0


def _image(data: bytes, start: int, delay: int) -> tuple[Block, Frame]:
    header = start + 1
    if header + _DESCRIPTOR.size + 1 > len(data):
        raise CorruptFile("The GIF file is truncated in a frame header.")
    left, top, width, height, packed = _DESCRIPTOR.unpack_from(data, header)
    if width == 0 or height == 0:
        raise CorruptFile("A frame of the GIF file has no pixels.")
    offset = header + _DESCRIPTOR.size + _colour_table(packed)
    if offset >= len(data):
        raise CorruptFile("The GIF file is truncated in a frame's colour table.")
    # The byte after the table is the LZW code size; the image data follows it.
    end = _sub_blocks(data, offset + 1)
    return Block(IMAGE, start, end), Frame(left, top, width, height, delay)


def without_blocks(data: bytes, layout: Layout, drop: set[int]) -> bytes:
    """The file with the blocks at these indices of `layout.blocks` left out.

    What remains is copied byte for byte and a trailer is written after it.
    """
    parts = [data[: layout.header_end]]
    parts += [
        data[block.start : block.end]
        for index, block in enumerate(layout.blocks)
        if index not in drop
    ]
    parts.append(bytes([_TRAILER]))
    return b"".join(parts)


def metadata_blocks(layout: Layout, keep_text: bool, keep_icc: bool) -> set[int]:
    """The indices of the blocks that only carry metadata, to drop.

    Comments and XMP go unless `keep_text`; a colour profile goes unless
    `keep_icc`; other applications' blocks always go, the loop count never.
    """
    drop = set()
    for index, block in enumerate(layout.blocks):
        if block.label == _COMMENT and not keep_text:
            drop.add(index)
        elif block.application is None or block.application in LOOP_APPS:
            continue
        elif block.application == XMP_APP:
            if not keep_text:
                drop.add(index)
        elif block.application == ICC_APP:
            if not keep_icc:
                drop.add(index)
        else:
            drop.add(index)
    return drop


def icc_profile(data: bytes, layout: Layout) -> bytes | None:
    """The colour profile an ICCRGBG1012 application extension carries, or None."""
    for block in layout.blocks:
        if block.application == ICC_APP:
            return b"".join(_payload(data, block.start + 3 + len(ICC_APP)))
    return None


def _payload(data: bytes, offset: int) -> list[bytes]:
    """The contents of the sub-blocks starting at `offset`, without their sizes."""
    parts = []
    while offset < len(data) and data[offset]:
        size = data[offset]
        parts.append(data[offset + 1 : offset + 1 + size])
        offset += 1 + size
    return parts
