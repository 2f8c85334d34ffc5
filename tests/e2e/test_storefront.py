"""The storefront as a person uses it, in Debian's headless Chromium (no browser is downloaded).

Log in → open a drop that opens in a few seconds (countdown) → watch the live stock fall when
another buyer buys → buy → see the order CONFIRMED. Screenshots go to .stack/screenshots/.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.settings import settings
from tests.support.accounts import new_account

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / ".stack" / "screenshots"
API = f"http://127.0.0.1:{settings.api_port}"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def new_drop(opens_in_seconds: float) -> int:
    """A limited drop opening soon: 5 units, 2 per member."""
    seller = new_account(seller=True)
    starts = (datetime.now(UTC) + timedelta(seconds=opens_in_seconds)).replace(tzinfo=None, microsecond=0)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit) "
                    "VALUES (%s, %s, 'Browser test drop', 99000, %s, 2)",
                    (seller.member_id, f"E2E Figure {uuid.uuid4().hex[:6]}", starts))
        product_id = cur.lastrowid
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, 5)", (product_id,))
    return int(product_id)


@pytest.fixture
def page(stack, tmp_path):
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


def test_buy_a_drop_in_the_browser(page):
    buyer, rival = new_account(), new_account()
    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", buyer.email)
    page.fill("input[name=password]", buyer.password)
    page.click("button.primary")
    page.wait_for_selector("#nav-logout:not([hidden])")

    drop = new_drop(opens_in_seconds=10)  # created now, so the page surely sees the countdown
    page.goto(f"{API}/#/product/{drop}")
    page.wait_for_selector("#countdown")
    assert page.locator("#buy").is_disabled()
    assert page.locator("#stock").inner_text() == "5"
    page.screenshot(path=str(SHOTS / "1-countdown.png"))

    page.wait_for_function("document.querySelector('#buy')?.disabled === false", timeout=30_000)  # the drop opens
    # Another buyer takes 2 units: the page's live stock falls without a reload (SSE).
    response = httpx.post(f"{API}/orders", headers={**rival.headers(), "Idempotency-Key": str(uuid.uuid4())},
                          json={"items": [{"productId": str(drop), "quantity": 2}], "paymentToken": "tok_ok"})
    assert response.status_code == 202, response.text
    page.wait_for_function("document.querySelector('#stock')?.textContent === '3'")
    page.screenshot(path=str(SHOTS / "2-live-stock.png"))

    page.click("#buy")
    page.wait_for_url("**/#/order/*")
    page.wait_for_function("document.querySelector('#order-status')?.textContent === 'CONFIRMED'", timeout=30_000)
    page.screenshot(path=str(SHOTS / "3-confirmed.png"))

    page.goto(f"{API}/#/product/{drop}")
    page.wait_for_function("document.querySelector('#stock')?.textContent === '2'")


def test_a_busy_drop_puts_the_buyer_in_line_and_buys_once_admitted(page):
    from goodsdrop.admission import close_waiting_room, open_waiting_room

    buyer, first_in_line = new_account(), new_account()
    drop = new_drop(opens_in_seconds=0)
    open_waiting_room(drop)
    # Someone joined before: this test stack's room admits only its first ticket, so the buyer waits.
    assert httpx.post(f"{API}/products/{drop}/queue", headers=first_in_line.headers()).json()["admitted"] is True
    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", buyer.email)
    page.fill("input[name=password]", buyer.password)
    page.click("button.primary")
    page.wait_for_selector("#nav-logout:not([hidden])")
    page.goto(f"{API}/#/product/{drop}")
    page.wait_for_function("document.querySelector('#buy')?.disabled === false")
    page.click("#buy")
    page.wait_for_function("document.querySelector('#message')?.textContent === 'You are number 1 in line.'")
    page.screenshot(path=str(SHOTS / "4-in-line.png"))
    close_waiting_room(drop)  # the rush is over: the next poll finds the buyer admitted and buys
    page.wait_for_url("**/#/order/*", timeout=30_000)
    page.wait_for_function("document.querySelector('#order-status')?.textContent === 'CONFIRMED'", timeout=30_000)


def test_api_errors_are_shown_as_readable_messages(page):
    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", "nobody@example.test")
    page.fill("input[name=password]", "wrong-password")
    page.click("button.primary")
    page.wait_for_selector("#message:not([hidden])")
    assert page.locator("#message").inner_text() == "Wrong email or password."
