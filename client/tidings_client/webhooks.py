"""Checking a delivery on the receiving side (Standard Webhooks, SPEC §5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import standardwebhooks
import standardwebhooks.webhooks


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh delivery: answer it ``400``, do not process it."""


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes | str) -> Any:
    """Verify a delivery and answer its JSON payload; raise if it is not genuine.

    ``secret`` is the listener's ``whsec_...`` secret, ``headers`` the request's
    headers (any capitalisation), ``body`` the raw body exactly as received (verify
    before parsing: re-encoded JSON no longer matches). A ``webhook-timestamp``
    more than five minutes off the local clock is refused (replay protection); the
    HMAC is compared in constant time. Deliveries are at-least-once: dedupe on
    ``headers["webhook-id"]`` after verifying.

    The check itself is the ``standardwebhooks`` reference implementation.
    """
    try:
        return standardwebhooks.Webhook(secret).verify(body, dict(headers))
    except standardwebhooks.WebhookVerificationError as exc:
        raise WebhookVerificationError(str(exc)) from None
    except (ValueError, TypeError, standardwebhooks.webhooks.EmptyWebhookSecretError) as exc:
        # A malformed secret or signature header.
        raise WebhookVerificationError(f"malformed webhook: {exc}") from None
