"""`tidings serve` as a subprocess: HTTPS with HTTP/2, and JSON logs free of key material."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme

from tests.conftest import BOOTSTRAP_KEY, free_socket

pytestmark = pytest.mark.process


@contextmanager
def serve(tmp: Path, **env: str) -> Iterator[tuple[int, Path]]:
    """Run `tidings serve` on a free port; yields (port, file with its stderr)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    log = tmp / "stderr.log"
    with log.open("wb") as err, (tmp / "stdout.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", "--port", str(port)],
            env={
                **os.environ,
                "TIDINGS_DATABASE_URL": f"sqlite:///{tmp / 'serve.db'}",
                "TIDINGS_BOOTSTRAP_API_KEY": BOOTSTRAP_KEY,
                **env,
            },
            stdout=out,
            stderr=err,
        )
        try:
            yield port, log
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(12) == 0, log.read_text()


def wait_ready(url: str, **client: object) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/health", **client).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1: (cert, key, CA bundle)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, bundle = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(bundle))
    return cert, key, bundle


def test_https_negotiates_http2_and_http1(tmp_path: Path, tls: tuple[Path, Path, Path]) -> None:
    cert, key, bundle = tls
    env = {"TIDINGS_TLS_CERT": str(cert), "TIDINGS_TLS_KEY": str(key)}
    with serve(tmp_path, **env) as (port, _log):
        url = f"https://127.0.0.1:{port}"
        trust = ssl.create_default_context(cafile=str(bundle))
        wait_ready(url, verify=trust)
        headers = {"X-API-KEY": BOOTSTRAP_KEY}
        with httpx.Client(http2=True, verify=trust, headers=headers) as h2:
            r = h2.post(url + "/v1/queues", json={"name": "tls"})
            assert r.status_code == 200, r.text
            assert r.http_version == "HTTP/2"
            assert r.json()["_links"]["self"]["href"].startswith(f"https://127.0.0.1:{port}/v1/")
            assert r.headers["x-request-id"]
        with httpx.Client(verify=trust, headers=headers) as h1:
            r = h1.get(url + "/v1/queues")
            assert r.status_code == 200 and r.http_version == "HTTP/1.1"
        # Plain HTTP on the TLS port is not served.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health")


def test_json_logs_parse_and_hold_no_key_material(tmp_path: Path) -> None:
    with serve(tmp_path, TIDINGS_LOG_FORMAT="json") as (port, log):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        with httpx.Client(base_url=url, headers={"X-API-KEY": BOOTSTRAP_KEY}) as client:
            queue = client.post("/v1/queues", json={"name": "logs"}).json()["queue"]
            client.post(
                f"/v1/queues/{queue['id']}/messages",
                json={"data": "x"},
                headers={"X-Request-Id": "trace-me-1"},
            )
            wrong = client.get("/v1/queues", headers={"X-API-KEY": "wrong-" + BOOTSTRAP_KEY})
            assert wrong.status_code == 401
            assert client.get("/nowhere").status_code == 404
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [r for r in records if r["logger"] == "tidings.access"]
    assert len(access) >= 4
    posted = next(r for r in access if r["request_id"] == "trace-me-1")
    assert posted["method"] == "POST" and posted["status"] == 200
    assert posted["route"] == "/queues/{queue_id}/messages"
    assert posted["org_id"] and isinstance(posted["duration_ms"], float)
    everything = log.read_text() + (tmp_path / "stdout.log").read_text()
    for secret in (
        BOOTSTRAP_KEY,
        hashlib.sha256(BOOTSTRAP_KEY.encode()).hexdigest(),
        BOOTSTRAP_KEY[8:24],  # no fragment of it either
    ):
        assert secret not in everything


def test_text_logs_are_one_line_per_request(tmp_path: Path) -> None:
    with serve(tmp_path) as (port, log):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        httpx.get(url + "/v1/queues", headers={"X-API-KEY": BOOTSTRAP_KEY, "X-Request-Id": "r-1"})
    line = next(line for line in log.read_text().splitlines() if "[r-1]" in line)
    assert " INFO tidings.access [r-1] GET /v1/queues 200 " in line
    assert "route=/queues org_id=" in line


def test_the_worker_process_dies_with_its_parent(tmp_path: Path) -> None:
    """granian serves from a child process; `kill -9` of `tidings serve` takes it along."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children
    finally:
        proc.kill()
        proc.wait(10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < deadline, "the worker outlived its parent"
        time.sleep(0.05)


def test_worker_serves_metrics_on_its_address(tmp_path: Path) -> None:
    port = free_socket()
    address = f"127.0.0.1:{port.getsockname()[1]}"
    port.close()
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "TIDINGS_METRICS_ADDRESS": address,
    }
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tidings", "worker"], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = httpx.get(f"http://{address}/metrics")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                    time.sleep(0.1)
            assert r.status_code == 200
            assert "tidings_delivery_attempts_total" in r.text
            assert 'tidings_deliveries{state="pending"} 0.0' in r.text
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(12) == 0
