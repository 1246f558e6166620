"""The schema, declared once. Alembic migrations create it; a test checks they agree.

Every table holding tenant data carries ``org_id`` and every query filters on it.
Timestamps are BIGINT milliseconds since the epoch; ids are TEXT (see domain.ids).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Health events are also posted as messages into this queue (SPEC §11); no
    # foreign key: a deleted queue just stops receiving alerts.
    Column("alerts_queue_id", String(64), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(256), nullable=False),
    # sha256 hex of the full key; the key itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("scopes", Text, nullable=False),  # JSON list of {resource, access, targets}
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_api_keys_org", "org_id", "id"),
)

queues = Table(
    "queues",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "org_id", String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(256), nullable=False),
    Column("schema", Text, nullable=True),  # the schema JSON exactly as given
    Column("schema_id", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Seconds a message is kept (SPEC §9); NULL keeps them forever.
    Column("retention_seconds", BigInteger, nullable=True),
    UniqueConstraint("org_id", "name", name="uq_queues_org_name"),
    Index("ix_queues_org", "org_id", "id"),
)

listeners = Table(
    "listeners",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("queue_id", String(64), ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("notify_url", Text, nullable=False),
    Column("liveness_url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("liveness_state", String(16), nullable=False, server_default="unknown"),
    Column("success_count", BigInteger, nullable=False, server_default="0"),
    Column("failure_count", BigInteger, nullable=False, server_default="0"),
    # Outcomes of the last 3 probes, newest last: "1" success, "0" failure.
    Column("recent_probes", String(8), nullable=False, server_default=""),
    Column("next_probe_at", BigInteger, nullable=False, server_default="0"),
    Column("probe_lease_until", BigInteger, nullable=False, server_default="0"),
    Column("acknowledged_count", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # --- health (SPEC §11; storage/health.py writes these) ---
    Column("status", String(16), nullable=False, server_default="enabled"),
    Column("disabled_reason", String(16), nullable=True),  # gone | failing | manual
    Column("health", String(16), nullable=False, server_default="healthy"),  # or failing
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_success_at", BigInteger, nullable=True),
    Column("last_failure_at", BigInteger, nullable=True),
    Column("failing_since", BigInteger, nullable=True),
    # While failing: no attempt before this (the cool-down's end, or a trial's lease).
    Column("breaker_open_until", BigInteger, nullable=False, server_default="0"),
    Column("breaker_cooldown_ms", BigInteger, nullable=False, server_default="0"),
    # --- listener options (SPEC §10, migration 0007) ---
    Column("max_in_flight", Integer, nullable=True),  # null: the setting's default
    Column("rate_limit", Float, nullable=True),  # attempts started per second
    # When the next attempt may start under rate_limit (ms, fractional): each claim
    # reserves start times from here and moves it on (storage/flow.py).
    Column("rate_next_at", Float, nullable=False, server_default="0"),
    Column("ordered", Boolean, nullable=False, server_default=false()),
    Column("headers", Text, nullable=True),  # JSON object of static request headers
    Column("filter", Text, nullable=True),  # JSON, as the client gave it
    # Bumped by every update: compiled filters are cached per (id, options_version).
    Column("options_version", Integer, nullable=False, server_default="1"),
    Column("signature_scheme", String(8), nullable=False, server_default="v1"),
    # The key that signs: null for v1 (``secret`` is the key), ``whsk_...`` for v1a
    # (``secret`` shows its public ``whpk_...``). Never shown, never logged.
    Column("signing_key", String(128), nullable=True),
    # The key before the last rotation, signing beside the new one until it expires.
    Column("previous_scheme", String(8), nullable=True),
    Column("previous_signing_key", String(128), nullable=True),
    Column("previous_secret_expires_at", BigInteger, nullable=True),
    Index("ix_listeners_org", "org_id", "id"),
    Index("ix_listeners_queue", "queue_id", "id"),
    Index("ix_listeners_probe", "next_probe_at"),
    Index(
        "ix_listeners_failing",
        "breaker_open_until",
        postgresql_where=text("health = 'failing'"),
        sqlite_where=text("health = 'failing'"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("queue_id", String(64), ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=True),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # No attempt before this time (SPEC §9 delayed delivery); NULL: none asked for.
    Column("deliver_at", BigInteger, nullable=True),
    Index("ix_messages_org", "org_id", "id"),
    Index("ix_messages_queue", "queue_id", "id"),
    # The retention purge's range: a queue's oldest messages first.
    Index("ix_messages_queue_created", "queue_id", "created_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "message_id",
        String(64),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "listener_id",
        String(64),
        ForeignKey("listeners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("org_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | missed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status", Integer, nullable=True),
    Column("last_attempt_at", BigInteger, nullable=True),
    Column("next_attempt_at", BigInteger, nullable=True),
    # A claimed delivery is leased; an expired lease means its worker died.
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    # The engine that claimed it last (engines.id; no foreign key: a dead engine's
    # registration is forgotten once its claims were released). Neither it nor
    # lease_until is indexed, so a lease and its outcome are HOT updates on PostgreSQL
    # (room on the page: fillfactor); claims count leases in lease_counts instead.
    Column("claimed_by", BigInteger, nullable=True),
    Index(
        "ix_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index(
        "ix_deliveries_listener_due",
        "listener_id",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index("ix_deliveries_listener_state", "listener_id", "state", "message_id"),
    # A row is updated twice after its insert (lease, outcome): 30 % of each page is
    # left free so both can stay on it as HOT updates (`python -m bench.pgcost`).
    postgresql_with={"fillfactor": 70},
)

# Leased deliveries per listener, engine and expiry bucket (storage/leases.py): what
# a claim counts of the other engines' leases against a listener's max_in_flight.
# Engine bookkeeping, not tenant data; no foreign key (storage/leases.py says why).
lease_counts = Table(
    "lease_counts",
    metadata,
    Column("listener_id", String(64), nullable=False),
    Column("engine_id", BigInteger, nullable=False),
    Column("bucket_end", BigInteger, nullable=False),
    # false: what claims leased; true: what records ended (negative).
    Column("recorded", Boolean, nullable=False),
    Column("leased", Integer, nullable=False),
    PrimaryKeyConstraint(
        "listener_id", "engine_id", "bucket_end", "recorded", name="pk_lease_counts"
    ),
    sqlite_with_rowid=False,
    # Each claim and each record updates a row: PostgreSQL prunes a page's dead
    # versions only once it is nearly full (90 %), and every look-up walked them all
    # until then. At 10 % it prunes as soon as a few have gathered (docs/benchmarks.md).
    postgresql_with={"fillfactor": 10},
)

# The attempt log (SPEC §11), written by the engine's record batch (storage/attempts.py).
# No foreign keys: an insert then takes no lock on its message or listener, and a
# message deleted while its attempt was in flight cannot fail the batch; the log is
# read only through a message or listener that still exists, and purged by age.
# Two structures, not five: keyed (and on SQLite clustered) by listener and id (ids
# sort by time), plus one index for a message's attempts. Each extra index was a
# b-tree insert per attempt on the single SQLite writer (docs/benchmarks.md).
attempts = Table(
    "attempts",
    metadata,
    Column("id", String(64), nullable=False),
    Column("org_id", String(64), nullable=False),
    Column("queue_id", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("listener_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # acknowledged | failed
    Column("status", Integer, nullable=True),
    Column("error", String(32), nullable=True),
    Column("response_body", Text, nullable=True),
    PrimaryKeyConstraint("listener_id", "id", name="pk_attempts"),
    Index("ix_attempts_message", "message_id", "id"),
    sqlite_with_rowid=False,
)

# Answers remembered under an Idempotency-Key (SPEC §9), written in the transaction
# of the messages they answer for. ``fingerprint`` is the SHA-256 of the endpoint and
# the request body: the same key with another request is refused, not replayed.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("org_id", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("org_id", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# Running delivery engines (SPEC §5, prompt recovery). Each holds a liveness lock
# under its id while it lives (storage/engines.py); an engine whose lock is free is
# dead, and its claims are released at once instead of when their leases run out.
engines = Table(
    "engines",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("started_at", BigInteger, nullable=False),
)

# Usage events (SPEC §6). No foreign keys: an event outlives the resources it names,
# so it keeps their ids and names as they were. The primary key is the read order
# of ``GET /events`` within an organization (and the purge's range); the second
# index serves the ``events=<kind>`` filter the same way.
events = Table(
    "events",
    metadata,
    Column("org_id", String(64), nullable=False),
    Column("stored_at", BigInteger, nullable=False),
    Column("id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # api_keys | listeners | messages | queues
    Column("api_key_id", String(64), nullable=True),
    Column("api_key_name", String(256), nullable=True),
    Column("queue_id", String(64), nullable=True),
    Column("queue_name", String(256), nullable=True),
    Column("listener_id", String(64), nullable=True),
    Column("listener_name", String(256), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("message_name", String(256), nullable=True),
    Column("reason", String(16), nullable=True),  # listener_disabled's reason
    PrimaryKeyConstraint("org_id", "stored_at", "id", name="pk_events"),
    Index("ix_events_org_kind", "org_id", "kind", "stored_at", "id"),
)

# Events per organization, time bucket and type, kept up to date in the transaction
# that records the events, so ``GET /stats/messages`` sums a few buckets instead of
# counting events. Every event counts in its minute and in its hour: a day's window
# then reads whole hours plus the minutes at its edges.
event_counts = Table(
    "event_counts",
    metadata,
    Column("org_id", String(64), nullable=False),
    Column("span_minutes", Integer, nullable=False),  # 1 (a minute) or 60 (an hour)
    Column("bucket_minute", BigInteger, nullable=False),  # first minute (epoch minutes, UTC)
    Column("type", String(32), nullable=False),
    Column("total", BigInteger, nullable=False),
    PrimaryKeyConstraint("org_id", "span_minutes", "bucket_minute", "type", name="pk_event_counts"),
    # Clustered on the key on SQLite: a stats read is one range scan, no row lookups.
    sqlite_with_rowid=False,
)

# --- abuse limits (SPEC §1, §2) ---------------------------------------------------
# Shared by every node on one database so limits hold across nodes. They hold no
# tenant data a client can read, hence no org_id. On PostgreSQL the counter tables
# are UNLOGGED (migration 0004): they are rewritten all the time and worthless after
# a crash, so they skip the WAL and its fsync.

rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),  # epoch seconds
    Column("hits", BigInteger, nullable=False),
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("address", String(64), nullable=False),
    Column("failed_at", BigInteger, nullable=False),
    Index("ix_auth_failures_address", "address", "failed_at"),
)

lockouts = Table(
    "lockouts",
    metadata,
    Column("address", String(64), primary_key=True),
    Column("locked_until", BigInteger, nullable=False),
)
