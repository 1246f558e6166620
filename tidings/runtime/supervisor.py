"""The delivery engine of ``tidings serve`` in a child process of its own, kept running.

The API (in granian's workers) and the engine each get a core of their own this way,
and the user still starts one command. A thread of the ``serve`` process starts
``python -m tidings.runtime.child``, waits for it and starts it again when it dies
(after a pause that grows while it keeps dying young); ``stop`` sends it SIGTERM
(the engine's own grace applies) and kills it if it is still there after
``kill_timeout_s``. If the ``serve`` process itself is killed, the kernel sends the
child SIGTERM (``die_with_parent``), so no engine outlives its server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger("tidings")

# A child that lived this long was healthy: the next restart comes at once again.
HEALTHY_AFTER_S = 10.0
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 30.0


class EngineSupervisor:
    def __init__(self, env: dict[str, str], kill_timeout_s: float) -> None:
        self._env = env
        self._kill_timeout_s = kill_timeout_s
        self._stopping = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._supervise, name="tidings-engine", daemon=True)
        self.restarts = 0

    def _popen(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-m", "tidings.runtime.child"], env=self._env)
        log.info("delivery engine started (pid %d)", child.pid)
        return child

    def start(self) -> None:
        """Start the child here, before granian forks its worker: a fork while another
        thread is inside ``Popen`` would copy the pipe that ``Popen`` waits on to see
        the child start, and that wait would last as long as granian's worker."""
        self._child = self._popen()
        self._thread.start()

    def _supervise(self) -> None:
        # The child's parent-death signal follows the thread that started it: the main
        # thread started the first, this thread starts the others and outlives them.
        pause = FIRST_PAUSE_S
        child = self._child
        started = time.monotonic()
        while child is not None:
            code = child.wait()
            if self._stopping.is_set():
                return
            lived = time.monotonic() - started
            pause = FIRST_PAUSE_S if lived >= HEALTHY_AFTER_S else min(pause * 2, MAX_PAUSE_S)
            self.restarts += 1
            log.error(
                "delivery engine (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                child.pid, code, lived, pause,
            )  # fmt: skip
            if self._stopping.wait(pause):
                return
            started = time.monotonic()
            child = self._child = self._popen()
            if self._stopping.is_set():  # stop() came while it started
                child.send_signal(signal.SIGTERM)

    def signal_stop(self) -> None:
        """Ask the child to stop (SIGTERM) and start no other. Returns at once and takes
        no lock: it runs in a signal handler."""
        self._stopping.set()
        child = self._child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Stop the child and wait for it (SIGKILL after the timeout)."""
        self.signal_stop()
        self._thread.join(self._kill_timeout_s)
        child = self._child
        if self._thread.is_alive() and child is not None:
            log.error("delivery engine (pid %d) did not stop in time; killed", child.pid)
            child.kill()
            self._thread.join()


def die_with_parent() -> None:
    """Linux: have the kernel SIGTERM this process when its parent dies.

    granian's workers and the engine child are started by ``tidings serve``; if it is
    killed (``kill -9``, OOM killer) they would otherwise live on as orphans holding
    the port or running a delivery engine nobody supervises.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
