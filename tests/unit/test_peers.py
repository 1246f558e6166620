"""The client address from the TCP peer and X-Forwarded-For (tidings.api.peers)."""

from __future__ import annotations

import pytest

from tidings.api.peers import ClientAddresses
from tidings.domain.networks import parse_networks

TRUSTED = ClientAddresses(parse_networks("10.0.0.0/8, 127.0.0.1/32, 2001:db8:ffff::/48"))


def _scope(peer: str, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {"client": (peer, 1234), "headers": [(b"host", b"x"), *headers]}


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.1", (), "10.0.0.1"),
        ("10.0.0.1", ("203.0.113.5",), "203.0.113.5"),
        ("10.0.0.1", ("6.6.6.6, 203.0.113.5",), "203.0.113.5"),
        ("10.0.0.1", ("6.6.6.6, 203.0.113.5, 10.1.1.1, 127.0.0.1",), "203.0.113.5"),
        ("10.0.0.1", ("6.6.6.6", "203.0.113.5"), "203.0.113.5"),
        ("10.0.0.1", ("10.2.2.2, 10.3.3.3",), "10.2.2.2"),
        ("10.0.0.1", ("unknown",), "10.0.0.1"),
        ("10.0.0.1", ("unknown, 10.3.3.3",), "10.3.3.3"),
        ("10.0.0.1", ("junk, 203.0.113.5",), "203.0.113.5"),
        ("10.0.0.1", ("203.0.113.5:4711",), "203.0.113.5"),
        ("10.0.0.1", ("203.0.113.5:port",), "10.0.0.1"),
        ("10.0.0.1", ("[2001:db8:1:2::7]:443",), "2001:db8:1:2::/64"),
        ("10.0.0.1", ("[2001:db8:1:2::7]x",), "10.0.0.1"),
        ("10.0.0.1", ("2001:db8:1:2::7",), "2001:db8:1:2::/64"),
        ("10.0.0.1", ("::ffff:203.0.113.5",), "203.0.113.5"),
        ("10.0.0.1", (" , ,",), "10.0.0.1"),
        ("::ffff:10.0.0.1", ("203.0.113.5",), "203.0.113.5"),
        ("2001:db8:ffff::1", ("203.0.113.5",), "203.0.113.5"),
        ("2001:db8:ffff::1", ("2001:db8:ffff::2",), "2001:db8:ffff::/64"),
        # The peer is not a trusted proxy: the header is ignored.
        ("192.0.2.1", ("203.0.113.5",), "192.0.2.1"),
        ("127.0.0.2", ("203.0.113.5",), "127.0.0.2"),
        ("2001:db8:1:2::9", ("203.0.113.5",), "2001:db8:1:2::/64"),
    ],
)
def test_trusted_chain(peer: str, forwarded: tuple[str, ...], client: str) -> None:
    assert TRUSTED.of(_scope(peer, *forwarded)) == client


def test_without_the_setting_the_peer_is_the_client() -> None:
    plain = ClientAddresses()
    assert plain.of(_scope("10.0.0.1", "203.0.113.5")) == "10.0.0.1"
    assert plain.of({"client": None, "headers": []}) == "unknown"


def test_the_answer_is_kept_in_the_scope() -> None:
    scope = _scope("10.0.0.1", "203.0.113.5")
    assert TRUSTED.of(scope) == "203.0.113.5"
    scope["headers"] = []
    assert TRUSTED.of(scope) == "203.0.113.5"  # the lockout and the log agree
