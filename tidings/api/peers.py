"""Who the client is (SPEC §2): the address the lockout counts and the access log names.

It is the TCP peer, unless the peer is inside ``TIDINGS_TRUSTED_PROXIES``: then it is
the rightmost ``X-Forwarded-For`` entry that is not itself a trusted proxy. Each proxy
appends the address it got the request from, so walking from the right, every entry up
to the first untrusted one was written by a proxy we trust; anything further left
came from the client and could be made up. Without the setting the header is ignored:
otherwise anyone could set it to dodge the lockout or lock out somebody else.

Edge cases (docs/security.md): several header lines are one list, in order; empty
entries are skipped; entries may carry a port (``1.2.3.4:5678``, ``[2001:db8::1]:443``).
When every entry is a trusted proxy, the leftmost is the client. An entry that is not
an address where the walk needs one (``unknown``, junk) ends the walk at the trusted
proxy that wrote it: that proxy is all we know of the client, and a made-up text never
becomes a lockout key. An IPv6 client counts as its /64 (one host usually holds a whole
/64, so a per-address lockout would be void), exactly as a direct one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from starlette.types import Scope

from tidings.domain.networks import IPAddress, IPNetwork

_CACHED = "tidings.client"  # scope key: the lockout and the access log share one answer


class ClientAddresses:
    def __init__(self, trusted_proxies: Sequence[IPNetwork] = ()) -> None:
        self._trusted = tuple(trusted_proxies)

    def of(self, scope: Scope) -> str:
        """The client's address (IPv4, or the /64 network of an IPv6 one)."""
        found: str | None = scope.get(_CACHED)
        if found is None:
            found = scope[_CACHED] = _grouped(self._host(scope))
        return found

    def _host(self, scope: Scope) -> str:
        peer = scope.get("client")
        host: str = peer[0] if peer else ""
        if not self._trusted:
            return host
        ip = _ip(host)
        if ip is None or not self._is_trusted(ip):
            return host
        entries = [
            entry.strip()
            for name, value in scope["headers"]
            if name == b"x-forwarded-for"
            for entry in value.decode("latin-1").split(",")
        ]
        writer = ip  # who wrote the entry being looked at: first the peer
        for entry in reversed(entries):
            if not entry:
                continue
            forwarded = _entry_ip(entry)
            if forwarded is None:
                break
            if not self._is_trusted(forwarded):
                return str(forwarded)
            writer = forwarded
        return str(writer)

    def _is_trusted(self, ip: IPAddress) -> bool:
        ip = _unmapped(ip)
        return any(ip.version == net.version and ip in net for net in self._trusted)


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _entry_ip(entry: str) -> IPAddress | None:
    """``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``, ``[2001:db8::1]`` or ``[...]:443``."""
    host = entry
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if not port.isdigit():
            return None
    return _ip(host)


@lru_cache(maxsize=4096)
def _grouped(host: str) -> str:
    ip = _ip(host)
    if ip is None:
        return host or "unknown"
    ip = _unmapped(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
