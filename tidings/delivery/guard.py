"""The destination policy plugged into aiohttp: every attempt and probe connects only to
addresses :class:`~tidings.destinations.DestinationPolicy` has just checked.

``GuardedConnector`` is a ``TCPConnector`` wired to ``GuardedResolver``, so the DNS answer
that is checked is the answer that is connected to (no rebinding between the two).
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tidings.destinations import SETTING, DestinationPolicy, DestinationRefused
from tidings.domain.networks import ip_literal

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace


class AddressRefused(OSError):
    """The destination policy refused every address of the host (SPEC §7); the sender
    classifies an attempt that ends with it as ``address_refused``."""


def _refusal(message: str) -> OSError:
    # aiohttp's ClientConnectorError shows the strerror, so the reason reaches the logs.
    return AddressRefused(errno.EACCES, message)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that hands the connector only addresses the policy just checked."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self._policy.resolve(host, port)
        except DestinationRefused as exc:
            # The connector turns an OSError into ClientConnectorDNSError.
            raise _refusal(str(exc)) from exc
        results: list[ResolveResult] = [
            ResolveResult(
                hostname=host,
                host=str(a.address),
                port=a.port,
                family=a.family,
                proto=a.proto,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for a in addresses
            if family in (socket.AF_UNSPEC, a.family)
        ]
        if not results:
            raise _refusal(
                f"{host} has no allowed address of family {socket.AddressFamily(family).name}"
            )
        return results

    async def close(self) -> None:
        pass


class GuardedConnector(aiohttp.TCPConnector):
    """``TCPConnector`` that connects only to addresses the policy allows.

    aiohttp never asks the resolver about IP-literal hosts, so those are checked here.
    """

    def __init__(self, policy: DestinationPolicy, **kwargs: Any) -> None:
        super().__init__(resolver=GuardedResolver(policy), use_dns_cache=False, **kwargs)
        self._policy = policy
        # Verdicts on IP-literal hosts: the policy is fixed, and parsing the address
        # and matching the networks on every attempt was 5 % of the engine's CPU.
        self._literals: dict[str, bool] = {}

    def _literal_allowed(self, host: str) -> bool:
        verdict = self._literals.get(host)
        if verdict is None:
            literal = ip_literal(host)
            verdict = literal is not None and self._policy.is_allowed(literal)
            if len(self._literals) >= 4096:
                self._literals.clear()
            self._literals[host] = verdict
        return verdict

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's own signature
    ) -> Connection:
        host = req.url.raw_host or ""
        # Same heuristic aiohttp uses to skip the resolver.
        literal = ":" in host or host.replace(".", "").isdigit()
        if literal and not self._literal_allowed(host):
            raise aiohttp.ClientConnectorError(
                req.connection_key,
                _refusal(f"{host} is not an allowed address; see {SETTING}"),
            )
        return await super().connect(req, traces, timeout)
