"""The receiver examples of docs/delivery.md, run as written: they accept a signed
delivery once, acknowledge a repeat without processing it, refuse forgeries."""

from __future__ import annotations

import re
import time
import types
from pathlib import Path

import httpx
import pytest

from tidings.signing import Signer, new_keys, new_secret

DOC = Path(__file__).resolve().parents[2] / "docs" / "delivery.md"
BODY = b'{"id":"m1","name":null,"queue":{"id":"q1","name":"orders"},"data":"x","created_at":1}'


def example(name: str, monkeypatch: pytest.MonkeyPatch, secret: str) -> types.ModuleType:
    """Execute the ```python block of the doc that starts with ``# <name>``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    [source] = [b for b in blocks if b.startswith(f"# {name}")]
    monkeypatch.setenv("TIDINGS_LISTENER_SECRET", secret)
    module = types.ModuleType(name.removesuffix(".py"))
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def signed(secret: str, body: bytes = BODY, age_s: int = 0) -> dict[str, str]:
    ts = int(time.time()) - age_s
    return {
        "content-type": "application/json",
        "webhook-id": "m1",
        "webhook-timestamp": str(ts),
        "webhook-signature": Signer("v1", secret).sign("m1", ts, body),
    }


def cases(secret: str) -> list[tuple[bytes, dict[str, str]]]:
    return [
        (BODY, signed(secret)),
        (BODY, signed(secret)),  # a repeat: acknowledged, not handled again
        (BODY.replace(b'"x"', b'"y"'), signed(secret)),  # tampered
        (BODY, signed(secret, age_s=600)),  # too old
        (BODY, signed(new_secret())),  # someone else's secret
    ]


EXPECTED = [204, 204, 400, 400, 400]


async def test_starlette_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    module = example("receiver_starlette.py", monkeypatch, secret)
    transport = httpx.ASGITransport(app=module.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rx") as client:
        answers = []
        handled: list[str] = []
        module.handle = lambda event: handled.append(event["id"])
        for body, headers in cases(secret):
            answers.append((await client.post("/hooks", content=body, headers=headers)).status_code)
    assert answers == EXPECTED and handled == ["m1"]


def test_flask_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    module = example("receiver_flask.py", monkeypatch, secret)
    client = module.app.test_client()
    handled: list[str] = []
    module.handle = lambda event: handled.append(event["id"])
    answers = [
        client.post("/hooks", data=body, headers=headers).status_code
        for body, headers in cases(secret)
    ]
    assert answers == EXPECTED and handled == ["m1"]


def test_rotation_and_v1a_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new, v1a = new_keys("v1"), new_keys("v1"), new_keys("v1a")
    ts = int(time.time())
    both = {
        "webhook-id": "m1",
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(
            Signer(k.scheme, k.signing).sign("m1", ts, BODY) for k in (new, old, v1a)
        ),
    }
    monkeypatch.setenv("TIDINGS_LISTENER_SECRETS", f"{new.shown} {old.shown}")
    rotation = example("receiver_rotation.py", monkeypatch, "")
    assert rotation.check(both, BODY)["id"] == "m1"
    assert rotation.check(both, BODY + b" ") is None
    plain = example("verify_v1a.py", monkeypatch, "")
    assert plain.genuine_v1a(v1a.shown, both, BODY)
    assert not plain.genuine_v1a(new_keys("v1a").shown, both, BODY)
