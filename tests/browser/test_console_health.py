"""The console's attempt log, listener health and charts (SPEC §11) in a real Chromium.

Each test gets a fresh organization and tab; the tab's end checks that no request left
the origin and that no JavaScript or console error was logged (harness.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.harness import Backdrop, Switch, Tab, Tenant
from tests.browser.test_console import READ_ONLY, delivery_state, row, wait_for


@pytest.fixture(scope="module")
def backdrop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backdrop]:
    """A server whose breaker opens after 6 failed attempts in a row and tries again
    soon, so a test sees a listener turn failing and recover in seconds."""
    quick = {"breaker_threshold": 6, "breaker_cooldown_s": 0.5}
    with Backdrop(tmp_path_factory.mktemp("health") / "tidings.db", quick) as running:
        yield running


@pytest.fixture
def switch(backdrop: Backdrop) -> Iterator[Switch]:
    backdrop.switch.failing = False
    yield backdrop.switch
    backdrop.switch.failing = False


def test_a_message_shows_each_listeners_attempts_with_status_duration_and_answer(
    tab: Tab, tenant: Tenant, switch: Switch
) -> None:
    switch.failing = True
    queue = tenant.queue("orders")
    tenant.listener(queue, "shop")
    tenant.listener(queue, "ledger", "/flaky")
    message = tenant.message(queue, '{"id": 7}', name="order.created")
    wait_for(
        lambda: {d["state"] for d in deliveries(tenant, queue, message)} == {"delivered", "missed"}
    )

    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/messages/{message}")
    shop = page.locator(".attempt-group").filter(has=page.get_by_role("heading", name="shop"))
    ledger = page.locator(".attempt-group").filter(has=page.get_by_role("heading", name="ledger"))
    expect(shop.locator("tbody tr")).to_have_count(1)
    expect(shop.locator("tbody tr")).to_contain_text("acknowledged")
    expect(shop.locator("tbody tr")).to_contain_text("200")
    expect(shop.locator("tbody tr")).to_contain_text(" ms")  # its duration
    attempts = ledger.locator("tbody tr")
    expect(attempts).to_have_count(3)  # the first attempt and the two retries
    expect(attempts.nth(2)).to_contain_text("failed")
    expect(attempts.nth(2)).to_contain_text("500")
    answer = attempts.nth(2).locator("details")
    answer.locator("summary").focus()  # the answer's body, opened on demand, by keyboard
    page.keyboard.press("Enter")
    expect(answer.locator("pre")).to_have_text("flaky says no")

    switch.failing = False  # redeliver: the new attempt joins the log
    row(tab, "ledger").get_by_role("button", name="Redeliver").click()
    expect(row(tab, "ledger").first).to_contain_text("delivered")
    expect(attempts).to_have_count(4)
    expect(attempts.nth(3)).to_contain_text("acknowledged")
    assert delivery_state(tenant, queue, message) == "delivered"


def test_a_listeners_attempt_log_is_paged_newest_first(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop")
    ids = [tenant.message(queue, "x", name=f"m{n}") for n in range(23)]
    wait_for(lambda: all(delivery_state(tenant, queue, m) == "delivered" for m in ids))

    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    log = page.get_by_role("region", name="Attempt log")
    rows = log.locator("tbody tr")
    expect(rows).to_have_count(20)
    expect(log.get_by_text("Page 1 of 2 · 23 in all")).to_be_visible()
    expect(rows.first.get_by_role("link")).to_have_attribute("title", ids[-1])  # newest first
    log.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(3)
    expect(rows.last.get_by_role("link")).to_have_attribute("title", ids[0])


def test_the_overview_charts_the_series(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    tenant.listener(queue, "shop")
    message = tenant.message(queue, "x")
    wait_for(lambda: delivery_state(tenant, queue, message) == "delivered")

    page = tab.page
    tab.sign_in(tenant.key)
    chart = page.get_by_role("img", name="Chart of the last hour")
    expect(chart.locator("canvas")).to_have_count(1)  # drawn by uPlot, from this server
    totals = page.locator(".chart-totals")
    expect(totals).to_contain_text("Messages posted: 1")
    expect(totals).to_contain_text("Deliveries acknowledged: 1")
    page.get_by_role("button", name="Last 24 hours").click()
    expect(page.get_by_role("button", name="Last 24 hours")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(totals).to_contain_text("the last 24 hours")
    expect(totals).to_contain_text("Messages posted: 1")


def deliveries(tenant: Tenant, queue: str, message: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = tenant.get(f"/queues/{queue}/messages/{message}")["message"][
        "deliveries"
    ]
    return found


def health_of(tab: Tab) -> Locator:
    page = tab.page
    return page.get_by_role("region", name="Health")


def test_a_failing_receiver_turns_the_listener_failing_then_healthy_again(
    tab: Tab, tenant: Tenant, switch: Switch
) -> None:
    queue = tenant.queue("payments")
    listener = tenant.listener(queue, "ledger", "/flaky")
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    health = health_of(tab)
    expect(health.locator(".badge").first).to_have_text("healthy")

    switch.failing = True  # the page follows the listener: no reload needed
    for n in range(3):
        tenant.message(queue, f'{{"n": {n}}}')
    expect(health.locator(".badge").first).to_have_text("failing")
    expect(health).to_contain_text("Failing since")
    log = page.get_by_role("region", name="Attempt log")
    expect(log.locator("tbody tr").first).to_contain_text("500")

    tab.go("#/events?kind=listeners")  # the health event stands out in the tail
    expect(row(tab, "ledger").filter(has_text="listener failing")).to_have_count(1)

    switch.failing = False  # the breaker's trial succeeds: healthy again
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    expect(health_of(tab).locator(".badge").first).to_have_text("healthy", timeout=30_000)
    tab.go("#/overview")
    expect(page.locator(".health-counts")).to_contain_text("1 healthy")


def test_a_listener_is_disabled_and_enabled_again(
    tab: Tab, tenant: Tenant, backdrop: Backdrop
) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop", "/held")
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    health = health_of(tab)
    health.get_by_role("button", name="Disable").click()
    page.get_by_role("dialog", name="Disable listener shop?").get_by_role(
        "button", name="Disable"
    ).click()
    expect(health).to_contain_text("someone disabled it")
    expect(health.locator(".badge").first).to_have_text("disabled")
    assert tenant.get(f"/queues/{queue}/listeners/{listener}")["listener"]["status"] == "disabled"

    message = tenant.message(queue, "waits")  # owed, but not sent while disabled
    time.sleep(0.5)
    assert delivery_state(tenant, queue, message) == "pending"
    assert backdrop.receiver.on("/held") == []

    health.get_by_role("button", name="Enable").click()
    expect(health.locator(".badge").first).to_have_text("healthy")
    wait_for(lambda: delivery_state(tenant, queue, message) == "delivered")
    assert [a.json()["id"] for a in backdrop.receiver.on("/held")] == [message]


def test_a_read_only_key_may_not_disable_a_listener(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop")
    tab.sign_in(tenant.key_with(READ_ONLY, name="dashboard"))
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    expect(health_of(tab).get_by_role("button", name="Disable")).to_be_disabled()
    expect(health_of(tab).locator(".badge").first).to_have_text("healthy")
