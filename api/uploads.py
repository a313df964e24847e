"""The options of an upload, read from `params` by the rules real clients need.

`params` may hold the options directly, or, as older clients send it, a `url` with
the options nested one level down in its own `params`. Every option may be null,
numbers may be strings, and unknown keys are ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from api import inputs
from storage.errors import BadRequest

LOSSY, LOSSLESS = "lossy", "lossless"
PRESERVABLE = ("orientation", "icc", "copyright", "datetime", "location")
CONVERT_TARGETS = ("webp", "avif")
MAX_DIMENSION = 100_000


@dataclass(frozen=True)
class UploadOptions:
    """What the client asked for. `resize` bounds of 0 mean no bound on that side."""

    compression_type: str = LOSSY
    resize_width: int = 0
    resize_height: int = 0
    preserve_metas: tuple[str, ...] = ()
    convert: str = ""

    def to_json(self) -> str:
        """A canonical form: equal options give equal text (used for reuse)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class UploadRequest:
    """The options and where the file comes from, when it is not a multipart part."""

    options: UploadOptions
    url: str | None
    callback_url: str | None


def parse(params: dict[str, Any]) -> UploadRequest:
    """Read an upload's options, its `url` and its `callback_url`."""
    url = _text(inputs.field("url", params), "url")
    nested = params.get("params")
    if nested is not None:
        params = _as_object(nested, "params")
    options = UploadOptions(
        compression_type=_compression_type(params.get("compression_type")),
        **_resize(params.get("resize")),
        preserve_metas=_preserve(params.get("preserve_metas")),
        convert=_convert(params.get("convert")),
    )
    callback = inputs.field("callback_url", params)
    return UploadRequest(options, url or None, _text(callback, "callback_url") or None)


def _compression_type(value: Any) -> str:
    if value is None or value == "":
        return LOSSY
    text = str(value).strip().strip('"').lower()
    if text not in (LOSSY, LOSSLESS):
        raise BadRequest("compression_type must be lossy or lossless.")
    return text


def _resize(value: Any) -> dict[str, int]:
    if value in (None, "", [], {}):
        return {}
    value = _as_object(value, "resize")
    bounds = {}
    for side in ("width", "height"):
        bound = inputs.integer(value.get(side), f"resize {side}") or 0
        if bound > MAX_DIMENSION:
            raise BadRequest(f"resize {side} must be at most {MAX_DIMENSION}.")
        bounds[f"resize_{side}"] = bound
    return bounds


def _preserve(value: Any) -> tuple[str, ...]:
    if value in (None, "", [], {}):
        return ()
    if isinstance(value, str):
        try:
            value = inputs.decode_json(value)
        except ValueError:
            value = value.split(",")
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        raise BadRequest("preserve_metas must be a list of names.")
    names = {str(name).strip().lower() for name in value if name is not None}
    return tuple(name for name in PRESERVABLE if name in names)


def _convert(value: Any) -> str:
    if value in (None, "", False):
        return ""
    text = str(value).strip().lower()
    if text not in CONVERT_TARGETS:
        raise BadRequest("convert must be webp or avif.")
    return text


def _text(value: Any, name: str) -> str | None:
    return inputs.text(value, name, max_length=8192)


def _as_object(value: Any, name: str) -> dict[str, Any]:
    """A nested object, given as one or as its JSON text; `name` is for messages."""
    if isinstance(value, str):
        try:
            value = inputs.decode_json(value) if value.strip() else {}
        except ValueError:
            raise BadRequest(f"{name} is not valid JSON.") from None
    if value in (None, []):
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object.")
    return value
