"""The first vertical slice on the running stack: HTTP → Lambda, Kafka → Lambda, the SSE container."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.settings import settings
from goodsdrop.stock import publish_stock_changed, read_stock, set_stock
from tests.support.polling import wait_for
from tests.support.products import new_product

API = f"http://127.0.0.1:{settings.api_port}"
STREAM = f"http://127.0.0.1:{settings.stream_port}"


@pytest.fixture(scope="module")
def product_id(stack) -> int:
    """A product of this module's own, on sale, that no other test reserves from."""
    return new_product(stock=120, name="Slice")


def test_health_reports_every_server_poller_and_container(stack):
    report = httpx.get(f"{API}/health").json()
    assert report["healthy"] is True
    assert set(report["servers"]) >= {"redis", "mysql", "kafka", "aws"}
    assert report["pollers"]["OnStockChangedMapping-0"]["ok"] is True
    assert report["containers"]["LiveStockTask"]["ok"] is True


def test_stock_is_read_look_aside_and_then_answered_from_redis(product_id):
    r = redis_client()
    r.delete(keys.stock(product_id))
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        in_mysql = cur.fetchone()["count"]
    first = httpx.get(f"{API}/products/{product_id}/stock")
    assert first.status_code == 200
    assert first.json() == {"productId": str(product_id), "stock": in_mysql, "status": "on_sale"}
    assert r.hget(keys.stock(product_id), "available") == str(in_mysql)  # the miss filled the cache
    # Prove the next read comes from Redis: change only Redis and read it back over HTTP.
    r.hincrby(keys.stock(product_id), "available", -1)
    assert httpx.get(f"{API}/products/{product_id}/stock").json()["stock"] == in_mysql - 1
    r.delete(keys.stock(product_id))  # leave the cache consistent with MySQL again


def test_product_detail_carries_live_stock(product_id):
    body = httpx.get(f"{API}/products/{product_id}").json()
    assert body["id"] == str(product_id) and body["stock"] == read_stock(product_id).stock
    assert body["status"] == "on_sale" and isinstance(body["price"], int)


@pytest.mark.parametrize("path,status,code", [
    ("/products/abc", 400, "VALIDATION_ERROR"),
    ("/products/-1/stock", 400, "VALIDATION_ERROR"),
    ("/products/99999999999999999999999", 400, "VALIDATION_ERROR"),
    ("/products/999999999", 404, "NOT_FOUND"),
    ("/products/999999999/stock", 404, "NOT_FOUND"),
    ("/no/such/route", 404, "NOT_FOUND"),
])
def test_bad_ids_and_routes_are_clear_4xx(stack, path, status, code):
    response = httpx.get(f"{API}{path}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_stock_changed_on_kafka_refills_the_cache_through_the_consumer(product_id):
    r = redis_client()
    r.delete(keys.stock(product_id), keys.product_detail(product_id))
    level = read_stock(product_id)
    r.delete(keys.stock(product_id), keys.product_detail(product_id))
    publish_stock_changed(level)  # → Kafka → OnStockChangedMapping poller → OnStockChangedFunction
    assert wait_for(lambda: r.exists(keys.stock(product_id)), 15), "the consumer did not refill the stock key"


class SseReader(threading.Thread):
    """Reads one SSE stream in the background and keeps its parsed events."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers or {}
        self.events: list[dict] = []
        self.raw = ""
        self.opened = threading.Event()
        self.status = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=httpx.Timeout(20, read=20)) as response:
                self.status = response.status_code
                self.opened.set()
                block: dict = {}
                for line in response.iter_lines():
                    self.raw += line + "\n"
                    if not line:
                        if "data" in block:
                            self.events.append(block | {"data": json.loads(block["data"])})
                        block = {}
                    elif not line.startswith(":") and ":" in line:
                        field, _, value = line.partition(":")
                        block[field] = value.strip()
        except httpx.HTTPError as err:
            self.error = err
            self.opened.set()


def test_a_stock_change_reaches_an_open_sse_stream(product_id):
    reader = SseReader(f"{STREAM}/stream/products/{product_id}/stock")
    reader.start()
    assert reader.opened.wait(10) and reader.status == 200
    assert wait_for(lambda: reader.events, 5), "no initial event"
    initial = reader.events[0]
    assert initial["event"] == "stock" and initial["data"]["productId"] == str(product_id)
    assert "retry: 3000" in reader.raw
    new_stock = initial["data"]["stock"] - 1
    level = set_stock(product_id, new_stock)
    # How fast is a benchmark figure (bench/sse_fanout.py), not asserted here.
    assert wait_for(lambda: len(reader.events) >= 2, 10), "the change never reached the stream"
    change = reader.events[-1]
    assert change["data"]["stock"] == new_stock and change["id"] == str(level.version)


def test_last_event_id_skips_what_the_client_already_has(product_id):
    current = read_stock(product_id)
    reader = SseReader(f"{STREAM}/stream/products/{product_id}/stock", {"Last-Event-ID": str(current.version)})
    reader.start()
    assert reader.opened.wait(10) and reader.status == 200
    assert wait_for(lambda: "retry:" in reader.raw, 5)
    level = set_stock(product_id, current.stock - 1)
    assert wait_for(lambda: reader.events, 10), "the change never reached the stream"
    # The first event is the change: the state the client already had (its Last-Event-ID) was not sent again.
    first = reader.events[0]
    assert first["id"] == str(level.version) and first["data"]["stock"] == current.stock - 1


def test_unknown_product_stream_is_404_before_streaming(stack):
    response = httpx.get(f"{STREAM}/stream/products/999999999/stock")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert httpx.get(f"{STREAM}/stream/products/x/stock").status_code == 400
