"""What a listener URL may look like (SPEC §7), as one regular expression.

``/openapi.json`` publishes it as the ``pattern`` of ``notify_url`` and
``liveness_url`` and the server refuses (``400``) every URL it does not match, so
the document and the server take the same URLs by construction. Which *addresses*
a URL may reach is judged afterwards (``tidings.destinations``: ``422``).

The grammar is RFC 3986's, ASCII only (an international host name is written in
punycode, ``xn--...``), narrowed to what a webhook needs:

- scheme ``http`` or ``https``, any case;
- optional user information (``user:password@``);
- a host: a name of dot-separated labels of letters, digits, ``-`` and ``_`` (each
  1..63 characters, not starting or ending with ``-``; a trailing dot is allowed), or
  an IPv6 literal in brackets, optionally with a zone (``[fe80::1%25eth0]``). Dotted
  IPv4 addresses are names of this form;
- an optional port 1..65535 without leading zeros;
- then optionally a path, query or fragment: ``/``, ``?`` or ``#`` followed by any
  printable ASCII characters but the space.

The expression sticks to the syntax Python and ECMAScript read alike (JSON Schema
patterns are ECMAScript's): no lookaround, no ``\\d``, anchors only at both ends.
"""

from __future__ import annotations

import re
from typing import Final

MAX_URL_LENGTH: Final = 2048


def _ipv6() -> str:
    """RFC 3986 ``IPv6address``, every compressed and IPv4-embedded form."""
    h16 = "[0-9A-Fa-f]{1,4}"
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    ipv4 = rf"{octet}(?:\.{octet}){{3}}"
    ls32 = f"(?:{h16}:{h16}|{ipv4})"

    def pieces(n: int) -> str:  # n times "h16:"
        return f"(?:{h16}:){{{n}}}" if n else ""

    def head(most: int) -> str:  # [ *most( h16 ":" ) h16 ]
        return f"(?:(?:{h16}:){{0,{most}}}{h16})?" if most else f"(?:{h16})?"

    forms = [
        f"{pieces(6)}{ls32}",
        f"::{pieces(5)}{ls32}",
        f"{head(0)}::{pieces(4)}{ls32}",
        f"{head(1)}::{pieces(3)}{ls32}",
        f"{head(2)}::{pieces(2)}{ls32}",
        f"{head(3)}::{h16}:{ls32}",
        f"{head(4)}::{ls32}",
        f"{head(5)}::{h16}",
        f"{head(6)}::",
    ]
    return "(?:" + "|".join(forms) + ")"


def _pattern() -> str:
    scheme = "[Hh][Tt][Tt][Pp][Ss]?"
    userinfo = "(?:(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*@)?"
    label = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    name = rf"{label}(?:\.{label})*\.?"
    literal = rf"\[{_ipv6()}(?:%25[A-Za-z0-9._~-]+)?\]"
    port_number = (
        "6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}"
    )
    port = f"(?::(?:{port_number}))?"
    rest = "(?:[/?#][!-~]*)?"
    return f"^{scheme}://{userinfo}(?:{name}|{literal}){port}{rest}$"


URL_PATTERN: Final = _pattern()
_URL: Final = re.compile(URL_PATTERN)


def is_listener_url(url: str) -> bool:
    """Whether ``url`` is an absolute http(s) URL of the grammar above."""
    # fullmatch: ``$`` alone would also let a final newline through in Python.
    return len(url) <= MAX_URL_LENGTH and _URL.fullmatch(url) is not None
