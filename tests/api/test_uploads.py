"""The options of an upload as clients send them, and a clear 400 for bad ones."""

from __future__ import annotations

import pytest
from flask import Flask

from api.uploads import UploadOptions, parse
from storage.errors import BadRequest

GOOD = {
    "nothing": ({}, UploadOptions()),
    "lossless": ({"compression_type": "lossless"}, UploadOptions("lossless")),
    "null type": ({"compression_type": None}, UploadOptions()),
    "resize as strings": (
        {"resize": {"width": "1600", "height": ""}},
        UploadOptions(resize_width=1600),
    ),
    "resize as JSON text": (
        {"resize": '{"height": 90}'},
        UploadOptions(resize_height=90),
    ),
    "resize empty list": ({"resize": []}, UploadOptions()),
    "preserve as text": (
        {"preserve_metas": "icc,orientation"},
        UploadOptions(preserve_metas=("orientation", "icc")),
    ),
    "nested under url": (
        {"url": "https://example.com/a.png", "params": {"convert": "WEBP"}},
        UploadOptions(convert="webp"),
    ),
}

BAD = {
    "unknown compression": ({"compression_type": "ultra"}, "compression_type"),
    "resize a word": ({"resize": "abc"}, "resize is not valid JSON"),
    "resize a list": ({"resize": [1, 2]}, "resize must be a JSON object"),
    "negative width": ({"resize": {"width": -1}}, "resize width must be at least"),
    "fractional height": ({"resize": {"height": 1.5}}, "resize height"),
    "huge width": ({"resize": {"width": 10**30}}, "resize width must be at most"),
    "preserve a number": ({"preserve_metas": 5}, "preserve_metas"),
    "unknown convert": ({"convert": "bmp"}, "convert must be webp or avif"),
    "nested params a number": ({"params": "5"}, "params must be a JSON object"),
}


@pytest.fixture
def request_context():
    with Flask(__name__).test_request_context("/v1/images", method="POST"):
        yield


@pytest.mark.parametrize("case", GOOD, ids=list(GOOD))
@pytest.mark.usefixtures("request_context")
def test_options_are_read_as_clients_send_them(case):
    params, expected = GOOD[case]
    assert parse(params).options == expected


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
@pytest.mark.usefixtures("request_context")
def test_bad_options_name_the_field(case):
    params, message = BAD[case]
    with pytest.raises(BadRequest) as raised:
        parse(params)
    assert message in raised.value.message, raised.value.message
    assert raised.value.status == 400
