"""The headers of a delivery attempt (delivery/requests.py): a listener's own
User-Agent, however it spelled the name, reaches the sender as ``User-Agent``, the one
spelling the sender looks for to leave its own out (one User-Agent line)."""

from __future__ import annotations

import json

from tidings.delivery.requests import RequestHeaders
from tidings.domain.clock import ManualClock
from tidings.storage.deliveries import Claimed


def _claimed(headers: dict[str, str] | None) -> Claimed:
    return Claimed(
        "m1", "l1", 0, "o1", "l", "http://127.0.0.1:9/h", "whsec_" + "A" * 32, None,
        "{}", 0, "q1", "q", headers=None if headers is None else json.dumps(headers),
    )  # fmt: skip


def test_a_listeners_user_agent_is_spelled_for_the_sender() -> None:
    build = RequestHeaders(ManualClock(0)).build
    for spelled in ("user-agent", "USER-AGENT", "User-Agent"):
        headers = build(_claimed({spelled: "shop/2", "X-Team": "a"}), b"{}", 0)
        assert headers["User-Agent"] == "shop/2"
        assert [n for n in headers if n.lower() == "user-agent"] == ["User-Agent"]
        assert headers["X-Team"] == "a" and headers["webhook-id"] == "m1"
    assert "User-Agent" not in build(_claimed(None), b"{}", 0)
    assert "User-Agent" not in build(_claimed({"X-Team": "a"}), b"{}", 0)
