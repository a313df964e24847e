"""Fetching a client's `url` and posting its callbacks, without reaching inside our
network.

A host is resolved once, every address it resolves to is checked, and the
connection goes to an address that was checked, so a second DNS answer cannot
redirect it. Redirects are re-checked hop by hop, and a connect timeout, a total
deadline and a byte cap keep a slow or huge answer from holding a worker.
"""

from __future__ import annotations

import email.message
import hashlib
import hmac
import http.client
import io
import ipaddress
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass
from typing import IO
from urllib.parse import quote, unquote, urljoin, urlsplit

DEFAULT_USER_AGENT = "Squeezer/0.1 (+image fetch)"
CHUNK = 64 * 1024
IN_MEMORY = 1 << 20
MAX_URL_LENGTH = 8192
MAX_FILENAME = 255
REDIRECTS = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({408, 425, 429})
SIGNATURE_HEADER = "X-Squeezer-Signature"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """A URL that was not fetched: `message` is fit for the client, `detail` for logs.

    The message names at most what the client sent, never an address a host
    resolved to or a redirect led to.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message


class FetchRefused(FetchError):
    """The URL, or an address it leads to, is not one we fetch from."""


class FetchFailed(FetchError):
    """The fetch was allowed but did not succeed: DNS, connection, time or status."""


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


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, with the addresses it may be fetched from."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


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


def _networks(*rows: tuple[str, str]) -> tuple[tuple[ipaddress._BaseNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rows)


# The first row that holds an address names why it is refused; metadata rows
# come first because they sit inside wider link-local, private or shared ranges.
_REFUSED = _networks(
    ("169.254.169.254/32", "cloud metadata"),
    ("169.254.169.253/32", "cloud metadata"),
    ("169.254.170.2/32", "cloud metadata"),
    ("100.100.100.200/32", "cloud metadata"),
    ("168.63.129.16/32", "cloud metadata"),
    ("192.0.0.192/32", "cloud metadata"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fd00:ec2::253/128", "cloud metadata"),
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),
    ("2001:db8::/32", "reserved"),
    ("3fff::/20", "reserved"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),
    ("ff00::/8", "multicast"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_HEX_PART = re.compile(r"0x[0-9a-f]*")
_OCTAL_PART = re.compile(r"0[0-7]+")
_DECIMAL_PART = re.compile(r"0|[1-9][0-9]*")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def address_refusal(address: IPAddress) -> str | None:
    """Why an address is not fetched from ("loopback", "private", ...), or None.

    IPv6 forms that carry an IPv4 address (mapped, compatible, translated,
    NAT64, 6to4, Teredo) are judged by the IPv4 address they carry as well.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_refusal(address.ipv4_mapped)
        if address.scope_id:
            return "link-local"
    for network, reason in _REFUSED:
        if address in network:
            return reason
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        for inner in embedded:
            reason = address_refusal(inner)
            if reason is not None:
                return reason
        if address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED:
            return "reserved"
        if embedded and (address in _NAT64 or address.sixtofour is not None):
            return None
    return _flagged(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if any(address in net for net in (_IPV4_COMPATIBLE, _IPV4_TRANSLATED, _NAT64)):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    return []


def _flagged(address: IPAddress) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_url(
    url: str, allow_hosts: Collection[str] = frozenset(), *, timeout: float = 10.0
) -> Target:
    """Check a URL and resolve its host, refusing it if any address is not public.

    Hosts in `allow_hosts` (an operator's list, for testing), matched as
    written, skip the address check. Raises FetchRefused for a URL we do not
    fetch from and FetchFailed when the host does not resolve within `timeout`
    seconds.
    """
    scheme, host, port, path = _split(url)
    literal = _ip_literal(host)
    allowed = {name.lower().rstrip(".") for name in allow_hosts}
    skip_check = host in allowed
    if isinstance(literal, ipaddress.IPv6Address) and literal.ipv4_mapped:
        addresses: tuple[IPAddress, ...] = (literal.ipv4_mapped,)
    elif literal is not None:
        addresses = (literal,)
    else:
        addresses = _resolve(host, port, timeout)
    if not skip_check:
        for address in addresses:
            reason = address_refusal(address)
            if reason is None:
                continue
            if literal is not None:
                raise FetchRefused(f"the address {host} is not public", reason)
            raise FetchRefused(
                f"the host {host} resolves to an address that is not public",
                f"{host} resolves to {address} ({reason})",
            )
    return Target(url, scheme, host, port, path, addresses)


def _split(url: str) -> tuple[str, str, int, str]:
    if len(url) > MAX_URL_LENGTH:
        raise FetchRefused("the URL is too long")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise FetchRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchRefused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchRefused("only http and https URLs are fetched")
    if "@" in parts.netloc:
        raise FetchRefused("a URL with a user name or password is not fetched")
    host = _host(parts.hostname or "", bracketed="[" in parts.netloc)
    if port == 0:
        raise FetchRefused("the URL's port is not valid")
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_QUERY_SAFE)
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _host(hostname: str, bracketed: bool) -> str:
    host = hostname.rstrip(".") if not bracketed else hostname
    if not host:
        raise FetchRefused("the URL has no host")
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise FetchRefused("the URL's host is not a valid address") from None
        if "%" in host:
            raise FetchRefused("the URL's host is not a public address")
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchRefused("the URL's host is not a valid name") from None
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        raise FetchRefused("the URL's host is not a valid name")
    if any(len(label) > 63 for label in host.split(".")):
        raise FetchRefused("the URL's host is not a valid name")
    return host


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP means, in any notation inet_aton takes.

    A name whose last label is a number is an IPv4 address (as browsers read
    it), so a malformed one such as 1.2.3.4.5 or 08.1 is refused, not resolved.
    """
    if ":" in host:
        return ipaddress.IPv6Address(host)
    labels = host.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    try:
        return _parse_ipv4(labels)
    except ValueError:
        raise FetchRefused("the URL's host is not a valid address") from None


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address:
    if len(labels) > 4:
        raise ValueError("too many parts")
    numbers = [_ipv4_part(label) for label in labels]
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("a part is out of range")
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(label: str) -> int:
    if _HEX_PART.fullmatch(label):
        return int(label[2:] or "0", 16)
    if _OCTAL_PART.fullmatch(label):
        return int(label, 8)
    if _DECIMAL_PART.fullmatch(label):
        return int(label, 10)
    raise ValueError(f"not a number: {label}")


def _resolve(host: str, port: int, timeout: float) -> tuple[IPAddress, ...]:
    """Every address of a host, from one lookup bounded by `timeout` seconds."""
    answer: dict[str, object] = {}

    def lookup() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            answer["error"] = error

    # getaddrinfo takes no timeout; a lookup left behind finishes on its own.
    thread = threading.Thread(target=lookup, name="squeezer-resolve", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        raise FetchFailed(f"the host {host} did not resolve within {timeout:g} seconds")
    infos = answer.get("infos")
    if not isinstance(infos, list):
        raise FetchFailed(
            f"the host {host} could not be resolved", f"{host}: {answer.get('error')}"
        )
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchFailed(f"the host {host} could not be resolved")
    return tuple(addresses)


class _Deadline:
    """A point in time after which no socket operation may still be waiting."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline has passed")
        return left

    def bounded(self, timeout: float) -> float:
        return min(timeout, self.remaining())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end


