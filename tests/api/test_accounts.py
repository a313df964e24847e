"""The /v1/accounts routes through HTTP, against a real Redis."""

from __future__ import annotations

import calendar
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from storage.usage import Totals, Usage
from tests.api.helpers import assert_error, basic

SUB_FIELDS = {
    "id",
    "title",
    "description",
    "quota_start",
    "quota_end",
    "quota_current",
    "quota_allowed",
    "quota_file_max_size",
    "file_max_size",
    "api_key",
    "api_secret",
}


def _month_bounds_now() -> tuple[int, int]:
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    following = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(following.timestamp()) - 1


def test_mine_answers_quota_fields_as_integers(client, main, settings):
    body = client.get("/v1/accounts/mine", headers=basic(main)).get_json()
    start, end = _month_bounds_now()
    assert (body["quota_start"], body["quota_end"]) == (start, end), body
    assert body["quota_allowed"] == 5_000_000
    assert body["quota_current"] == 0
    assert body["file_max_size"] == settings.max_file_size
    for name in ("quota_start", "quota_end", "quota_current", "quota_allowed"):
        assert type(body[name]) is int, f"{name} must be an integer on the wire"
    assert "errCode" not in body


def test_mine_counts_the_quota_reserved_this_month(client, main, redis_client):
    Usage(redis_client).reserve(main, None, 1234)
    body = client.get("/v1/accounts/mine", headers=basic(main)).get_json()
    assert body["quota_current"] == 1234


