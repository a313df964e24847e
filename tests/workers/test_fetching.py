"""Fetching a client's URL: the address checks in every notation, and downloads
from real HTTP servers on 127.0.0.1 reached through the operator's allow-list."""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.workers.local_http import (
    FakeDNS,
    Handler,
    LocalServer,
    answer,
    closed_port,
    local_server,
    redirect,
    tls_pair,
)
from workers import fetching
from workers.fetching import FetchFailed, FetchRefused, FetchTooLarge

LOCAL = frozenset({"127.0.0.1"})
PHOTO = b"\xff\xd8\xff\xe0 not really a JPEG, but bytes all the same " * 40


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """A resolver that knows no name, recording any lookup made."""
    dns = FakeDNS({})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


def install_dns(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]
) -> FakeDNS:
    dns = FakeDNS({host: [addresses] for host, addresses in answers.items()})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns


REFUSED_ADDRESSES = [
    ("loopback", "http://127.0.0.1/", "loopback"),
    ("loopback-high", "http://127.255.255.254/", "loopback"),
    ("loopback-v6", "http://[::1]/", "loopback"),
    ("loopback-v6-long", "http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("decimal", "http://2130706433/", "loopback"),
    ("hex", "http://0x7f000001/", "loopback"),
    ("hex-upper", "http://0X7F000001/", "loopback"),
    ("hex-dotted", "http://0x7f.0x0.0x0.0x1/", "loopback"),
    ("octal", "http://0177.0.0.1/", "loopback"),
    ("octal-whole", "http://017700000001/", "loopback"),
    ("short-two", "http://127.1/", "loopback"),
    ("short-three", "http://127.0.1/", "loopback"),
    ("short-hex", "http://0x7f.1/", "loopback"),
    ("zero-padded", "http://127.000.000.001/", "loopback"),
    ("trailing-dot", "http://127.0.0.1./", "loopback"),
    (
        "fullwidth-digits",
        "http://\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11/",
        "loopback",
    ),
    ("with-port", "https://127.0.0.1:8443/x.png", "loopback"),
    ("unspecified", "http://0.0.0.0/", "unspecified"),
    ("unspecified-zero", "http://0/", "unspecified"),
    ("unspecified-this-net", "http://0.1.2.3/", "unspecified"),
    ("unspecified-v6", "http://[::]/", "unspecified"),
    ("private-10", "http://10.0.0.1/", "private"),
    ("private-172", "http://172.31.255.255/", "private"),
    ("private-192", "http://192.168.1.1/", "private"),
    ("private-decimal", "http://3232235777/", "private"),
    ("private-ula", "http://[fd12:3456::1]/", "private"),
    ("private-site-local", "http://[fec0::1]/", "private"),
    ("link-local", "http://169.254.1.1/", "link-local"),
    ("link-local-v6", "http://[fe80::1]/", "link-local"),
    ("link-local-zone", "http://[fe80::1%25eth0]/", None),
    ("metadata", "http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("metadata-decimal", "http://2852039166/", "cloud metadata"),
    ("metadata-hex", "http://0xa9fea9fe/", "cloud metadata"),
    ("metadata-octal", "http://0251.0376.0251.0376/", "cloud metadata"),
    ("metadata-ecs", "http://169.254.170.2/v2/credentials", "cloud metadata"),
    ("metadata-aws-v6", "http://[fd00:ec2::254]/", "cloud metadata"),
    ("metadata-alibaba", "http://100.100.100.200/", "cloud metadata"),
    ("metadata-azure-wire", "http://168.63.129.16/", "cloud metadata"),
    ("metadata-oracle", "http://192.0.0.192/", "cloud metadata"),
    ("shared-space", "http://100.64.0.1/", "shared address space"),
    ("shared-space-top", "http://100.127.255.254/", "shared address space"),
    ("multicast", "http://224.0.0.1/", "multicast"),
    ("multicast-ssdp", "http://239.255.255.250/", "multicast"),
    ("multicast-v6", "http://[ff02::1]/", "multicast"),
    ("reserved-class-e", "http://240.0.0.1/", "reserved"),
    ("broadcast", "http://255.255.255.255/", "reserved"),
    ("documentation", "http://192.0.2.1/", "reserved"),
    ("benchmarking", "http://198.18.0.1/", "reserved"),
    ("documentation-v6", "http://[2001:db8::1]/", "reserved"),
    ("discard-v6", "http://[100::1]/", "reserved"),
    ("mapped", "http://[::ffff:127.0.0.1]/", "loopback"),
    ("mapped-hex", "http://[::ffff:7f00:1]/", "loopback"),
    ("mapped-long", "http://[0:0:0:0:0:ffff:a9fe:a9fe]/", "cloud metadata"),
    ("mapped-private", "http://[::ffff:10.0.0.1]/", "private"),
    ("compatible", "http://[::127.0.0.1]/", "loopback"),
    ("compatible-metadata", "http://[::a9fe:a9fe]/", "cloud metadata"),
    ("compatible-public", "http://[::808:808]/", "reserved"),
    ("translated", "http://[::ffff:0:7f00:1]/", "loopback"),
    ("nat64-loopback", "http://[64:ff9b::7f00:1]/", "loopback"),
    ("nat64-metadata", "http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
    ("nat64-local-prefix", "http://[64:ff9b:1::808:808]/", "private"),
    ("6to4-loopback", "http://[2002:7f00:1::1]/", "loopback"),
    ("6to4-metadata", "http://[2002:a9fe:a9fe::]/", "cloud metadata"),
    ("6to4-private", "http://[2002:c0a8:101::1]/", "private"),
    ("teredo-private", "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "private"),
    ("teredo-loopback", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "loopback"),
]


@pytest.mark.parametrize(
    ("url", "reason"),
    [case[1:] for case in REFUSED_ADDRESSES],
    ids=[case[0] for case in REFUSED_ADDRESSES],
)
def test_an_address_in_any_notation_is_refused_without_a_lookup(
    no_dns: FakeDNS, url: str, reason: str | None
) -> None:
    with pytest.raises(FetchRefused) as refused:
        fetching.check_url(url)
    assert no_dns.calls == [], f"a literal address was looked up: {no_dns.calls}"
    if reason is not None:
        assert refused.value.detail == reason, f"expected the reason {reason!r}"


REFUSED_URLS = [
    ("ftp", "ftp://example.com/photo.jpg"),
    ("file", "file:///etc/passwd"),
    ("gopher", "gopher://example.com:70/_"),
    ("javascript", "javascript:alert(1)"),
    ("data", "data:image/png;base64,AAAA"),
    ("no-scheme", "//example.com/photo.jpg"),
    ("bare-host", "example.com/photo.jpg"),
    ("credentials", "http://user:secret@example.com/photo.jpg"),
    ("user-only", "http://user@example.com/photo.jpg"),
    ("empty-userinfo", "http://@example.com/photo.jpg"),
    ("userinfo-hiding-loopback", "http://example.com@127.0.0.1/photo.jpg"),
    ("backslash-userinfo", "http://example.com\\@127.0.0.1/"),
    ("space", "http://exa mple.com/"),
    ("tab", "http://example.com/\tphoto.jpg"),
    ("newline", "http://example.com/photo.jpg\r\nX-Injected: 1"),
    ("no-host", "http:///photo.jpg"),
    ("port-too-large", "http://example.com:99999/"),
    ("port-zero", "http://example.com:0/"),
    ("port-not-number", "http://example.com:http/"),
    ("five-parts", "http://1.2.3.4.5/"),
    ("part-over-255", "http://256.1.1.1/"),
    ("bad-octal", "http://08.0.0.1/"),
    ("bad-hex", "http://0x1g.0.0.1/"),
    ("underscore-in-number", "http://1_0.0.0.1/"),
    ("numeric-last-label", "http://example.123/"),
    ("short-form-overflow", "http://1.16777216/"),
    ("unclosed-bracket", "http://[::1/"),
    ("bracketed-name", "http://[example.com]/"),
    ("bad-characters", "http://exa$mple.com/"),
    ("empty-label", "http://example..com/"),
    ("too-long", "http://example.com/" + "a" * 9000),
]


@pytest.mark.parametrize(
    "url", [c[1] for c in REFUSED_URLS], ids=[c[0] for c in REFUSED_URLS]
)
def test_a_url_outside_http_to_a_valid_host_is_refused(
    no_dns: FakeDNS, url: str
) -> None:
    with pytest.raises(FetchRefused):
        fetching.check_url(url)
    assert no_dns.calls == [], f"a refused URL was looked up: {no_dns.calls}"


ACCEPTED = [
    ("public-v4", "http://93.184.215.14/photo.jpg", "93.184.215.14", 80, "/photo.jpg"),
    ("public-https", "https://8.8.8.8/a.png?x=1", "8.8.8.8", 443, "/a.png?x=1"),
    ("public-decimal", "http://134744072:8080/", "8.8.8.8", 8080, "/"),
    ("public-v6", "http://[2606:4700:4700::1111]/", "2606:4700:4700::1111", 80, "/"),
    ("public-mapped", "http://[::ffff:8.8.8.8]/", "8.8.8.8", 80, "/"),
    ("public-6to4", "http://[2002:5db8:d70e::1]/", "2002:5db8:d70e::1", 80, "/"),
    ("public-nat64", "http://[64:ff9b::808:808]/", "64:ff9b::808:808", 80, "/"),
    ("no-path", "http://8.8.4.4", "8.8.4.4", 80, "/"),
    ("unicode-path", "http://8.8.8.8/café.jpg", "8.8.8.8", 80, "/caf%C3%A9.jpg"),
]


@pytest.mark.parametrize(
    ("url", "address", "port", "path"),
    [c[1:] for c in ACCEPTED],
    ids=[c[0] for c in ACCEPTED],
)
def test_a_public_address_is_accepted_without_connecting(
    no_dns: FakeDNS, url: str, address: str, port: int, path: str
) -> None:
    target = fetching.check_url(url)
    assert target.addresses == (ipaddress.ip_address(address),), "expected one address"
    assert target.port == port, f"expected port {port}"
    if path is not None:
        assert target.path == path, f"expected the request path {path!r}"
    assert no_dns.calls == [], "a literal address was looked up"


def test_a_non_ascii_path_is_sent_percent_encoded(no_dns: FakeDNS) -> None:
    target = fetching.check_url("http://8.8.8.8/photos/café.jpg?name=thé")
    assert target.path == "/photos/caf%C3%A9.jpg?name=th%C3%A9", target.path


RESOLVED = [
    ("private", {"internal.example": ["10.1.2.3"]}, "internal.example", "private"),
    (
        "one-of-many",
        {"mixed.example": ["93.184.215.14", "127.0.0.1"]},
        "mixed.example",
        "loopback",
    ),
    (
        "one-v6-of-many",
        {"mixed6.example": ["93.184.215.14", "fd00:ec2::254"]},
        "mixed6.example",
        "cloud metadata",
    ),
    (
        "metadata-name",
        {"metadata.google.internal": ["169.254.169.254"]},
        "metadata.google.internal",
        "cloud metadata",
    ),
    (
        "mapped-answer",
        {"mapped.example": ["::ffff:127.0.0.1"]},
        "mapped.example",
        "loopback",
    ),
    ("shared-answer", {"cgnat.example": ["100.64.1.1"]}, "cgnat.example", "shared"),
]


@pytest.mark.parametrize(
    ("answers", "host", "reason"),
    [c[1:] for c in RESOLVED],
    ids=[c[0] for c in RESOLVED],
)
def test_a_name_is_refused_if_any_of_its_addresses_is_not_public(
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[str, list[str]],
    host: str,
    reason: str,
) -> None:
    install_dns(monkeypatch, answers)
    with pytest.raises(FetchRefused) as refused:
        fetching.check_url(f"https://{host}/photo.jpg")
    error = refused.value
    assert reason in error.detail, f"expected {reason!r} in {error.detail!r}"
    assert host in error.message, "the message should name the host the client sent"
    for address in answers[host]:
        assert address not in error.message, f"the message names {address}"


def test_a_name_with_public_addresses_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    addresses = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    dns = install_dns(monkeypatch, {"public.example": addresses})
    target = fetching.check_url("https://Public.Example./photo.jpg")
    assert target.host == "public.example", "expected the host lowercased, no dot"
    assert [str(a) for a in target.addresses] == addresses, "expected every address"
    assert dns.calls == ["public.example"], f"expected one lookup, got {dns.calls}"


def test_an_international_name_is_looked_up_in_punycode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns = install_dns(monkeypatch, {"xn--bcher-kva.example": ["93.184.215.14"]})
    target = fetching.check_url("http://bücher.example/")
    assert target.host == "xn--bcher-kva.example", target.host
    assert dns.calls == ["xn--bcher-kva.example"], dns.calls


def test_a_name_that_does_not_resolve_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    install_dns(monkeypatch, {})
    with pytest.raises(FetchFailed, match="could not be resolved"):
        fetching.check_url("http://nowhere.example/")


def test_a_slow_lookup_fails_at_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    dns = FakeDNS({"slow.example": [["93.184.215.14"]]}, delay=1.0)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="did not resolve"):
        fetching.check_url("http://slow.example/", timeout=0.2)
    assert time.monotonic() - started < 0.9, "expected the lookup abandoned at 0.2 s"


def test_localhost_is_refused_by_the_real_resolver() -> None:
    with pytest.raises(FetchRefused, match="localhost"):
        fetching.check_url("http://localhost/photo.jpg")


ALLOW_LIST = [
    ("listed-address", "http://127.0.0.1:8080/", {"127.0.0.1"}, True),
    ("listed-name", "http://images.test/", {"images.test"}, True),
    ("listed-name-any-case", "http://images.test./", {"Images.Test."}, True),
    ("other-name", "http://images.test/", {"other.test"}, False),
    ("address-listed-not-name", "http://images.test/", {"127.0.0.1"}, False),
    ("name-listed-not-address", "http://127.0.0.1/", {"images.test"}, False),
    ("address-in-other-notation", "http://2130706433/", {"127.0.0.1"}, False),
]


@pytest.mark.parametrize(
    ("url", "allow", "accepted"),
    [c[1:] for c in ALLOW_LIST],
    ids=[c[0] for c in ALLOW_LIST],
)
def test_the_allow_list_skips_the_check_for_its_hosts_only(
    monkeypatch: pytest.MonkeyPatch, url: str, allow: set[str], accepted: bool
) -> None:
    install_dns(monkeypatch, {"images.test": ["127.0.0.1"]})
    if accepted:
        target = fetching.check_url(url, allow_hosts=frozenset(allow))
        assert str(target.addresses[0]) == "127.0.0.1", "expected the host's address"
    else:
        with pytest.raises(FetchRefused):
            fetching.check_url(url, allow_hosts=frozenset(allow))


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with local_server() as running:
        running.routes["/photo.jpg"] = answer(
            200, PHOTO, {"Content-Type": "image/jpeg"}
        )
        yield running


def get(
    url: str,
    max_bytes: int = 1 << 20,
    *,
    connect_timeout: float = 2.0,
    total_timeout: float = 5.0,
    allow_hosts: frozenset[str] = LOCAL,
    **options: Any,
) -> fetching.Fetched:
    """Fetch with the test's usual limits, through the allow-list of 127.0.0.1."""
    return fetching.fetch(
        url,
        max_bytes,
        connect_timeout=connect_timeout,
        total_timeout=total_timeout,
        allow_hosts=allow_hosts,
        **options,
    )


def test_a_file_is_fetched_onto_a_spooled_file(server: LocalServer) -> None:
    fetched = get(server.url("/photo.jpg"), user_agent="squeezer-test/1")
    with fetched.body:
        assert isinstance(fetched.body, tempfile.SpooledTemporaryFile), (
            "expected a spool"
        )
        assert fetched.body.read() == PHOTO, "expected the server's bytes"
    assert fetched.size == len(PHOTO), f"expected {len(PHOTO)} bytes"
    assert fetched.filename == "photo.jpg", fetched.filename
    assert fetched.url == server.url("/photo.jpg"), fetched.url
    assert fetched.content_type == "image/jpeg", fetched.content_type
    headers = server.received[0].headers
    assert headers["User-Agent"] == "squeezer-test/1", "expected our user agent"
    assert headers["Host"] == f"127.0.0.1:{server.port}", headers["Host"]


def test_the_connection_goes_to_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer
) -> None:
    # A second lookup would get an address where nothing listens.
    dns = FakeDNS({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    url = server.url("/photo.jpg", host="rebind.test")
    fetched = get(url, allow_hosts=frozenset({"rebind.test"}))
    fetched.close()
    assert dns.calls == ["rebind.test"], f"expected one lookup, got {dns.calls}"
    host = server.received[0].headers["Host"]
    assert host == f"rebind.test:{server.port}", f"expected the name in Host: {host}"


def _chunked(parts: list[bytes]):
    def route(handler: Handler) -> None:
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for part in parts:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.wfile.write(b"0\r\n\r\n")

    return route


def _until_close(size: int):
    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.end_headers()
        for _ in range(size // 4096):
            handler.wfile.write(b"z" * 4096)

    return route


def _declares(length: int):
    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.write(b"z" * 10)
        handler.wfile.flush()
        time.sleep(3)

    return route


CAP = 64 * 1024
BODY_CAP = [
    ("length-at-cap", answer(200, b"a" * CAP), CAP),
    ("length-over-cap", answer(200, b"a" * (CAP + 1)), None),
    ("declared-over-cap-up-front", _declares(CAP + 1), None),
    ("no-length-within-cap", _until_close(CAP), CAP),
    ("no-length-over-cap", _until_close(64 * CAP), None),
    ("chunked-within-cap", _chunked([b"b" * 1000] * 3), 3000),
    ("chunked-over-cap", _chunked([b"b" * 30000] * 3), None),
]


@pytest.mark.parametrize(
    ("route", "size"), [c[1:] for c in BODY_CAP], ids=[c[0] for c in BODY_CAP]
)
def test_the_body_is_capped(server: LocalServer, route, size: int | None) -> None:
    server.routes["/file"] = route
    if size is None:
        with pytest.raises(FetchTooLarge, match=f"larger than {CAP} bytes"):
            get(server.url("/file"), CAP, total_timeout=2.0)
        return
    fetched = get(server.url("/file"), CAP)
    with fetched.body:
        assert len(fetched.body.read()) == size, f"expected {size} bytes"
    assert fetched.size == size, f"expected the size {size}"


REDIRECTS = [
    ("within-limit", "/hop/3", 3, 302, None),
    ("over-limit", "/hop/4", 3, 302, "more than 3 times"),
    ("none-allowed", "/hop/1", 0, 301, "more than 0 times"),
    ("see-other", "/hop/2", 3, 303, None),
    ("temporary", "/hop/2", 3, 307, None),
    ("permanent", "/hop/2", 3, 308, None),
    ("loop", "/loop", 3, 302, "more than 3 times"),
]


@pytest.mark.parametrize(
    ("path", "limit", "status", "error"),
    [c[1:] for c in REDIRECTS],
    ids=[c[0] for c in REDIRECTS],
)
def test_redirects_are_followed_up_to_the_limit(
    server: LocalServer, path: str, limit: int, status: int, error: str | None
) -> None:
    for hop in range(1, 6):
        server.routes[f"/hop/{hop}"] = redirect(f"/hop/{hop - 1}", status)
    server.routes["/hop/0"] = answer(200, PHOTO)
    server.routes["/loop"] = redirect(server.url("/loop"), status)
    if error is not None:
        with pytest.raises(FetchFailed, match=error):
            get(server.url(path), max_redirects=limit)
        assert len(server.received) == limit + 1, "expected limit + 1 requests"
        return
    fetched = get(server.url(path), max_redirects=limit)
    fetched.close()
    assert fetched.url == server.url("/hop/0"), f"expected the final URL: {fetched.url}"
    assert fetched.size == len(PHOTO), "expected the file at the end of the chain"


REFUSED_REDIRECTS = [
    ("to-localhost", "http://localhost:{port}/photo.jpg", "127.0.0.1"),
    ("to-metadata", "http://169.254.169.254/latest/meta-data/", "169.254"),
    ("to-mapped", "http://[::ffff:127.0.0.1]:{port}/photo.jpg", "::ffff"),
    ("to-decimal", "http://2130706433:{port}/photo.jpg", "2130706433"),
    ("to-private", "http://10.0.0.7/photo.jpg", "10.0.0.7"),
    ("to-file", "file:///etc/passwd", "passwd"),
    ("to-credentials", "http://user:pw@127.0.0.1:{port}/photo.jpg", "user"),
]


@pytest.mark.parametrize(
    ("location", "hidden"),
    [c[1:] for c in REFUSED_REDIRECTS],
    ids=[c[0] for c in REFUSED_REDIRECTS],
)
def test_a_redirect_from_an_allowed_host_to_a_refused_one_is_refused(
    server: LocalServer, location: str, hidden: str
) -> None:
    server.routes["/away"] = redirect(location.format(port=server.port))
    with pytest.raises(FetchRefused) as refused:
        get(server.url("/away"))
    message = refused.value.message
    assert hidden not in message, f"the message names the redirect target: {message}"
    assert server.paths() == ["/away"], f"expected no request past it: {server.paths()}"


def _drip_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.05)


def _drip_headers(handler: Handler) -> None:
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    for _ in range(100):
        handler.wfile.write(b"X")
        handler.wfile.flush()
        time.sleep(0.05)


@pytest.mark.parametrize("route", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_a_slow_drip_server_is_cut_off_at_the_total_timeout(
    server: LocalServer, route
) -> None:
    server.routes["/drip"] = route
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"within 0\.8 seconds"):
        get(server.url("/drip"), connect_timeout=0.5, total_timeout=0.8)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"expected the fetch cut off near 0.8 s, took {elapsed:.2f} s"


def _truncated(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b"short")


def _not_http(handler: Handler) -> None:
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n")


FAILURES = [
    ("not-found", answer(404, b"missing"), "answered 404"),
    ("server-error", answer(500, b"oops"), "answered 500"),
    ("forbidden", answer(403), "answered 403"),
    ("partial", answer(206, b"abc"), "answered 206"),
    ("redirect-without-location", answer(302), "without a Location"),
    ("truncated", _truncated, "closed the connection"),
    ("not-http", _not_http, "not valid HTTP"),
]


@pytest.mark.parametrize(
    ("route", "error"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
def test_an_upstream_failure_is_a_fetch_failure(
    server: LocalServer, route, error: str
) -> None:
    server.routes["/file"] = route
    with pytest.raises(FetchFailed, match=error):
        get(server.url("/file"))


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full, so that a new connection hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            time.sleep(0.05)
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_a_server_that_does_not_accept_fails_at_the_connect_timeout(
    unaccepting_port: int,
) -> None:
    with pytest.raises(FetchFailed, match=r"did not answer within 0\.3 seconds"):
        get(f"http://127.0.0.1:{unaccepting_port}/x", connect_timeout=0.3)


def test_each_checked_address_is_tried_in_turn(
    monkeypatch: pytest.MonkeyPatch, server: LocalServer
) -> None:
    # Nothing listens on 127.0.0.3: the server is bound to 127.0.0.1 alone.
    install_dns(monkeypatch, {"multi.test": ["127.0.0.3", "127.0.0.1"]})
    url = server.url("/photo.jpg", host="multi.test")
    fetched = get(url, allow_hosts=frozenset({"multi.test"}))
    fetched.close()
    assert fetched.size == len(PHOTO), "expected the file from the second address"


def test_a_closed_port_fails_at_once() -> None:
    with pytest.raises(FetchFailed, match="could not connect"):
        get(f"http://127.0.0.1:{closed_port()}/photo.jpg")


ENCODED_NAME = "na%C3%AFve%20caf%C3%A9.jpg"
FILENAMES = [
    ("from-path", "/img/photo.jpg", {}, "photo.jpg"),
    ("percent-encoded", "/img/My%20Photo.png?size=large", {}, "My Photo.png"),
    ("non-ascii", "/img/café.jpg", {}, "café.jpg"),
    ("directory", "/img/", {}, "download"),
    (
        "disposition",
        "/download?id=7",
        {"Content-Disposition": 'attachment; filename="report.pdf"'},
        "report.pdf",
    ),
    (
        "disposition-encoded",
        "/download",
        {"Content-Disposition": "attachment; filename*=UTF-8''" + ENCODED_NAME},
        "naïve café.jpg",
    ),
    (
        "disposition-path",
        "/download",
        {"Content-Disposition": 'attachment; filename="..\\\\..\\\\etc\\\\passwd"'},
        "passwd",
    ),
]


@pytest.mark.parametrize(
    ("path", "headers", "filename"),
    [c[1:] for c in FILENAMES],
    ids=[c[0] for c in FILENAMES],
)
def test_the_filename_comes_from_the_disposition_or_the_path(
    server: LocalServer, path: str, headers: dict[str, str], filename: str
) -> None:
    route_path = fetching.check_url(server.url(path), LOCAL).path.split("?")[0]
    server.routes[route_path] = answer(200, PHOTO, headers)
    fetched = get(server.url(path))
    fetched.close()
    assert fetched.filename == filename, (
        f"expected {filename!r}, got {fetched.filename!r}"
    )


def test_https_connects_to_the_address_and_verifies_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pair = tls_pair("images.test")
    dns = install_dns(monkeypatch, {"images.test": ["127.0.0.1"]})
    with local_server(pair.server) as secure:
        secure.routes["/photo.jpg"] = answer(200, PHOTO)
        url = secure.url("/photo.jpg", host="images.test")
        fetched = get(
            url, allow_hosts=frozenset({"images.test"}), tls_context=pair.client
        )
        fetched.close()
        assert fetched.size == len(PHOTO), "expected the file over TLS"
        assert pair.server_names == ["images.test"], f"SNI was {pair.server_names}"
        assert secure.received[0].headers["Host"] == f"images.test:{secure.port}"
        assert dns.calls == ["images.test"], f"expected one lookup, got {dns.calls}"


TLS_FAILURES = [
    ("name-mismatch", "127.0.0.1", True),
    ("untrusted-issuer", "images.test", False),
]


@pytest.mark.parametrize(
    ("host", "trusted"), [c[1:] for c in TLS_FAILURES], ids=[c[0] for c in TLS_FAILURES]
)
def test_https_refuses_a_certificate_that_does_not_verify(
    monkeypatch: pytest.MonkeyPatch, host: str, trusted: bool
) -> None:
    pair = tls_pair("images.test")
    install_dns(monkeypatch, {"images.test": ["127.0.0.1"]})
    with local_server(pair.server) as secure:
        secure.routes["/photo.jpg"] = answer(200, PHOTO)
        with pytest.raises(FetchFailed, match="certificate could not be verified"):
            get(
                secure.url("/photo.jpg", host=host),
                allow_hosts=frozenset({host}),
                tls_context=pair.client if trusted else None,
            )
        assert secure.received == [], "expected no request over an unverified TLS"
