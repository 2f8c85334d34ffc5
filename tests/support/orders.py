"""Helpers for order tests: products made directly in MySQL, orders placed over HTTP, bounded waits."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from goodsdrop import keys, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.settings import settings
from tests.support.accounts import Account

API = f"http://127.0.0.1:{settings.api_port}"


def make_product(seller: Account, stock: int, *, price: int = 1000, limit: int | None = None,
                 starts_in: timedelta | None = None, shards: int = 1) -> int:
    """A listed product with `stock` units over `shards` stock shards (Redis loads it on first use)."""
    start = None if starts_in is None else (datetime.now(UTC) + starts_in).replace(tzinfo=None)
    with mysql_transaction() as cur:
        cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit, "
                    "stock_shards) VALUES (%s, %s, 'test product', %s, %s, %s, %s)",
                    (seller.member_id, f"Order test {uuid.uuid4().hex[:6]}", price, start, limit, shards))
        product_id = int(cur.lastrowid)
        cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (product_id, stock))
    return product_id


def place(client: httpx.Client, buyer: Account, items: list[tuple[int, int]] | None = None, *,
          token: str = "tok_ok", key: str | None = None, from_cart: bool = False,
          headers: dict[str, str] | None = None) -> httpx.Response:
    """POST /orders for `buyer`."""
    body: dict[str, Any] = {"paymentToken": token}
    if from_cart:
        body["fromCart"] = True
    else:
        body["items"] = [{"productId": str(p), "quantity": q} for p, q in items or []]
    return client.post(f"{API}/orders", json=body,
                       headers=buyer.headers() | {"Idempotency-Key": key or uuid.uuid4().hex} | (headers or {}))


def wait_for(predicate: Callable[[], Any], seconds: float = 30.0, every: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy (bounded); returns its last value."""
    deadline = time.monotonic() + seconds
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = predicate()
    return value


def order_status(client: httpx.Client, buyer: Account, order_id: str) -> dict[str, Any]:
    response = client.get(f"{API}/orders/{order_id}", headers=buyer.headers())
    assert response.status_code == 200, response.text
    return response.json()


def wait_final(client: httpx.Client, buyer: Account, order_id: str, seconds: float = 60.0) -> dict[str, Any]:
    """The order once it left PENDING (bounded wait)."""
    doc = wait_for(lambda: (d := order_status(client, buyer, order_id))["status"] != "PENDING" and d, seconds, 0.2)
    assert doc, f"order {order_id} still PENDING after {seconds} s"
    return doc


def mysql_stock(product_id: int) -> int:
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product_id,))
        return int(cur.fetchone()["count"])


def redis_stock(product_id: int, shards: int = 1) -> dict[str, int]:
    """The product's live stock hash; for a sharded product each field summed over its shards."""
    summed: dict[str, int] = {}
    for shard in range(shards):
        for k, v in redis_client().hgetall(keys.stock(product_id, shard)).items():
            summed[k] = summed.get(k, 0) + int(v)
    return summed


def group_drained(group: str, topic_name: str) -> bool:
    """Whether consumer group `group` has committed every record of `topic_name` published so far."""
    name = topics.topic(topic_name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        ends = consumer.end_offsets(parts)
        committed = admin.list_consumer_group_offsets(group, partitions=parts)
        return all((committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) >= ends[tp]
                   for tp in parts)
    finally:
        consumer.close()
        admin.close()


def wait_drained(group: str, topic_name: str, seconds: float = 60.0) -> None:
    assert wait_for(lambda: group_drained(group, topic_name), seconds, 0.2), f"{group} did not drain {topic_name}"


def records_for(topic_name: str, key: str | list[str] | None, since_ms: int) -> list[Any]:
    """Every record of `topic_name` keyed `key` (or any of the keys; None: any key) published since `since_ms`."""
    wanted = None if key is None else {k.encode() for k in ([key] if isinstance(key, str) else key)}
    name = topics.topic(topic_name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    try:
        parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        consumer.assign(parts)
        starts = consumer.offsets_for_times(dict.fromkeys(parts, since_ms))
        ends = consumer.end_offsets(parts)
        for tp in parts:
            found = starts.get(tp)
            consumer.seek(tp, ends[tp] if found is None else found.offset)
        found_records: list[Any] = []
        deadline = time.monotonic() + 10
        while any(consumer.position(tp) < ends[tp] for tp in parts) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                found_records += [r for r in batch if wanted is None or r.key in wanted]
        return found_records
    finally:
        consumer.close()


def redeliver(records: list[Any]) -> None:
    """Publish these records again, byte for byte (a duplicate delivery)."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for r in records:
        producer.send(r.topic, key=r.key, value=r.value, headers=r.headers)
    producer.flush()
    producer.close()


def confirmed_sale(client: httpx.Client) -> tuple[Account, Account, str, int, int]:
    """A confirmed order of two products of one seller, 10 units each (a: 2 at 1,000, limit 2; b: 3 at 300).

    Returns (seller, buyer, order id, product a, product b).
    """
    from tests.support.accounts import new_account

    seller, buyer = new_account(seller=True), new_account()
    a, b = make_product(seller, 10, price=1000, limit=2), make_product(seller, 10, price=300)
    order_id = place(client, buyer, [(a, 2), (b, 3)]).json()["orderId"]
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    return seller, buyer, order_id, a, b


def settled(product_id: int, units: int) -> bool:
    """MySQL and Redis both say `units` are left and nothing is reserved."""
    state = redis_stock(product_id)
    return mysql_stock(product_id) == units and state.get("available") == units and state.get("reserved") == 0
