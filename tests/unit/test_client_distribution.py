"""The client's own distribution (client/pyproject.toml) and the server's stay in step."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tidings.client
import tidings_client

ROOT = Path(__file__).resolve().parents[2]


def _project(path: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(path.read_text())["project"]
    return project


def test_the_server_declares_every_client_dependency_with_the_same_bound() -> None:
    # `pip install .` ships tidings_client inside tidings: it must bring what the
    # client needs, and `pip install ./client` must not ask for something else.
    server, client = _project(ROOT / "pyproject.toml"), _project(ROOT / "client/pyproject.toml")
    assert set(client["dependencies"]) <= set(server["dependencies"])
    assert client["version"] == server["version"]
    assert client["requires-python"] == server["requires-python"]


def test_the_older_import_path_is_the_same_client() -> None:
    assert tidings.client.__all__ == tidings_client.__all__
    for name in tidings_client.__all__:
        assert getattr(tidings.client, name) is getattr(tidings_client, name)
