"""``tidings keys create|list|disable``: an operator who lost every key gets back in."""

from __future__ import annotations

import asyncio
import json
import time

from typer.testing import CliRunner

from tests.conftest import BOOTSTRAP_KEY, start_server
from tidings.cli import app
from tidings.config import Settings


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


async def acli(*args: str) -> tuple[int, str]:
    """The CLI runs its own event loop: keep it off the server's."""
    return await asyncio.to_thread(cli, *args)


async def test_operator_gets_back_in_with_the_cli(settings: Settings) -> None:
    url = settings.database_url
    async with start_server(settings) as srv:
        # Every key of the organization is gone (here: the operator disabled it).
        code, out = await acli("keys", "list", "--database", url, "--json")
        assert code == 0
        rows = json.loads(out)
        assert [(r["organization"], r["key"], r["operator"]) for r in rows] == [
            ("default", BOOTSTRAP_KEY[:3], True)
        ]
        assert BOOTSTRAP_KEY not in out
        assert (await srv.call("GET", "/api_keys")).status_code == 200  # cached now
        code, out = await acli("keys", "disable", rows[0]["id"], "--database", url)
        assert code == 0
        # The CLI's commit empties the server's key cache (another process's change).
        deadline = time.monotonic() + 5
        while (await srv.call("GET", "/api_keys")).status_code != 401:
            assert time.monotonic() < deadline, "the disabled key still works"
            await asyncio.sleep(0.02)

        code, out = await acli("keys", "create", "--database", url, "--json")
        assert code == 0
        created = json.loads(out)
        fresh = {"X-API-KEY": created["api_key"]}
        # A full operator key: it may manage keys again.
        listed = await srv.call("GET", "/api_keys", headers=fresh)
        assert listed.status_code == 200
        assert {k["status"] for k in listed.json()["api_keys"]} == {"enabled", "disabled"}


def test_cli_errors_are_one_line_and_nonzero(settings: Settings) -> None:
    url = settings.database_url
    code, out = cli("keys", "create", "--org", "nope", "--database", url)
    assert code == 1
    assert "No organization named 'nope'" in out
    code, out = cli("keys", "disable", "no-such-id", "--database", url)
    assert code == 1
    assert "No api key with this id." in out


def test_init_refuses_an_organization_name_the_api_refuses(settings: Settings) -> None:
    """``tidings init --org`` takes the names ``POST /api_clients`` takes (SPEC §3)."""
    url = settings.database_url
    for bad in ("", "x" * 257, "a\x00b"):
        code, out = cli("init", "--org", bad, "--database", url, "--json")
        assert code == 2, (bad[:10], out)
        assert "--org must be 1 to 256 characters" in out
    code, out = cli("keys", "list", "--database", url, "--json")
    assert json.loads(out) == []  # nothing was created
    code, out = cli("init", "--org", "y" * 256, "--database", url, "--json")
    assert code == 0, out
    assert json.loads(out)["organization"]["name"] == "y" * 256
