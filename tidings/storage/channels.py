"""Notification channels: storage notifies them when a commit makes work due, and
the delivery engine subscribes to them (``Database.subscribe``); or when a commit
changes rows that nodes cache, whose caches subscribe to them (``storage.cache``)."""

from __future__ import annotations

from typing import Final

# Deliveries became due: messages committed, missed ones redelivered, a listener back up.
DELIVERIES: Final = "deliveries"
# Messages with a later first attempt were committed: engines look for the next due time.
DELAYED: Final = "delayed"
# A listener was created: its first liveness probe is due now.
PROBES: Final = "probes"
# A queue was changed or deleted: every node's cache of queues empties.
QUEUES: Final = "queues"
# An API key was added, changed or deleted: every node's cache of keys empties.
API_KEYS: Final = "api_keys"
