"""The Flask application: its factory, the one error handler and the request log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from api.routes import accounts, images, ops
from api.services import Services
from storage import database
from storage.errors import (
    BadRequest,
    FileTooLarge,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    SqueezerError,
)
from storage.objects import ObjectStore
from storage.settings import Settings
from storage.stores import Stores
from workers.app import create_celery

log = logging.getLogger("squeezer.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Werkzeug's own HTTP errors, as the typed errors the client sees.
_HTTP_ERRORS: dict[int, type[SqueezerError]] = {
    400: BadRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: FileTooLarge,
}


def create_app(
    settings: Settings,
    client: redis.Redis | None = None,
    objects: ObjectStore | None = None,
) -> Flask:
    """Build the API for `settings`; `client` and `objects` override the Redis
    connection and the object store that the settings name."""
    stores = Stores.build(settings, client, objects)
    services = Services(**vars(stores), queue=create_celery(settings))
    app = Flask("squeezer")
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = None
    app.extensions["squeezer"] = services
    app.wsgi_app = _TrailingSlashTolerant(app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(ops.blueprint)
    app.register_blueprint(accounts.blueprint, url_prefix="/v1")
    app.register_blueprint(images.blueprint, url_prefix="/v1")
    app.before_request(_start_request)
    app.after_request(_log_request)
    app.register_error_handler(Exception, render_error)
    return app


def render_error(error: Exception) -> tuple[Response, int]:
    """Render any error as `{"errCode", "errMessage"}` with its status."""
    if isinstance(error, HTTPException) and not isinstance(error, SqueezerError):
        error = _HTTP_ERRORS.get(error.code or 500, SqueezerError)()
    elif isinstance(error, database.UNREACHABLE):
        error = ServiceUnavailable(detail=str(error))
    if not isinstance(error, SqueezerError):
        log.error("unexpected error", exc_info=error, extra=_context())
        error = SqueezerError(
            f"Internal error; quote request id {g.get('request_id', '-')}."
        )
    elif error.detail:
        log.warning("%s: %s", type(error).__name__, error.detail, extra=_context())
    response = jsonify(errCode=error.status, errMessage=error.message)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response, error.status


def _start_request() -> None:
    offered = request.headers.get("X-Request-Id", "")
    g.request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    extra = _context() | {
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule else request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 1),
    }
    level = logging.INFO
    if response.status_code >= 500:
        level = logging.ERROR
    elif response.status_code >= 400:
        level = logging.WARNING
    log.log(level, "request", extra=extra)
    return response


def _context() -> dict[str, Any]:
    context: dict[str, Any] = {"request_id": g.get("request_id", "-")}
    account = g.get("account")
    if account is not None:
        context["account_id"] = account.id
    return context


class _TrailingSlashTolerant:
    """Serve `/v1/images/` as `/v1/images`: every route answers with and without a
    trailing slash, without a redirect that would lose a POST body."""

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.wsgi_app(environ, start_response)
