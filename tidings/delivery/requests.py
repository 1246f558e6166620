"""The headers of one delivery attempt: the listener's static ones, then the
Standard Webhooks ones (SPEC §5, §10), signed by the listener's key and, during a
rotation's grace period, by its previous key as well (space-separated)."""

from __future__ import annotations

import json

from tidings.domain.clock import Clock
from tidings.signing import Signer
from tidings.storage.deliveries import Claimed

MAX_SIGNERS = 4096


class RequestHeaders:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # Keys parsed once, not per attempt (an Ed25519 key takes a while to load).
        self._signers: dict[tuple[str, str], Signer] = {}
        self._static: dict[str, dict[str, str]] = {}

    def _signer(self, scheme: str, key: str) -> Signer:
        signer = self._signers.get((scheme, key))
        if signer is None:
            if len(self._signers) >= MAX_SIGNERS:
                self._signers.clear()
            signer = self._signers[scheme, key] = Signer(scheme, key)
        return signer

    def _listener_headers(self, raw: str) -> dict[str, str]:
        parsed = self._static.get(raw)
        if parsed is None:
            if len(self._static) >= MAX_SIGNERS:
                self._static.clear()
            # A listener's User-Agent, however spelled, as the sender looks for it: it
            # then replaces tidings' own (sender._request_head).
            parsed = self._static[raw] = {
                ("User-Agent" if name.lower() == "user-agent" else name): value
                for name, value in json.loads(raw).items()
            }
        return parsed

    def signature(self, claimed: Claimed, timestamp_s: int, body: bytes) -> str:
        keys = claimed.signing
        if keys is None:  # v1 with the secret: its key decoded once, not per attempt
            return self._signer("v1", claimed.secret).sign(claimed.message_id, timestamp_s, body)
        signature = self._signer(keys.scheme, keys.key).sign(claimed.message_id, timestamp_s, body)
        previous = keys.previous_key
        if previous is not None and (keys.previous_until or 0) > self._clock.now_ms():
            old = self._signer(keys.previous_scheme or "v1", previous)
            signature += " " + old.sign(claimed.message_id, timestamp_s, body)
        return signature

    def build(self, claimed: Claimed, body: bytes, timestamp_s: int) -> dict[str, str]:
        headers = self._listener_headers(claimed.headers) if claimed.headers else {}
        return {
            **headers,
            "Content-Type": "application/json",
            "webhook-id": claimed.message_id,
            "webhook-timestamp": str(timestamp_s),
            "webhook-signature": self.signature(claimed, timestamp_s, body),
        }
