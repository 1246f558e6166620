"""The console and the API docs in a real headless Chromium against a real server.

Each test gets a fresh organization and tab; the tab's end checks that no request left
the origin and that no JavaScript or console error was logged (harness.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, expect

from tests.browser.harness import PHONE, Backdrop, Switch, Tab, Tenant, open_tab

READ_ONLY = [
    {"resource": resource, "access": "read", "targets": ["*"]}
    for resource in ("queues", "listeners", "messages", "events", "stats")
]


def wait_for(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def delivery_state(tenant: Tenant, queue_id: str, message_id: str) -> str:
    message = tenant.get(f"/queues/{queue_id}/messages/{message_id}")["message"]
    return str(message["deliveries"][0]["state"])


def row(tab: Tab, text: str) -> Locator:
    return tab.page.get_by_role("row").filter(has_text=text)


@pytest.fixture
def switch(backdrop: Backdrop) -> Iterator[Switch]:
    backdrop.switch.failing = False
    yield backdrop.switch
    backdrop.switch.failing = False


def test_a_wrong_key_is_refused_then_the_right_one_signs_in_and_out(
    tab: Tab, tenant: Tenant
) -> None:
    page = tab.page
    tab.open()
    key = page.get_by_label("API key")
    key.fill("no-such-key-" + "x" * 30)
    key.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This key was not accepted.")
    expect(alert).to_contain_text("unknown or disabled")  # the API's own detail
    assert page.evaluate("sessionStorage.length") == 0

    key.fill(tenant.key)
    key.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('tidings.apiKey')") == tenant.key
    assert page.evaluate("Object.keys(localStorage)") == []  # the key is never kept beyond the tab
    page.reload()  # the same tab keeps its sign-in
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_a_link_followed_the_moment_the_console_appears_opens_its_page(
    tab: Tab, tenant: Tenant
) -> None:
    # The hash changes as soon as the signed-in shell is drawn, before its effects run
    # (they wait for the next frame): the console must still show that page, not stay on
    # the overview under the new URL (seen once as a CI flake after `tab.go`).
    queue = tenant.queue("orders")
    tab.page.add_init_script(
        "new MutationObserver((_, watch) => {"
        "  const out = [...document.querySelectorAll('button')]"
        "    .some((b) => b.textContent.trim() === 'Sign out');"
        f"  if (out) {{ watch.disconnect(); location.hash = '#/queues/{queue}'; }}"
        "}).observe(document, { childList: true, subtree: true });"
    )
    tab.sign_in(tenant.key)
    expect(tab.page.get_by_role("heading", name="orders", exact=True)).to_be_visible()


def test_create_a_queue_and_a_listener_post_a_message_and_see_it_delivered(
    tab: Tab, tenant: Tenant, backdrop: Backdrop
) -> None:
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/queues")
    expect(page.get_by_text("No queues yet")).to_be_visible()  # an empty state that says what to do

    page.get_by_role("button", name="New queue").click()
    dialog = page.get_by_role("dialog", name="New queue")
    dialog.get_by_label("Name").fill("orders")
    dialog.get_by_label("Name").press("Enter")
    expect(page.get_by_role("heading", name="orders", exact=True)).to_be_visible()
    queue_id = page.evaluate("location.hash").split("/")[-1]
    expect(page.get_by_text("No listeners")).to_be_visible()

    page.get_by_role("button", name="Add listener").click()
    dialog = page.get_by_role("dialog", name="New listener")
    dialog.get_by_label("Name").fill("shop")
    dialog.get_by_label("Notify URL").fill(backdrop.receiver.url("/ok"))
    dialog.get_by_label("Liveness URL").fill(backdrop.receiver.url("/live"))
    dialog.get_by_label("Liveness URL").press("Enter")
    expect(page.get_by_role("heading", name="shop")).to_be_visible()

    page.get_by_role("link", name="orders").click()
    page.get_by_role("button", name="Post message").click()
    dialog = page.get_by_role("dialog", name="Post a message to orders")
    dialog.get_by_label("Data").fill('{"id": 1}')
    dialog.get_by_label("Name (optional)").fill("order.created")
    dialog.get_by_label("Name (optional)").press("Enter")
    expect(page.get_by_role("heading", name="order.created")).to_be_visible()
    message_id = page.evaluate("location.hash").split("/")[-1]

    # The page follows a pending delivery until it settles.
    delivered = row(tab, "shop")
    expect(delivered).to_contain_text("delivered")
    expect(delivered.get_by_role("cell").nth(2)).to_have_text("1")  # attempts
    expect(delivered).to_contain_text("200")  # last status
    arrivals = wait_for(lambda: backdrop.receiver.on("/ok"))
    assert [a.json()["id"] for a in arrivals] == [message_id]
    assert json.loads(arrivals[0].json()["data"]) == {"id": 1}

    tab.go(f"#/queues/{queue_id}")  # the queue lists it among its newest messages
    expect(row(tab, "order.created")).to_contain_text("1 delivered")


def test_a_missed_message_is_redelivered_from_the_message_and_the_listener(
    tab: Tab, tenant: Tenant, switch: Switch
) -> None:
    switch.failing = True
    queue = tenant.queue("payments")
    listener = tenant.listener(queue, "ledger", "/flaky")
    first = tenant.message(queue, '{"n": 1}', name="payment.made")
    second = tenant.message(queue, '{"n": 2}', name="payment.refunded")
    wait_for(lambda: {delivery_state(tenant, queue, m) for m in (first, second)} == {"missed"})

    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/messages/{first}")
    missed = row(tab, "ledger")
    expect(missed).to_contain_text("missed")
    expect(missed).to_contain_text("500")
    switch.failing = False
    missed.get_by_role("button", name="Redeliver").click()
    expect(missed).to_contain_text("delivered")
    assert delivery_state(tenant, queue, first) == "delivered"

    tab.go(f"#/queues/{queue}/listeners/{listener}")
    page.get_by_role("button", name="Redeliver all 1").click()
    dialog = page.get_by_role("dialog", name="Redeliver missed messages?")
    dialog.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status").filter(has_text="scheduled again")).to_be_visible()
    wait_for(lambda: delivery_state(tenant, queue, second) == "delivered")


def test_edits_and_deletes_ask_first_and_land(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop")
    page = tab.page
    tab.sign_in(tenant.key)

    tab.go(f"#/queues/{queue}/listeners/{listener}")
    page.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name="Edit listener")
    dialog.get_by_label("Name").fill("shop-v2")
    dialog.get_by_label("Name").press("Enter")
    expect(page.get_by_role("heading", name="shop-v2")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete listener shop-v2?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.get_by_role("heading", name="orders", exact=True)).to_be_visible()
    expect(page.get_by_text("No listeners")).to_be_visible()

    page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog", name="Rename queue")
    dialog.get_by_label("Name").fill("orders-eu")
    dialog.get_by_label("Name").press("Enter")
    expect(page.get_by_role("heading", name="orders-eu")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete queue orders-eu?")
    confirm.get_by_role("button", name="Cancel").click()  # asked first: nothing happens
    assert tenant.get("/queues")["queues"] != []
    page.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No queues yet")).to_be_visible()
    assert tenant.get("/queues")["queues"] == []


def test_messages_are_paged_newest_first(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    for n in range(1, 24):  # 23: a full page of 20 and 3 more
        tenant.message(queue, "x", name=f"m{n:02}")
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/messages")
    names = page.locator("tbody tr td:first-child a")
    expect(names).to_have_count(20)
    expect(names.first).to_have_text("m23")
    expect(names.last).to_have_text("m04")
    expect(page.get_by_text("Page 1 of 2 · 23 in all")).to_be_visible()
    page.get_by_role("link", name="Next").click()
    expect(names).to_have_text(["m03", "m02", "m01"])
    page.get_by_label("Queue").select_option(label="orders")  # one queue: the same, newest first
    expect(names.first).to_have_text("m23")


def test_schema_and_message_errors_are_shown_by_path(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}")
    page.get_by_role("button", name="Add schema").click()
    dialog = page.get_by_role("dialog", name="Add a schema")
    schema = dialog.get_by_label("Schema (JSON)")

    schema.fill("{")  # not JSON: said at once, and nothing is sent
    expect(dialog.get_by_text("Not valid JSON")).to_be_visible()
    expect(dialog.get_by_role("button", name="Save schema")).to_be_disabled()

    schema.fill('{"amount": {"type": "numbr"}, "tags": {"type": "array"}}')
    dialog.get_by_role("button", name="Save schema").click()
    errors = dialog.locator(".violations li")
    expect(errors.filter(has_text="amount.type")).to_contain_text("must be one of")
    expect(errors.filter(has_text=re.compile(r"^tags"))).to_have_count(1)

    schema.fill('{"amount": {"type": "number", "min": 0}}')
    dialog.get_by_role("button", name="Save schema").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert tenant.get(f"/queues/{queue}")["queue"]["schema"] == {
        "amount": {"type": "number", "min": 0}
    }

    page.get_by_role("button", name="Post message").click()
    dialog = page.get_by_role("dialog", name="Post a message to orders")
    dialog.get_by_label("Data").fill('{"amount": -1, "extra": true}')
    dialog.get_by_role("button", name="Post message").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("the queue's schema")  # the API's detail
    expect(alert.locator("li").filter(has_text="amount")).to_contain_text("at least 0")
    expect(alert.locator("li").filter(has_text="extra")).to_contain_text("not declared")
    assert tenant.get(f"/queues/{queue}/messages")["messages"] == []


def test_a_read_only_key_sees_everything_and_may_change_nothing(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop")
    message = tenant.message(queue, "hello", name="greeting")
    page = tab.page
    tab.sign_in(tenant.key_with(READ_ONLY, name="dashboard"))

    tab.go("#/queues")
    expect(row(tab, "orders")).to_be_visible()
    expect(page.get_by_role("button", name="New queue")).to_be_disabled()
    expect(page.get_by_text("Read only: this key may not create queues.")).to_be_visible()

    tab.go(f"#/queues/{queue}")
    expect(row(tab, "shop")).to_be_visible()
    expect(row(tab, "greeting")).to_be_visible()
    for name in ("Post message", "Rename", "Delete", "Add listener", "Add schema"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    expect(page.get_by_text("this key may not change this queue")).to_be_visible()

    tab.go(f"#/queues/{queue}/listeners/{listener}")
    expect(page.get_by_role("heading", name="shop")).to_be_visible()
    # No secret: the API gives a read-only key none, and the page says why.
    secret = tenant.get(f"/queues/{queue}/listeners/{listener}")["listener"]["secret"]
    expect(page.get_by_text("Hidden: this key may read this listener")).to_be_visible()
    expect(page.get_by_role("button", name="Show")).to_have_count(0)
    assert secret.startswith("whsec_") and secret not in page.content()
    expect(page.get_by_role("button", name="Edit", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Delete")).to_have_attribute(
        "title", "This key may not delete this listener."
    )

    tab.go(f"#/queues/{queue}/messages/{message}")
    expect(row(tab, "shop")).to_contain_text("delivered")
    expect(page.get_by_role("button", name="Delete")).to_be_disabled()

    tab.go("#/keys")
    expect(page.get_by_text("This key may not see API keys.")).to_be_visible()
    tab.go("#/overview")
    expect(page.locator(".stat").filter(has_text="Queues")).to_contain_text("1")


def test_api_keys_are_shown_once_then_disabled_and_deleted(
    tab: Tab, tenant: Tenant, backdrop: Backdrop
) -> None:
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/keys")
    page.get_by_role("button", name="New key").click()
    dialog = page.get_by_role("dialog", name="New API key")
    dialog.get_by_label("Name").fill("billing")
    dialog.get_by_label("Name").press("Enter")
    shown = page.get_by_role("dialog", name="Your new API key")
    expect(shown).to_contain_text("shown this once")
    full = shown.locator(".key-full").inner_text()
    with backdrop.api(full) as api:
        assert api.get("/queues").status_code == 200
    shown.get_by_role("button", name="Done").click()

    billing = row(tab, "billing")
    expect(billing).to_contain_text("enabled")
    expect(billing).to_contain_text(full[:3])
    expect(billing).not_to_contain_text(full)  # listed keys show a prefix only
    billing.get_by_role("button", name="Disable").click()
    expect(billing).to_contain_text("disabled")
    with backdrop.api(full) as api:
        wait_for(lambda: api.get("/queues").status_code == 401)
        billing.get_by_role("button", name="Enable").click()
        expect(billing).to_contain_text("enabled")
        wait_for(lambda: api.get("/queues").status_code == 200)

    billing.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(row(tab, "billing")).to_have_count(0)


def test_dialogs_keep_focus_and_close_with_escape(tab: Tab, tenant: Tenant) -> None:
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/queues")
    opener = page.get_by_role("button", name="New queue")
    expect(opener).to_be_enabled()  # once the API said this key may create queues
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New queue")
    expect(dialog).to_be_visible()
    for _ in range(8):  # more stops than the dialog has: focus never leaves it
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(opener).to_be_focused()


def test_events_are_tailed_as_they_happen(tab: Tab, tenant: Tenant) -> None:
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/events")
    expect(page.get_by_text("Following")).to_be_visible()
    tenant.queue("tail-me")  # after the page started following
    expect(row(tab, "tail-me")).to_contain_text("queue added")

    page.get_by_label("Kind").select_option("messages")
    expect(page.get_by_text("Following")).to_be_visible()
    expect(row(tab, "tail-me")).to_have_count(0)
    queue = tenant.get("/queues")["queues"][0]["id"]
    tenant.message(queue, "x", name="tailed")
    expect(row(tab, "tailed")).to_contain_text("message added")


def test_the_theme_follows_the_system_and_the_toggle(
    browser: Browser, backdrop: Backdrop, tenant: Tenant
) -> None:
    with open_tab(browser, backdrop.origin) as tab:
        page = tab.page
        page.emulate_media(color_scheme="dark")
        tab.sign_in(tenant.key)
        background = "getComputedStyle(document.documentElement).backgroundColor"
        dark = page.evaluate(background)
        page.get_by_role("button", name=re.compile("Theme")).click()  # system -> light
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        light = page.evaluate(background)
        assert dark != light
        page.reload()  # the choice is kept (it is no secret: localStorage)
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        assert page.evaluate(background) == light


def test_every_page_fits_a_phone(browser: Browser, backdrop: Backdrop, tenant: Tenant) -> None:
    queue = tenant.queue("orders-with-a-rather-long-name")
    listener = tenant.listener(queue, "warehouse-service")
    message = tenant.message(queue, json.dumps({"order": 1, "lines": ["a"] * 30}), name="order")
    routes = [
        "#/overview",
        "#/queues",
        f"#/queues/{queue}",
        "#/listeners",
        f"#/queues/{queue}/listeners/{listener}",
        "#/messages",
        f"#/queues/{queue}/messages/{message}",
        "#/events",
        "#/keys",
    ]
    with open_tab(browser, backdrop.origin, PHONE) as tab:
        tab.sign_in(tenant.key)
        for route in routes:
            tab.go(route)
            tab.page.wait_for_load_state("networkidle")
            expect(tab.page.locator("h1")).to_be_visible()
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{route} scrolls sideways ({width}px)"


def test_the_api_docs_work_with_this_server_alone(tab: Tab) -> None:
    page = tab.page
    page.goto(tab.origin + "/docs")
    operation = page.locator(".opblock").filter(has_text="/health").first
    operation.locator(".opblock-summary").first.click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tbody .response-col_status")
    expect(answer).to_have_text("200")  # "Try it out" reached this server's API


def test_the_tab_checks_catch_outside_requests_and_errors(
    browser: Browser, backdrop: Backdrop
) -> None:
    """The end-of-test checks every other test relies on can fail."""
    with open_tab(browser, backdrop.origin) as tab:
        tab.open()
        expect(tab.page.get_by_label("API key")).to_be_visible()
        # The page's CSP stops a fetch elsewhere before it is sent, and says so.
        tab.page.evaluate("fetch('http://outside.invalid/beacon').catch(() => null)")
        # Thrown after the evaluate returns: wait for it (the tab's own listener, added
        # first, has recorded it by then), or the check below may run before it lands.
        with tab.page.expect_event("pageerror"):
            tab.page.evaluate("setTimeout(() => { throw new Error('boom') })")
        # A navigation elsewhere is stopped by the tab's own interception.
        with pytest.raises(Exception, match="ERR_FAILED"):
            tab.page.goto("http://outside.invalid/elsewhere")
        found = "\n".join(tab.leftovers())
        assert "request left the origin: http://outside.invalid/elsewhere" in found
        assert "JavaScript error: boom" in found
        assert "Content Security Policy" in found and "outside.invalid/beacon" in found
        tab.refused.clear(), tab.problems.clear(), tab.console_errors.clear(), tab.requests.clear()


def test_a_delayed_message_says_when_its_delivery_starts(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("reminders")
    tenant.listener(queue, "mailer")
    message = tenant.post(f"/queues/{queue}/messages", {"data": "later", "delay": 3600})
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/messages/{message['message']['id']}")
    expect(page.locator(".deliver-at")).to_have_text("in 1 hour")
    expect(row(tab, "mailer")).to_contain_text("pending")
