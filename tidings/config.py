"""One frozen settings object, parsed once from ``TIDINGS_*`` variables and CLI flags."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tidings.domain.health import BreakerPolicy
from tidings.domain.networks import IPNetwork, parse_networks

DEFAULT_RETRY_SCHEDULE_S = (
    5.0,
    30.0,
    120.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    28800.0,
)
# Usage events are kept a week by default and never less than the day that
# ``GET /events`` promises (SPEC §6).
DEFAULT_EVENT_RETENTION_S = 7 * 86_400.0
MIN_EVENT_RETENTION_S = 86_400.0
_URL_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-]{32,256}$")
_LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_WORKERS = 64


class SettingsError(ValueError):
    """A setting has a value tidings cannot run with; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///tidings.db"
    host: str = "127.0.0.1"
    port: int = 8080
    # granian worker processes serving the API of one `tidings serve` (docs/operations.md).
    workers: int = 1
    bootstrap_api_key: str | None = None
    # Networks listeners may reach besides public addresses (parsed once, here).
    allowed_networks: tuple[IPNetwork, ...] = ()
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    delivery_timeout_s: float = 10.0
    # How long a claimed delivery stays with its engine; None: max(30, 3 x timeout).
    delivery_lease_s: float | None = None
    liveness_interval_s: float = 30.0
    liveness_timeout_s: float = 5.0
    rate_limit_per_minute: int = 6000
    # Length of a rate-limit window. SPEC §1 fixes one minute; shorter ones serve tests.
    rate_limit_window_s: int = 60
    lockout_threshold: int = 10
    lockout_window_s: float = 60.0
    lockout_seconds: float = 300.0
    # Reverse proxies whose X-Forwarded-For names the client (SPEC §2); none by default.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    max_body_bytes: int = 262_144
    tls_cert: str | None = None
    tls_key: str | None = None
    log_format: str = "text"
    log_level: str = "info"
    # Metrics stay off (nothing collected, /metrics is 404) unless one of these is set.
    metrics_token: str | None = None
    metrics_address: str | None = None
    # Per-listener cap on concurrent requests (fairness, SPEC §5).
    max_in_flight_per_listener: int = 16
    # Total concurrent outbound requests of one engine.
    max_in_flight: int = 256
    event_retention_s: float = DEFAULT_EVENT_RETENTION_S
    # The attempt log (SPEC §11) keeps each attempt this long.
    attempt_retention_s: float = 604_800.0
    # The circuit breaker (SPEC §11): failing after this many failed attempts in a row,
    # then no attempts for the cool-down (doubling after each failed trial, to 900 s).
    breaker_threshold: int = 20
    breaker_cooldown_s: float = 30.0
    # A listener failing this long is disabled at its next failed trial.
    disable_after_s: float = 432_000.0
    # Seconds an answer given under an Idempotency-Key is replayed (SPEC §9).
    idempotency_ttl_s: float = 86_400.0
    # Furthest a message may be delayed (SPEC §9): 30 days.
    max_delay_s: float = 2_592_000.0
    # A new queue's retention_seconds when its creator gives none; None keeps forever.
    message_retention_s: int | None = 2_592_000
    # Seconds between two rounds of the message purge.
    purge_interval_s: float = 30.0
    # Requests in progress past which the API sheds load with 503 + Retry-After.
    max_concurrent_requests: int = 512
    # Start even when the database would not make commits durable (tests, scratch use).
    allow_unsafe_durability: bool = False

    def __post_init__(self) -> None:
        # Networks given as text (``"10.0.0.0/8"``, as tests and tools write them) are
        # parsed here, once, like the environment's: every consumer gets objects.
        for name in ("allowed_networks", "trusted_proxies"):
            parsed = tuple(ipaddress.ip_network(n) for n in getattr(self, name))
            object.__setattr__(self, name, parsed)

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_token is not None or self.metrics_address is not None

    @property
    def lease_s(self) -> float:
        """Seconds a claim lasts: after a crash, its deliveries are retried after this."""
        if self.delivery_lease_s is not None:
            return self.delivery_lease_s
        return max(30.0, 3 * self.delivery_timeout_s)

    @property
    def breaker_policy(self) -> BreakerPolicy:
        return BreakerPolicy(
            threshold=self.breaker_threshold,
            cooldown_ms=max(1, int(self.breaker_cooldown_s * 1000)),
            disable_after_ms=int(self.disable_after_s * 1000),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        """Apply CLI flags (``None`` means "not given") on top of the environment."""
        given = {k: v for k, v in changes.items() if v is not None}
        return _validated(replace(self, **given))


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def parse_retry_schedule(raw: str) -> tuple[float, ...]:
    """``"0.2,0.4,0.8"`` -> delays before each retry (so 4 attempts in all)."""
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(
            f"TIDINGS_RETRY_SCHEDULE must be comma-separated seconds, got {raw!r}"
        ) from None
    if any(d < 0 for d in delays):
        raise SettingsError("TIDINGS_RETRY_SCHEDULE delays must not be negative")
    return delays


def normalize_database_url(url: str) -> str:
    """Accept ``postgres://`` and a bare path as well as the documented forms."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    if "://" not in url:
        return "sqlite:///" + url
    if not url.startswith(("sqlite:///", "postgresql://")):
        raise SettingsError(
            "TIDINGS_DATABASE_URL must be sqlite:///path.db or postgresql://user:pass@host/db"
        )
    return url


def parse_address(raw: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` -> (host, port)."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"TIDINGS_METRICS_ADDRESS must be host:port, got {raw!r}")
    return host.strip("[]"), int(port)


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


def _validated(settings: Settings) -> Settings:
    key = settings.bootstrap_api_key
    if key is not None and not _URL_SAFE_KEY.match(key):
        raise SettingsError("TIDINGS_BOOTSTRAP_API_KEY must be 32 to 256 URL-safe characters")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("TIDINGS_TLS_CERT and TIDINGS_TLS_KEY must be set together")
    if settings.log_format not in ("text", "json"):
        raise SettingsError("TIDINGS_LOG_FORMAT must be text or json")
    if settings.log_level not in _LOG_LEVELS:
        raise SettingsError("TIDINGS_LOG_LEVEL must be one of " + ", ".join(_LOG_LEVELS))
    if settings.metrics_token is not None and len(settings.metrics_token) < 16:
        raise SettingsError("TIDINGS_METRICS_TOKEN must be at least 16 characters")
    if settings.metrics_address is not None:
        parse_address(settings.metrics_address)
    if settings.event_retention_s < MIN_EVENT_RETENTION_S:
        raise SettingsError("TIDINGS_EVENT_RETENTION must be at least 86400 seconds (24 h)")
    lease = settings.delivery_lease_s
    if lease is not None and lease < 3 * settings.delivery_timeout_s:
        # An attempt may wait for a listener slot (one attempt's time), then take its
        # own; the lease must outlast both and the write of the outcome.
        raise SettingsError(
            "TIDINGS_DELIVERY_LEASE must be at least 3 x TIDINGS_DELIVERY_TIMEOUT"
            f" ({3 * settings.delivery_timeout_s:g} s), got {lease:g}"
        )
    if not 1 <= settings.workers <= MAX_WORKERS:
        raise SettingsError(
            f"TIDINGS_WORKERS (--workers) must be from 1 to {MAX_WORKERS}, got {settings.workers}"
        )
    if settings.rate_limit_window_s < 1:
        raise SettingsError("TIDINGS_RATE_LIMIT_WINDOW must be at least 1 second")
    if settings.max_body_bytes < 1024:
        raise SettingsError("TIDINGS_MAX_BODY_BYTES must be at least 1024")
    return replace(settings, database_url=normalize_database_url(settings.database_url))


def _networks(env: Mapping[str, str], name: str) -> tuple[IPNetwork, ...]:
    try:
        return parse_networks(env.get(name, ""))
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every ``TIDINGS_*`` variable once; unknown ones are ignored."""
    env = os.environ if env is None else env
    base = Settings()
    schedule = env.get("TIDINGS_RETRY_SCHEDULE")
    settings = Settings(
        database_url=env.get("TIDINGS_DATABASE_URL") or base.database_url,
        host=env.get("TIDINGS_HOST") or base.host,
        port=_int(env, "TIDINGS_PORT", base.port),
        workers=_int(env, "TIDINGS_WORKERS", base.workers, 1),
        bootstrap_api_key=env.get("TIDINGS_BOOTSTRAP_API_KEY") or None,
        allowed_networks=_networks(env, "TIDINGS_ALLOWED_NETWORKS"),
        retry_schedule_s=parse_retry_schedule(schedule) if schedule else base.retry_schedule_s,
        delivery_timeout_s=_float(env, "TIDINGS_DELIVERY_TIMEOUT", base.delivery_timeout_s, 0.01),
        delivery_lease_s=(
            _float(env, "TIDINGS_DELIVERY_LEASE", 0.0, 0.01)
            if env.get("TIDINGS_DELIVERY_LEASE")
            else None
        ),
        liveness_interval_s=_float(
            env, "TIDINGS_LIVENESS_INTERVAL", base.liveness_interval_s, 0.01
        ),
        rate_limit_per_minute=_int(env, "TIDINGS_RATE_LIMIT", base.rate_limit_per_minute),
        rate_limit_window_s=_int(env, "TIDINGS_RATE_LIMIT_WINDOW", base.rate_limit_window_s, 1),
        lockout_threshold=_int(env, "TIDINGS_LOCKOUT_THRESHOLD", base.lockout_threshold, 1),
        lockout_window_s=_float(env, "TIDINGS_LOCKOUT_WINDOW", base.lockout_window_s, 0.01),
        lockout_seconds=_float(env, "TIDINGS_LOCKOUT_SECONDS", base.lockout_seconds),
        trusted_proxies=_networks(env, "TIDINGS_TRUSTED_PROXIES"),
        max_body_bytes=_int(env, "TIDINGS_MAX_BODY_BYTES", base.max_body_bytes, 1),
        tls_cert=env.get("TIDINGS_TLS_CERT") or None,
        tls_key=env.get("TIDINGS_TLS_KEY") or None,
        log_format=env.get("TIDINGS_LOG_FORMAT") or base.log_format,
        log_level=(env.get("TIDINGS_LOG_LEVEL") or base.log_level).lower(),
        metrics_token=env.get("TIDINGS_METRICS_TOKEN") or None,
        metrics_address=env.get("TIDINGS_METRICS_ADDRESS") or None,
        event_retention_s=_float(env, "TIDINGS_EVENT_RETENTION", base.event_retention_s),
        breaker_threshold=_int(env, "TIDINGS_BREAKER_THRESHOLD", base.breaker_threshold, 1),
        breaker_cooldown_s=_float(env, "TIDINGS_BREAKER_COOLDOWN", base.breaker_cooldown_s, 0.01),
        disable_after_s=_float(env, "TIDINGS_DISABLE_AFTER", base.disable_after_s),
        attempt_retention_s=_float(env, "TIDINGS_ATTEMPT_RETENTION", base.attempt_retention_s, 1.0),
        idempotency_ttl_s=_float(env, "TIDINGS_IDEMPOTENCY_TTL", base.idempotency_ttl_s, 0.001),
        max_delay_s=_float(env, "TIDINGS_MAX_DELAY", base.max_delay_s),
        message_retention_s=_int(env, "TIDINGS_MESSAGE_RETENTION", 2_592_000) or None,
        purge_interval_s=_float(env, "TIDINGS_PURGE_INTERVAL", base.purge_interval_s, 0.01),
        max_concurrent_requests=_int(
            env, "TIDINGS_MAX_CONCURRENT_REQUESTS", base.max_concurrent_requests, 1
        ),
        allow_unsafe_durability=_flag(env, "TIDINGS_ALLOW_UNSAFE_DURABILITY"),
    )
    return _validated(settings)


SETTING_NAMES = tuple(f.name for f in fields(Settings))
