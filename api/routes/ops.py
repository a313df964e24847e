"""Operations routes outside /v1: liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify

from api.services import services
from storage import database

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz():
    """Readiness: the backing services answer; 503 otherwise."""
    database.check(services().redis)
    return jsonify(status="ready")
