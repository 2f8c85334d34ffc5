"""The stock and detail caches on the real servers: miss → fill, write-through, the stampede guard,
StockChanged, the live-drop rule, and detail invalidation on edit and on stock change."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from goodsdrop import keys, stock
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.errors import Conflict
from goodsdrop.products import cache_product, get_product, load_product
from tests.support.catalogue import API, StockChangedTap, create_product
from tests.support.reserve_stock import reserve_stock


def mysql_count(product_id: int | str) -> int:
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        return int(cur.fetchone()["count"])


def put_stock(seller, product_id, units: int) -> httpx.Response:
    return httpx.put(f"{API}/products/{product_id}/stock", json={"stock": units}, headers=seller.headers(), timeout=10)


def test_a_miss_fills_redis_from_mysql_and_later_reads_come_from_redis(seller):
    pid = create_product(seller, stock=12)["id"]
    r = redis_client()
    r.delete(keys.stock(pid))
    assert httpx.get(f"{API}/products/{pid}/stock").json() == {"productId": pid, "stock": 12, "status": "on_sale"}
    assert r.hgetall(keys.stock(pid)) | {"version": "x"} == {"available": "12", "reserved": "0", "version": "x"}
    with mysql_cursor() as cur:  # change MySQL behind the cache's back: the cached value keeps answering
        cur.execute("UPDATE stock SET count = 99 WHERE product_id = %s", (pid,))
    assert httpx.get(f"{API}/products/{pid}/stock").json()["stock"] == 12
    assert httpx.get(f"{API}/products/{pid}").json()["stock"] == 12


def test_put_stock_writes_through_to_mysql_and_redis_and_emits_stock_changed(seller):
    pid = create_product(seller, stock=5)["id"]
    version_before = int(redis_client().hget(keys.stock(pid), "version"))
    tap = StockChangedTap()
    try:
        response = put_stock(seller, pid, 42)
        assert response.status_code == 200, response.text
        assert response.json() == {"productId": pid, "stock": 42, "status": "on_sale"}
        assert mysql_count(pid) == 42
        state = redis_client().hgetall(keys.stock(pid))
        assert (state["available"], state["reserved"]) == ("42", "0") and int(state["version"]) > version_before
        events = tap.events_for(pid)
    finally:
        tap.close()
    assert [e.type for e in events] == ["StockChanged"]
    assert events[0].payload == {"productId": pid, "stock": 42, "status": "on_sale", "version": int(state["version"])}
    assert httpx.get(f"{API}/products/{pid}/stock").json()["stock"] == 42


def test_setting_stock_to_zero_sells_out(seller):
    pid = create_product(seller, stock=3)["id"]
    assert put_stock(seller, pid, 0).json()["status"] == "sold_out"
    assert httpx.get(f"{API}/products/{pid}").json()["status"] == "sold_out"
    with pytest.raises(Conflict):
        reserve_stock(int(pid), 1)


def test_many_threads_on_a_cold_key_read_mysql_once(seller, monkeypatch):
    from goodsdrop import ledger

    pid = int(create_product(seller, stock=77)["id"])
    get_product(pid)  # the detail is cached: only the stock rebuild is left to hit MySQL
    redis_client().delete(keys.stock(pid))
    real_snapshot, reads, lock = ledger.stock_snapshot, [], threading.Lock()

    def counted_snapshot(cur, product_id, held):
        with lock:  # count every rebuild read of MySQL
            reads.append(product_id)
        time.sleep(0.15)  # a slow database widens the window in which a stampede would happen
        return real_snapshot(cur, product_id, held)

    monkeypatch.setattr(ledger, "stock_snapshot", counted_snapshot)
    threads = 32
    barrier = threading.Barrier(threads)

    def cold_read(_: int) -> int:
        barrier.wait(timeout=10)
        return stock.read_stock(pid).stock

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(cold_read, range(threads)))
    assert results == [77] * threads
    assert reads == [pid]  # one loader rebuilt from MySQL; the other 31 waited for its result


def test_stock_rule_during_a_live_drop(seller):
    """A seller's stock is the units not yet sold. Reserved units stay held, so the new stock
    leaves `stock - reserved` to sell; a stock below the reserved units is refused (409)."""
    pid = create_product(seller, stock=10)["id"]
    assert reserve_stock(int(pid), 4) == 6  # buyers hold 4 units
    lowered = put_stock(seller, pid, 6)
    assert lowered.status_code == 200 and lowered.json()["stock"] == 2  # 6 left to sell, 4 of them held
    assert mysql_count(pid) == 6
    with pytest.raises(Conflict) as refused:
        reserve_stock(int(pid), 3)
    assert refused.value.code == "OUT_OF_STOCK"
    assert reserve_stock(int(pid), 2) == 0
    too_low = put_stock(seller, pid, 5)
    assert too_low.status_code == 409 and too_low.json()["error"]["code"] == "INVALID_STATE"
    assert too_low.json()["error"]["details"]["reserved"] == 6
    assert mysql_count(pid) == 6  # the refused change left MySQL and Redis as they were
    state = redis_client().hgetall(keys.stock(pid))
    assert (state["available"], state["reserved"]) == ("0", "6")
    raised = put_stock(seller, pid, 9)
    assert raised.json()["stock"] == 3  # raising it again frees 3 more units, the 6 held stay held


def test_buyers_and_a_seller_lowering_stock_concurrently_never_oversell(seller):
    pid = int(create_product(seller, stock=100)["id"])
    sold = []

    def buyer(_: int) -> None:
        for _ in range(10):
            try:
                reserve_stock(pid, 1)
                sold.append(1)
            except Conflict:
                return

    answers = []
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(buyer, n) for n in range(8)]
        for units in (90, 70, 60, 40):
            answers.append(put_stock(seller, pid, units).status_code)
        for future in futures:
            future.result()
    state = redis_client().hgetall(keys.stock(pid))
    remaining = mysql_count(pid)
    assert set(answers) <= {200, 409}
    assert int(state["reserved"]) == len(sold) <= remaining  # never more held than the stock allows
    assert int(state["available"]) == remaining - len(sold)  # available + reserved = units not yet sold


def test_a_stock_change_keeps_the_cached_detail_and_shows_the_new_stock(seller):
    # The detail document holds no stock, so a StockChanged keeps it: during a drop every change
    # would otherwise send the next buyers to MySQL. Stock is always read live beside it.
    pid = create_product(seller, stock=8)["id"]
    r = redis_client()
    httpx.get(f"{API}/products/{pid}")
    cached = r.get(keys.product_detail(pid))
    assert cached is not None
    assert put_stock(seller, pid, 4).status_code == 200
    assert httpx.get(f"{API}/products/{pid}").json()["stock"] == 4
    assert r.get(keys.product_detail(pid)) == cached


def test_an_older_detail_never_replaces_a_newer_one(seller):
    pid = int(create_product(seller, name="Current")["id"])
    current = load_product(pid)
    stale = replace(current, name="Stale", updated_at=current.updated_at - timedelta(seconds=1))
    redis_client().delete(keys.product_detail(pid))
    assert cache_product(current) is True
    assert cache_product(stale) is False  # a reader that loaded the row before an edit loses
    assert get_product(pid).name == "Current"
    newer = replace(current, name="Newer", updated_at=current.updated_at + timedelta(seconds=1))
    assert cache_product(newer) is True and get_product(pid).name == "Newer"
    redis_client().delete(keys.product_detail(pid))
