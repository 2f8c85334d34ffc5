"""OrderRequested acknowledged too late for the hot path: one order per Idempotency-Key, charged at most once.

A publish that times out may still land, and the payment step may read it before the hot path
gives up. The order's ledger row decides: whichever of the two writes it first wins
(goodsdrop.saga.end_unpublished). Before, the hot path released the units and forgot the key
whatever had happened, so the buyer got 503 for an order that went through and the same key
placed a second one.
"""

from __future__ import annotations

import uuid

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.clock import now_ms
from goodsdrop.codes import RecordStatus, ReserveKind
from goodsdrop.events import Envelope
from goodsdrop.ids import event_id_for, new_ulid
from goodsdrop.orders import abort_reservation
from goodsdrop.reservations import Line, Reservation, Terms, reserve
from goodsdrop.saga import expire_reservation, process_payment
from tests.support.accounts import new_account
from tests.support.faults import LOST_ACK
from tests.support.orders import make_product, mysql_stock, place, redis_stock, wait_final, wait_for


def payments_of(order_id: str) -> list[str]:
    with mysql_cursor() as cur:
        cur.execute("SELECT status FROM payments WHERE order_id = %s", (order_id,))
        return [row["status"] for row in cur.fetchall()]


def orders_of(member_id: str) -> list[str]:
    with mysql_cursor() as cur:
        cur.execute("SELECT id FROM orders WHERE member_id = %s", (member_id,))
        return [row["id"] for row in cur.fetchall()]


def test_an_order_the_saga_took_before_the_ack_came_is_202_and_its_retry_gets_the_same_order(client, seller, fault):
    buyer = new_account()
    product = make_product(seller, 5, limit=2)
    fault(f"{LOST_ACK}:place-order", product)
    key = uuid.uuid4().hex
    first = place(client, buyer, [(product, 1)], key=key)
    assert first.status_code == 202, first.text  # was 503 "nothing was reserved" for an order under way
    order_id = first.json()["orderId"]
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    retry = place(client, buyer, [(product, 1)], key=key)
    assert (retry.status_code, retry.json()["orderId"]) == (202, order_id)  # was a second order
    assert orders_of(buyer.member_id) == [order_id]
    assert payments_of(order_id) == ["SUCCEEDED"]
    assert wait_for(lambda: mysql_stock(product) == 4 and redis_stock(product)["available"] == 4, 30)


def test_an_order_ended_before_its_event_landed_is_never_charged(seller):
    buyer = new_account()
    product = make_product(seller, 5, limit=2)
    started = now_ms()
    order_id = new_ulid(started)
    line = Line(product, 1, 1000)
    res = Reservation(order_id, buyer.member_id, [line], [Terms(2, None, 1)], uuid.uuid4().hex, uuid.uuid4().hex,
                      started, started + 600_000)
    assert reserve(res).kind == ReserveKind.RESERVED
    assert redis_stock(product)["available"] == 4
    assert abort_reservation(res)  # ended here: the ledger row is RELEASED, the unit is back
    assert redis_stock(product)["available"] == 5
    late = Envelope(type="OrderRequested", event_id=event_id_for(order_id, "OrderRequested"), correlation_id=order_id,
                    payload={"orderId": order_id, "memberId": buyer.member_id, "lines": [line.to_json()],
                             "total": 1000, "paymentToken": "tok_ok", "reservedAt": started,
                             "expiresAt": started + 600_000})
    assert process_payment(late).startswith("not charged")
    assert payments_of(order_id) == []
    with mysql_cursor() as cur:
        cur.execute("SELECT state, reason FROM reservations WHERE order_id = %s", (order_id,))
        assert cur.fetchone() == {"state": "RELEASED", "reason": "PUBLISH_FAILED"}
    level = redis_stock(product)
    assert (mysql_stock(product), level["available"], level["reserved"]) == (5, 5, 0)


def test_the_expiry_ends_an_order_the_hot_path_gave_up_on_without_the_ledger(seller):
    # What abort_reservation leaves when MySQL was down as well: the Redis record ABORTED, no ledger row.
    buyer = new_account()
    product = make_product(seller, 5, limit=2)
    started = now_ms()
    order_id = new_ulid(started)
    res = Reservation(order_id, buyer.member_id, [Line(product, 1, 1000)], [Terms(2, None, 1)], uuid.uuid4().hex,
                      uuid.uuid4().hex, started, started + 600_000)
    assert reserve(res).kind == ReserveKind.RESERVED
    redis_client().hset(keys.order_record(buyer.member_id, order_id), "status", RecordStatus.ABORTED)
    assert expire_reservation(buyer.member_id, order_id, started) == 0  # not due: ended all the same
    with mysql_cursor() as cur:
        cur.execute("SELECT state, reason FROM reservations WHERE order_id = %s", (order_id,))
        assert cur.fetchone() == {"state": "RELEASED", "reason": "PUBLISH_FAILED"}
    level = redis_stock(product)
    assert (mysql_stock(product), level["available"], level["reserved"]) == (5, 5, 0)
    assert redis_client().zscore(keys.reservation_expiry(), f"{buyer.member_id}:{order_id}") is None
