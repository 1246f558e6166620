"""What the browser tests stand on: a real tidings server and receiver running in a
background thread's event loop (the tests drive a synchronous browser), Debian's
Chromium under Playwright, and a tab that records every request and every error.

Every tab asserts at its end that no request left the server's origin and that no
JavaScript error or console error was logged. The one console error tolerated is
Chromium's own "Failed to load resource" line for an API answer of 4xx that the test
caused on purpose (a wrong key, a 403 of a read-only key, a 400/422 of bad input, the
write probes): the browser logs those for every non-2xx fetch, handled or not. It is
tolerated only for an API path whose answer the tab saw with that very status.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route, expect

from tests.conftest import BOOTSTRAP_KEY, Running, start_server
from tests.receivers import Answer, Behaviour, Receiver, receiver
from tidings.config import Settings

CHROMIUM = os.environ.get("TIDINGS_CHROMIUM", "/usr/bin/chromium")
# As root in a container, without GPU; and no calls home (this machine has no network
# beyond its registries, and Chromium would retry them at every start).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Waits for what the page shows; generous, for a machine shared with other test runs.
expect.set_options(timeout=15_000)
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
OPERATOR = BOOTSTRAP_KEY


def browser_available() -> bool:
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


@dataclass
class Switch:
    """A receiver path that fails (500, with a body that says so) while ``failing`` is set."""

    failing: bool = False

    def __call__(self, _path: str, _count: int) -> Answer:
        return Answer(500, body=b"flaky says no") if self.failing else Answer(200)


class Backdrop:
    """A tidings server and a receiver in a thread of their own (``behaviour``: the
    receiver's paths that answer otherwise than 200, see tests/receivers.py)."""

    def __init__(
        self, database: Path, settings: dict[str, Any] | None = None, **behaviour: Behaviour
    ) -> None:
        defaults: dict[str, Any] = {
            "retry_schedule_s": (0.05, 0.1),
            "delivery_timeout_s": 2.0,
            "liveness_interval_s": 0.5,
            "liveness_timeout_s": 1.0,
            "lockout_threshold": 10_000,  # the wrong-key test fails on purpose
        }
        self.settings = Settings(
            database_url=f"sqlite:///{database}",
            bootstrap_api_key=BOOTSTRAP_KEY,
            allowed_networks=("127.0.0.0/8",),
            **{**defaults, **(settings or {})},
        )
        self.switch = Switch()
        self._behaviour: dict[str, Behaviour] = {"flaky": self.switch, **behaviour}
        self.running: Running
        self.receiver: Receiver
        self._ready: Future[None] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="tidings-backdrop", daemon=True)

    def __enter__(self) -> Backdrop:
        self._thread.start()
        self._ready.result(timeout=30)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with start_server(self.settings) as running, receiver(**self._behaviour) as rx:
            self.running, self.receiver = running, rx
            self._ready.set_result(None)
            await self._stop.wait()

    @property
    def origin(self) -> str:
        return self.running.base_url

    def api(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.origin + "/v1", headers={"X-API-KEY": key}, timeout=10)

    def organization(self) -> Tenant:
        """A fresh organization, so each test starts empty whatever the others did."""
        with self.api(OPERATOR) as api:
            answer = api.post("/api_clients", json={"name": f"org-{uuid.uuid4().hex[:12]}"})
            answer.raise_for_status()
        return Tenant(self, answer.json()["api_key"])


@dataclass
class Tenant:
    """An organization and its operator key, with shortcuts to set things up by API."""

    backdrop: Backdrop
    key: str

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.backdrop.api(self.key) as api:
            answer = api.post(path, json=body)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.backdrop.api(self.key) as api:
            answer = api.put(path, json=body)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

    def get(self, path: str) -> dict[str, Any]:
        with self.backdrop.api(self.key) as api:
            answer = api.get(path)
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

    def queue(self, name: str, **extra: Any) -> str:
        return str(self.post("/queues", {"name": name, **extra})["queue"]["id"])

    def listener(
        self, queue_id: str, name: str, notify_path: str = "/ok", liveness_path: str = "/live"
    ) -> str:
        hook = self.backdrop.receiver.url
        body = {"name": name, "notify_url": hook(notify_path), "liveness_url": hook(liveness_path)}
        return str(self.post(f"/queues/{queue_id}/listeners", body)["listener"]["id"])

    def message(self, queue_id: str, data: str, name: str | None = None) -> str:
        body = {"data": data} if name is None else {"data": data, "name": name}
        return str(self.post(f"/queues/{queue_id}/messages", body)["message"]["id"])

    def key_with(self, scopes: list[dict[str, Any]], name: str = "limited") -> str:
        return str(self.post("/api_keys", {"name": name, "scopes": scopes})["api_key"])


@dataclass
class Tab:
    """A browser tab on the console that keeps what it saw for the end-of-test checks."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    console_errors: list[ConsoleMessage] = field(default_factory=list)
    api_failures: set[tuple[str, int]] = field(default_factory=set)

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.origin}/console{route}")

    def sign_in(self, key: str) -> None:
        self.open()
        field_ = self.page.get_by_label("API key")
        field_.fill(key)
        field_.press("Enter")  # forms submit with Enter
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def go(self, route: str) -> None:
        """Navigate inside the signed-in console (the key stays in sessionStorage)."""
        self.page.evaluate("route => { location.hash = route }", route)

    def leftovers(self) -> list[str]:
        """What broke the rules: outside requests, JS errors, unexplained console errors."""
        found = [f"request left the origin: {url}" for url in self.refused]
        found += [u for u in self.requests if not u.startswith((self.origin + "/", "data:"))]
        found += self.problems
        for message in self.console_errors:
            if not self._explained(message):
                found.append(f"console error: {message.text} ({message.location})")
        return found

    def _explained(self, message: ConsoleMessage) -> bool:
        prefix = "Failed to load resource: the server responded with a status of "
        if not message.text.startswith(prefix):
            return False
        status = int(message.text[len(prefix) :].split(" ", 1)[0])
        url = str(message.location.get("url", ""))
        return 400 <= status < 500 and (url, status) in self.api_failures and _is_api(url, self)


def _is_api(url: str, tab: Tab) -> bool:
    path = url[len(tab.origin) :]
    return url.startswith(tab.origin + "/") and not path.startswith(("/console", "/docs"))


@contextmanager
def open_tab(browser: Browser, origin: str, viewport: dict[str, int] = LAPTOP) -> Iterator[Tab]:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    page = context.new_page()
    tab = Tab(page, origin)

    def route(intercepted: Route) -> None:
        url = intercepted.request.url
        if url.startswith(origin + "/"):
            intercepted.continue_()
        else:
            tab.refused.append(url)
            intercepted.abort()

    def request(sent: Request) -> None:
        tab.requests.append(sent.url)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.console_errors.append(message)

    context.route("**/*", route)
    context.on("request", request)
    page.on("console", console)
    page.on("pageerror", lambda error: tab.problems.append(f"JavaScript error: {error}"))

    def response(answer: Response) -> None:
        if answer.status >= 400:
            tab.api_failures.add((answer.url, answer.status))

    page.on("response", response)
    try:
        yield tab
    finally:
        context.close()
    leftovers = tab.leftovers()
    assert leftovers == [], leftovers  # not assertion-rewritten: say what was left
