"""Notification channels: storage notifies them when a commit makes work due, and
the delivery engine subscribes to them (``Database.subscribe``)."""

from __future__ import annotations

from typing import Final

# Deliveries became due: messages committed, missed ones redelivered, a listener back up.
DELIVERIES: Final = "deliveries"
# A listener was created: its first liveness probe is due now.
PROBES: Final = "probes"
