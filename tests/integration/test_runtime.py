"""The runtime builds each role's services: the API (with bootstrap), the delivery
engine, or both, and a worker built the same way takes over what an API-only node
leaves (in process here; the subprocess tests cover the commands themselves)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import start_server
from tests.integration.test_delivery import add_listener, post
from tests.receivers import receiver
from tidings.config import Settings
from tidings.runtime import Runtime


async def test_an_api_node_and_a_worker_runtime_split_the_work(settings: Settings) -> None:
    async with start_server(settings, engine=False) as api, receiver() as rx:
        queue = (await api.call("POST", "/queues", json={"name": "q"})).json()["queue"]
        await add_listener(api, queue["id"], rx)
        mid = await post(api, queue["id"])
        worker = Runtime(settings, api=False, engine=True)
        async with worker.running():
            [arrival] = await rx.wait_for("/hook", 1)
    assert arrival.headers["webhook-id"] == mid


def test_metrics_follow_the_roles() -> None:
    settings = Settings()
    token = dataclasses.replace(settings, metrics_token="t" * 16)
    assert Runtime(token, api=True, engine=False).metrics is not None
    # No API port: a token alone gives a worker nowhere to serve them.
    assert Runtime(token, api=False, engine=True).metrics is None
    address = dataclasses.replace(settings, metrics_address="127.0.0.1:1")
    assert Runtime(address, api=False, engine=True).metrics is not None
    assert Runtime(settings, api=True, engine=True).metrics is None
    with pytest.raises(RuntimeError, match="no app"):
        Runtime(settings, api=False, engine=True).asgi_app()


async def test_only_the_api_role_bootstraps_and_prints_the_first_key(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = Settings(database_url=database_url)  # an empty database, no bootstrap key
    async with Runtime(fresh, api=False, engine=True).running() as worker:
        assert await worker.store.organizations.count() == 0
    assert capsys.readouterr().out == ""
    async with Runtime(fresh, api=True, engine=False).running() as api:
        assert await api.store.organizations.count() == 1
        assert api.services.store is api.store
    printed = capsys.readouterr().out
    assert "Created organization 'default' with operator API key:" in printed
