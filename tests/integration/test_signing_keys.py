"""Signing keys (SPEC §10): v1a (Ed25519) listeners and secret rotation with a grace
period, checked by receivers the way users check them: the stock standardwebhooks
package for v1 (each of the two keys during a rotation), cryptography for v1a, and
tidings_client.verify_webhook for both. Keys never reach the logs. Both backends."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import pytest
import standardwebhooks
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.conftest import Running
from tests.integration.test_delivery import post
from tests.receivers import Arrival, Receiver, receiver
from tidings_client import WebhookVerificationError, verify_webhook


async def _listener(server: Running, qid: str, rx: Receiver, **options: Any) -> dict[str, Any]:
    body = {"name": "l", "notify_url": rx.url("/hook"), "liveness_url": rx.url("/live")}
    r = await server.call("POST", f"/queues/{qid}/listeners", json={**body, **options})
    assert r.status_code == 200, r.text
    created: dict[str, Any] = r.json()["listener"]
    return created


async def _delivered(server: Running, qid: str, rx: Receiver) -> Arrival:
    before = len(rx.on("/hook"))
    await post(server, qid, data='{"n": 1}')
    arrivals = await rx.wait_for("/hook", before + 1)
    return arrivals[-1]


def _signatures(arrival: Arrival) -> list[str]:
    return arrival.headers["webhook-signature"].split(" ")


def _ed25519_ok(public: str, arrival: Arrival) -> bool:
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    h = arrival.headers
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + arrival.body
    for entry in _signatures(arrival):
        version, _, sig = entry.partition(",")
        if version == "v1a":
            try:
                key.verify(base64.b64decode(sig), signed)
                return True
            except Exception:
                continue
    return False


async def test_v1a_listener_signs_with_ed25519(server: Running, queue: dict[str, Any]) -> None:
    async with receiver() as rx:
        created = await _listener(server, queue["id"], rx, signature_scheme="v1a")
        assert created["secret"].startswith("whpk_")
        arrival = await _delivered(server, queue["id"], rx)
    [signature] = _signatures(arrival)
    assert signature.startswith("v1a,")
    assert _ed25519_ok(created["secret"], arrival)  # cryptography directly
    assert verify_webhook(created["secret"], arrival.headers, arrival.body)["data"] == '{"n": 1}'
    with pytest.raises(WebhookVerificationError):
        verify_webhook(created["secret"], arrival.headers, arrival.body + b" ")
    shown = await server.call("GET", f"/queues/{queue['id']}/listeners/{created['id']}")
    assert shown.json()["listener"]["signature_scheme"] == "v1a"
    assert shown.json()["listener"]["secret"] == created["secret"]


async def test_rotation_signs_with_both_keys_during_the_grace_period(
    server: Running, queue: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    qid = queue["id"]
    async with receiver() as rx:
        created = await _listener(server, qid, rx)
        old = created["secret"]
        path = f"/queues/{qid}/listeners/{created['id']}"
        r = await server.call("POST", path + "/secret", json={"grace_seconds": 3600})
        assert r.status_code == 200, r.text
        rotated = r.json()["listener"]
        new = rotated["secret"]
        assert rotated["signature_scheme"] == "v1" and new.startswith("whsec_") and new != old
        arrival = await _delivered(server, qid, rx)
        shown = (await server.call("GET", path)).json()["listener"]
    assert len(_signatures(arrival)) == 2
    # The stock library, with each key alone: a receiver switches at its own pace.
    for secret in (old, new):
        standardwebhooks.Webhook(secret).verify(arrival.body, arrival.headers)
        assert verify_webhook(secret, arrival.headers, arrival.body)["id"]
    assert verify_webhook([new, old], arrival.headers, arrival.body)["id"]
    assert shown["secret"] == new
    expires = shown["previous_secret_expires_at"]
    assert abs(expires - (time.time() * 1000 + 3600_000)) < 60_000
    logged = caplog.text
    assert old not in logged and new not in logged


async def test_rotation_without_grace_drops_the_old_key(
    server: Running, queue: dict[str, Any]
) -> None:
    qid = queue["id"]
    async with receiver() as rx:
        created = await _listener(server, qid, rx)
        path = f"/queues/{qid}/listeners/{created['id']}"
        r = await server.call("POST", path + "/secret", json={"grace_seconds": 0})
        new = r.json()["listener"]["secret"]
        arrival = await _delivered(server, qid, rx)
        shown = (await server.call("GET", path)).json()["listener"]
    assert len(_signatures(arrival)) == 1
    standardwebhooks.Webhook(new).verify(arrival.body, arrival.headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(created["secret"], arrival.headers, arrival.body)
    assert shown["previous_secret_expires_at"] is None


async def test_rotation_from_v1_to_v1a_keeps_the_v1_signature_meanwhile(
    server: Running, queue: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    qid = queue["id"]
    async with receiver() as rx:
        created = await _listener(server, qid, rx)
        path = f"/queues/{qid}/listeners/{created['id']}"
        r = await server.call("POST", path + "/secret", json={"signature_scheme": "v1a"})
        assert r.status_code == 200, r.text
        public = r.json()["listener"]["secret"]
        assert public.startswith("whpk_")
        arrival = await _delivered(server, qid, rx)
        private = await server.store.db.fetchval(
            "SELECT signing_key FROM listeners WHERE id = $1", created["id"]
        )
    assert sorted(s.split(",")[0] for s in _signatures(arrival)) == ["v1", "v1a"]
    standardwebhooks.Webhook(created["secret"]).verify(arrival.body, arrival.headers)
    assert _ed25519_ok(public, arrival)
    assert verify_webhook(public, arrival.headers, arrival.body)["id"]
    # The private key stays in the database: never answered, never logged.
    assert private.startswith("whsk_")
    assert private not in caplog.text
    shown = (await server.call("GET", path)).text
    assert private not in shown and "whsk_" not in shown


async def test_a_put_of_another_scheme_rotates_the_key_with_the_default_grace(
    server: Running, queue: dict[str, Any]
) -> None:
    """SPEC §10: every option is changeable with PUT, signature_scheme too; a new
    scheme needs a new key, so it rotates as POST .../secret does by default."""
    qid = queue["id"]
    async with receiver() as rx:
        created = await _listener(server, qid, rx)
        path = f"/queues/{qid}/listeners/{created['id']}"
        same = await server.call("PUT", path, json={"signature_scheme": "v1", "name": "m"})
        assert same.status_code == 200, same.text
        shown = (await server.call("GET", path)).json()["listener"]
        assert (shown["secret"], shown["previous_secret_expires_at"]) == (created["secret"], None)
        before = int(time.time() * 1000)
        r = await server.call("PUT", path, json={"signature_scheme": "v1a", "name": "n"})
        assert r.status_code == 200, r.text
        shown = (await server.call("GET", path)).json()["listener"]
        assert (shown["name"], shown["signature_scheme"]) == ("n", "v1a")
        assert shown["secret"].startswith("whpk_")
        expires = shown["previous_secret_expires_at"]
        assert before + 86_400_000 <= expires <= int(time.time() * 1000) + 86_400_000
        arrival = await _delivered(server, qid, rx)
    assert sorted(s.split(",")[0] for s in _signatures(arrival)) == ["v1", "v1a"]
    standardwebhooks.Webhook(created["secret"]).verify(arrival.body, arrival.headers)
    assert _ed25519_ok(shown["secret"], arrival)
    assert (await server.call("PUT", path, json={"signature_scheme": "v2"})).status_code == 400


async def test_rotation_needs_write_access_and_checks_its_body(
    server: Running, queue: dict[str, Any]
) -> None:
    created = (
        await server.call(
            "POST",
            f"/queues/{queue['id']}/listeners",
            json={
                "name": "l",
                "notify_url": "http://127.0.0.1:9/h",
                "liveness_url": "http://127.0.0.1:9/l",
            },
        )
    ).json()["listener"]
    path = f"/queues/{queue['id']}/listeners/{created['id']}/secret"
    for bad in ({"grace_seconds": -1}, {"grace_seconds": 604801}, {"signature_scheme": "v2"}):
        assert (await server.call("POST", path, json=bad)).status_code == 400
    scopes = [{"resource": "listeners", "access": "read", "targets": ["*"]}]
    key = (await server.call("POST", "/api_keys", json={"scopes": scopes})).json()["api_key"]
    r = await server.client.post(path, json={}, headers={"X-API-KEY": key})
    assert r.status_code == 403
