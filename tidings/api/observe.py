"""Request ids, the access log and request metrics (the app's ``_http`` runs them
around every request, so their timing covers everything, 406/413/415 answers
included, and every response carries ``X-Request-Id``). The id comes from the
client's ``X-Request-Id`` when that is short and plain, else the app makes one up.
"""

from __future__ import annotations

import logging
import re

from starlette.types import Scope

from tidings.api.peers import ClientAddresses
from tidings.logs import Access, log_access
from tidings.metrics import Metrics

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


class Observer:
    def __init__(
        self, metrics: Metrics | None = None, addresses: ClientAddresses | None = None
    ) -> None:
        self.metrics = metrics
        # The same resolver as the lockout's, so the log names the address it counts.
        self.addresses = addresses or ClientAddresses()

    def record(self, scope: Scope, status: int, elapsed: float) -> None:
        # One label per endpoint: /v1/queues and /queues are the same one (SPEC §1).
        template = scope.get(ROUTE_KEY, "unmatched")
        if self.metrics is not None:
            self.metrics.observe_request(scope["method"], template, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):  # else nothing to build
            access = Access(
                scope["method"],
                scope["path"],
                status,
                elapsed,
                template,
                scope.get(ORG_KEY),
                self.addresses.of(scope),
            )
            log_access(access_log, access)
