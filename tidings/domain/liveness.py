"""Liveness states (SPEC §5), judged on the last three probes."""

from __future__ import annotations

from tidings.domain.models import LivenessState

WINDOW = 3


def record_probe(recent: str, ok: bool) -> str:
    """``recent`` holds the last outcomes, oldest first: ``"1"`` success, ``"0"`` failure."""
    return (recent + ("1" if ok else "0"))[-WINDOW:]


def judge(recent: str) -> LivenessState:
    if not recent:
        return LivenessState.UNKNOWN
    if "0" not in recent:
        return LivenessState.STABLE
    if "1" not in recent:
        return LivenessState.DOWN
    return LivenessState.UNSTABLE
