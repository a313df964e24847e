"""Uploads by `url` and callbacks, against real HTTP servers on 127.0.0.1 (which the
test deployment allow-lists; every other private address stays refused)."""

from __future__ import annotations

import json
import time

import pytest

from storage.accounts import Accounts
from tests.conftest import CORPUS
from tests.e2e.client import Client
from tests.workers.local_http import answer, local_server
from workers.fetching import verify

PHOTO = CORPUS / "images/jpeg/pillow_flower.jpg"


@pytest.fixture
def origin():
    """A web server holding one photo, as a customer's site would."""
    with local_server() as server:
        server.routes["/media/flower.jpg"] = answer(
            200, PHOTO.read_bytes(), {"Content-Type": "image/jpeg"}
        )
        yield server


@pytest.mark.parametrize("shape", ["top level", "nested in params"])
def test_upload_by_url(api, origin, shape):
    url = origin.url("/media/flower.jpg")
    if shape == "top level":
        response = api.upload(None, params={"compression_type": "lossless"}, url=url)
    else:
        nested = {"url": url, "params": {"compression_type": "lossless"}}
        response = api.upload(None, params=nested)
    assert response.status == 201, response.body
    record = response.json()
    assert record["filename"] == "flower.jpg"
    assert record["compression_type"] == "lossless"
    assert api.request("GET", record["origin_url"]).body == PHOTO.read_bytes()


REFUSED = {
    "private address": "http://10.1.2.3/a.jpg",
    "metadata address": "http://169.254.169.254/latest/meta-data/",
    "decimal loopback": "http://2130706433/a.jpg",
    "mapped IPv6": "http://[::ffff:192.168.0.1]/a.jpg",
    "unspecified": "http://0.0.0.0/a.jpg",
    "not http": "file:///etc/passwd",
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_refused_urls_answer_400_quickly(api, case):
    started = time.monotonic()
    response = api.upload(None, url=REFUSED[case])
    assert response.status == 400, response.body
    assert time.monotonic() - started < 5
    assert api.get("/v1/images").json()["total"] == 0


def test_failing_url_answers_400(api, origin):
    response = api.upload(None, url=origin.url("/media/missing.jpg"))
    assert response.status == 400
    assert "url" in response.json()["errMessage"]


def test_url_over_the_size_limit_is_413(live_api, e2e_stores, origin):
    small = Accounts(e2e_stores.redis).create(title="small", file_max_size=1000)
    client = Client(live_api, small.api_key, small.api_secret)
    response = client.upload(None, url=origin.url("/media/flower.jpg"))
    assert response.status == 413, response.body


def test_callback_gets_the_signed_record(api, account, origin):
    origin.routes["/hook"] = answer(204)
    response = api.upload(
        PHOTO.read_bytes(), PHOTO.name, {"callback_url": origin.url("/hook")}
    )
    assert response.status == 202, response.body
    assert response.json()["status"] in ("queued", "processing", "done")
    deadline = time.monotonic() + 60
    while not any(r.path == "/hook" for r in origin.received):
        assert time.monotonic() < deadline, "the callback never came"
        time.sleep(0.1)
    call = next(r for r in origin.received if r.path == "/hook")
    signature = call.headers["X-Squeezer-Signature"]
    assert verify(call.body, account.api_secret, signature)
    posted = json.loads(call.body)
    assert posted["id"] == response.json()["id"]
    assert posted["status"] == "done"


def test_callback_is_retried_while_the_receiver_fails(api, origin):
    calls = []

    def flaky(handler):
        calls.append(time.monotonic())
        answer(503 if len(calls) < 2 else 200)(handler)

    origin.routes["/flaky"] = flaky
    response = api.upload(
        PHOTO.read_bytes(), PHOTO.name, {"callback_url": origin.url("/flaky")}
    )
    assert response.status == 202
    deadline = time.monotonic() + 60
    while len(calls) < 2:
        assert time.monotonic() < deadline, f"retried {len(calls) - 1} times"
        time.sleep(0.1)


def test_refused_callback_url_is_400(api):
    response = api.upload(
        PHOTO.read_bytes(), PHOTO.name, {"callback_url": "http://192.168.1.1/hook"}
    )
    assert response.status == 400, response.body
    assert api.get("/v1/images").json()["total"] == 0
