"""The client distribution alone: built from client/, installed into a bare venv with
only its declared dependencies, it produces against a real server and verifies the
delivery that results, and none of the server's packages is importable there. And
the server's own wheel (`pip install .`) still carries the client."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import venv
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.conftest import Running
from tests.receivers import receiver

pytestmark = pytest.mark.process  # builds wheels, makes a venv, runs a producer in it
ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ["tidings", "granian", "asyncpg", "aiohttp", "sqlalchemy", "starlette", "uvicorn"]

PRODUCER = """
import importlib.util, json, sys
import tidings_client
from tidings_client import Client
args = json.load(sys.stdin)
with Client(args["url"], args["key"]) as tidings:
    queue = tidings.create_queue("from-the-client-alone")
    listener = tidings.create_listener(queue.id, "rx", args["notify"], args["live"])
    posted = tidings.post_message(queue.id, '{"id": 1}', name="m1")
    got = tidings.get_message(queue.id, posted.id)
print(json.dumps({
    "importable": [m for m in args["server_only"] if importlib.util.find_spec(m)],
    "at": tidings_client.__file__,
    "secret": listener.secret,
    "message": [got.id, got.name, got.data],
}))
"""

RECEIVER = """
import json, sys
from tidings_client import WebhookVerificationError, verify_webhook
args = json.load(sys.stdin)
payload = verify_webhook(args["secret"], args["headers"], args["body"])
try:
    verify_webhook(args["secret"], args["headers"], args["body"].replace("m1", "m2"))
    tampered = "accepted"
except WebhookVerificationError:
    tampered = "refused"
print(json.dumps({"payload": payload, "tampered": tampered}))
"""


def _closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions that ``requirements`` pull in, transitively."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(r), ("",)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        dist = metadata.distribution(req.name)
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name not in found:
            found[name] = dist
            wanted = ("", *req.extras)
            todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return list(found.values())


def _link_into(site: Path, dist: metadata.Distribution) -> None:
    assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
    tops = {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}
    for top in tops:
        if not (site / top).exists():
            (site / top).symlink_to(Path(str(dist.locate_file(top))))


PIP = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]


def _wheel(tmp: Path, project: Path, *parts: str) -> Path:
    """Build the wheel of ``project`` (only its ``parts`` are copied), offline."""
    source = tmp / "src"  # a copy: setuptools writes build/ and *.egg-info into the tree
    source.mkdir()
    for part in parts:
        if (project / part).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(project / part, source / part, ignore=ignore)
        else:
            shutil.copy(project / part, source / part)
    out = tmp / "dist"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, source],
        check=True,
    )
    [wheel] = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the built tidings-client wheel and its dependencies' closure only.

    The dependencies are linked from this environment instead of downloaded, so the
    test needs no network; what gets linked is what the wheel's metadata declares.
    """
    tmp = tmp_path_factory.mktemp("client-alone")
    wheel = _wheel(tmp, ROOT / "client", "pyproject.toml", "README.md", "tidings_client")
    venv.EnvBuilder(with_pip=False).create(tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", python, "install", "--no-deps", "--no-index", wheel], check=True
    )
    [site] = (tmp / "venv" / "lib").glob("python3.*/site-packages")
    [installed] = metadata.distributions(name="tidings-client", path=[str(site)])
    assert (site / "tidings_client" / "py.typed").is_file()
    for dist in _closure(installed.requires or []):
        _link_into(site, dist)
    return python


async def _run(python: Path, script: str, args: dict[str, Any]) -> Any:
    # -I: no PYTHONPATH, no current directory on sys.path (the checkout's packages).
    proc = await asyncio.create_subprocess_exec(
        python, "-I", "-c", script,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=python.parent,
    )  # fmt: skip
    out, err = await proc.communicate(json.dumps(args).encode())
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def test_the_client_alone_produces_and_verifies(client_python: Path, server: Running) -> None:
    async with receiver() as rx:
        produced = await _run(
            client_python,
            PRODUCER,
            {
                "url": server.base_url,
                "key": server.api_key,
                "notify": rx.url("/hooks"),
                "live": rx.url("/live"),
                "server_only": SERVER_ONLY,
            },
        )
        assert produced["importable"] == []
        assert produced["at"].startswith(str(client_python.parents[1]))
        message_id, name, data = produced["message"]
        assert (name, data) == ("m1", '{"id": 1}')

        [arrival] = await rx.wait_for("/hooks", 1)
        verified = await _run(
            client_python,
            RECEIVER,
            {"secret": produced["secret"], "headers": arrival.headers,
             "body": arrival.body.decode()},
        )  # fmt: skip
    assert verified["payload"]["id"] == message_id
    assert verified["payload"]["data"] == '{"id": 1}'
    assert verified["tampered"] == "refused"


def test_the_server_wheel_carries_the_client_and_the_console(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, ROOT, "pyproject.toml", "README.md", "tidings", "client")
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
    client = {
        p.relative_to(ROOT / "client").as_posix() for p in ROOT.glob("client/tidings_client/*")
    }
    assert client - {"tidings_client/__pycache__"} <= names
    assert {"tidings_client/py.typed", "tidings/py.typed", "tidings/client.py"} <= names
    web = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("tidings/web/**/*") if p.is_file()}
    assert "tidings/web/console/index.html" in web and web <= names
