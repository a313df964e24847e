"""Files from a client's `url`, and the checks on a `callback_url`, for the API.

The network rules live in workers.fetching: http and https to public addresses only,
the connection made to the address that was checked, redirects re-checked, time
and size bounded. Here their failures become 400s that a client can act on quickly.
"""

from __future__ import annotations

from api.multipart import Spooled, spool
from storage.errors import BadRequest, FileTooLarge
from storage.settings import Settings
from workers import fetching


def fetch_upload(url: str, max_size: int, settings: Settings) -> Spooled:
    """Fetch `url` into a spooled file, as if it had been uploaded."""
    try:
        fetched = fetching.fetch(
            url,
            max_size,
            connect_timeout=settings.fetch_connect_timeout,
            total_timeout=settings.fetch_total_timeout,
            allow_hosts=settings.fetch_allow_hosts,
        )
    except fetching.FetchTooLarge:
        raise FileTooLarge() from None
    except fetching.FetchError as error:
        raise BadRequest(f"The url could not be fetched: {error.message}") from None
    with fetched.body:
        return spool(fetched.body, fetched.filename, max_size)


def check_callback_url(url: str, settings: Settings) -> None:
    """Refuse a callback URL that points at a private or reserved address."""
    try:
        fetching.check_url(url, allow_hosts=settings.fetch_allow_hosts)
    except fetching.FetchError as error:
        raise BadRequest(f"The callback_url is refused: {error.message}") from None
