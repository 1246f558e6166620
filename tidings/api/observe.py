"""Request ids, the access log, request metrics and the last-resort 500, in one
pure-ASGI middleware.

It is the outermost layer, so its timing covers everything (406/413/415 answers
included) and every response carries ``X-Request-Id``. The id comes from the
client's ``X-Request-Id`` when that is short and plain, else it is made up here.
"""

from __future__ import annotations

import logging
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.peers import ClientAddresses
from tidings.api.problems import send_problem
from tidings.logs import log_info_fast, request_id
from tidings.metrics import Metrics

log = logging.getLogger("tidings.api")
access_log = logging.getLogger("tidings.access")
_SANE_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
ROUTE_KEY = "tidings.route"  # set by the dispatcher: the matched template, without /v1
# Set by the endpoint wrapper once the caller is known; read back for the log line.
ORG_KEY = "tidings.org_id"


def incoming_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii") if _SANE_ID.fullmatch(value) else None
    return None


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None = None,
        addresses: ClientAddresses | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # The same resolver as the lockout's, so the log names the address it counts.
        self.addresses = addresses or ClientAddresses()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope["headers"]) or f"{random.getrandbits(64):016x}"  # not a secret
        header = (b"x-request-id", rid.encode("ascii"))
        token = request_id.set(rid)
        status = 0  # no answer started yet
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The last resort (handlers' errors were mapped already): a bug in a layer
            # still answers a JSON 500, when no answer had started.
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if status == 0:
                await send_problem(send_with_id, 500, None)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            request_id.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        # One label per endpoint: /v1/queues and /queues are the same one (SPEC §1).
        template = scope.get(ROUTE_KEY, "unmatched")
        if self.metrics is not None:
            self.metrics.observe_request(scope["method"], template, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            log_info_fast(
                access_log,
                "%s %s %d %.1fms",
                (scope["method"], scope["path"], status, elapsed * 1000),
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "org_id": scope.get(ORG_KEY),
                    "client": self.addresses.of(scope),
                },
            )
