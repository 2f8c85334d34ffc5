"""A first-come drop under contention, through HTTP and the real saga: never oversell, limits hold, no unit lost.

200 buyers x 3 attempts at a product with 50 units and perMemberLimit 2, from a pool of 32 threads.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from tests.support.accounts import new_account
from tests.support.orders import make_product, mysql_stock, place, redis_stock, wait_for

BUYERS, ATTEMPTS, STOCK, LIMIT, THREADS = 200, 3, 50, 2, 32


class StockWatcher(threading.Thread):
    """Samples the live available count while the drop runs; remembers the lowest value seen."""

    def __init__(self, product_id: int) -> None:
        super().__init__(daemon=True)
        self.product_id, self.lowest, self.samples = product_id, STOCK, 0
        self.done = threading.Event()

    def run(self) -> None:
        r = redis_client()
        while not self.done.is_set():
            value = r.hget(keys.stock(self.product_id), "available")
            if value is not None:
                self.lowest = min(self.lowest, int(value))
                self.samples += 1
            time.sleep(0.002)


def run_drop(token_for) -> tuple[int, list[tuple[int, str, httpx.Response]], StockWatcher, float]:
    seller = new_account(seller=True)
    product = make_product(seller, STOCK, price=10_000, limit=LIMIT)
    buyers = [new_account() for _ in range(BUYERS)]
    # Each buyer's attempts are sent together (buyer after buyer), so they race each other for the limit.
    attempts = [(buyer, token_for(i)) for i, buyer in enumerate(b for b in buyers for _ in range(ATTEMPTS))]
    watcher = StockWatcher(product)
    watcher.start()
    started = time.monotonic()
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=THREADS)) as client, \
            ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda a: (a[0].member_id, a[1], place(client, a[0], [(product, 1)], token=a[1])),
                                attempts))
    elapsed = time.monotonic() - started
    watcher.done.set()
    watcher.join()
    return product, results, watcher, elapsed


def final_statuses(order_ids: list[str], seconds: float = 120) -> dict[str, tuple[str, str | None]]:
    """Each order's MySQL status once none is PENDING any more (bounded wait)."""
    def read() -> dict[str, tuple[str, str | None]]:
        with mysql_cursor() as cur:
            marks = ", ".join(["%s"] * len(order_ids))
            cur.execute(f"SELECT id, status, failure_reason FROM orders WHERE id IN ({marks})", order_ids)
            return {r["id"]: (r["status"], r["failure_reason"]) for r in cur.fetchall()}

    done = wait_for(lambda: (s := read()) and len(s) == len(order_ids)
                    and all(v[0] != "PENDING" for v in s.values()) and s, seconds, 0.25)
    assert done, "some orders never left PENDING"
    return done


def summary(results, elapsed: float) -> Counter:
    codes = Counter(r.json()["error"]["code"] if r.status_code != 202 else "ACCEPTED" for _, _, r in results)
    print(f"\n{len(results)} requests in {elapsed:.2f} s ({len(results) / elapsed:.0f} req/s): {dict(codes)}")
    return codes


def test_the_drop_sells_exactly_its_stock_and_nobody_more_than_the_limit(stack):
    product, results, watcher, elapsed = run_drop(lambda i: "tok_ok")
    codes = summary(results, elapsed)
    assert {r.status_code for _, _, r in results} <= {202, 409}
    assert set(codes) == {"ACCEPTED", "OUT_OF_STOCK", "PURCHASE_LIMIT_EXCEEDED"}
    accepted = [(member, r.json()["orderId"]) for member, _, r in results if r.status_code == 202]
    assert len(accepted) == STOCK
    assert max(Counter(member for member, _ in accepted).values()) <= LIMIT
    assert watcher.lowest >= 0 and watcher.samples > 0
    statuses = final_statuses([o for _, o in accepted])
    assert Counter(s for s, _ in statuses.values()) == {"CONFIRMED": STOCK}
    assert mysql_stock(product) == 0
    assert redis_stock(product) == redis_stock(product) | {"available": 0, "reserved": 0}


def test_with_mixed_payments_every_declined_order_gives_its_units_back(stack):
    tokens = ["tok_ok"] * 6 + ["tok_declined"] * 3 + ["tok_error"]
    product, results, watcher, elapsed = run_drop(lambda i: tokens[i % len(tokens)])
    summary(results, elapsed)
    assert {r.status_code for _, _, r in results} <= {202, 409}
    accepted = {r.json()["orderId"]: (member, token) for member, token, r in results if r.status_code == 202}
    assert len(accepted) >= STOCK * 0.5
    statuses = final_statuses(list(accepted))
    confirmed = [o for o, (s, _) in statuses.items() if s == "CONFIRMED"]
    for order_id, (status, reason) in statuses.items():
        token = accepted[order_id][1]
        if token == "tok_declined":
            assert (status, reason) == ("FAILED", "PAYMENT_DECLINED")
        else:
            assert status == "CONFIRMED", (order_id, token, status, reason)
    assert max(Counter(accepted[o][0] for o in confirmed).values()) <= LIMIT
    assert watcher.lowest >= 0
    print(f"confirmed {len(confirmed)}, declined {len(statuses) - len(confirmed)}, "
          f"left {mysql_stock(product)} of {STOCK}")
    assert mysql_stock(product) == STOCK - len(confirmed)
    assert redis_stock(product) == redis_stock(product) | {"available": STOCK - len(confirmed), "reserved": 0}
