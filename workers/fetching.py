"""Fetching a client's `url` and posting its callbacks, without reaching inside our
network.

Every URL, the first and each redirect's, passes the checks of targets.py and is
fetched over a connection pinned to the addresses that passed (pinned.py); a
connect timeout, a total deadline and a byte cap keep a slow or huge answer from
holding a worker. Callbacks are signed with the account's secret.
"""

from __future__ import annotations

import email.message
import hashlib
import hmac
import http.client
import ssl
import tempfile
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

from workers.pinned import CHUNK, Deadline, send
from workers.targets import (
    FetchError,
    FetchFailed,
    FetchRefused,
    Target,
    check_url,
)

__all__ = [
    "CallbackError",
    "CallbackRejected",
    "CallbackTransient",
    "FetchError",
    "FetchFailed",
    "FetchRefused",
    "FetchTooLarge",
    "Fetched",
    "check_url",
    "fetch",
    "post_callback",
    "sign",
    "verify",
]

DEFAULT_USER_AGENT = "Squeezer/0.1 (+image fetch)"
IN_MEMORY = 1 << 20
MAX_FILENAME = 255
REDIRECTS = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})
SIGNATURE_HEADER = "X-Squeezer-Signature"


class FetchTooLarge(FetchFailed):
    """The body is larger than the cap, declared up front or found while reading."""


class CallbackError(Exception):
    """A callback that was not delivered; `message` is fit for logs and the record."""

    def __init__(self, message: str, detail: str = "", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or message
        self.status = status


class CallbackTransient(CallbackError):
    """The receiver is down, slow or answered 5xx: worth trying again later."""


class CallbackRejected(CallbackError):
    """The address is refused or the receiver answered 4xx: trying again is futile."""


@dataclass
class Fetched:
    """A downloaded body, rewound, on a spooled temporary file the caller closes."""

    body: IO[bytes]
    url: str
    filename: str
    size: int
    content_type: str

    def close(self) -> None:
        self.body.close()


def fetch(
    url: str,
    max_bytes: int,
    *,
    connect_timeout: float,
    total_timeout: float,
    max_redirects: int = 3,
    allow_hosts: Collection[str] = frozenset(),
    user_agent: str = DEFAULT_USER_AGENT,
    tls_context: ssl.SSLContext | None = None,
) -> Fetched:
    """Download a client's URL into a spooled temporary file, within the limits.

    Raises FetchRefused for an address we do not fetch from (redirects
    included), FetchTooLarge past `max_bytes`, and FetchFailed for DNS,
    connection, TLS, status or time failures, all within `total_timeout`.
    """
    deadline = Deadline(total_timeout)
    headers = {
        "User-Agent": user_agent,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    try:
        target = check_url(url, allow_hosts, timeout=deadline.bounded(connect_timeout))
        for hop in range(max_redirects + 1):
            connection, response = send(
                target, "GET", headers, None, deadline, connect_timeout, tls_context
            )
            with closing(connection), response:
                if response.status not in REDIRECTS:
                    return _receive(response, url, target, max_bytes)
                location = response.getheader("Location")
            if not location:
                raise FetchFailed(
                    f"the server answered {response.status} without a Location"
                )
            if hop == max_redirects:
                break
            target = _redirect(urljoin(target.url, location), allow_hosts, deadline)
        raise FetchFailed(f"the URL redirects more than {max_redirects} times")
    except TimeoutError:
        if deadline.passed:
            raise FetchFailed(
                f"the file did not arrive within {total_timeout:g} seconds"
            ) from None
        raise FetchFailed(
            f"the server did not answer within {connect_timeout:g} seconds"
        ) from None
    except ssl.SSLCertVerificationError as error:
        raise FetchFailed(
            "the server's TLS certificate could not be verified", str(error)
        ) from None
    except ssl.SSLError as error:
        raise FetchFailed("the TLS connection failed", str(error)) from None
    except OSError as error:
        raise FetchFailed("could not connect to the server", str(error)) from None
    except http.client.HTTPException as error:
        raise FetchFailed(
            "the server's answer was not valid HTTP", repr(error)
        ) from None


def _redirect(url: str, allow_hosts: Collection[str], deadline: Deadline) -> Target:
    try:
        return check_url(url, allow_hosts, timeout=deadline.remaining())
    except FetchError as error:
        raise type(error)(
            "the URL redirects to a location that is not fetched",
            f"redirect to {url}: {error.detail}",
        ) from None


def _receive(
    response: http.client.HTTPResponse, url: str, target: Target, max_bytes: int
) -> Fetched:
    if not 200 <= response.status < 300 or response.status == 206:
        raise FetchFailed(f"the server answered {response.status} {response.reason}")
    if response.length is not None and response.length > max_bytes:
        raise FetchTooLarge(f"the file is larger than {max_bytes} bytes")
    body = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)  # noqa: SIM115 - the caller closes it
    try:
        size = 0
        while chunk := response.read1(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise FetchTooLarge(f"the file is larger than {max_bytes} bytes")
            body.write(chunk)
        if response.length:
            raise FetchFailed("the server closed the connection before the end")
        body.seek(0)
    except BaseException:
        body.close()
        raise
    filename = _filename(response.getheader("Content-Disposition"), url, target.url)
    content_type = response.getheader("Content-Type") or ""
    return Fetched(body, target.url, filename, size, content_type)


def _filename(disposition: str | None, *urls: str) -> str:
    """The base name given by Content-Disposition, or else by the URL paths."""
    if disposition:
        header = email.message.Message()
        header["Content-Disposition"] = disposition
        name = _base_name(header.get_filename() or "")
        if name:
            return name
    for url in urls:
        name = _base_name(unquote(urlsplit(url).path))
        if name:
            return name
    return "download"


def _base_name(path: str) -> str:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return "" if name in (".", "..") else name[:MAX_FILENAME]


def sign(body: bytes, secret: str) -> str:
    """The `X-Squeezer-Signature` value of a callback body: its HMAC-SHA256 in hex."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, signature: str) -> bool:
    """Whether a signature header matches a body, compared in constant time."""
    return hmac.compare_digest(sign(body, secret), signature.strip())


def post_callback(
    url: str,
    body: bytes,
    secret: str,
    *,
    timeout: float,
    allow_hosts: Collection[str] = frozenset(),
    user_agent: str = DEFAULT_USER_AGENT,
    tls_context: ssl.SSLContext | None = None,
) -> int:
    """POST a signed JSON body to a callback URL and return the receiver's status.

    Raises CallbackRejected for a refused address, a 3xx or a 4xx (except 408,
    425 and 429), and CallbackTransient for DNS, connection, time and 5xx
    failures, which the caller retries with back-off.
    """
    deadline = Deadline(timeout)
    try:
        target = check_url(url, allow_hosts, timeout=deadline.remaining())
    except FetchRefused as error:
        raise CallbackRejected(error.message, error.detail) from None
    except FetchFailed as error:
        raise CallbackTransient(error.message, error.detail) from None
    headers = {
        "User-Agent": user_agent,
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        "Connection": "close",
    }
    try:
        connection, response = send(
            target, "POST", headers, body, deadline, timeout, tls_context
        )
        with closing(connection), response:
            status = response.status
    except TimeoutError:
        raise CallbackTransient(
            f"the receiver did not answer within {timeout:g} seconds"
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise CallbackTransient("could not reach the receiver", repr(error)) from None
    if 200 <= status < 300:
        return status
    message = f"the receiver answered {status}"
    if status >= 500 or status in TRANSIENT_STATUSES:
        raise CallbackTransient(message, status=status)
    raise CallbackRejected(message, status=status)
