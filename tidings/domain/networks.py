"""IP networks as operators write them (``TIDINGS_ALLOWED_NETWORKS``): parsed once, pure."""

from __future__ import annotations

import ipaddress
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, 10.0.0.0/8"`` -> networks; empty items are ignored."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ValueError(
                f"{item!r} is not a network in CIDR notation such as 10.0.0.0/8 ({exc})"
            ) from None
    return tuple(networks)


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is one (not a name)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
