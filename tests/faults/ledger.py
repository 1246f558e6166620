"""The loss checker: what clients were told against what receivers got.

In the manner of Jepsen's checkers, every POST's outcome and every arrival is
recorded, then classified per listener:

* **lost**: answered ``200``, never delivered (must be 0, always);
* **duplicated**: deliveries beyond the first of a message (allowed, at-least-once);
* **unexpected**: delivered, but no client ever sent it;
* **corrupt**: a bad ``webhook-signature``, or a body that differs from what was sent.

Messages whose POST failed without a ``200`` (refused, reset, ``503``) may or may
not be delivered (the commit may have happened before the crash): they are
*indeterminate*, counted but never an error.

Signatures are checked here with plain ``hmac``, independently of tidings' own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Arrival:
    listener: str
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    at: float = 0.0  # time.monotonic() on arrival


@dataclass
class Report:
    listener: str
    acked: int
    delivered: int
    lost: int
    duplicated: int
    unexpected: int
    corrupt: int
    indeterminate_delivered: int

    def line(self) -> str:
        return (
            f"{self.listener}: acked={self.acked} delivered={self.delivered} lost={self.lost}"
            f" duplicated={self.duplicated} unexpected={self.unexpected}"
            f" corrupt={self.corrupt} indeterminate_delivered={self.indeterminate_delivered}"
        )


def valid_signature(secret: str, arrival: Arrival) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{arrival.webhook_id}.{arrival.timestamp}.".encode() + arrival.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[-1] for part in arrival.signature.split()]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


@dataclass
class Ledger:
    queue_id: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(6))
    secrets: dict[str, str] = field(default_factory=dict)  # listener name -> secret
    sent: dict[int, str] = field(default_factory=dict)  # n -> data as posted
    acked: dict[int, str] = field(default_factory=dict)  # n -> message id answered 200
    acked_at: dict[int, float] = field(default_factory=dict)  # n -> time.monotonic()
    failed: Counter[str] = field(default_factory=Counter)  # outcome -> count
    arrivals: list[Arrival] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=dict)  # listener -> webhook ids

    def record(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
        self.seen.setdefault(arrival.listener, set()).add(arrival.webhook_id)

    def data(self, n: int, pad: int = 0) -> str:
        text = f"{self.token}:{n}:" + "x" * pad
        self.sent[n] = text
        return text

    def missing(self, listener: str) -> int:
        """Acknowledged messages not yet delivered to ``listener`` (cheap, for polling)."""
        seen = self.seen.get(listener, set())
        return sum(1 for message_id in self.acked.values() if message_id not in seen)

    def _classify(self, arrival: Arrival) -> tuple[str, int | None]:
        """Answer (verdict, n): verdict is ok, corrupt or unexpected."""
        try:
            body: dict[str, Any] = json.loads(arrival.body)
            data = body["data"]
            token, n_text, _ = data.split(":", 2)
            n = int(n_text)
        except (ValueError, KeyError, TypeError, AttributeError):
            return "unexpected", None
        if token != self.token or n not in self.sent:
            return "unexpected", None
        secret = self.secrets.get(arrival.listener)
        if secret is None or not valid_signature(secret, arrival):
            return "corrupt", n
        acked_id = self.acked.get(n)
        id_ok = body.get("id") == arrival.webhook_id and acked_id in (None, arrival.webhook_id)
        if not id_ok or data != self.sent[n] or body.get("queue", {}).get("id") != self.queue_id:
            return "corrupt", n
        return "ok", n

    def delivery_latencies(self, listener: str) -> list[float]:
        """Seconds from the 200 to the first arrival, per acknowledged message."""
        first: dict[str, float] = {}
        for a in self.arrivals:
            if a.listener == listener:
                first.setdefault(a.webhook_id, a.at)
        by_id = {message_id: n for n, message_id in self.acked.items()}
        return sorted(at - self.acked_at[by_id[i]] for i, at in first.items() if i in by_id)

    def report(self, listener: str) -> Report:
        per_n: Counter[int] = Counter()
        unexpected = corrupt = 0
        for arrival in self.arrivals:
            if arrival.listener != listener:
                continue
            verdict, n = self._classify(arrival)
            if verdict == "unexpected":
                unexpected += 1
            elif verdict == "corrupt":
                corrupt += 1
            elif n is not None:
                per_n[n] += 1
        lost = sum(1 for n in self.acked if n not in per_n)
        return Report(
            listener=listener,
            acked=len(self.acked),
            delivered=len(per_n),
            lost=lost,
            duplicated=sum(count - 1 for count in per_n.values()),
            unexpected=unexpected,
            corrupt=corrupt,
            indeterminate_delivered=sum(1 for n in per_n if n not in self.acked),
        )

    def outcomes(self) -> str:
        failed = ", ".join(f"{k}={v}" for k, v in sorted(self.failed.items()))
        return f"posted={len(self.sent)} acked={len(self.acked)} not-acked: {failed or 'none'}"
