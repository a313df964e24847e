"""The typed errors of Squeezer, each knowing its HTTP status and its public message.

Code anywhere raises one of these; the API renders every one of them in a single place
as `{"errCode": status, "errMessage": message}`. The message is written for the client
and never carries internals; `detail` is for the logs only.
"""

from __future__ import annotations


class SqueezerError(Exception):
    """Base of every error that has a meaning for the client."""

    status = 500
    message = "The request could not be completed."

    def __init__(
        self, message: str | None = None, *, detail: str | None = None
    ) -> None:
        self.message = message or type(self).message
        self.detail = detail
        super().__init__(
            self.message if detail is None else f"{self.message} ({detail})"
        )


class BadRequest(SqueezerError):
    """The request is malformed or names something that cannot be processed."""

    status = 400
    message = "The request is malformed."


class Unauthorized(SqueezerError):
    """Missing, malformed or wrong credentials."""

    status = 401
    message = "Authentication failed: check your API key and secret."


class Forbidden(SqueezerError):
    """The account may not do this."""

    status = 403
    message = "This account is not allowed to do that."


class QuotaExceeded(Forbidden):
    """The upload would take consumption past a monthly quota."""

    message = "The monthly quota of this account is exhausted."


class NotFound(SqueezerError):
    """No such thing for this account (also used for other accounts' ids)."""

    status = 404
    message = "Not found."


class MethodNotAllowed(SqueezerError):
    """The route exists but not with this method."""

    status = 405
    message = "This method is not allowed on this route."


class FileTooLarge(SqueezerError):
    """The file is larger than the account's file_max_size."""

    status = 413
    message = "The file is larger than this account's maximum file size."


class UnsupportedType(SqueezerError):
    """The bytes are not a format Squeezer compresses."""

    status = 415
    message = "This file type is not supported."


class RateLimited(SqueezerError):
    """Too many requests; `retry_after` says when to come back, in seconds."""

    status = 429
    message = "Too many requests; retry later."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceUnavailable(SqueezerError):
    """A backing service (Redis, object storage) cannot be reached."""

    status = 503
    message = "The service is temporarily unavailable; retry later."


class ObjectNotFound(SqueezerError):
    """An object is missing from object storage."""

    status = 404
    message = "Not found."
