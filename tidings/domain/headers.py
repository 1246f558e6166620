"""Static request headers of a listener (SPEC §10): checked once, when set."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tidings.domain.errors import BadRequest, Violation

MAX_HEADERS = 20
MAX_NAME_CHARS = 256
MAX_VALUE_CHARS = 1024
# The request's own framing and signature headers are the broker's to set.
REFUSED = frozenset({"host", "content-type", "content-length", "transfer-encoding", "connection"})
REFUSED_PREFIX = "webhook-"
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
VALUE = re.compile(r"[\x20-\x7e]*\Z")


def _case_free(word: str) -> str:
    """``host`` as ``[Hh][Oo][Ss][Tt]``: JSON Schema patterns have no ignore-case flag."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


# What /openapi.json states for a header name: a token that is none of the refused ones.
NAME_PATTERN = (
    "^(?!(?:"
    + "|".join(_case_free(n) for n in sorted(REFUSED))
    + ")$)(?!"
    + _case_free(REFUSED_PREFIX)
    + ")[!#$%&'*+.^_`|~0-9A-Za-z-]{1,"
    + str(MAX_NAME_CHARS)
    + "}$"
)
VALUE_PATTERN = "^[ -~]*$"


def _bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"{path} {message}", [Violation(path, message)])


def check_headers(headers: Mapping[str, str]) -> None:
    """Raise :class:`BadRequest` (400) naming the first header that breaks a rule."""
    if len(headers) > MAX_HEADERS:
        raise _bad("$.headers", f"holds more than {MAX_HEADERS} headers")
    seen: set[str] = set()
    for name, value in headers.items():
        path = f"$.headers.{name}"
        lower = name.lower()
        if not TOKEN.match(name) or len(name) > MAX_NAME_CHARS:
            raise _bad(path, "is not a valid header name (an HTTP token)")
        if lower in REFUSED or lower.startswith(REFUSED_PREFIX):
            raise _bad(path, "may not be set: the broker sets this header itself")
        if lower in seen:
            raise _bad(path, "repeats another header's name (names are unique ignoring case)")
        seen.add(lower)
        if len(value) > MAX_VALUE_CHARS or not VALUE.match(value):
            raise _bad(path, f"must be printable ASCII, at most {MAX_VALUE_CHARS} characters")