def test_create_sub_account_answers_201_with_every_field(client, main):
    response = client.post(
        "/v1/accounts/sub",
        headers=basic(main),
        data={
            "title": '"New subaccount"',
            "description": "for the shop",
            "quota": "1600",
        },
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert set(body) == SUB_FIELDS
    assert body["title"] == "New subaccount", "surrounding quotes are removed"
    assert body["description"] == "for the shop"
    assert body["quota_allowed"] == 1600
    assert body["quota_file_max_size"] == body["file_max_size"]
    assert isinstance(body["id"], int)
    assert len(body["api_key"]) >= 32
    assert len(body["api_secret"]) >= 32


PARAMS_VARIANTS = {
    "absent": ({}, {"title": "", "quota_allowed": 0}),
    "empty string": ({"params": ""}, {"title": "", "quota_allowed": 0}),
    "PHP empty array": ({"params": "[]"}, {"title": "", "quota_allowed": 0}),
    "empty object": ({"params": "{}"}, {"title": "", "quota_allowed": 0}),
    "null": ({"params": "null"}, {"title": "", "quota_allowed": 0}),
    "fields inside": (
        {"params": json.dumps({"title": "In params", "monthly_quota": 77})},
        {"title": "In params", "quota_allowed": 77},
    ),
    "number as string": (
        {"params": json.dumps({"quota": "1600"})},
        {"quota_allowed": 1600},
    ),
    "null values ignored": (
        {"params": json.dumps({"title": None, "quota": None}), "title": "Form"},
        {"title": "Form", "quota_allowed": 0},
    ),
    "unknown keys ignored": (
        {"params": json.dumps({"colour": "blue", "title": "T"})},
        {"title": "T"},
    ),
    "PHP brackets": (
        {"params[title]": "Bracketed", "params[quota]": "5"},
        {"title": "Bracketed", "quota_allowed": 5},
    ),
    "quoted title inside params": (
        {"params": json.dumps({"title": '"Quoted"'})},
        {"title": "Quoted"},
    ),
}


@pytest.mark.parametrize("variant", PARAMS_VARIANTS, ids=list(PARAMS_VARIANTS))
def test_params_variants_on_create(client, main, variant):
    data, expected = PARAMS_VARIANTS[variant]
    response = client.post("/v1/accounts/sub", headers=basic(main), data=data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert {k: body[k] for k in expected} == expected


def test_create_accepts_a_json_body(client, main):
    response = client.post(
        "/v1/accounts/sub",
        json={
            "auth": {"key": main.api_key, "secret": main.api_secret},
            "params": {"title": "From JSON", "quota": 10},
        },
    )
    assert response.status_code == 201
    assert response.get_json()["title"] == "From JSON"


BAD_CREATE = {
    "negative quota": {"quota": "-1"},
    "non-numeric quota": {"quota": "lots"},
    "fractional quota": {"monthly_quota": "1.5"},
    "quota past 2**53": {"quota": "1e30"},
    "boolean quota": {"params": json.dumps({"quota": True})},
    "params not JSON": {"params": "{title: nope"},
    "params a number": {"params": "5"},
    "params a list": {"params": '["a"]'},
    "title an object": {"params": json.dumps({"title": {"a": 1}})},
    "title too long": {"title": "x" * 256},
}


@pytest.mark.parametrize("case", BAD_CREATE, ids=list(BAD_CREATE))
def test_bad_create_answers_400_and_creates_nothing(client, main, accounts, case):
    response = client.post(
        "/v1/accounts/sub", headers=basic(main), data=BAD_CREATE[case]
    )
    assert_error(response, 400)
    assert accounts.sub_accounts(main) == [], "nothing may be created"


def test_list_get_edit_delete_round_trip(client, main):
    created = client.post(
        "/v1/accounts/sub", headers=basic(main), data={"title": "A"}
    ).get_json()
    sub_id = created["id"]

    listed = client.get("/v1/accounts/sub", headers=basic(main)).get_json()
    assert [item["id"] for item in listed["items"]] == [sub_id]

    fetched = client.get(f"/v1/accounts/sub/{sub_id}", headers=basic(main)).get_json()
    assert fetched == created

    edited = client.put(
        f"/v1/accounts/sub/{sub_id}",
        headers=basic(main),
        data={"params": json.dumps({"title": "B", "monthly_quota": "99"})},
    ).get_json()
    assert (edited["title"], edited["quota_allowed"]) == ("B", 99)
    assert edited["api_secret"] == created["api_secret"]

    deleted = client.delete(f"/v1/accounts/sub/{sub_id}", headers=basic(main))
    assert deleted.status_code == 200
    assert deleted.get_json() == {"success": True}
    assert_error(client.get(f"/v1/accounts/sub/{sub_id}", headers=basic(main)), 404)
    listed = client.get("/v1/accounts/sub", headers=basic(main)).get_json()
    assert listed == {"items": []}


def test_bad_edit_changes_nothing(client, main, sub, accounts):
    response = client.put(
        f"/v1/accounts/sub/{sub.id}",
        headers=basic(main),
        data={"title": "Changed", "quota": "-5"},
    )
    assert_error(response, 400)
    assert accounts.get(sub.id) == sub


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_reset_quota_sets_this_months_consumption_to_zero(
    client, main, sub, redis_client, method
):
    usage = Usage(redis_client)
    usage.reserve(sub, main, 700)
    path = f"/v1/accounts/sub/reset_quota/{sub.id}"
    body = client.open(path, method=method, headers=basic(main)).get_json()
    assert body["quota_current"] == 0
    assert usage.quota_used(main) == 700, "the parent keeps what it counted"


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_reset_secret_answers_put_and_post(client, main, sub, method):
    path = f"/v1/accounts/sub/reset_secret/{sub.id}"
    response = client.open(path, method=method, headers=basic(main))
    assert response.status_code == 200
    assert response.get_json()["api_secret"] != sub.api_secret


SUB_ROUTES = [
    ("GET", "/v1/accounts/sub"),
    ("POST", "/v1/accounts/sub"),
    ("GET", "/v1/accounts/sub/{id}"),
    ("PUT", "/v1/accounts/sub/{id}"),
    ("DELETE", "/v1/accounts/sub/{id}"),
    ("PUT", "/v1/accounts/sub/reset_secret/{id}"),
    ("POST", "/v1/accounts/sub/reset_quota/{id}"),
]


@pytest.mark.parametrize(("method", "path"), SUB_ROUTES)
def test_sub_account_gets_403_on_every_sub_route(client, sub, accounts, method, path):
    response = client.open(path.format(id=sub.id), method=method, headers=basic(sub))
    assert_error(response, 403)
    assert accounts.get(sub.id) == sub, "nothing may change"


@pytest.mark.parametrize(("method", "path"), SUB_ROUTES[2:])
def test_another_accounts_sub_account_is_404(
    client, other_main, sub, accounts, method, path
):
    response = client.open(
        path.format(id=sub.id), method=method, headers=basic(other_main)
    )
    assert_error(response, 404)
    assert accounts.get(sub.id) == sub, "nothing may change"


@pytest.mark.parametrize(("method", "path"), SUB_ROUTES[2:])
def test_unknown_sub_account_id_is_404(client, main, method, path):
    for unknown in ("424242", "abc", str(main.id)):
        response = client.open(
            path.format(id=unknown), method=method, headers=basic(main)
        )
        assert_error(response, 404)


ERROR_ROUTES = {
    "unknown route": ("GET", "/v1/nothing-here", 404),
    "wrong method": ("PATCH", "/v1/accounts/mine", 405),
    "unknown root path": ("GET", "/favicon.ico", 404),
}


@pytest.mark.parametrize("case", ERROR_ROUTES, ids=list(ERROR_ROUTES))
def test_routing_errors_answer_json(client, main, case):
    method, path, status = ERROR_ROUTES[case]
    assert_error(client.open(path, method=method, headers=basic(main)), status)


TRAILING = [
    ("GET", "/v1/accounts/mine/", 200),
    ("GET", "/v1/accounts/mine/consumption/", 200),
    ("GET", "/v1/accounts/sub/", 200),
    ("POST", "/v1/accounts/sub/", 201),
]


@pytest.mark.parametrize(("method", "path", "status"), TRAILING)
def test_routes_answer_with_a_trailing_slash(client, main, method, path, status):
    response = client.open(path, method=method, headers=basic(main))
    assert response.status_code == status, response.get_json()


def test_consumption_reads_the_real_counters(client, main, sub, redis_client):
    usage = Usage(redis_client)
    now = time.time()
    usage.record(sub, main, Totals(1000, 400, 1), now=now)
    usage.record(main, None, Totals(500, 100, 1), now=now - 86_400)

    body = client.get("/v1/accounts/mine/consumption", headers=basic(main)).get_json()
    days = body["consumption"]["last_days"]
    months = body["consumption"]["last_months"]
    assert len(days) == 30
    assert len(months) == 12
    assert len(body["consumptions"]) == 30

    today = datetime.now(UTC).date()
    assert days[-1]["date"] == {
        "year": today.year,
        "month": today.month,
        "day": today.day,
    }
    assert (days[-1]["total_size_before"], days[-1]["files_count"]) == (1000, 1)
    assert days[-2]["total_size_before"] == 500
    assert all(d["files_count"] == 0 for d in days[:-2]), "idle days are zeros"
    assert body["consumptions"][-1] == {
        "date": calendar.timegm(today.timetuple()),
        "consumption": 1000,
    }
    this_month = months[-1]
    assert this_month["date"] == {"year": today.year, "month": today.month}
    expected_before = 1000 + (500 if days[-2]["date"]["month"] == today.month else 0)
    assert this_month["total_size_before"] == expected_before

    sub_body = client.get(
        "/v1/accounts/mine/consumption", headers=basic(sub)
    ).get_json()
    assert sub_body["consumption"]["last_days"][-1]["total_size_after"] == 400
    assert sub_body["consumption"]["last_days"][-2]["total_size_before"] == 0


def test_redis_down_answers_503(settings):
    from api.app import create_app
    from storage import database

    dead = database.connect("redis://127.0.0.1:1/0")
    app = create_app(settings, dead)
    response = app.test_client().get(
        "/v1/accounts/mine", headers={"Authorization": "Basic a2V5OnNlY3JldA=="}
    )
    body = assert_error(response, 503)
    assert "127.0.0.1" not in body["errMessage"], "no internals in messages"
