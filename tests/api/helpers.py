"""Small helpers for talking to the API the way real clients do."""

from __future__ import annotations

import base64
import json

from storage.accounts import Account


def auth_json(account: Account) -> str:
    return json.dumps({"key": account.api_key, "secret": account.api_secret})


def basic(account: Account) -> dict[str, str]:
    token = base64.b64encode(f"{account.api_key}:{account.api_secret}".encode())
    return {"Authorization": "Basic " + token.decode()}


def assert_error(response, status: int) -> dict:
    """The response is an error body with `status` as its errCode."""
    body = response.get_json()
    assert response.status_code == status, (response.status_code, body)
    assert body == {"errCode": status, "errMessage": body["errMessage"]}, body
    assert isinstance(body["errMessage"], str)
    assert body["errMessage"]
    return body
