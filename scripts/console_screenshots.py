#!/usr/bin/env python3
"""Screenshots of every console page for docs/console.md, from a seeded demo database.

    pip install -e '.[test,screenshots]'
    python scripts/console_screenshots.py [--out docs/console]

Starts `tidings serve` on a fresh SQLite file with a receiver on 127.0.0.1 (some
listeners acknowledge, one always fails, one is down), seeds queues, listeners,
messages and keys through the API, waits until the deliveries have settled, then
photographs each page at a laptop (1280x800) and a phone (390x844) width, light and
dark, in Debian's Chromium (no browser is downloaded). The PNGs are reduced to a
256-colour palette, which keeps UI screenshots a fraction of their size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
KEY = "demo-operator-key-" + "d" * 24
CHROMIUM = os.environ.get("TIDINGS_CHROMIUM", "/usr/bin/chromium")
# Without the networking switches Chromium phones home at start (and waits on it).
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
SIZES = {"laptop": (1280, 800), "phone": (390, 844)}
THEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")


class Receiver(BaseHTTPRequestHandler):
    """/ok acknowledges, /fail answers 500, /down (a liveness URL) answers 503."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status = {"/fail": 500, "/down": 503}.get(self.path, 200)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def demo_server(database: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": f"sqlite:///{database}",
        "TIDINGS_BOOTSTRAP_API_KEY": KEY,
        "TIDINGS_ALLOWED_NETWORKS": "127.0.0.0/8",
        "TIDINGS_RETRY_SCHEDULE": "0.2,0.2",
        "TIDINGS_LIVENESS_INTERVAL": "0.5",
    }
    command = [sys.executable, "-m", "tidings", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/health").status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"tidings serve did not start:\n{proc.stderr.read().decode()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


ORDER_SCHEMA = {
    "order_id": {"type": "string", "pattern": "^ord_"},
    "amount": {"type": "number", "min": 0},
    "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
    "note": {"type": "string", "required": False},
}


def seed(base: str, hook: str) -> dict[str, str]:
    """Queues, listeners in every state, messages delivered and missed, keys."""
    api = httpx.Client(base_url=base + "/v1", headers={"X-API-KEY": KEY}, timeout=10)

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = api.post(path, json=body)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    orders = post("/queues", {"name": "orders", "schema": ORDER_SCHEMA})["queue"]["id"]
    invoices = post("/queues", {"name": "invoices"})["queue"]["id"]
    post("/queues", {"name": "signups"})

    def listener(queue: str, name: str, notify: str, live: str = "/ok") -> str:
        body = {"name": name, "notify_url": hook + notify, "liveness_url": hook + live}
        return str(post(f"/queues/{queue}/listeners", body)["listener"]["id"])

    ids = {
        "orders": orders,
        "warehouse": listener(orders, "warehouse", "/ok"),
        "legacy_crm": listener(orders, "legacy-crm", "/fail"),
        "analytics": listener(orders, "analytics", "/ok"),
    }
    listener(invoices, "billing", "/ok")
    listener(invoices, "mailer", "/ok", live="/down")
    time.sleep(1.5)  # the first liveness probes, so "down" is down before messages arrive
    for n in range(1, 13):
        data = {"order_id": f"ord_{1040 + n}", "amount": 19.5 * n, "currency": "EUR"}
        message = post(
            f"/queues/{orders}/messages", {"name": "order.created", "data": json.dumps(data)}
        )
        ids["message"] = message["message"]["id"]
    for n in range(1, 6):
        post(
            f"/queues/{invoices}/messages",
            {"name": "invoice.issued", "data": json.dumps({"invoice": n})},
        )
    post("/api_keys", {"name": "checkout-service"})
    read_only = [
        {"resource": r, "access": "read", "targets": ["*"]}
        for r in ("queues", "listeners", "messages", "events", "stats")
    ]
    ids["read_key"] = post("/api_keys", {"name": "dashboard (read only)", "scopes": read_only})[
        "api_key"
    ]
    settle(api, orders)
    return ids


def settle(api: httpx.Client, queue: str) -> None:
    """Until every delivery to a live listener is delivered or missed."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = api.get(f"/queues/{queue}/messages", params={"per_page": 100}).json()["messages"]
        if all(d["state"] != "pending" for m in messages for d in m["deliveries"]):
            return
        time.sleep(0.3)
    raise SystemExit("deliveries did not settle")


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(base + "/console")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.get_by_role("link", name="Overview").wait_for()


def shots(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(file stem, hash route, text to wait for) per page."""
    orders, message = ids["orders"], ids["message"]
    return [
        ("overview", "#/overview", "Listeners needing a look"),
        ("queues", "#/queues", "signups"),
        ("queue", f"#/queues/{orders}", "Newest messages"),
        ("listeners", "#/listeners", "legacy-crm"),
        ("listener", f"#/queues/{orders}/listeners/{ids['legacy_crm']}", "Missed messages"),
        ("messages", "#/messages", "order.created"),
        ("message", f"#/queues/{orders}/messages/{message}", "Deliveries"),
        ("events", "#/events", "message published ok"),
        ("keys", "#/keys", "checkout-service"),
    ]


def save(png: bytes, path: Path) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def photograph(base: str, ids: dict[str, str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for size, (width, height) in SIZES.items():
            for theme in THEMES:
                context = browser.new_context(
                    viewport={"width": width, "height": height}, color_scheme=theme
                )
                page = context.new_page()
                page.goto(base + "/console")
                page.get_by_label("API key").wait_for()
                path = out / f"signin-{size}-{theme}.png"
                save(page.screenshot(), path)
                made.append(path)
                sign_in(page, base, KEY)
                for stem, route, marker in shots(ids):
                    page.goto(f"{base}/console{route}")
                    page.get_by_text(marker, exact=False).first.wait_for()
                    page.wait_for_load_state("networkidle")
                    page.mouse.move(0, 0)
                    path = out / f"{stem}-{size}-{theme}.png"
                    save(page.screenshot(), path)
                    made.append(path)
                context.close()
        browser.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp, demo_server(Path(tmp) / "demo.db") as base:
        ids = seed(base, hook)
        made = photograph(base, ids, args.out)
    server.shutdown()
    total = sum(p.stat().st_size for p in made)
    print(f"{len(made)} screenshots in {args.out}, {total // 1024} KiB")


if __name__ == "__main__":
    main()
