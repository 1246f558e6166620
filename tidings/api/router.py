"""Path routing for the endpoint table: a segment trie instead of a regex per route.

It walks the path's segments once, where a router of regexes tries route after
route (docs/benchmarks.md). Templates use ``{name}`` for a whole segment
(never empty, never containing ``/``), and every template answers with or
without the ``/v1`` prefix (SPEC §1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

RequestHandler = Callable[[Request], Awaitable[Response]]
PREFIX = "/v1"


@dataclass(slots=True)
class Route:
    template: str  # without the prefix: the label of metrics and the access log
    handlers: dict[str, RequestHandler] = field(default_factory=dict)

    @property
    def allow(self) -> str:
        methods = set(self.handlers)
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(sorted(methods))


@dataclass(slots=True)
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    route: Route | None = None


# Not frozen: one is made per request, and a frozen dataclass's __init__ (an
# object.__setattr__ per field) costs about three times a plain one's.
@dataclass(slots=True)
class Match:
    route: Route
    params: dict[str, str]


class Router:
    def __init__(self) -> None:
        self._root = _Node()

    def add(self, method: str, template: str, handler: RequestHandler) -> None:
        node = self._root
        for segment in template.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                if node.param is None:
                    node.param = (name, _Node())
                elif node.param[0] != name:
                    raise ValueError(f"{template}: {{{name}}} clashes with {{{node.param[0]}}}")
                node = node.param[1]
            else:
                node = node.static.setdefault(segment, _Node())
        if node.route is None:
            node.route = Route(template)
        if method in node.route.handlers:
            raise ValueError(f"{method} {template} is routed twice")
        node.route.handlers[method] = handler

    def match(self, path: str) -> Match | None:
        if path.startswith(PREFIX + "/"):
            path = path[len(PREFIX) :]
        node = self._root
        params: dict[str, str] = {}
        for segment in path[1:].split("/"):
            child = node.static.get(segment)
            if child is None:
                if node.param is None or not segment:
                    return None
                name, child = node.param
                params[name] = segment
            node = child
        return None if node.route is None else Match(node.route, params)
