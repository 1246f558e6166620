"""verify_webhook (tidings_client) against bodies signed by the server's own signer."""

from __future__ import annotations

import time

import pytest

from tidings.signing import Signer, new_secret
from tidings_client import WebhookVerificationError, verify_webhook

BODY = b'{"id":"m1","name":"n","queue":{"id":"q","name":"orders"},"data":"{}","created_at":1}'


def signed(secret: str, body: bytes = BODY, at: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return {
        "webhook-id": "m1",
        "webhook-timestamp": str(ts),
        "webhook-signature": Signer("v1", secret).sign("m1", ts, body),
    }


def test_accepts_a_genuine_delivery_with_any_header_case() -> None:
    secret = new_secret()
    headers = {k.title(): v for k, v in signed(secret).items()}
    assert verify_webhook(secret, headers, BODY)["queue"]["name"] == "orders"
    assert verify_webhook(secret, headers, BODY.decode())["id"] == "m1"


def test_accepts_one_matching_signature_among_several() -> None:
    secret = new_secret()
    headers = signed(secret)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    verify_webhook(secret, headers, BODY)


@pytest.mark.parametrize(
    "case",
    ["tampered body", "old timestamp", "future timestamp", "wrong secret", "missing header",
     "garbage signature", "other id"],
)  # fmt: skip
def test_rejects(case: str) -> None:
    secret = new_secret()
    body, headers = BODY, signed(secret)
    if case == "tampered body":
        body = BODY.replace(b'"data":"{}"', b'"data":"{1}"')
    elif case == "old timestamp":
        headers = signed(secret, at=int(time.time()) - 301)
    elif case == "future timestamp":
        headers = signed(secret, at=int(time.time()) + 301)
    elif case == "wrong secret":
        secret = new_secret()
    elif case == "missing header":
        del headers["webhook-timestamp"]
    elif case == "garbage signature":
        headers["webhook-signature"] = "nonsense"
    elif case == "other id":
        headers["webhook-id"] = "m2"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body)


def test_a_malformed_secret_is_a_verification_error() -> None:
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_***", signed(new_secret()), BODY)
