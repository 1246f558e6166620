"""Listener options, secret rotation (SPEC §10) and queue retention (§9) in a real
Chromium, through the console's forms, checked against the API and the receiver.

Each test gets a fresh organization and tab; the tab's end checks that no request left
the origin and that no JavaScript or console error was logged (harness.py).
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.harness import Backdrop, Tab, Tenant
from tests.browser.test_console import READ_ONLY, delivery_state, wait_for


def test_listener_options_are_set_on_create_and_edited(
    tab: Tab, tenant: Tenant, backdrop: Backdrop
) -> None:
    queue = tenant.queue("orders")
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}")
    page.get_by_role("button", name="Add listener").click()
    dialog = page.get_by_role("dialog", name="New listener")
    dialog.get_by_label("Name").fill("shop")
    dialog.get_by_label("Notify URL").fill(backdrop.receiver.url("/ok"))
    dialog.get_by_label("Liveness URL").fill(backdrop.receiver.url("/live"))
    dialog.get_by_text("Options: rate limit").click()  # opens the options
    dialog.get_by_label("Rate limit (per second)").fill("5")
    dialog.get_by_label("Ordered").check()
    dialog.get_by_label("Filter (JSON)").fill('{"names": ["order.*"]}')
    dialog.get_by_label("Headers").fill("X-Team: billing")
    dialog.get_by_label("Signature scheme").select_option("v1a")
    dialog.get_by_role("button", name="Create listener").click()
    expect(page.get_by_role("heading", name="shop")).to_be_visible()
    listener_id = page.evaluate("location.hash").split("/")[-1]
    created = tenant.get(f"/queues/{queue}/listeners/{listener_id}")["listener"]
    assert created["rate_limit"] == 5
    assert created["ordered"] is True
    assert created["filter"] == {"names": ["order.*"]}
    assert created["headers"] == {"X-Team": "billing"}
    assert created["signature_scheme"] == "v1a" and created["secret"].startswith("whpk_")

    options = page.get_by_role("region", name="Options")
    expect(options).to_contain_text("5 attempts a second")
    expect(options).to_contain_text("X-Team")
    expect(options).not_to_contain_text("billing")  # header values are not on show

    # Only a message the filter matches is delivered, with the static header.
    skipped = tenant.message(queue, "x", name="invoice.paid")
    sent = tenant.message(queue, "x", name="order.created")
    wait_for(lambda: delivery_state(tenant, queue, sent) == "delivered")
    arrivals = backdrop.receiver.on("/ok")
    assert [a.json()["id"] for a in arrivals if a.json()["id"] in (sent, skipped)] == [sent]
    assert [a.headers.get("X-Team") for a in arrivals if a.json()["id"] == sent] == ["billing"]

    options.get_by_role("button", name="Edit options").click()
    dialog = page.get_by_role("dialog", name="Listener options")
    dialog.get_by_label("Filter (JSON)").fill('{"names": "order.*"}')  # not a list
    dialog.get_by_role("button", name="Save options").click()
    expect(dialog.get_by_role("alert")).to_contain_text("filter")  # the API's error, by path
    dialog.get_by_label("Filter (JSON)").fill("")  # every message again
    dialog.get_by_label("Max in flight").fill("4")
    dialog.get_by_label("Rate limit (per second)").fill("")  # no limit
    dialog.get_by_role("button", name="Save options").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    edited = tenant.get(f"/queues/{queue}/listeners/{listener_id}")["listener"]
    assert (edited["filter"], edited["max_in_flight"], edited["rate_limit"]) == (None, 4, None)
    assert edited["headers"] == {"X-Team": "billing"}  # untouched fields stay
    expect(options).to_contain_text("at most 4 at once")


def test_rotating_the_secret_shows_the_new_one_once_and_signs_with_both(
    tab: Tab, tenant: Tenant, backdrop: Backdrop
) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop", "/rotated")
    old = tenant.get(f"/queues/{queue}/listeners/{listener}")["listener"]["secret"]
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    page.get_by_role("button", name="Rotate secret").click()
    dialog = page.get_by_role("dialog", name="Rotate the signing secret?")
    dialog.get_by_label("Grace period").select_option(label="1 hour")
    dialog.get_by_role("button", name="Rotate").click()
    shown = page.get_by_role("dialog", name="The new signing key")
    expect(shown).to_contain_text("Deliveries are signed with both keys for 1 hour")
    new = shown.locator(".new-secret").inner_text()
    assert new.startswith("whsec_") and new != old
    assert tenant.get(f"/queues/{queue}/listeners/{listener}")["listener"]["secret"] == new
    shown.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    secret = page.get_by_role("region", name="Signing secret")
    expect(secret).to_contain_text("Previous key")
    expect(secret.locator(".secret code")).not_to_have_text(new)  # hidden again until asked

    message = tenant.message(queue, "signed twice")
    wait_for(lambda: delivery_state(tenant, queue, message) == "delivered")
    [arrival] = backdrop.receiver.on("/rotated")
    assert len(arrival.headers["webhook-signature"].split(" ")) == 2  # new key and old

    # To Ed25519 at once: the listener shows its public key, the only signature is v1a.
    page.get_by_role("button", name="Rotate secret").click()
    dialog = page.get_by_role("dialog", name="Rotate the signing secret?")
    dialog.get_by_label("Grace period").select_option(label="none: the old key stops at once")
    dialog.get_by_label("Signature scheme").select_option("v1a")
    dialog.get_by_role("button", name="Rotate").click()
    shown = page.get_by_role("dialog", name="The new signing key")
    expect(shown).to_contain_text("signed with it alone")
    expect(shown).to_contain_text("the public key receivers verify with")
    assert shown.locator(".new-secret").inner_text().startswith("whpk_")
    shown.get_by_role("button", name="Done").click()
    expect(secret).to_contain_text("v1a (Ed25519")
    message = tenant.message(queue, "signed once")
    wait_for(lambda: delivery_state(tenant, queue, message) == "delivered")
    signature = backdrop.receiver.on("/rotated")[-1].headers["webhook-signature"]
    assert signature.startswith("v1a,") and " " not in signature


def test_a_read_only_key_may_not_rotate_or_edit_options(tab: Tab, tenant: Tenant) -> None:
    queue = tenant.queue("orders")
    listener = tenant.listener(queue, "shop")
    page = tab.page
    tab.sign_in(tenant.key_with(READ_ONLY, name="dashboard"))
    tab.go(f"#/queues/{queue}/listeners/{listener}")
    expect(page.get_by_role("button", name="Rotate secret")).to_be_disabled()
    expect(page.get_by_role("button", name="Edit options")).to_be_disabled()
    expect(page.get_by_text("Hidden: this key may read this listener")).to_be_visible()


def test_queue_retention_is_chosen_on_create_and_changed(tab: Tab, tenant: Tenant) -> None:
    page = tab.page
    tab.sign_in(tenant.key)
    tab.go("#/queues")
    page.get_by_role("button", name="New queue").click()
    dialog = page.get_by_role("dialog", name="New queue")
    dialog.get_by_label("Name").fill("audit")
    dialog.get_by_label("Keep messages").select_option(label="7 days")
    dialog.get_by_role("button", name="Create queue").click()
    expect(page.get_by_role("heading", name="audit", exact=True)).to_be_visible()
    queue = page.evaluate("location.hash").split("/")[-1]
    assert tenant.get(f"/queues/{queue}")["queue"]["retention_seconds"] == 7 * 86400
    retention = page.locator(".retention")
    expect(retention).to_contain_text("7 days after they were posted")

    page.get_by_role("button", name="Edit retention").click()
    dialog = page.get_by_role("dialog", name="Message retention")
    dialog.get_by_label("forever").check()
    dialog.get_by_role("button", name="Save retention").click()
    expect(retention).to_have_text("Messages are kept forever.")
    assert tenant.get(f"/queues/{queue}")["queue"]["retention_seconds"] is None

    page.get_by_role("button", name="Edit retention").click()
    dialog = page.get_by_role("dialog", name="Message retention")
    dialog.get_by_label("for a time").check()
    dialog.get_by_label("Keep for").fill("90")
    dialog.get_by_label("Unit").select_option(label="minutes")
    dialog.get_by_label("Keep for").press("Enter")
    expect(retention).to_contain_text("90 minutes")
    assert tenant.get(f"/queues/{queue}")["queue"]["retention_seconds"] == 5400