class _DeadlineSocket:
    """A socket whose every send and receive waits at most until the deadline.

    http.client reads headers line by line, and a per-call timeout alone would
    let a server that sends one byte a second hold the connection for ever.
    """

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline
        self._readers = 0
        self._closed = False

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.remaining())
        self._sock.sendall(data)

    def recv_into(self, buffer: memoryview | bytearray) -> int:
        self._sock.settimeout(self._deadline.remaining())
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self), CHUNK)

    def release(self) -> None:
        self._readers -= 1
        if self._closed and not self._readers:
            self._sock.close()

    def close(self) -> None:
        # As with a real socket, a response still reading keeps it open.
        self._closed = True
        if not self._readers:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._sock.release()
        super().close()


class _Connection(http.client.HTTPConnection):
    """HTTP or HTTPS to the checked addresses of a target, named by its host.

    The Host header, TLS server name and certificate check all use the host
    of the URL, while the socket connects to an address that was checked.
    """

    def __init__(
        self,
        target: Target,
        deadline: _Deadline,
        connect_timeout: float,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(target.host, target.port)
        self._target = target
        self._deadline = deadline
        self._connect_timeout = connect_timeout
        self._tls = tls_context

    def connect(self) -> None:
        last: OSError = ConnectionError("no address to connect to")
        for address in self._target.addresses:
            try:
                self.sock = _DeadlineSocket(self._open(address), self._deadline)
                return
            except ssl.SSLError:
                raise
            except OSError as error:
                last = error
        raise last

    def _open(self, address: IPAddress) -> socket.socket:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._deadline.bounded(self._connect_timeout))
            sock.connect((str(address), self._target.port))
            if self._target.scheme != "https":
                return sock
            context = self._tls or _default_tls()
            sock.settimeout(self._deadline.bounded(self._connect_timeout))
            return context.wrap_socket(sock, server_hostname=self._target.host)
        except BaseException:
            sock.close()
            raise


_tls_lock = threading.Lock()
_tls_contexts: list[ssl.SSLContext] = []


def _default_tls() -> ssl.SSLContext:
    with _tls_lock:
        if not _tls_contexts:
            _tls_contexts.append(ssl.create_default_context())
        return _tls_contexts[0]


def _send(
    target: Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: _Deadline,
    connect_timeout: float,
    tls_context: ssl.SSLContext | None,
) -> tuple[_Connection, http.client.HTTPResponse]:
    connection = _Connection(target, deadline, connect_timeout, tls_context)
    try:
        connection.request(method, target.path, body=body, headers=headers)
        return connection, connection.getresponse()
    except BaseException:
        connection.close()
        raise


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
    deadline = _Deadline(total_timeout)
    headers = {
        "User-Agent": user_agent,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    try:
        target = check_url(url, allow_hosts, timeout=deadline.bounded(connect_timeout))
        for hop in range(max_redirects + 1):
            connection, response = _send(
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


def _redirect(url: str, allow_hosts: Collection[str], deadline: _Deadline) -> Target:
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
    deadline = _Deadline(timeout)
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
        connection, response = _send(
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
