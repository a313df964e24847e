"""Decoders for the general-purpose PDF stream filters that stop at a byte budget.

qpdf decodes a stream whole before anyone can see its size, so a small Flate bomb
would fill memory first; these decoders count while they decode and give up the
moment a stream's output passes what the file has left of its budget.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib

from workers.optimizers.errors import CorruptFile, LimitExceeded

GENERAL_FILTERS = frozenset(
    {
        "/FlateDecode",
        "/LZWDecode",
        "/ASCII85Decode",
        "/ASCIIHexDecode",
        "/RunLengthDecode",
    }
)
_CHUNK = 1 << 20
_WHITESPACE = re.compile(rb"[\x00\t\n\x0c\r ]+")


class Budget:
    """What is left of the decoded bytes one file may produce."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, count: int) -> None:
        """Count `count` more decoded bytes; raise LimitExceeded past the limit."""
        self.left -= count
        if self.left < 0:
            raise LimitExceeded(
                f"The PDF's streams decode to more than {self.limit} bytes, "
                "over the limit on decoded stream data."
            )


def decode(data: bytes, name: str, parms: dict[str, int], budget: Budget) -> bytes:
    """Undo one general filter, counting its output against `budget`.

    A Flate or LZW stream's predictor, if any, is not undone: the caller keeps the
    predictor and encodes the rows again as they are.
    """
    try:
        if name == "/FlateDecode":
            return _inflate(data, budget)
        if name == "/LZWDecode":
            return _lzw(data, parms.get("/EarlyChange", 1), budget)
        if name == "/ASCII85Decode":
            out = _ascii85(data)
        elif name == "/ASCIIHexDecode":
            out = _ascii_hex(data)
        elif name == "/RunLengthDecode":
            out = _run_length(data, budget)
        else:
            raise ValueError(f"not a general filter: {name}")
    except (ValueError, zlib.error, binascii.Error) as error:
        raise CorruptFile(f"A PDF stream does not decode ({name[1:]}).") from error
    budget.spend(len(out))
    return out


def _inflate(data: bytes, budget: Budget) -> bytes:
    """Inflate a zlib stream chunk by chunk; a truncated tail keeps what decoded."""
    inflater = zlib.decompressobj()
    parts = []
    pending = data
    while pending:
        part = inflater.decompress(pending, _CHUNK)
        budget.spend(len(part))
        parts.append(part)
        pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    if not inflater.eof:
        # Readers accept a stream without its end marker, so the work must too.
        part = inflater.flush()
        budget.spend(len(part))
        parts.append(part)
    return b"".join(parts)


def _ascii85(data: bytes) -> bytes:
    text = _WHITESPACE.sub(b"", data)
    if text.startswith(b"<~"):
        text = text[2:]
    end = text.find(b"~>")
    if end >= 0:
        text = text[:end]
    return base64.a85decode(text)


def _ascii_hex(data: bytes) -> bytes:
    text = _WHITESPACE.sub(b"", data)
    end = text.find(b">")
    if end >= 0:
        text = text[:end]
    if len(text) % 2:
        text += b"0"
    return binascii.unhexlify(text)


def _run_length(data: bytes, budget: Budget) -> bytes:
    out = bytearray()
    index = 0
    while index < len(data):
        length = data[index]
        if length == 128:
            break
        if length < 128:
            out += data[index + 1 : index + 2 + length]
            index += length + 2
        else:
            out += data[index + 1 : index + 2] * (257 - length)
            index += 2
        if len(out) > budget.left:
            budget.spend(len(out))
    return bytes(out)


def _lzw(data: bytes, early_change: int, budget: Budget) -> bytes:
    """The LZW of PDF and TIFF: codes of 9 to 12 bits, most significant bit first."""
    out = bytearray()
    table = [bytes([n]) for n in range(256)] + [b"", b""]
    width = 9
    previous = b""
    buffer = 0
    bits = 0
    for byte in data:
        buffer = (buffer << 8) | byte
        bits += 8
        while bits >= width:
            bits -= width
            code = (buffer >> bits) & ((1 << width) - 1)
            if code == 256:
                table = table[:258]
                width = 9
                previous = b""
                continue
            if code == 257:
                return bytes(out)
            if code < len(table):
                entry = table[code]
                if previous and len(table) < 4096:
                    table.append(previous + entry[:1])
            elif code == len(table) and previous:
                entry = previous + previous[:1]
                table.append(entry)
            else:
                raise ValueError("LZW code out of range")
            out += entry
            if len(out) > budget.left:
                budget.spend(len(out))
            previous = entry
            if len(table) + early_change >= (1 << width) and width < 12:
                width += 1
    return bytes(out)
