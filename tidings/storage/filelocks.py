"""Liveness locks beside a SQLite database: ``<database>-engines/<key>.lock``.

``flock``, not ``fcntl``/``lockf``: POSIX record locks belong to the process, so
two engines of one process (tests run several) would share them, and closing any
descriptor of the file would drop them. An ``flock`` belongs to its open file
description, and the kernel drops it when the process dies, ``kill -9`` included.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from tidings.storage.database import LockTaken


def lock_dir(db_path: str) -> Path:
    return Path(db_path + "-engines")


class FileLock:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self._path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise LockTaken(str(path)) from None

    @property
    def held(self) -> bool:
        return True  # only the process's death takes it away

    async def wait_held(self) -> None:
        return None

    async def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        os.close(self._fd)


def is_free(path: Path) -> bool:
    """Whether nobody holds the lock at ``path``; a free one's file is removed."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return True
    finally:
        os.close(fd)
