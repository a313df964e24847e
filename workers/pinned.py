"""An HTTP connection to the checked addresses of a target, under one deadline.

The Host header, the TLS server name and the certificate check use the URL's
host, while the socket connects to an address that passed the checks; every
send and receive waits at most until the fetch's deadline, so that a server
sending a byte a second cannot hold a worker.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import threading
import time

from workers.targets import IPAddress, Target

CHUNK = 64 * 1024


class Deadline:
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

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
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


class Connection(http.client.HTTPConnection):
    """HTTP or HTTPS to the checked addresses of a target, named by its host.

    The Host header, TLS server name and certificate check all use the host
    of the URL, while the socket connects to an address that was checked.
    """

    def __init__(
        self,
        target: Target,
        deadline: Deadline,
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


def send(
    target: Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    deadline: Deadline,
    connect_timeout: float,
    tls_context: ssl.SSLContext | None,
) -> tuple[Connection, http.client.HTTPResponse]:
    connection = Connection(target, deadline, connect_timeout, tls_context)
    try:
        connection.request(method, target.path, body=body, headers=headers)
        return connection, connection.getresponse()
    except BaseException:
        connection.close()
        raise
