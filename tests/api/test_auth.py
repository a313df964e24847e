"""Every way a client may carry its credentials, and every way to get them wrong."""

from __future__ import annotations

import json

import pytest

from tests.api.helpers import assert_error, auth_json, basic


def _escaped(account) -> str:
    # PHP's magic quotes: every double quote backslash-escaped.
    return auth_json(account).replace('"', '\\"')


def _unicode_escaped(account) -> str:
    # JSON escapes for every character of the key, and `\/` for good measure.
    key = "".join(f"\\u{ord(c):04x}" for c in account.api_key)
    return f'{{"key":"{key}","secret":"{account.api_secret}","x":"a\\/b"}}'


def _twice_encoded(account) -> str:
    return json.dumps(auth_json(account))


AUTH_VARIANTS = {
    "query string": lambda c, a: c.get(
        "/v1/accounts/mine", query_string={"auth": auth_json(a)}
    ),
    "urlencoded body on GET": lambda c, a: c.get(
        "/v1/accounts/mine", data={"auth": auth_json(a)}
    ),
    "multipart body": lambda c, a: c.post(
        "/v1/accounts/sub",
        data={"auth": auth_json(a), "title": "x"},
        content_type="multipart/form-data",
    ),
    "urlencoded body on POST": lambda c, a: c.post(
        "/v1/accounts/sub", data={"auth": auth_json(a)}
    ),
    "JSON body": lambda c, a: c.get(
        "/v1/accounts/mine", json={"auth": {"key": a.api_key, "secret": a.api_secret}}
    ),
    "HTTP Basic": lambda c, a: c.get("/v1/accounts/mine", headers=basic(a)),
    "escaped quotes": lambda c, a: c.get(
        "/v1/accounts/mine", query_string={"auth": _escaped(a)}
    ),
    "JSON escapes": lambda c, a: c.get(
        "/v1/accounts/mine", query_string={"auth": _unicode_escaped(a)}
    ),
    "encoded twice": lambda c, a: c.get(
        "/v1/accounts/mine", query_string={"auth": _twice_encoded(a)}
    ),
    "PHP brackets": lambda c, a: c.get(
        "/v1/accounts/mine",
        query_string={"auth[key]": a.api_key, "auth[secret]": a.api_secret},
    ),
    "query on DELETE": lambda c, a: c.delete(
        "/v1/accounts/sub/999999", query_string={"auth": auth_json(a)}
    ),
}
EXPECTED_STATUS = {
    "multipart body": 201,
    "urlencoded body on POST": 201,
    "query on DELETE": 404,
}


@pytest.mark.parametrize("variant", AUTH_VARIANTS, ids=list(AUTH_VARIANTS))
def test_credentials_are_read_from_every_place(client, main, variant):
    response = AUTH_VARIANTS[variant](client, main)
    expected = EXPECTED_STATUS.get(variant, 200)
    assert response.status_code == expected, response.get_json()


BAD_AUTH = {
    "missing": {},
    "empty": {"auth": ""},
    "not JSON": {"auth": "key=abc&secret=def"},
    "JSON list": {"auth": "[1, 2]"},
    "JSON number": {"auth": "42"},
    "no secret": {"auth": '{"key": "KEY"}'},
    "no key": {"auth": '{"secret": "SECRET"}'},
    "key not a string": {"auth": '{"key": 5, "secret": "SECRET"}'},
    "wrong secret": {"auth": '{"key": "KEY", "secret": "wrong"}'},
    "unknown key": {"auth": '{"key": "0000", "secret": "SECRET"}'},
    "truncated JSON": {"auth": '{"key": "KEY", "secr'},
}


@pytest.mark.parametrize("case", BAD_AUTH, ids=list(BAD_AUTH))
def test_bad_credentials_answer_401(client, main, case):
    query = {
        name: value.replace("KEY", main.api_key).replace("SECRET", main.api_secret)
        for name, value in BAD_AUTH[case].items()
    }
    body = assert_error(client.get("/v1/accounts/mine", query_string=query), 401)
    assert main.api_secret not in body["errMessage"]


def test_wrong_basic_password_answers_401(client, main):
    headers = basic(main)
    other = dict(headers)
    other["Authorization"] = headers["Authorization"][:-4] + "AAA="
    assert_error(client.get("/v1/accounts/mine", headers=other), 401)


def test_deleted_sub_account_key_stops_working_at_once(client, main, sub):
    assert client.get("/v1/accounts/mine", headers=basic(sub)).status_code == 200
    response = client.delete(f"/v1/accounts/sub/{sub.id}", headers=basic(main))
    assert response.get_json() == {"success": True}
    assert_error(client.get("/v1/accounts/mine", headers=basic(sub)), 401)


def test_reset_secret_retires_the_old_one_at_once(client, main, sub):
    response = client.put(
        f"/v1/accounts/sub/reset_secret/{sub.id}", headers=basic(main)
    )
    fresh = response.get_json()
    assert fresh["api_key"] == sub.api_key
    assert fresh["api_secret"] != sub.api_secret
    assert len(fresh["api_secret"]) >= 32, "at least 128 bits of hex"
    assert_error(client.get("/v1/accounts/mine", headers=basic(sub)), 401)
    renewed = {"auth": json.dumps({"key": sub.api_key, "secret": fresh["api_secret"]})}
    assert client.get("/v1/accounts/mine", query_string=renewed).status_code == 200
