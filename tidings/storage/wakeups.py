"""Wake-ups between processes sharing one SQLite file: what LISTEN/NOTIFY is on PostgreSQL.

Every process (every open database) that subscribes to a channel binds a Linux
abstract-namespace UNIX datagram socket of its own, named after the database file,
the channel and the process; a process that commits a change on that channel sends
one empty datagram to each of them. Abstract sockets vanish with their process, so a
``kill -9`` leaves nothing stale behind.

Senders find the receivers in ``/proc/net/unix``, listed again at most every
``SCAN_EVERY_S`` (the engine's channel is notified by every ingest commit; the list
must not be read each time). So a new receiver is certainly known to every sender
only ``KNOWN_AFTER_S`` after it bound, and only then does it say it hears the channel
(``WakeListener.known``): a cache trusts no notification it might not get (see
``storage.cache``). Several API workers of one ``serve`` each keep their caches so.

Only datagrams from processes of the same user wake anyone (the kernel attaches the
sender's credentials); another local user can at worst list sockets of these names,
which then get empty datagrams.

Lossy on purpose, like NOTIFY: a wake-up only shortens a wait or empties a cache.
When the receiver's buffer is full it has wake-ups pending already; when nobody
listens nobody needs one; the engine's slow poll covers everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import struct
import sys
import time
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


SCAN_EVERY_S = 1.0
# A sender's list is at most SCAN_EVERY_S old when it sends; twice that leaves room.
KNOWN_AFTER_S = 2 * SCAN_EVERY_S
_NET_UNIX = "/proc/net/unix"


def database_prefix(db_path: str) -> bytes:
    digest = hashlib.sha256(os.path.realpath(db_path).encode()).hexdigest()[:32]
    return f"\0tidings/{digest}/".encode()


def address(db_path: str, channel: str) -> bytes:
    """What the names of a channel's receivers begin with."""
    return database_prefix(db_path) + channel.encode() + b"/"


def receivers(prefix: bytes) -> list[bytes]:
    """Names of the bound abstract sockets that begin with ``prefix``."""
    shown = b"@" + prefix[1:]  # how /proc/net/unix prints an abstract name
    found = []
    with open(_NET_UNIX, "rb") as listing:
        for line in listing:
            fields = line.split(None, 7)
            if len(fields) == 8 and fields[7].startswith(shown):
                found.append(b"\0" + fields[7].rstrip()[1:])
    return found


class WakeListener:
    """Bound socket + event-loop reader; ``None`` from :meth:`bind` when no socket
    could be bound (not Linux, or the name was taken)."""

    def __init__(self, sock: socket.socket, name: bytes, on_wake: Callable[[], None]) -> None:
        self._sock = sock
        self.name = name
        self._on_wake = on_wake
        self._bound_at = time.monotonic()
        self._known: bool | None = None  # decided once, KNOWN_AFTER_S after binding
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    @classmethod
    def bind(cls, channel_address: bytes, on_wake: Callable[[], None]) -> WakeListener | None:
        if not SUPPORTED:
            return None
        name = channel_address + f"{os.getpid()}-{secrets.token_hex(4)}".encode()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(name)
        except OSError:
            sock.close()
            log.info("cannot receive wake-ups (%s taken); this process polls", name[1:])
            return None
        # The kernel attaches each sender's credentials: abstract sockets have no file
        # permissions, so any local user could otherwise make the engine claim in a loop.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.setblocking(False)
        return cls(sock, name, on_wake)

    def known(self) -> bool:
        """Whether every sender sends to this socket by now: ``KNOWN_AFTER_S`` have
        passed since it was bound, and senders can see it (``/proc/net/unix``)."""
        if self._known is None:
            if time.monotonic() - self._bound_at < KNOWN_AFTER_S:
                return False
            try:
                self._known = self.name in receivers(self.name)
            except OSError as exc:
                log.warning("cannot list wake-up sockets (%s); caches stay off", exc)
                self._known = False
        return self._known

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
    """Sends a channel's wake-up to each of its receivers but ``own``."""

    def __init__(self, db_path: str) -> None:
        self._prefix = database_prefix(db_path)
        self._sock: socket.socket | None = None
        self._receivers: dict[bytes, list[bytes]] = {}  # channel address -> names
        self._listed_at = -SCAN_EVERY_S
        if SUPPORTED:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)

    def send(self, channel_address: bytes, own: bytes | None) -> None:
        if self._sock is None:
            return
        now = time.monotonic()  # before listing: a socket bound meanwhile is newer
        if now - self._listed_at >= SCAN_EVERY_S:
            self._list()
            self._listed_at = now
        for name in self._receivers.get(channel_address, ()):
            if name != own:
                # Gone since the listing (ECONNREFUSED), or full of wake-ups (EAGAIN).
                with contextlib.suppress(OSError):
                    self._sock.sendto(b"", name)

    def _list(self) -> None:
        by_channel: dict[bytes, list[bytes]] = {}
        try:
            for name in receivers(self._prefix):
                by_channel.setdefault(name[: name.rindex(b"/") + 1], []).append(name)
        except OSError as exc:  # receivers cannot see themselves either: they poll
            log.warning("cannot list wake-up sockets: %s", exc)
        self._receivers = by_channel

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
