"""Lossless re-encoding of a PDF's streams: the same decoded bytes in fewer bytes.

Every stream whose filters are general-purpose is decoded (within the file's budget
of decoded bytes) and encoded again with the stronger of zlib and libdeflate; JPEG
streams get optimal Huffman tables with every DCT coefficient kept; identical streams
are merged into one. Image codecs other than JPEG are copied as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import deflate
import mozjpeg_lossless_optimization
import pikepdf

from workers.optimizers.errors import CorruptFile
from workers.optimizers.pdffilters import GENERAL_FILTERS, Budget, decode

# Measured on the corpus: higher levels cost far more time than the bytes they save.
_SMALL_LIMIT = 1 << 20
_SMALL_LEVEL = 10
_LARGE_LEVEL = 9
_HUGE_LIMIT = 1 << 24
_HUGE_LEVEL = 6
# Compressed image data gains little from deflate; a quick try is enough.
_WRAPPED_LEVEL = 6
_JPEG = "/DCTDecode"


def filter_chain(stream: pikepdf.Stream) -> list[tuple[str, dict[str, int]]]:
    """The stream's filters in decoding order, each with its decode parameters."""
    filters = stream.get("/Filter")
    parms = stream.get("/DecodeParms")
    if filters is None:
        return []
    names = [filters] if isinstance(filters, pikepdf.Name) else list(filters)
    parm_list = list(parms) if isinstance(parms, pikepdf.Array) else [parms]
    chain = []
    for index, name in enumerate(names):
        entry = parm_list[index] if index < len(parm_list) else None
        values = {}
        if isinstance(entry, pikepdf.Dictionary):
            values = {
                str(key): value
                for key, value in entry.items()
                if isinstance(value, int)
            }
        chain.append((str(name), values))
    return chain


def decoded_general(
    stream: pikepdf.Stream, budget: Budget
) -> tuple[bytes, list[tuple[str, dict[str, int]]]] | None:
    """Undo the stream's general filters; the data and the filters left over.

    None when a filter in front of the general ones (or one unknown) is in the way.
    A predictor of the last general filter stays applied and is handed back with it.
    """
    chain = filter_chain(stream)
    data = stream.read_raw_bytes()
    general = 0
    while general < len(chain) and chain[general][0] in GENERAL_FILTERS:
        general += 1
    for index, (name, parms) in enumerate(chain[:general]):
        if parms.get("/Predictor", 1) > 1 and index < general - 1:
            return None
        data = decode(data, name, parms, budget)
    if not chain:
        budget.spend(len(data))
    if general and chain[general - 1][1].get("/Predictor", 1) > 1:
        name, parms = chain[general - 1]
        rest = [("/FlateDecode", _predictor_parms(parms)), *chain[general:]]
        return data, rest
    return data, chain[general:]


def _predictor_parms(parms: dict[str, int]) -> dict[str, int]:
    keep = ("/Predictor", "/Colors", "/BitsPerComponent", "/Columns")
    return {key: parms[key] for key in keep if key in parms}


def _deflated(data: bytes, level: int | None = None) -> bytes:
    """A zlib stream of `data` by libdeflate, at a level worth the stream's size."""
    if level is None and len(data) <= _SMALL_LIMIT:
        level = _SMALL_LEVEL
    elif level is None:
        level = _LARGE_LEVEL if len(data) <= _HUGE_LIMIT else _HUGE_LEVEL
    return bytes(deflate.zlib_compress(data, level))


def _optimized_jpeg(data: bytes) -> bytes:
    try:
        return bytes(mozjpeg_lossless_optimization.optimize(data))
    except Exception:  # the library raises plain errors: keep the JPEG as it is
        return data


def _write(
    stream: pikepdf.Stream, data: bytes, filters: list[tuple[str, dict[str, int]]]
) -> None:
    if not filters:
        stream.write(data)
        return
    names = pikepdf.Array([pikepdf.Name(name) for name, _ in filters])
    parms = pikepdf.Array(
        [pikepdf.Dictionary(parms) if parms else None for _, parms in filters]
    )
    if len(filters) == 1:
        stream.write(data, filter=names[0], decode_parms=parms[0])
    else:
        stream.write(data, filter=names, decode_parms=parms)


def recompress(stream: pikepdf.Stream, budget: Budget) -> None:
    """Re-encode one stream in place if that makes it smaller, keeping its content."""
    if stream.get("/Type") == "/Metadata":
        # PDF/A wants XMP readable as it is; count it and leave it.
        budget.spend(len(stream.read_raw_bytes()))
        return
    original = len(stream.read_raw_bytes())
    decoded = decoded_general(stream, budget)
    if decoded is None:
        return
    data, rest = decoded
    if rest and rest[0][0] == _JPEG and len(rest) == 1:
        data = _optimized_jpeg(data)
    candidates: list[tuple[bytes, list[tuple[str, dict[str, int]]]]] = []
    if rest and rest[0][0] == "/FlateDecode":
        candidates.append((_deflated(data), rest))
    elif not rest or (rest[0][0] == _JPEG and len(rest) == 1):
        level = _WRAPPED_LEVEL if rest else None
        candidates.append((_deflated(data, level), [("/FlateDecode", {}), *rest]))
        if rest:
            candidates.append((data, rest))
    if not candidates:
        return
    best, filters = min(candidates, key=lambda candidate: len(candidate[0]))
    if len(best) < original:
        _write(stream, best, filters)


def streams(pdf: pikepdf.Pdf) -> Iterator[pikepdf.Stream]:
    """Every stream object of the file, each once."""
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream):
            yield obj


def merge_duplicates(pdf: pikepdf.Pdf) -> int:
    """Point every reference to a stream at the first of its identical copies.

    Copies left without references are not written out. Returns how many merged.
    """
    first: dict[bytes, pikepdf.Object] = {}
    replacement: dict[tuple[int, int], pikepdf.Object] = {}
    for stream in streams(pdf):
        key = _stream_key(stream)
        if key in first:
            replacement[stream.objgen] = first[key]
        else:
            first[key] = stream
    if not replacement:
        return 0
    for obj in list(pdf.objects):
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)):
            _repoint(obj, replacement)
    _repoint(pdf.trailer, replacement)
    return len(replacement)


def _stream_key(stream: pikepdf.Stream) -> bytes:
    digest = hashlib.sha256(stream.read_raw_bytes()).digest()
    return digest + stream.stream_dict.unparse()


def _repoint(
    container: pikepdf.Object, replacement: dict[tuple[int, int], pikepdf.Object]
) -> None:
    if isinstance(container, pikepdf.Array):
        items: list[tuple[object, pikepdf.Object]] = list(enumerate(container))
    else:
        items = list(container.items())
    for key, value in items:
        if not isinstance(value, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)):
            continue
        if value.is_indirect:
            target = replacement.get(value.objgen)
            if target is not None:
                container[key] = target  # type: ignore[index]
        elif not isinstance(value, pikepdf.Stream):
            _repoint(value, replacement)


def check_decodable(pdf: pikepdf.Pdf) -> None:
    """Raise CorruptFile if the file's object table cannot be walked at all."""
    try:
        for _ in pdf.objects:
            pass
    except pikepdf.PdfError as error:
        raise CorruptFile("The PDF's objects cannot be read.") from error
