"""What both clients share: where requests go and whose key they carry."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from tidings_client.calls import Call, Page

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 30.0
# How often a call that is safe to repeat (``Call.retry``) is sent again.
DEFAULT_RETRIES = 3
# Answers after which the same request may succeed: in progress elsewhere, rate
# limited, overloaded or the database briefly away.
RETRY_STATUSES = frozenset({409, 429, 503})
_BACKOFF_S = 0.5
_MAX_WAIT_S = 30.0


def retry_wait(attempt: int, response: httpx.Response | None) -> float:
    """Seconds before sending again: the answer's ``Retry-After`` when it gives one,
    else 0.5, 1, 2 s ... after attempt 0, 1, 2 ..."""
    given: str = "" if response is None else response.headers.get("Retry-After", "")
    if given.isdigit():
        return min(float(given), _MAX_WAIT_S)
    return min(_BACKOFF_S * float(2**attempt), _MAX_WAIT_S)


def api_root(base_url: str) -> str:
    """``http://host:8080`` or ``http://host:8080/v1`` -> ``http://host:8080/v1/``."""
    root = base_url.rstrip("/")
    if not root.endswith("/v1"):
        root += "/v1"
    return root + "/"


def client_options(base_url: str, api_key: str, timeout_s: float) -> dict[str, Any]:
    return {
        "base_url": api_root(base_url),
        "headers": {"X-API-KEY": api_key, "Accept": "application/json"},
        "timeout": timeout_s,
        "follow_redirects": False,
    }


def target(base: httpx.URL, call: Call[Any]) -> str:
    """The URL for ``call``; absolute ``_links`` hrefs must point at this server.

    The API key goes with every request, so it is never sent to another origin.
    """
    if "://" not in call.path:
        return call.path
    href = urlsplit(call.path)
    if (href.scheme, href.netloc) != (base.scheme, base.netloc.decode("ascii")):
        raise ValueError(f"refusing to send the API key to another origin: {call.path}")
    return call.path


def next_page(call: Call[Page[T]], page: Page[T]) -> Call[Page[T]] | None:
    """The call for the page after ``page`` (its ``Link: rel="next"``), if any."""
    if page.next is None or not page.items:
        return None
    return replace(call, path=page.next, params={})
