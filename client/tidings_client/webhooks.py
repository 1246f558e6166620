"""Checking a delivery on the receiving side (Standard Webhooks, SPEC §5 and §10)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import standardwebhooks
import standardwebhooks.webhooks
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PUBLIC_PREFIX = "whpk_"
TOLERANCE_S = 5 * 60


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh delivery: answer it ``400``, do not process it."""


def verify_webhook(
    secret: str | Sequence[str], headers: Mapping[str, str], body: bytes | str
) -> Any:
    """Verify a delivery and answer its JSON payload; raise if it is not genuine.

    ``secret`` is the listener's ``secret``: a ``whsec_...`` key (scheme ``v1``,
    HMAC-SHA256) or a ``whpk_...`` public key (scheme ``v1a``, Ed25519), or several of
    them (during a rotation, the old and the new): the delivery is genuine when any
    signature in its ``webhook-signature`` header (space-separated; tidings sends two
    during a rotation's grace period) verifies with any of them. ``headers`` are the
    request's headers (any capitalisation), ``body`` the raw body exactly as received
    (verify before parsing: re-encoded JSON no longer matches). A
    ``webhook-timestamp`` more than five minutes off the local clock is refused
    (replay protection). Deliveries are at-least-once: dedupe on
    ``headers["webhook-id"]`` after verifying.

    ``v1`` is checked by the ``standardwebhooks`` reference implementation, ``v1a``
    with ``cryptography`` (the reference implementation has no asymmetric keys).
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise WebhookVerificationError("no secret to verify with")
    failure = "no signature matched"
    for key in secrets:
        try:
            if key.startswith(PUBLIC_PREFIX):
                return _verify_v1a(key, headers, body)
            return standardwebhooks.Webhook(key).verify(body, dict(headers))
        except standardwebhooks.WebhookVerificationError as exc:
            failure = str(exc)
        except (ValueError, TypeError, standardwebhooks.webhooks.EmptyWebhookSecretError) as exc:
            # A malformed secret or signature header.
            failure = f"malformed webhook: {exc}"
        except WebhookVerificationError as exc:
            failure = str(exc)
    raise WebhookVerificationError(failure)


def _verify_v1a(public_key: str, headers: Mapping[str, str], body: bytes | str) -> Any:
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (
        lower.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("Missing required headers")
    try:
        timestamp = int(stamp)
        key = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(public_key.removeprefix(PUBLIC_PREFIX), validate=True)
        )
    except (ValueError, binascii.Error) as exc:
        raise WebhookVerificationError(f"malformed webhook: {exc}") from None
    if abs(time.time() - timestamp) > TOLERANCE_S:
        raise WebhookVerificationError("Message timestamp too old or too new")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    signed = b"%s.%d.%s" % (msg_id.encode("utf-8"), timestamp, raw)
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(encoded, validate=True), signed)
        except (InvalidSignature, ValueError, binascii.Error):
            continue
        return json.loads(raw)
    raise WebhookVerificationError("No matching signature found")
