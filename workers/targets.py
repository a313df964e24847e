"""Which URLs a fetch may reach: the checks on a URL and on every address its
host resolves to.

A host is resolved once, every address is checked, and the Target carries the
addresses that passed, so that the connection goes to one of them and a second
DNS answer cannot redirect it. Hosts are parsed as browsers parse them (octal,
hex and short IPv4 forms included), so that no spelling of a private address
slips through.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

MAX_URL_LENGTH = 8192

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


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks, with the addresses it may be fetched from."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]


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
