"""Which process holds which TCP socket, read from /proc (Linux): for tests that must
tell their own server's or client's sockets from another test's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_LISTEN = "0A"  # the state column of /proc/net/tcp{,6}


def tcp_inodes(port: int, *, remote: bool = False, listening: bool = False) -> set[str]:
    """Inodes of the IPv4 and IPv6 TCP sockets whose local (``remote``: far) port is
    ``port``; with ``listening``, only those listening on it."""
    column = 2 if remote else 1
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[column].rsplit(":", 1)[1], 16) != port:
                    continue
                if not listening or fields[3] == _LISTEN:
                    found.add(fields[9])
    return found


def socket_inodes(pid: int | str) -> set[str]:
    """Inodes of the sockets among ``pid``'s open files (``"self"``: this process)."""
    found = set()
    with contextlib.suppress(OSError):  # the process is gone
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # the file was closed meanwhile
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    found.add(target[8:-1])
    return found
