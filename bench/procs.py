"""Processes and databases a benchmark runs against: a real ``tidings serve``, the
receiver, and a fresh database (a SQLite file or a PostgreSQL database of its own)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

PG_ADMIN_URL = os.environ.get("TIDINGS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
API_KEY = "bench-operator-key-" + "b" * 24
LOG_DIR = Path(tempfile.gettempdir()) / "tidings-bench"
TICKS = os.sysconf("SC_CLK_TCK")


def stat_cpu_s(stat: Path) -> float:
    """User + system CPU seconds in a ``/proc`` stat file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads); 0 once it is gone."""
    try:
        return stat_cpu_s(Path(f"/proc/{pid}/stat"))
    except OSError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Proc:
    """A child process whose output goes to a log file under ``LOG_DIR``."""

    popen: subprocess.Popen[bytes]
    log: Path
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def peak_rss_kib(self) -> int:
        """VmHWM: the kernel's own high-water mark of resident memory."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def spawn(
    args: list[str], name: str, url: str, env: dict[str, str] | None = None, cwd: str | None = None
) -> Proc:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    return Proc(popen, log, url)


async def wait_ready(proc: Proc, path: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.log} exited: {proc.log.read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(proc.url + path) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.log} not ready in {timeout_s} s")


async def wait_engine(proc: Proc, timeout_s: float = 30.0) -> None:
    """Until the delivery engine has joined: ``serve`` answers ``/health`` about a
    second before its engine child is up, which a measurement must not count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if re.search(rb"delivery engine [0-9a-f]+ started", proc.log.read_bytes()):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.log}: no delivery engine in {timeout_s} s")


# Another tidings source tree to run instead of the installed one (``bench.ab``).
SOURCE: dict[str, str | None] = {"path": None}


def tidings_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    if SOURCE["path"]:
        env["PYTHONPATH"] = SOURCE["path"]
    env.update(
        TIDINGS_DATABASE_URL=database_url,
        TIDINGS_BOOTSTRAP_API_KEY=API_KEY,
        TIDINGS_ALLOWED_NETWORKS="127.0.0.0/8",
        TIDINGS_RATE_LIMIT="0",  # the benchmark measures the broker, not the limiter
    )
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def tidings(database_url: str, *args: str, **env: str) -> AsyncIterator[Proc]:
    """``tidings serve`` (API + engine unless ``--no-engine``), ready when healthy."""
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port), *args],
        "tidings",
        f"http://127.0.0.1:{port}",
        tidings_env(database_url, **env),
        cwd=SOURCE["path"],  # `python -m` puts the working directory first on sys.path
    )
    try:
        await wait_ready(proc, "/health")
        if "--no-engine" not in args:
            await wait_engine(proc)
        yield proc
    finally:
        proc.stop()


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Proc]:
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "bench.receiver", str(port)], "receiver", f"http://127.0.0.1:{port}"
    )
    try:
        await wait_ready(proc, "/live")
        yield proc
    finally:
        proc.stop()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    """A fresh, empty database URL of ``kind`` (``sqlite`` | ``postgres``), dropped after."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"tidings_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.contextmanager
def child(args: list[str], name: str) -> Iterator[Proc]:
    proc = spawn(args, name, "")
    try:
        yield proc
    finally:
        proc.stop()


def json_headers() -> dict[str, Any]:
    return {"X-API-KEY": API_KEY, "Content-Type": "application/json"}
