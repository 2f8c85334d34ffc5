"""Debian's headless Chromium driven by Playwright (no browser is downloaded)."""

from __future__ import annotations

import pytest

from goodsdrop import keys
from goodsdrop.clients import redis_client
from tests.support.browser import CHROMIUM, FLAGS, SHOTS


@pytest.fixture
def page(stack, tmp_path):
    """A fresh Chromium page (empty profile) on the running stack; screenshots go to .stack/screenshots/."""
    from playwright.sync_api import sync_playwright

    # Other tests brute-force logins from this same address on purpose; start with a clean slate.
    redis_client().delete(keys.login_attempts_by_ip("127.0.0.1"))

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # A persistent context gives Chromium a fresh, empty profile directory of its own.
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS,
                                                       viewport={"width": 1100, "height": 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
