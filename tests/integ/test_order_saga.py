"""The order saga on the running stack: retries, compensation, duplicates, a crash mid-batch, expiry, Redis loss.

Failures are injected with tests/support/faults.py (through the layer's checkpoints, on the local stack only): a
product id marked for a step makes that step fail for orders of that product.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from goodsdrop import dead_letters, keys, payment_gateway, reservations, topics
from goodsdrop.clients import mysql_cursor, mysql_transaction, redis_client
from goodsdrop.events import publish
from goodsdrop.ids import new_ulid
from goodsdrop.orders import _order_requested
from goodsdrop.saga import STOCK_PERSISTENCE, expire_due_reservations, expire_reservation
from goodsdrop.stock import read_stock
from goodsdrop_local.execution import FunctionPool
from goodsdrop_local.template import load
from tests.support import faults
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    make_product,
    mysql_stock,
    order_status,
    place,
    records_for,
    redeliver,
    redis_stock,
    wait_drained,
    wait_final,
    wait_for,
)

GROUPS = {topics.ORDER_REQUESTED: "goodsdrop-payments", topics.PAYMENT_SUCCEEDED: "goodsdrop-order-persistence",
          topics.ORDER_PLACED: "goodsdrop-stock-persistence", topics.ORDER_FAILURES: "goodsdrop-compensation",
          topics.ORDER_RETURNS: "goodsdrop-returns"}


def row(sql: str, *args):
    with mysql_cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def test_a_transient_gateway_error_is_retried_by_the_mapping_and_charged_once(client, seller):
    buyer = new_account()
    product = make_product(seller, 5, price=300)
    order_id = place(client, buyer, [(product, 2)], token="tok_error").json()["orderId"]
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    books = payment_gateway.books(order_id)
    assert books["attempts"] == 3 and books["captured"] == 600 and books["refunded"] == 0
    assert row("SELECT COUNT(*) AS n FROM payments WHERE order_id = %s", order_id)["n"] == 1
    assert mysql_stock(product) == 3


@pytest.mark.parametrize("step,reason,persisted", [
    (faults.ORDER_PERSISTENCE, "ORDER_PERSISTENCE_FAILED", False),
    (faults.STOCK_PERSISTENCE, "STOCK_PERSISTENCE_FAILED", True),
])
def test_a_failed_persistence_step_refunds_and_releases(client, seller, fault, step, reason, persisted):
    since = int(time.time() * 1000) - 1000
    buyer = new_account()
    product = make_product(seller, 6, price=250, limit=4)
    fault(step, product)
    order_id = place(client, buyer, [(product, 4)]).json()["orderId"]
    doc = wait_final(client, buyer, order_id)
    assert doc["status"] == "FAILED" and doc["failureReason"] == reason
    assert [(i["productId"], i["quantity"]) for i in doc["items"]] == [(str(product), 4)]
    books = payment_gateway.books(order_id)
    assert books["captured"] == 1000 and books["refunded"] == 1000 and books["refunds"] == 1
    assert row("SELECT status FROM payments WHERE order_id = %s", order_id)["status"] == "REFUNDED"
    assert row("SELECT state, reason FROM reservations WHERE order_id = %s", order_id) == {"state": "RELEASED",
                                                                                           "reason": reason}
    lines = row("SELECT COUNT(*) AS n FROM order_products WHERE order_id = %s", order_id)["n"]
    assert lines == (1 if persisted else 0)
    assert mysql_stock(product) == 6
    assert redis_stock(product) == redis_stock(product) | {"available": 6, "reserved": 0}
    assert redis_client().hget(keys.member_held(buyer.member_id), str(product)) is None  # the limit came back
    # The failure event delivered again compensates nothing twice.
    failures = records_for(topics.ORDER_FAILURES, order_id, since)
    assert [json.loads(r.value)["type"] for r in failures] == [
        "OrderPersistenceFailed" if step == faults.ORDER_PERSISTENCE else "StockPersistenceFailed"]
    redeliver(failures)
    wait_drained(GROUPS[topics.ORDER_FAILURES], topics.ORDER_FAILURES)
    assert payment_gateway.books(order_id)["refunds"] == 1 and mysql_stock(product) == 6
    assert redis_stock(product) == redis_stock(product) | {"available": 6, "reserved": 0}


def test_every_saga_event_delivered_twice_has_one_effect(client, seller):
    since = int(time.time() * 1000) - 1000
    buyer = new_account()
    product = make_product(seller, 10, price=100)
    confirmed = place(client, buyer, [(product, 2)]).json()["orderId"]
    declined = place(client, buyer, [(product, 3)], token="tok_declined").json()["orderId"]
    assert wait_final(client, buyer, confirmed)["status"] == "CONFIRMED"
    assert wait_final(client, buyer, declined)["status"] == "FAILED"
    duplicates = []
    for name in (topics.ORDER_REQUESTED, topics.PAYMENT_SUCCEEDED, topics.ORDER_PLACED, topics.ORDER_FAILURES):
        duplicates += records_for(name, [confirmed, declined], since)
    types = sorted({(r.topic.rsplit(".", 1)[-1], r.key.decode()) for r in duplicates})
    assert len(types) == 5, types  # requested x2, payment succeeded, placed, payment failed
    before = {o: payment_gateway.books(o) for o in (confirmed, declined)}
    redeliver(duplicates)
    for name, group in GROUPS.items():
        wait_drained(group, name)
    assert {o: payment_gateway.books(o) for o in (confirmed, declined)} == before  # no second charge or refund
    assert order_status(client, buyer, confirmed)["status"] == "CONFIRMED"
    assert order_status(client, buyer, declined)["status"] == "FAILED"
    assert mysql_stock(product) == 8
    assert redis_stock(product) == redis_stock(product) | {"available": 8, "reserved": 0}
    with mysql_cursor() as cur:
        cur.execute("SELECT consumer, COUNT(*) AS n FROM processed_events WHERE event_id IN "
                    f"({', '.join(['%s'] * len(duplicates))}) GROUP BY consumer",
                    [json.loads(r.value)["event_id"] for r in duplicates])
        assert {r["consumer"]: r["n"] for r in cur.fetchall()} == {
            "payments": 2, "order-persistence": 1, "stock-persistence": 1, "compensation": 1}


def test_a_consumer_that_dies_mid_batch_loses_and_doubles_nothing(client, seller, fault):
    product = make_product(seller, 10, price=100)
    fault(f"{faults.CRASH_AFTER_COMMIT}:{STOCK_PERSISTENCE}", product)
    health = client.get(f"{API}/health").json()["pollers"]["ConfirmOrderMapping-0"]
    buyers = [new_account() for _ in range(3)]
    orders = [(b, place(client, b, [(product, 1)]).json()["orderId"]) for b in buyers]
    docs = [wait_final(client, b, o, seconds=120) for b, o in orders]
    assert [d["status"] for d in docs] == ["CONFIRMED"] * 3
    crashed = redis_client().get(faults.crash_marker(STOCK_PERSISTENCE, product))
    assert crashed in {o for _, o in orders}, "no confirmation crashed"
    # The execution environment really died mid-batch (its poller saw it exit and delivered the batch again).
    assert wait_for(lambda: (h := client.get(f"{API}/health").json()["pollers"]["ConfirmOrderMapping-0"])["pid"]
                    != health["pid"] or h["environment_exits"] > health["environment_exits"], seconds=10)
    assert mysql_stock(product) == 7
    assert redis_stock(product) == redis_stock(product) | {"available": 7, "reserved": 0}


def _reserve_without_saga(buyer, product: int, units: int, price: int, expires_in_ms: int) -> str:
    """A reservation as the hot path makes it, but without publishing (as if its process died)."""
    now = int(time.time() * 1000)
    res = reservations.Reservation(order_id=new_ulid(), member_id=str(buyer.member_id),
                                   lines=[reservations.Line(product, units, price)],
                                   terms=[reservations.Terms(None, None)], fingerprint="fp",
                                   key_digest=uuid.uuid4().hex, now_ms=now, expires_ms=now + expires_in_ms)
    assert reservations.reserve(res).kind == "RESERVED"
    return res.order_id


def test_the_scheduled_expiry_releases_reservations_and_a_late_request_is_not_charged(client, seller):
    buyer = new_account()
    product = make_product(seller, 5, price=900)
    order_id = _reserve_without_saga(buyer, product, 2, 900, expires_in_ms=-1)
    assert redis_stock(product)["available"] == 3
    app = load()
    assert any(s.function_id == "ExpireReservationsFunction" for s in app.schedules)
    result = FunctionPool(app.functions).get("ExpireReservationsFunction").invoke({"detail-type": "Scheduled Event"})
    assert result["expired"] >= 1
    doc = order_status(client, buyer, order_id)
    assert doc["status"] == "EXPIRED" and doc["failureReason"] == "EXPIRED"
    assert redis_stock(product) == redis_stock(product) | {"available": 5, "reserved": 0}
    assert row("SELECT state FROM reservations WHERE order_id = %s", order_id)["state"] == "RELEASED"
    # Its OrderRequested turns up late (say, from the dead-letter topic): nobody is charged.
    record = reservations.read_record(buyer.member_id, order_id)
    publish(topics.ORDER_REQUESTED, _order_requested(order_id, str(buyer.member_id), record.lines, record.total,
                                                     record.created_ms, record.expires_ms, "tok_ok"), key=order_id)
    wait_drained(GROUPS[topics.ORDER_REQUESTED], topics.ORDER_REQUESTED)
    assert payment_gateway.books(order_id)["captured"] == 0
    assert order_status(client, buyer, order_id)["status"] == "EXPIRED"
    assert expire_due_reservations() >= 0 and redis_stock(product)["available"] == 5  # a second run changes nothing


@pytest.mark.slow
def test_a_dead_lettered_step_never_holds_units_forever(client, seller, fault):
    since = int(time.time() * 1000) - 1000
    buyer = new_account()
    product = make_product(seller, 4, price=500)
    fault(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    order_id = place(client, buyer, [(product, 1)]).json()["orderId"]
    dead = wait_for(lambda: records_for(topics.DEAD_LETTERS, order_id, since), seconds=90, every=1.0)
    assert dead, "the mapping never gave up on the record"
    letter = dead_letters.read(dead[0])  # Lambda's on-failure record: retries exhausted
    assert (letter.kind, letter.reason, letter.consumer) == ("mapping", "RetriesExhausted", "ConfirmOrderFunction")
    assert letter.source_topic == topics.topic(topics.ORDER_PLACED)
    assert order_status(client, buyer, order_id)["status"] == "PENDING"  # paid and persisted, never confirmed
    assert redis_stock(product)["reserved"] == 1
    assert expire_reservation(str(buyer.member_id), order_id, int(time.time() * 1000) + 3_600_000) == 1
    assert order_status(client, buyer, order_id)["status"] == "EXPIRED"
    assert payment_gateway.books(order_id)["refunded"] == 500
    assert redis_stock(product) == redis_stock(product) | {"available": 4, "reserved": 0}
    assert mysql_stock(product) == 4


def test_after_redis_loses_its_data_stock_is_rebuilt_from_mysql_and_open_reservations(client, seller):
    buyer, holder = new_account(), new_account()
    product = make_product(seller, 10, price=100, limit=3)
    sold = place(client, buyer, [(product, 3)]).json()["orderId"]
    assert wait_final(client, buyer, sold)["status"] == "CONFIRMED"
    # An open reservation the payment step has recorded in the ledger but not yet paid for.
    held = _reserve_without_saga(holder, product, 2, 100, expires_in_ms=600_000)
    record = reservations.read_record(holder.member_id, held)
    from goodsdrop import ledger

    with mysql_transaction() as cur:
        ledger.record(cur, held, holder.member_id, record.lines, record.total, record.created_ms, record.expires_ms)
    redis_client().flushall()  # Redis lost everything: stock, holds, limits, the epoch marker

    assert read_stock(product).stock == 5  # 10 - 3 sold - 2 held, rebuilt before anything is sold
    assert redis_stock(product) == redis_stock(product) | {"available": 5, "reserved": 2}
    over = place(client, buyer, [(product, 1)])  # the buyer's 3 confirmed units still count
    assert over.status_code == 409 and over.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    last = [place(client, new_account(), [(product, 1)]) for _ in range(6)]
    assert [r.status_code for r in last] == [202] * 5 + [409]
    # The held reservation is still released correctly after the rebuild.
    assert expire_reservation(str(holder.member_id), held, int(time.time() * 1000) + 3_600_000) == 1
    assert redis_stock(product)["available"] == 2
    wait_drained(GROUPS[topics.ORDER_PLACED], topics.ORDER_PLACED)
    assert wait_for(lambda: mysql_stock(product) == 2, seconds=30)
    assert redis_stock(product) == redis_stock(product) | {"available": 2, "reserved": 0}
