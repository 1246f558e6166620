#!/usr/bin/env python3
"""Screenshots of every console page for docs/console.md, from a seeded demo database.

    pip install -e '.[test,screenshots]'
    python scripts/console_screenshots.py [--out docs/console]

Runs tidings on a fresh SQLite file with a receiver on 127.0.0.1 (some listeners
acknowledge, one always fails and turns failing, one is down, one disabled, one has
options, one a rotated secret) as the browser tests do
(tests/browser/harness.py), seeds queues, listeners, messages and keys through the
API in an organization of its own, waits until the deliveries have settled, then
photographs each page at a laptop (1280x800) and a phone (390x844) width, light and
dark, in Debian's Chromium (no browser is downloaded). The PNGs are reduced to a
256-colour palette, which keeps UI screenshots a fraction of their size.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser tests' harness: the same server, receiver, browser

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, Backdrop, Tenant  # noqa: E402
from tests.receivers import Answer  # noqa: E402

SIZES = {"laptop": (1280, 800), "phone": (390, 844)}
THEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")

ORDER_SCHEMA = {
    "order_id": {"type": "string", "pattern": "^ord_"},
    "amount": {"type": "number", "min": 0},
    "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
    "note": {"type": "string", "required": False},
}


def seed(tenant: Tenant) -> dict[str, str]:
    """Queues, listeners in every state, messages delivered and missed, keys."""
    orders = tenant.queue("orders", schema=ORDER_SCHEMA)
    invoices = tenant.queue("invoices")
    tenant.queue("signups")
    ids = {
        "orders": orders,
        "warehouse": tenant.listener(orders, "warehouse"),
        "legacy_crm": tenant.listener(orders, "legacy-crm", "/fail"),
        "analytics": tenant.listener(orders, "analytics"),
    }
    # Options (SPEC §10) for the listener page to show.
    tenant.put(
        f"/queues/{orders}/listeners/{ids['analytics']}",
        {
            "rate_limit": 50,
            "ordered": True,
            "filter": {"names": ["order.*"], "data": {"currency": {"$in": ["EUR", "GBP"]}}},
            "headers": {"Authorization": "Bearer demo-token"},
        },
    )
    ids["billing"] = tenant.listener(invoices, "billing")
    ids["mailer"] = tenant.listener(invoices, "mailer", liveness_path="/down")
    tenant.put(f"/queues/{invoices}/listeners/{ids['mailer']}", {"status": "disabled"})
    tenant.put(f"/queues/{orders}", {"retention_seconds": 7 * 86400})
    tenant.post(f"/queues/{orders}/listeners/{ids['analytics']}/secret", {"grace_seconds": 3600})
    tenant.post(f"/queues/{invoices}/listeners/{ids['billing']}/secret", {"grace_seconds": 3600})
    time.sleep(1.5)  # the first liveness probes, so "down" is down before messages arrive
    for n in range(1, 13):
        data = {"order_id": f"ord_{1040 + n}", "amount": 19.5 * n, "currency": "EUR"}
        ids["message"] = tenant.message(orders, json.dumps(data), name="order.created")
    for n in range(1, 6):
        tenant.message(invoices, json.dumps({"invoice": n}), name="invoice.issued")
    tenant.post("/api_keys", {"name": "checkout-service"})
    read_only = [
        {"resource": r, "access": "read", "targets": ["*"]}
        for r in ("queues", "listeners", "messages", "events", "stats")
    ]
    tenant.key_with(read_only, name="dashboard (read only)")
    settle(tenant, orders, waiting=ids["legacy_crm"])
    return ids


def settle(tenant: Tenant, queue: str, waiting: str) -> None:
    """Until every delivery is delivered or missed, but those to `waiting`, whose
    breaker holds them back once it is failing."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = tenant.get(f"/queues/{queue}/messages?per_page=100")["messages"]
        owed = [d for m in messages for d in m["deliveries"] if d["listener_id"] != waiting]
        listener = tenant.get(f"/queues/{queue}/listeners/{waiting}")["listener"]
        if all(d["state"] != "pending" for d in owed) and listener["health"]["state"] == "failing":
            return
        time.sleep(0.3)
    raise SystemExit("deliveries did not settle")


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(base + "/console")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.get_by_role("link", name="Overview").wait_for()


def shots(ids: dict[str, str]) -> list[tuple[str, str, str, bool]]:
    """(file stem, hash route, text to wait for, whole page at laptop width) per page;
    the phone shots of whole pages show the section holding that text."""
    orders, message = ids["orders"], ids["message"]
    return [
        ("overview", "#/overview", "Deliveries over time", True),
        ("queues", "#/queues", "signups", False),
        ("queue", f"#/queues/{orders}", "Newest messages", False),
        ("listeners", "#/listeners", "legacy-crm", False),
        ("listener", f"#/queues/{orders}/listeners/{ids['legacy_crm']}", "Attempt log", True),
        ("options", f"#/queues/{orders}/listeners/{ids['analytics']}", "Edit options", True),
        ("messages", "#/messages", "order.created", False),
        ("message", f"#/queues/{orders}/messages/{message}", "Attempts", True),
        ("events", "#/events", "message published ok", False),
        ("keys", "#/keys", "checkout-service", False),
    ]


def save(png: bytes, path: Path) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def photograph(base: str, key: str, ids: dict[str, str], out: Path) -> list[Path]:
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
                sign_in(page, base, key)
                for stem, route, marker, whole in shots(ids):
                    page.goto(f"{base}/console{route}")
                    page.get_by_text(marker, exact=False).first.wait_for()
                    page.wait_for_load_state("networkidle")
                    page.mouse.move(0, 0)
                    if whole and size == "phone":  # the part of a long page the shot is for
                        found = page.get_by_text(marker, exact=False).first
                        found.evaluate("el => el.closest('section').scrollIntoView()")
                    path = out / f"{stem}-{size}-{theme}.png"
                    save(page.screenshot(full_page=whole and size == "laptop"), path)
                    made.append(path)
                context.close()
        browser.close()
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    always = {
        "fail": lambda _p, _n: Answer(503, body=b'{"error": "crm is in maintenance"}'),
        "down": lambda _p, _n: Answer(503),
    }
    # A breaker that opens after a few failures, so the failing listener shows as such.
    quick = {"breaker_threshold": 5}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Backdrop(Path(tmp) / "demo.db", quick, **always) as demo,
    ):
        tenant = demo.organization()
        ids = seed(tenant)
        made = photograph(demo.origin, tenant.key, ids, args.out)
    total = sum(p.stat().st_size for p in made)
    print(f"{len(made)} screenshots in {args.out}, {total // 1024} KiB")


if __name__ == "__main__":
    main()
