"""The drop dashboard in Debian's headless Chromium, watching a real drop fired by the load generator.

A seller logs in, opens the dashboard of their drop before it opens, and wrk (bench/loadgen.py, the
benchmark's generator: one keep-alive connection per client, every request by another buyer) fires
a bounded drop at the opening. The page must follow it live over the SSE container's drop stream
(frames arrive, charts drawn with uPlot) and, once the saga has settled, show the same counts the
load generator got. The screenshot is .stack/screenshots/drop-dashboard.png (docs/drop-dashboard.png
in the README is one of these).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import drop_fixtures, loadgen
from goodsdrop.clients import mysql_transaction
from goodsdrop.settings import settings
from tests.support.accounts import new_account
from tests.support.browser import SHOTS

API = f"http://127.0.0.1:{settings.api_port}"
STOCK, CLIENTS, PER_CLIENT = 20, 20, 3


def new_drop(seller_id: int, opens_in_seconds: float) -> tuple[int, float]:
    starts = (datetime.now(UTC) + timedelta(seconds=opens_in_seconds)).replace(microsecond=0)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit) "
                    "VALUES (%s, %s, 'Dashboard test drop', 59000, %s, 1)",
                    (seller_id, f"Dashboard Drop {uuid.uuid4().hex[:6]}", starts.replace(tzinfo=None)))
        product_id = int(cur.lastrowid)
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, STOCK))
    return product_id, starts.timestamp()


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def test_a_seller_watches_a_drop_fired_by_the_load_generator(page, tmp_path: Path):
    seller = new_account(seller=True)
    buyers = [new_account().member_id for _ in range(CLIENTS * PER_CLIENT)]
    tokens = tmp_path / "tokens.txt"
    drop_fixtures.write_tokens(buyers, tokens)

    page.goto(f"{API}/#/login")
    page.fill("input[name=email]", seller.email)
    page.fill("input[name=password]", seller.password)
    page.click("button.primary")
    page.wait_for_selector("#nav-dashboard:not([hidden])")

    product_id, opens_at = new_drop(seller.member_id, opens_in_seconds=12)
    page.click("#nav-dashboard")
    page.click(f"[data-drop='{product_id}']")
    page.wait_for_function("document.querySelector('#live-state')?.textContent === 'open'")
    assert text(page, "#fig-stock") == str(STOCK) and text(page, "#fig-attempts") == "0"
    assert page.locator(".uplot").count() == 4  # the four charts, drawn by uPlot

    start_at = time.monotonic() + (opens_at - time.time()) + 0.05
    fired = loadgen.fire_orders(API, tokens, product_id, f"e2e{uuid.uuid4().hex[:6]}", connections=CLIENTS,
                                per_connection=PER_CLIENT, start_at=start_at, label="dashboard drop", timeout_s=60)
    requests = CLIENTS * PER_CLIENT
    assert sum(fired.counts.values()) == requests, fired.counts
    accepted = fired.counts.get("202", 0)
    assert accepted == STOCK, fired.counts

    # Live: the frames carry the attempts while the saga is still confirming.
    page.wait_for_function(f"document.querySelector('#fig-attempts')?.textContent === '{requests}'", timeout=20_000)
    page.wait_for_function("Number(document.querySelector('#live-frames')?.textContent) >= 3")
    # After the drop: the page reads the report again once the drop went quiet and the saga settled.
    page.wait_for_selector("#report[data-settled='true']", timeout=120_000)
    page.screenshot(path=str(SHOTS / "drop-dashboard.png"), full_page=True)
    assert text(page, "#fig-attempts") == str(requests)
    assert text(page, "#fig-accepted") == str(accepted)
    assert text(page, "#fig-confirmed") == str(STOCK)
    assert text(page, "#fig-buyers") == str(STOCK)
    assert text(page, "#fig-stock") == "0"
    refused = {key.split(" ", 1)[1]: n for key, n in fired.counts.items() if key != "202"}
    shown = dict(part.rsplit(" ", 1) for part in text(page, "#fig-refusals").split(", "))
    assert {code: int(n) for code, n in shown.items()} == refused
    assert text(page, "#fig-sellout").endswith(" s")
