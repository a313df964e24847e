"""A small HTTP client that talks to a live Squeezer the way plugins do."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def multipart(
    fields: dict[str, str], file: bytes | None, filename: str
) -> tuple[bytes, str]:
    """A multipart body with the file part last and its name written raw."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    if file is not None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + file + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """Calls to one account of a live API."""

    def __init__(self, base: str, key: str, secret: str) -> None:
        self.base, self.key, self.secret = base, key, secret

    @property
    def auth(self) -> str:
        return json.dumps({"key": self.key, "secret": self.secret})

    def upload(
        self,
        data: bytes | None,
        filename: str = "file",
        params: dict[str, Any] | None = None,
        **fields: str,
    ) -> Answer:
        form = {"auth": self.auth, "params": json.dumps(params or {}), **fields}
        body, content_type = multipart(form, data, filename)
        return self.request("POST", "/v1/images", body, {"Content-Type": content_type})

    def get(self, path: str, **query: Any) -> Answer:
        query = {"auth": self.auth, **query}
        return self.request("GET", f"{path}?{urllib.parse.urlencode(query)}")

    def delete(self, path: str) -> Answer:
        query = urllib.parse.urlencode({"auth": self.auth})
        return self.request("DELETE", f"{path}?{query}")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        url = path if path.startswith("http") else self.base + path
        request = urllib.request.Request(url, body, headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return Answer(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read(), dict(error.headers))
