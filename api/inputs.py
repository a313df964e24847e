"""Reading what a client sent, wherever it put it.

ImageRecycle clients put the same parameters in different places: the query string
on GET and DELETE, a multipart field on POST, a urlencoded body even on GET, now and
then a JSON body, and PHP's `name[key]=value` form for nested values. These helpers
look in every place, in a fixed order, so handlers ask for a name and get a value.
"""

from __future__ import annotations

import json
from typing import Any

from flask import g, request

from storage.errors import BadRequest

_EMPTY_PARAMS = ("", "[]", "{}", "null")
# The largest integer a float, and so every JSON client, holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1


def raw_value(name: str) -> Any:
    """The value of a top-level parameter: query string, form body, JSON body, or
    PHP bracket fields (`name[key]=...`) gathered into a dict; None if absent."""
    for source in (request.args, _form()):
        if name in source:
            return source[name]
    body = json_body()
    if name in body:
        return body[name]
    for source in (request.args, _form()):
        nested = _brackets(source, name)
        if nested:
            return nested
    return None


def json_body() -> dict[str, Any]:
    """The request's JSON object body, or {} when it has none."""
    if not request.is_json:
        return {}
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def decode_json(text: str) -> Any:
    """Decode JSON as clients send it: plain, with `\\/` escapes, twice encoded, or
    with every quote backslash-escaped (PHP's magic quotes)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = json.loads(text.replace('\\"', '"'))
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        value = json.loads(value)
    return value


def params() -> dict[str, Any]:
    """The `params` object; absent, empty, `[]`, `{}` and null all mean {}."""
    value = raw_value("params")
    if isinstance(value, str):
        if value.strip() in _EMPTY_PARAMS:
            return {}
        try:
            value = decode_json(value)
        except ValueError:
            raise BadRequest("params is not valid JSON.") from None
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("params must be a JSON object.")
    return value


def field(name: str, options: dict[str, Any]) -> Any:
    """A call's field, from `params` first, then from the request itself."""
    value = options.get(name)
    return raw_value(name) if value is None else value


def unquote(value: str) -> str:
    """Drop one pair of surrounding double quotes, as the API document's examples
    write values (`title="New subaccount"`)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def integer(
    value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_SAFE_INTEGER
) -> int | None:
    """An integer sent as a number or a string (`1600`, `"1600"`); None if absent.

    Numbers past 2**53 are refused: they do not survive a float, and JavaScript
    and PHP clients would read them back rounded.
    """
    if value is None or (isinstance(value, str) and unquote(value) == ""):
        return None
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be a whole number.")
    try:
        number = float(unquote(value)) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be a whole number.") from None
    if not number.is_integer():
        raise BadRequest(f"{name} must be a whole number.")
    if number < minimum:
        raise BadRequest(f"{name} must be at least {minimum}.")
    if number > maximum:
        raise BadRequest(f"{name} must be at most {maximum}.")
    return int(number)


def text(value: Any, name: str, *, max_length: int) -> str | None:
    """A text field, quotes removed; None if absent."""
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise BadRequest(f"{name} must be text.")
    result = unquote(str(value))
    if len(result) > max_length:
        raise BadRequest(f"{name} must be at most {max_length} characters.")
    return result


def _form() -> Any:
    # A route that streams its multipart body sets g.form from its own parser;
    # elsewhere Werkzeug parses urlencoded and multipart bodies for any method.
    return g.form if "form" in g else request.form


def _brackets(source: Any, name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {
        key[len(prefix) : -1]: value
        for key, value in source.items()
        if key.startswith(prefix) and key.endswith("]")
    }
