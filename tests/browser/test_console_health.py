"""The console's attempt log, listener health and charts (SPEC §11) in a real Chromium.

Each test gets a fresh organization and tab; the tab's end checks that no request left
the origin and that no JavaScript or console error was logged (harness.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.harness import Backdrop, Switch, Tab, Tenant
from tests.browser.test_console import delivery_state, row, wait_for


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
    answer.locator("summary").click()  # the answer's body, opened on demand
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
