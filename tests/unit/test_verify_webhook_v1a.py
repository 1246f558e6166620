"""verify_webhook for v1a (Ed25519) and for several signatures and secrets (SPEC §10)."""

from __future__ import annotations

import time

import pytest

from tidings.signing import Signer, new_keys
from tidings_client import WebhookVerificationError, verify_webhook

BODY = b'{"id":"m1","name":null,"queue":{"id":"q","name":"q"},"data":"x","created_at":1}'


def headers(*signers: Signer, age_s: int = 0, body: bytes = BODY) -> dict[str, str]:
    ts = int(time.time()) - age_s
    return {
        "Webhook-Id": "m1",
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": " ".join(s.sign("m1", ts, body) for s in signers),
    }


def test_v1a_verifies_and_refuses() -> None:
    keys = new_keys("v1a")
    signer = Signer("v1a", keys.signing)
    assert verify_webhook(keys.shown, headers(signer), BODY)["id"] == "m1"
    other = new_keys("v1a")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other.shown, headers(signer), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(keys.shown, headers(signer, age_s=600), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(keys.shown, headers(signer), BODY.replace(b"x", b"y"))
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whpk_not-base64!", headers(signer), BODY)


def test_any_of_several_signatures_and_secrets() -> None:
    v1, v1a = new_keys("v1"), new_keys("v1a")
    both = headers(Signer("v1a", v1a.signing), Signer("v1", v1.signing))
    assert verify_webhook(v1.shown, both, BODY)["id"] == "m1"
    assert verify_webhook(v1a.shown, both, BODY)["id"] == "m1"
    stranger = new_keys("v1")
    assert verify_webhook([stranger.shown, v1a.shown], both, BODY)["id"] == "m1"
    with pytest.raises(WebhookVerificationError):
        verify_webhook([stranger.shown], both, BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook([], both, BODY)


def test_signers_never_show_their_keys() -> None:
    keys = new_keys("v1a")
    assert keys.signing not in repr(Signer("v1a", keys.signing))
