"""Callbacks: the signature a receiver checks, and which delivery failures are worth
a retry, against real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.workers.local_http import (
    Handler,
    LocalServer,
    answer,
    closed_port,
    local_server,
    redirect,
)
from workers import fetching
from workers.fetching import CallbackRejected, CallbackTransient

SECRET = "s3cr3t-of-the-account"
LOCAL = frozenset({"127.0.0.1"})
RECORD = json.dumps({"id": 42, "status": "done", "name": "photo.jpg"}).encode()


def test_the_signature_is_the_hmac_sha256_of_the_body() -> None:
    # The HMAC-SHA256 test vector published for this key and message.
    signature = fetching.sign(b"The quick brown fox jumps over the lazy dog", "key")
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert signature == expected, f"expected {expected}, got {signature}"


VERIFY = [
    ("matching", RECORD, SECRET, True),
    ("other-body", RECORD + b" ", SECRET, False),
    ("other-secret", RECORD, SECRET + "x", False),
]


@pytest.mark.parametrize(
    ("body", "secret", "valid"), [c[1:] for c in VERIFY], ids=[c[0] for c in VERIFY]
)
def test_verify_accepts_only_the_signature_of_that_body_and_secret(
    body: bytes, secret: str, valid: bool
) -> None:
    signature = fetching.sign(RECORD, SECRET)
    assert fetching.verify(body, secret, signature) is valid, f"expected {valid}"


def _checking_signature(handler: Handler) -> None:
    """A receiver as a client would write it: 204 if the signature holds, else 401."""
    received = handler.server.received[-1]
    signature = received.headers.get(fetching.SIGNATURE_HEADER, "")
    status = 204 if fetching.verify(received.body, SECRET, signature) else 401
    answer(status)(handler)


@pytest.fixture
def receiver() -> Iterator[LocalServer]:
    with local_server() as running:
        running.routes["/hook"] = _checking_signature
        yield running


def post(
    url: str,
    secret: str = SECRET,
    *,
    timeout: float = 2.0,
    allow_hosts: frozenset[str] = LOCAL,
) -> int:
    """Post the record with the test's usual limits, through the allow-list."""
    return fetching.post_callback(
        url, RECORD, secret, timeout=timeout, allow_hosts=allow_hosts
    )


def test_the_receiver_verifies_the_signed_record(receiver: LocalServer) -> None:
    status = post(receiver.url("/hook"))
    assert status == 204, f"expected the receiver to accept the signature: {status}"
    request = receiver.received[0]
    assert request.method == "POST", f"expected a POST, got {request.method}"
    assert request.body == RECORD, "expected the record exactly as given"
    content_type = request.headers["Content-Type"]
    assert content_type == "application/json", f"expected JSON, got {content_type}"


def test_a_record_signed_with_another_secret_is_rejected(receiver: LocalServer) -> None:
    with pytest.raises(CallbackRejected, match="answered 401") as rejected:
        post(receiver.url("/hook"), secret="not-the-account-secret")
    assert rejected.value.status == 401, "expected the receiver's status on the error"


STATUSES = [
    ("ok", 200, None),
    ("accepted", 202, None),
    ("bad-request", 400, CallbackRejected),
    ("not-found", 404, CallbackRejected),
    ("gone", 410, CallbackRejected),
    ("request-timeout", 408, CallbackTransient),
    ("too-many-requests", 429, CallbackTransient),
    ("server-error", 500, CallbackTransient),
    ("bad-gateway", 502, CallbackTransient),
    ("unavailable", 503, CallbackTransient),
]


@pytest.mark.parametrize(
    ("status", "error"), [c[1:] for c in STATUSES], ids=[c[0] for c in STATUSES]
)
def test_the_receivers_status_decides_whether_to_retry(
    receiver: LocalServer, status: int, error: type[Exception] | None
) -> None:
    receiver.routes["/status"] = answer(status, b"{}")
    if error is None:
        assert post(receiver.url("/status")) == status, f"expected {status} returned"
        return
    with pytest.raises(error, match=f"answered {status}"):
        post(receiver.url("/status"))


def test_a_redirect_is_not_followed(receiver: LocalServer) -> None:
    receiver.routes["/moved"] = redirect("/hook", 307)
    with pytest.raises(CallbackRejected, match="answered 307"):
        post(receiver.url("/moved"))
    assert receiver.paths() == ["/moved"], f"expected one request: {receiver.paths()}"


REFUSED = [
    ("loopback-not-allowed", "http://127.0.0.1:{port}/hook"),
    ("localhost", "http://localhost:{port}/hook"),
    ("metadata", "http://169.254.169.254/latest/meta-data/"),
    ("mapped-loopback", "http://[::ffff:127.0.0.1]:{port}/hook"),
    ("decimal-loopback", "http://2130706433:{port}/hook"),
    ("private", "http://192.168.0.10/hook"),
    ("not-http", "ftp://example.com/hook"),
]


@pytest.mark.parametrize("url", [c[1] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_refused_address_is_rejected_without_a_request(
    receiver: LocalServer, url: str
) -> None:
    with pytest.raises(CallbackRejected):
        post(url.format(port=receiver.port), allow_hosts=frozenset())
    assert receiver.received == [], "expected no request to a refused address"


def test_a_receiver_that_is_down_is_transient() -> None:
    with pytest.raises(CallbackTransient, match="could not reach"):
        post(f"http://127.0.0.1:{closed_port()}/hook")


def _stalls(handler: Handler) -> None:
    time.sleep(2)
    answer(204)(handler)


def test_a_receiver_slower_than_the_timeout_is_transient(receiver: LocalServer) -> None:
    receiver.routes["/slow"] = _stalls
    started = time.monotonic()
    with pytest.raises(CallbackTransient, match=r"within 0\.5 seconds"):
        post(receiver.url("/slow"), timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"expected the post cut off near 0.5 s, took {elapsed:.2f} s"
