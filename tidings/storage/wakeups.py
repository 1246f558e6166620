"""Wake-ups between processes sharing one SQLite file: what LISTEN/NOTIFY is on PostgreSQL.

A process that subscribes to a channel binds a Linux abstract-namespace UNIX datagram
socket named after the database file and the channel; a process that commits a
change on that channel sends it one empty datagram. Abstract sockets vanish with
their process, so a ``kill -9`` leaves nothing stale behind.

Only datagrams from processes of the same user wake the engine (the kernel attaches
the sender's credentials); another local user can at worst take the name first, and
then the engine polls.

Lossy on purpose, like NOTIFY: a wake-up only shortens a wait. When the receiver's
buffer is full it has wake-ups pending already; when nobody listens nobody needs
one; the engine's slow poll covers everything else. One process per database and
channel receives them (the first to bind); others fall back to that poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable

log = logging.getLogger("tidings.storage")
SUPPORTED = sys.platform.startswith("linux")


_UCRED = struct.Struct("3i")  # pid, uid, gid
_CREDENTIALS_SPACE = socket.CMSG_SPACE(_UCRED.size) if SUPPORTED else 0


def _from_our_user(ancillary: list[tuple[int, int, bytes]]) -> bool:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            uid: int = _UCRED.unpack(data[: _UCRED.size])[1]
            return uid == os.getuid()
    return False


def address(db_path: str, channel: str) -> bytes:
    digest = hashlib.sha256(os.path.realpath(db_path).encode()).hexdigest()[:32]
    return f"\0tidings/{digest}/{channel}".encode()


class WakeListener:
    """Bound socket + event-loop reader; ``None`` from :meth:`bind` when another
    process (or this one) receives this channel's wake-ups already."""

    def __init__(self, sock: socket.socket, on_wake: Callable[[], None]) -> None:
        self._sock = sock
        self._on_wake = on_wake
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    @classmethod
    def bind(cls, name: bytes, on_wake: Callable[[], None]) -> WakeListener | None:
        if not SUPPORTED:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(name)
        except OSError:
            sock.close()
            log.info("another process receives these wake-ups; this one polls")
            return None
        # The kernel attaches each sender's credentials: abstract sockets have no file
        # permissions, so any local user could otherwise make the engine claim in a loop.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.setblocking(False)
        return cls(sock, on_wake)

    def _read(self) -> None:
        woken = False
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:  # drain: many commits, one wake-up
                _, ancillary, _, _ = self._sock.recvmsg(16, _CREDENTIALS_SPACE)
                woken = woken or _from_our_user(ancillary)
        if woken:
            self._on_wake()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()


class WakeSender:
    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        if SUPPORTED:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def send(self, name: bytes) -> None:
        if self._sock is None:
            return
        # Nobody bound (ECONNREFUSED), or its buffer is full of wake-ups (EAGAIN).
        with contextlib.suppress(OSError):
            self._sock.sendto(b"", name)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
