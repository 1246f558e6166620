"""What each setting means: the source of the settings reference in docs/operations.md.

``scripts/settings_doc.py`` renders it together with the defaults read from
:class:`~tidings.config.Settings`; a test fails when a setting is added without an
entry here or the document was not regenerated.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from tidings.config import Settings

# field -> (environment variable or None when only code sets it, description)
SETTING_DOCS: dict[str, tuple[str | None, str]] = {
    "database_url": (
        "TIDINGS_DATABASE_URL",
        "`sqlite:///path.db` or `postgresql://user:pass@host:5432/db` (`postgres://` and a "
        "bare file path are accepted too). Flag: `--database`.",
    ),
    "host": ("TIDINGS_HOST", "Address `tidings serve` listens on. Flag: `--host`."),
    "port": ("TIDINGS_PORT", "Port `tidings serve` listens on. Flag: `--port`."),
    "workers": (
        "TIDINGS_WORKERS",
        "API worker processes of `tidings serve` (1 to 64); the engine stays one process "
        "beside them. See *Several API workers* above. Flag: `--workers`.",
    ),
    "bootstrap_api_key": (
        "TIDINGS_BOOTSTRAP_API_KEY",
        "32 to 256 URL-safe characters. At start, makes sure the organization `default` "
        "exists with this operator key (no key is printed then).",
    ),
    "allowed_networks": (
        "TIDINGS_ALLOWED_NETWORKS",
        "Comma-separated CIDRs listeners may reach besides public addresses, e.g. "
        "`10.0.0.0/8,127.0.0.0/8` (see security.md).",
    ),
    "retry_schedule_s": (
        "TIDINGS_RETRY_SCHEDULE",
        "Comma-separated delays (seconds) before each retry; n delays = n + 1 attempts. "
        "Each gets ±20 % jitter.",
    ),
    "delivery_timeout_s": (
        "TIDINGS_DELIVERY_TIMEOUT",
        "Seconds a receiver has to answer a delivery completely.",
    ),
    "delivery_lease_s": (
        "TIDINGS_DELIVERY_LEASE",
        "Seconds an engine holds the deliveries it claims; unset means "
        "`max(30, 3 x TIDINGS_DELIVERY_TIMEOUT)`, and at least 3 x the timeout is required. "
        "A crashed engine's deliveries do not wait for it: its death is detected within "
        "seconds (reliability.md). The lease is the last resort for an engine that is "
        "alive but stalled; a database stalled for longer than the lease makes another "
        "engine send deliveries whose outcome is not written yet again (duplicates).",
    ),
    "liveness_interval_s": (
        "TIDINGS_LIVENESS_INTERVAL",
        "Seconds between liveness probes of each listener.",
    ),
    "liveness_timeout_s": (None, "Seconds a liveness probe may take."),
    "rate_limit_per_minute": (
        "TIDINGS_RATE_LIMIT",
        "Requests per minute per API key; `0` turns limiting and its headers off.",
    ),
    "rate_limit_window_s": (
        "TIDINGS_RATE_LIMIT_WINDOW",
        "Length of the rate-limit window in seconds (SPEC: one minute; tests shorten it).",
    ),
    "lockout_threshold": (
        "TIDINGS_LOCKOUT_THRESHOLD",
        "Failed authentications from one address before it is locked out.",
    ),
    "lockout_window_s": (
        "TIDINGS_LOCKOUT_WINDOW",
        "Seconds within which the failures are counted.",
    ),
    "lockout_seconds": ("TIDINGS_LOCKOUT_SECONDS", "Seconds a locked-out address gets `403`."),
    "trusted_proxies": (
        "TIDINGS_TRUSTED_PROXIES",
        "Comma-separated CIDRs of reverse proxies, e.g. `10.0.0.5/32`. When the TCP peer is "
        "one, the client is the rightmost `X-Forwarded-For` address that is not (for the "
        "lockout and the access log); otherwise that header is ignored (see security.md).",
    ),
    "max_body_bytes": ("TIDINGS_MAX_BODY_BYTES", "Largest request body; larger ones get `413`."),
    "tls_cert": (
        "TIDINGS_TLS_CERT",
        "PEM certificate (chain) file: serve HTTPS with HTTP/2. Set together with "
        "`TIDINGS_TLS_KEY`.",
    ),
    "tls_key": ("TIDINGS_TLS_KEY", "PEM private key file for `TIDINGS_TLS_CERT`."),
    "log_format": (
        "TIDINGS_LOG_FORMAT",
        "`text` (one readable line per record) or `json` (one JSON object per line).",
    ),
    "log_level": (
        "TIDINGS_LOG_LEVEL",
        "`debug`, `info`, `warning` or `error`; the access log is at `info`.",
    ),
    "metrics_token": (
        "TIDINGS_METRICS_TOKEN",
        "At least 16 characters. Serves `GET /metrics` on the API port to requests with "
        "`Authorization: Bearer <token>`. Unset (and no address): no metrics at all.",
    ),
    "metrics_address": (
        "TIDINGS_METRICS_ADDRESS",
        "`host:port` of a separate, unauthenticated `/metrics` listener (also in "
        "`tidings worker`). Bind it to a private interface.",
    ),
    "event_retention_s": (
        "TIDINGS_EVENT_RETENTION",
        "Seconds usage events are kept (at least 86400: `GET /events` promises a day).",
    ),
    "attempt_retention_s": (
        "TIDINGS_ATTEMPT_RETENTION",
        "Seconds each delivery attempt is kept in the attempt log (status, duration, error, "
        "the first 1024 bytes of the answer; see delivery.md).",
    ),
    "breaker_threshold": (
        "TIDINGS_BREAKER_THRESHOLD",
        "A listener whose last this many attempts all failed (across messages) is "
        "`failing`: its circuit breaker stops attempts to it (see delivery.md).",
    ),
    "breaker_cooldown_s": (
        "TIDINGS_BREAKER_COOLDOWN",
        "Seconds a failing listener gets no attempts before a single trial; doubled after "
        "each failed trial, up to 900 s.",
    ),
    "disable_after_s": (
        "TIDINGS_DISABLE_AFTER",
        "A listener `failing` this many seconds is disabled (reason `failing`) at its next "
        "failed trial; its deliveries are kept until it is enabled again.",
    ),
    "idempotency_ttl_s": (
        "TIDINGS_IDEMPOTENCY_TTL",
        "Seconds an answer given under an `Idempotency-Key` is remembered and replayed, "
        "from the first answer (see publishing.md).",
    ),
    "max_delay_s": (
        "TIDINGS_MAX_DELAY",
        "Furthest ahead (seconds) a message's `deliver_at` or `delay` may put its first "
        "attempt; further is `422` (see publishing.md).",
    ),
    "message_retention_s": (
        "TIDINGS_MESSAGE_RETENTION",
        "Seconds a new queue keeps its messages when it is created without "
        "`retention_seconds`; `0` keeps them forever. Queues keep their own value "
        "(see publishing.md).",
    ),
    "purge_interval_s": (
        "TIDINGS_PURGE_INTERVAL",
        "Seconds between two rounds of the purge of messages past their queue's "
        "retention (in batches, see publishing.md).",
    ),
    "max_in_flight_per_listener": (None, "Concurrent delivery requests to one listener."),
    "max_in_flight": (None, "Concurrent outbound requests of one delivery engine."),
    "max_concurrent_requests": (
        "TIDINGS_MAX_CONCURRENT_REQUESTS",
        "Requests in progress on one node past which it sheds load: further requests get "
        "`503` with `Retry-After: 1` at once (`/health` is exempt). See reliability.md.",
    ),
    "allow_unsafe_durability": (
        "TIDINGS_ALLOW_UNSAFE_DURABILITY",
        "`1` starts even when the database would not make commits durable (PostgreSQL "
        "`fsync`, `synchronous_commit` or `full_page_writes` off; SQLite not in WAL with "
        "`synchronous=FULL`), with a warning. For tests and scratch data only.",
    ),
}


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if value == ():
        return "none"
    if isinstance(value, tuple):
        return "`" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def undocumented() -> list[str]:
    return [f.name for f in fields(Settings) if f.name not in SETTING_DOCS]


def render_markdown() -> str:
    """The settings reference table, in field order."""
    rows = [
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for f in fields(Settings):
        env, text = SETTING_DOCS.get(f.name, (None, "(undocumented)"))
        default = f.default if f.default is not MISSING else None
        name = f"`{env}`" if env else f"(`{f.name}`, code only)"
        rows.append(f"| {name} | {_default(default)} | {text} |")
    return "\n".join(rows) + "\n"
