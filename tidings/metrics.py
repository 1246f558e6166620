"""Prometheus metrics: what to count, and the text page that shows it.

Off unless an operator asked for them (``TIDINGS_METRICS_TOKEN`` and/or
``TIDINGS_METRICS_ADDRESS``): with neither set nothing is collected and ``/metrics``
is ``404``, so a fresh install exposes nothing by accident.

The hot path pays one dict lookup, one counter increment and one histogram
observation per request: labelled children are cached here rather than resolved by
``prometheus_client`` on every call (its ``labels()`` validates and locks). Gauges
that need the database (deliveries pending/missed, listeners by liveness) are
computed when scraped, at most once per ``GAUGE_TTL_S``.

``tidings serve`` runs its delivery engine in a child process; both then write their
series to a shared directory (``prometheus_client``'s multiprocess mode, chosen by
``PROMETHEUS_MULTIPROC_DIR`` in the environment, which ``serve`` sets through
``share_metrics`` before it starts either process) and ``/metrics`` adds them up.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tidings.domain.health import Change
from tidings.storage import gauges
from tidings.storage.database import Database, StorageError
from tidings.storage.health import HealthChange

log = logging.getLogger("tidings.metrics")

GAUGE_TTL_S = 1.0
CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics(directory: str) -> None:
    """Write this process's series (and those of processes it starts) to ``directory``.

    prometheus_client picks its value store when first imported; this process may
    have imported it already, and granian forks the API worker from it."""
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def shared_metrics_dir() -> str | None:
    """The directory this process's series are written to, when shared with others."""
    return os.environ.get(MULTIPROCESS_ENV) or None


def attempt_outcome(status: int | None) -> str:
    """``acknowledged`` (2xx), ``rejected`` (any other answer) or ``unreachable``."""
    if status is None:
        return "unreachable"
    return "acknowledged" if 200 <= status < 300 else "rejected"


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._shared = shared_metrics_dir()
        r = self.registry
        self._requests = Counter(
            "tidings_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self._latency = Histogram(
            "tidings_http_request_duration_seconds", "Time to answer an HTTP request",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.messages_ingested = Counter(
            "tidings_messages_ingested", "Messages durably committed", registry=r
        )
        self.commit_batch = Histogram(
            "tidings_ingest_commit_batch_size", "Messages per group commit",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self._attempts = Counter(
            "tidings_delivery_attempts", "Delivery attempts by outcome", ["outcome"], registry=r
        )
        self._attempt_latency = Histogram(
            "tidings_delivery_attempt_duration_seconds", "Time of one delivery attempt",
            ["outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._deliveries = Gauge(
            "tidings_deliveries", "Deliveries not yet acknowledged, by state", ["state"],
            registry=r, multiprocess_mode="mostrecent",  # set by the API process only
        )  # fmt: skip
        self._listeners = Gauge(
            "tidings_listeners", "Listeners by liveness state", ["liveness"], registry=r,
            multiprocess_mode="mostrecent",
        )  # fmt: skip
        # Listener health (SPEC §11): states from the database at scrape time; trips
        # and the engine's disables counted as its record batches report them.
        self._health = Gauge(
            "tidings_listener_health", "Listeners by health state", ["state"], registry=r,
            multiprocess_mode="mostrecent",
        )  # fmt: skip
        self._trips = Counter(
            "tidings_breaker_trips", "Listeners that became failing (circuit breaker opened)",
            registry=r,
        )  # fmt: skip
        self._disables = Counter(
            "tidings_listener_disables", "Listeners the engine disabled, by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._attempt_children: dict[str, tuple[Any, Any]] = {}
        self._gauges_at = 0.0

    # --- hot path ----------------------------------------------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self._requests.labels(method, route, str(status)),
                self._latency.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_commit(self, batch_size: int, committed: int) -> None:
        self.commit_batch.observe(batch_size)
        self.messages_ingested.inc(committed)

    def observe_attempt(self, status: int | None, seconds: float) -> None:
        outcome = attempt_outcome(status)
        children = self._attempt_children.get(outcome)
        if children is None:  # labels() locks and validates: once per outcome, not attempt
            children = (self._attempts.labels(outcome), self._attempt_latency.labels(outcome))
            self._attempt_children[outcome] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_health(self, changes: list[HealthChange]) -> None:
        for change in changes:
            if change.change is Change.FAILING:
                self._trips.inc()
            elif change.change is Change.DISABLED and change.reason is not None:
                self._disables.labels(change.reason.value).inc()

    # --- scrape ------------------------------------------------------------------

    async def refresh_gauges(self, db: Database) -> None:
        now = time.monotonic()
        if now - self._gauges_at < GAUGE_TTL_S:
            return
        self._gauges_at = now
        for state, n in (await gauges.delivery_counts(db)).items():
            self._deliveries.labels(state).set(n)
        for state, n in (await gauges.listener_states(db)).items():
            self._listeners.labels(state).set(n)
        for state, n in (await gauges.listener_health(db)).items():
            self._health.labels(state).set(n)

    def render(self) -> bytes:
        if self._shared is None:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, self._shared)  # type: ignore[no-untyped-call]
        return generate_latest(every_process)

    async def page(self, db: Database) -> bytes:
        """The scrape answer, gauges refreshed (or as they were, when ``db`` fails)."""
        try:
            await self.refresh_gauges(db)
        except StorageError as exc:  # serve the counters anyway
            log.warning("could not refresh metric gauges: %s", exc)
        return self.render()
