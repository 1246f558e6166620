"""Where listeners may point (SPEC §7): the SSRF policy for ``notify_url`` and ``liveness_url``.

The API checks a URL against it when a listener is registered; the delivery engine
checks every address it connects to (``delivery/sender.py`` calls :meth:`resolve` for
every new connection). Both sides use this one module, and neither imports the other, so it sits
below both: it is rules plus checked DNS resolution, with no HTTP library.

* ``check_at_registration`` on create/update: syntax, then the literal or the current DNS answer;
  a name that does not resolve yet is accepted.
* ``resolve`` on every attempt and probe: the answer that is checked is the answer that is
  connected to, so DNS rebinding between "check" and "connect" is impossible.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from yarl import URL

from tidings.domain.errors import BadRequest, Invalid, Violation
from tidings.domain.networks import IPAddress, IPNetwork, ip_literal
from tidings.domain.urls import MAX_URL_LENGTH, is_listener_url

SETTING: Final = "TIDINGS_ALLOWED_NETWORKS"
RESOLVE_TIMEOUT_S: Final = 2.0

_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215 local-use prefix: where the IPv4 address sits inside it is operator-defined, so there
# is nothing reliable to check; it is refused unless explicitly allowed.
_NAT64_LOCAL: Final = ipaddress.IPv6Network("64:ff9b:1::/48")
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


class DestinationRefused(Invalid):
    """An attempt or probe found no address it may connect to (or the name did not resolve)."""


@dataclass(frozen=True, slots=True)
class ResolvedAddress:
    """One checked address of a destination, ready to connect to."""

    hostname: str
    address: IPAddress
    port: int
    family: socket.AddressFamily
    proto: int = 0


def _directly_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4-mapped and IPv4-compatible addresses *are* IPv4 destinations on a dual-stack host."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    value = int(address)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d, but not :: or ::1
        return ipaddress.IPv4Address(value)
    return None


def _translated_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """IPv4 addresses a gateway (6to4, Teredo, NAT64) forwards this IPv6 address to."""
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo  # (server, client): both are reached
    if address in _NAT64_WELL_KNOWN:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


class DestinationPolicy:
    """Public addresses only, plus whatever ``TIDINGS_ALLOWED_NETWORKS`` adds."""

    def __init__(
        self,
        allowed_networks: Sequence[IPNetwork] = (),
        *,
        resolve_timeout_s: float = RESOLVE_TIMEOUT_S,
    ) -> None:
        self.allowed_networks = tuple(allowed_networks)
        self.resolve_timeout_s = resolve_timeout_s

    def is_allowed(self, address: IPAddress) -> bool:
        if any(address.version == net.version and address in net for net in self.allowed_networks):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            if address in _NAT64_LOCAL:
                return False
            if (v4 := _directly_ipv4(address)) is not None:
                return self.is_allowed(v4)
            if not all(self.is_allowed(v4) for v4 in _translated_ipv4(address)):
                return False
        return address.is_global and not address.is_multicast

    def check_url_syntax(self, url: str) -> str:
        """The URL itself, if it is an absolute http(s) URL of the published grammar
        (``tidings.domain.urls``) with a sane host and port."""
        if len(url) > MAX_URL_LENGTH:
            raise BadRequest(f"URL is longer than {MAX_URL_LENGTH} characters")
        if not is_listener_url(url):
            raise BadRequest(
                f"{url!r} is not an absolute http or https URL: ASCII only (international"
                " host names in punycode, other characters percent-encoded), a host name or"
                " a bracketed IPv6 address, a port of 1..65535"
            )
        # The grammar decides; yarl, the parser aiohttp connects with, must agree on
        # the host it will use (tests/unit/test_urls.py checks that it never refuses).
        try:
            # yarl is the parser aiohttp connects with: judge the very host it will use.
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"{url!r} is not a valid URL: {exc}") from None
        host = parsed.raw_host
        if parsed.scheme not in ("http", "https") or not parsed.absolute or not host:
            raise BadRequest(f"{url!r} is not an absolute http or https URL with a host")
        if ip_literal(host) is None and not set(host) <= _HOST_CHARS:
            raise BadRequest(f"{url!r} has an invalid host name")
        if parsed.port is None or not 1 <= parsed.port <= 65535:
            raise BadRequest(f"{url!r} has an invalid port")
        return url

    async def check_at_registration(self, url: str, *, field: str | None = None) -> None:
        """Refuse (422) a literal or currently resolving host that is not allowed.

        ``field`` (e.g. ``"notify_url"``) names the offending body member in the error.
        """
        parsed = URL(self.check_url_syntax(url))
        host, port = parsed.raw_host or "", parsed.port or 0
        literal = ip_literal(host)
        if literal is not None:
            if not self.is_allowed(literal):
                self._refuse(f"{host} is not a public address", field)
            return
        try:
            infos = await self._getaddrinfo(host, port)
        except (OSError, UnicodeError):
            return  # does not resolve (yet): every attempt re-checks the fresh answer
        if not all(self.is_allowed(resolved.address) for resolved in infos):
            # The address itself is not echoed: it would leak internal DNS answers.
            self._refuse(f"{host} resolves to an address that is not public", field)

    async def resolve(self, host: str, port: int) -> list[ResolvedAddress]:
        """Fresh, checked addresses of ``host``: only allowed ones, never an empty list."""
        literal = ip_literal(host)
        if literal is not None:
            family = socket.AF_INET if literal.version == 4 else socket.AF_INET6
            candidates = [ResolvedAddress(host, literal, port, family)]
        else:
            try:
                candidates = await self._getaddrinfo(host, port)
            except (OSError, UnicodeError) as exc:
                raise DestinationRefused(f"{host} did not resolve: {exc}") from exc
        allowed = [c for c in candidates if self.is_allowed(c.address)]
        if not allowed:
            raise DestinationRefused(
                f"{host} has no public address; {SETTING} can allow more networks"
            )
        return allowed

    async def _getaddrinfo(self, host: str, port: int) -> list[ResolvedAddress]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.resolve_timeout_s):  # TimeoutError is an OSError
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found: list[ResolvedAddress] = []
        for family, _, proto, _, sockaddr in infos:
            if family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                text = f"{sockaddr[0]}%{sockaddr[3]}"  # keep the scope of link-local answers
            elif family in (socket.AF_INET, socket.AF_INET6):
                text = str(sockaddr[0])
            else:
                continue
            found.append(ResolvedAddress(host, ipaddress.ip_address(text), port, family, proto))
        return found

    @staticmethod
    def _refuse(message: str, field: str | None) -> NoReturn:
        detail = f"{message}; set {SETTING} (comma-separated CIDRs) to allow it"
        errors = [Violation(f"$.{field}", detail)] if field else None
        raise Invalid(detail, errors)
