"""Fixtures for the browser tests: one server and one Chromium per module and xdist
worker (both take a second to start), a fresh organization and tab per test."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, Backdrop, Tab, Tenant, browser_available

if not browser_available() or importlib.util.find_spec("playwright") is None:
    if os.environ.get("TIDINGS_TEST_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"the browser tests need Playwright and Chromium at {CHROMIUM}")
    collect_ignore_glob = ["test_*.py"]  # the README's test command works without a browser
else:
    from playwright.sync_api import Browser, sync_playwright

    from tests.browser.harness import open_tab

    @pytest.fixture(scope="module")
    def backdrop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backdrop]:
        with Backdrop(tmp_path_factory.mktemp("console") / "tidings.db") as running:
            yield running

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        with sync_playwright() as pw:
            launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()

    @pytest.fixture
    def tenant(backdrop: Backdrop) -> Tenant:
        return backdrop.organization()

    @pytest.fixture
    def tab(browser: Browser, backdrop: Backdrop) -> Iterator[Tab]:
        with open_tab(browser, backdrop.origin) as opened:
            yield opened


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
