"""Run ``tidings`` commands as real subprocesses for acceptance and crash tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import BOOTSTRAP_KEY, free_socket
from tests.polling import until
from tests.sockets import socket_inodes, tcp_inodes


def tidings_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        TIDINGS_DATABASE_URL=database_url,
        TIDINGS_BOOTSTRAP_API_KEY=BOOTSTRAP_KEY,
        TIDINGS_ALLOWED_NETWORKS="127.0.0.0/8",
        TIDINGS_RETRY_SCHEDULE="0.1,0.2,0.4,0.8,1,1,1,1,1,1,1,1",
        TIDINGS_DELIVERY_TIMEOUT="2",
        TIDINGS_LIVENESS_INTERVAL="1",
    )
    env.update(extra)
    return env


class Proc:
    """A ``tidings`` subprocess whose output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._file = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tidings", *args],
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def tree(self) -> list[int]:
        """This process and its descendants (granian runs the app in a child)."""
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
        pids = [self.popen.pid]
        for pid in pids:
            pids.extend(parents.get(pid, []))
        return pids

    def rss_mb(self) -> float:
        """Resident memory of the whole tree, in MiB."""
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def open_files(self) -> int:
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                total += len(os.listdir(f"/proc/{pid}/fd"))
        return total

    def kill(self) -> None:
        """SIGKILL the whole tree at once, a real crash: a worker left to its parent-death
        SIGTERM would shut down gracefully instead."""
        for pid in reversed(self.tree()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(10)
        self._file.close()

    def signal_tree(self, signum: int) -> None:
        """Send ``signum`` to this process and its descendants (SIGSTOP: a node that
        stalls mid-transaction, as a frozen VM or a long GC pause would)."""
        for pid in self.tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def terminate(self, timeout_s: float = 15) -> float:
        """SIGTERM; answer how long the process took to exit."""
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(timeout_s)
        self._file.close()
        return time.monotonic() - started


def free_port() -> int:
    sock = free_socket()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def serve(
    database_url: str, log: Path, port: int | None = None, *args: str, **env: str
) -> tuple[Proc, str]:
    """``tidings serve``, healthy. On a port of its own choosing, once more on another
    port if another test's process took it between ``free_port`` and the bind (that
    process would answer ``/health`` in its place)."""
    for attempt in range(3):
        chosen = port or free_port()
        proc = Proc(["serve", "--port", str(chosen), *args], tidings_env(database_url, **env), log)
        base = f"http://127.0.0.1:{chosen}"
        try:
            await wait_healthy(base, proc)
        except PortTaken:
            if port is not None or attempt == 2:
                raise
            continue
        return proc, base
    raise AssertionError("unreachable")


class PortTaken(AssertionError):
    """``tidings serve`` could not bind its port: another process holds it."""


def listens_on(proc: Proc, port: int) -> bool:
    """Whether a process of ``proc``'s tree holds the socket listening on ``port``."""
    wanted = tcp_inodes(port, listening=True)
    return any(socket_inodes(pid) & wanted for pid in proc.tree())


async def wait_engine(proc: Proc, timeout_s: float = 30) -> None:
    """Until the delivery engine has joined: ``serve`` answers ``/health`` while its
    engine child is still starting, and a test measuring delivery latency or memory
    must not count that start (about a second) as the engine's."""

    def started() -> bool:  # the engine's own line, not the supervisor's "started (pid N)"
        return re.search(r"delivery engine [0-9a-f]+ started", proc.log.read_text()) is not None

    await until(started, timeout_s, step_s=0.05, message=lambda: proc.log.read_text()[-2000:])


async def wait_healthy(base: str, proc: Proc, timeout_s: float = 30) -> None:
    async with httpx.AsyncClient() as client:
        port = int(base.rsplit(":", 1)[1])

        async def healthy() -> bool:
            if proc.popen.poll() is not None:
                text = proc.log.read_text()
                kind = PortTaken if "Address already in use" in text else AssertionError
                raise kind(f"tidings exited: {text[-2000:]}")
            try:
                answered = (await client.get(base + "/health")).status_code == 200
            except httpx.TransportError:
                return False
            return answered and listens_on(proc, port)  # not another test's server

        await until(
            healthy,
            timeout_s,
            step_s=0.05,
            message=lambda: f"tidings not healthy in time: {proc.log.read_text()[-2000:]}",
        )
