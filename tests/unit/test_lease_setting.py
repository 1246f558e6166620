"""TIDINGS_DELIVERY_LEASE: how long a claim lasts, hence how soon a crashed process's
deliveries are attempted again; never shorter than an attempt can take."""

from __future__ import annotations

import pytest

from tidings.config import SettingsError, load_settings


def test_default_lease_follows_the_delivery_timeout() -> None:
    assert load_settings({}).lease_s == 30
    assert load_settings({"TIDINGS_DELIVERY_TIMEOUT": "2"}).lease_s == 30
    assert load_settings({"TIDINGS_DELIVERY_TIMEOUT": "20"}).lease_s == 60


def test_lease_can_be_set() -> None:
    env = {"TIDINGS_DELIVERY_TIMEOUT": "2", "TIDINGS_DELIVERY_LEASE": "6"}
    assert load_settings(env).lease_s == 6
    assert load_settings({"TIDINGS_DELIVERY_LEASE": "120"}).lease_s == 120


@pytest.mark.parametrize("lease", ["29.9", "5", "0", "-1", "soon"])
def test_lease_shorter_than_three_attempt_timeouts_is_refused(lease: str) -> None:
    with pytest.raises(SettingsError, match="TIDINGS_DELIVERY_LEASE"):
        load_settings({"TIDINGS_DELIVERY_TIMEOUT": "10", "TIDINGS_DELIVERY_LEASE": lease})
