"""Real HTTP(S) servers on 127.0.0.1 for the fetch and callback tests, and the one
stand-in they need: a DNS that answers for made-up host names."""

from __future__ import annotations

import datetime
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Route = Callable[["Handler"], None]


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: Message
    body: bytes


class Handler(BaseHTTPRequestHandler):
    """Answers each path from the server's table of routes, recording the request."""

    server: _Server

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length))

    def _answer(self, body: bytes) -> None:
        path = self.path.split("?", 1)[0]
        self.server.received.append(Received(self.command, path, self.headers, body))
        route = self.server.routes.get(path)
        if route is None:
            answer(404, b"no such route")(self)
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    routes: dict[str, Route]
    received: list[Received]

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-answer is what several tests do on purpose.
        return


@dataclass
class LocalServer:
    """A running server: its routes can be added while it runs."""

    port: int
    scheme: str
    routes: dict[str, Route] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [request.path for request in self.received]


@contextmanager
def local_server(tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    """Serve on 127.0.0.1 in a thread until the block ends."""
    server = _Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    running = LocalServer(server.server_address[1], "https" if tls else "http")
    server.routes = running.routes
    server.received = running.received
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield running
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def answer(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> Route:
    """A route that answers with a status, headers and a body of known length."""

    def route(handler: Handler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str, status: int = 302) -> Route:
    """A route that redirects to `location`."""
    return answer(status, headers={"Location": location})


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, found by binding and closing."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class FakeDNS:
    """getaddrinfo for made-up host names: each name has a list of answers, one per
    lookup in turn (the last repeats), and every lookup is recorded."""

    answers: dict[str, list[list[str]]]
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)

    def __call__(
        self, host: str, port: int, family: int = 0, type: int = 0, *args: int
    ) -> list[tuple]:
        self.calls.append(host)
        time.sleep(self.delay)
        turns = self.answers.get(host)
        if not turns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = turns[min(self.calls.count(host), len(turns)) - 1]
        return [_info(address, port) for address in addresses]


def _info(address: str, port: int) -> tuple:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@dataclass
class TLSPair:
    """A server context with a certificate for one host, and a client that trusts it."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    server_names: list[str | None]


def tls_pair(hostname: str) -> TLSPair:
    """A fresh self-signed certificate for `hostname`, served and trusted."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(pem)
        key_file.write_bytes(key_pem)
        server.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    server.sni_callback = lambda _socket, server_name, _context: names.append(
        server_name
    )
    client = ssl.create_default_context(cadata=pem.decode())
    return TLSPair(server, client, names)
