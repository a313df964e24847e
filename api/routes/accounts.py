"""The /v1/accounts routes: the caller's own account, and its sub-accounts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import inputs, render
from api.auth import current_account, main_account
from api.services import services
from storage.accounts import Account

blueprint = Blueprint("accounts", __name__)

TITLE_MAX = 255
DESCRIPTION_MAX = 2000


@blueprint.get("/accounts/mine")
def mine():
    """The caller's quota period, consumption and limits."""
    account = current_account()
    svc = services()
    return jsonify(id=account.id, **render.quota(account, svc.usage, svc.settings))


@blueprint.get("/accounts/mine/consumption")
def consumption():
    """The caller's usage history: the last 30 days and the last 12 months."""
    account = current_account()
    usage = services().usage
    return jsonify(
        render.consumption(usage.last_days(account), usage.last_months(account))
    )


@blueprint.get("/accounts/sub")
def list_subs():
    """The caller's sub-accounts."""
    parent = main_account()
    subs = services().accounts.sub_accounts(parent)
    return jsonify(items=[_render(sub) for sub in subs])


@blueprint.post("/accounts/sub")
def create_sub():
    """Create a sub-account from title, description and quota; 201."""
    parent = main_account()
    changes = _changes(inputs.params())
    sub = services().accounts.create(
        parent=parent,
        title=changes.get("title", ""),
        description=changes.get("description", ""),
        monthly_quota=changes.get("monthly_quota", 0),
    )
    return jsonify(_render(sub)), 201


@blueprint.get("/accounts/sub/<int:sub_id>")
def get_sub(sub_id: int):
    """One sub-account of the caller."""
    return jsonify(_render(_sub(sub_id)))


@blueprint.put("/accounts/sub/<int:sub_id>")
def edit_sub(sub_id: int):
    """Change a sub-account's title, description or quota."""
    sub = _sub(sub_id)
    sub = services().accounts.update(sub, **_changes(inputs.params()))
    return jsonify(_render(sub))


@blueprint.delete("/accounts/sub/<int:sub_id>")
def delete_sub(sub_id: int):
    """Delete a sub-account; its key stops working at once."""
    services().accounts.delete(_sub(sub_id))
    return jsonify(success=True)


@blueprint.route("/accounts/sub/reset_secret/<int:sub_id>", methods=["PUT", "POST"])
def reset_secret(sub_id: int):
    """Give a sub-account a new secret; the old one stops working at once."""
    sub = services().accounts.reset_secret(_sub(sub_id))
    return jsonify(_render(sub))


@blueprint.route("/accounts/sub/reset_quota/<int:sub_id>", methods=["PUT", "POST"])
def reset_quota(sub_id: int):
    """Set a sub-account's consumption of the current month to 0."""
    sub = _sub(sub_id)
    services().usage.reset_quota(sub)
    return jsonify(_render(sub))


def _sub(sub_id: int) -> Account:
    return services().accounts.sub_account(main_account(), sub_id)


def _render(sub: Account) -> dict[str, Any]:
    svc = services()
    return render.sub_account(sub, svc.usage, svc.settings)


def _changes(options: dict[str, Any]) -> dict[str, Any]:
    """The sub-account fields a create or edit call sets, checked."""
    changes: dict[str, Any] = {}
    title = inputs.text(inputs.field("title", options), "title", max_length=TITLE_MAX)
    if title is not None:
        changes["title"] = title
    description = inputs.text(
        inputs.field("description", options), "description", max_length=DESCRIPTION_MAX
    )
    if description is not None:
        changes["description"] = description
    quota = inputs.field("monthly_quota", options)
    if quota is None:
        quota = inputs.field("quota", options)
    quota = inputs.integer(quota, "quota")
    if quota is not None:
        changes["monthly_quota"] = quota
    return changes
