"""What a buyer sees of an order's money and lines, and cancelling a PENDING order (issue 20), through HTTP.

- Lines keep the product's name and unit price as they were when the order was placed.
- Per line and per order: what was charged, what was refunded and when, a refund in flight
  (PENDING / REFUND_PENDING) and the order's PARTIALLY_REFUNDED / REFUNDED view.
- A PENDING order can be cancelled: the reservation is released and the charge, if taken, refunded
  exactly once, whatever the saga's steps do afterwards.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from goodsdrop import payment_gateway, reservations, topics
from goodsdrop.clients import mysql_cursor
from goodsdrop.events import publish
from goodsdrop.ids import new_ulid
from goodsdrop.orders import _order_requested
from goodsdrop.saga import STOCK_PERSISTENCE
from tests.support import faults
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    confirmed_sale,
    make_product,
    order_status,
    place,
    redis_stock,
    wait_drained,
    wait_final,
    wait_for,
)

PAYMENTS_GROUP, COMPENSATION_GROUP = "goodsdrop-payments", "goodsdrop-compensation"


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=API, timeout=30) as c:
        yield c


def _line(doc: dict, product: int) -> dict:
    return next(i for i in doc["items"] if i["productId"] == str(product))


def test_order_lines_keep_the_name_and_unit_price_of_the_purchase(client):
    seller, buyer, order_id, a, b = confirmed_sale(client)
    bought = order_status(client, buyer, order_id)
    name_then = _line(bought, a)["productName"]
    assert name_then and _line(bought, a)["unitPrice"] == 1000 and _line(bought, b)["unitPrice"] == 300
    assert _line(bought, b)["lineTotal"] == 900
    renamed = client.patch(f"/products/{a}", headers=seller.headers(), json={"name": "Renamed later", "price": 5000})
    assert renamed.status_code == 200, renamed.text
    for doc in (order_status(client, buyer, order_id),
                next(o for o in client.get("/orders", headers=buyer.headers()).json()["items"] if o["id"] == order_id)):
        assert (_line(doc, a)["productName"], _line(doc, a)["unitPrice"]) == (name_then, 1000)


def test_refunds_are_visible_per_line_and_per_order(client):
    _seller, buyer, order_id, a, b = confirmed_sale(client)  # a: 2 x 1,000, b: 3 x 300
    doc = order_status(client, buyer, order_id)
    assert (doc["chargedAmount"], doc["refundedAmount"], doc["paymentStatus"], doc["refunds"]) == (2900, 0, "CHARGED",
                                                                                                   [])
    assert {(i["chargedAmount"], i["refundedAmount"], i["refundStatus"]) for i in doc["items"]} == {
        (2000, 0, None), (900, 0, None)}
    cancelled = client.post(f"/orders/{order_id}/items/{a}/cancel", headers=buyer.headers())
    assert cancelled.status_code == 200, cancelled.text
    line = _line(cancelled.json(), a)
    # The answer comes before the refund consumer ran, or after it: either way it says where the money is.
    if line["refundStatus"] == "PENDING":
        assert cancelled.json()["paymentStatus"] == "REFUND_PENDING" and line["refundedAmount"] == 0
    else:
        assert line["refundStatus"] == "REFUNDED"
    doc = wait_for(lambda: (d := order_status(client, buyer, order_id))["paymentStatus"] == "PARTIALLY_REFUNDED" and d)
    assert doc, "the line's refund never showed"
    line = _line(doc, a)
    assert (line["chargedAmount"], line["refundedAmount"], line["refundStatus"]) == (2000, 2000, "REFUNDED")
    assert line["refundedAt"] is not None and _line(doc, b)["refundedAmount"] == 0
    assert (doc["status"], doc["chargedAmount"], doc["refundedAmount"]) == ("CONFIRMED", 2900, 2000)
    assert [(r["productId"], r["amount"], r["reason"]) for r in doc["refunds"]] == [(str(a), 2000,
                                                                                     "OrderLineCancelled")]
    assert client.post(f"/orders/{order_id}/items/{b}/cancel", headers=buyer.headers()).status_code == 200
    doc = wait_for(lambda: (d := order_status(client, buyer, order_id))["paymentStatus"] == "REFUNDED" and d)
    assert doc and (doc["status"], doc["refundedAmount"]) == ("CANCELLED", 2900)
    assert payment_gateway.books(order_id)["refunded"] == 2900


def test_a_declined_order_was_never_charged(client, seller):
    buyer = new_account()
    product = make_product(seller, 5, price=400)
    doc = wait_final(client, buyer, place(client, buyer, [(product, 1)], token="tok_declined").json()["orderId"])
    assert (doc["status"], doc["paymentStatus"], doc["chargedAmount"], doc["refundedAmount"]) == (
        "FAILED", "DECLINED", 0, 0)
    assert _line(doc, product)["productName"] and _line(doc, product)["chargedAmount"] == 0


# ---------------------------------------------------------------------------- cancelling a PENDING order


def _payment_of(order_id: str) -> dict | None:
    with mysql_cursor() as cur:
        cur.execute("SELECT status FROM payments WHERE order_id = %s", (order_id,))
        return cur.fetchone()


def test_a_pending_order_that_was_charged_is_cancelled_and_refunded_once(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=700)
    faults.inject(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)  # charged, then stuck before confirmation
    try:
        order_id = place(client, buyer, [(product, 3)]).json()["orderId"]
        assert wait_for(lambda: _payment_of(order_id) is not None and order_status(
            client, buyer, order_id)["paymentStatus"] == "CHARGED")
        assert order_status(client, buyer, order_id)["status"] == "PENDING"
        assert redis_stock(product)["available"] == 7
        cancelled = client.post(f"/orders/{order_id}/cancel", headers=buyer.headers())
        assert cancelled.status_code == 200, cancelled.text
        doc = cancelled.json()
        assert (doc["status"], doc["failureReason"], doc["paymentStatus"]) == ("CANCELLED", "CANCELLED_BY_BUYER",
                                                                              "REFUNDED")
        assert (doc["chargedAmount"], doc["refundedAmount"]) == (2100, 2100)
        assert redis_stock(product)["available"] == 10  # the reservation was released
        again = client.post(f"/orders/{order_id}/cancel", headers=buyer.headers())
        assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_STATE"
    finally:
        faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    # The confirmation step now runs: it finds the reservation ended and compensates nothing twice.
    wait_drained("goodsdrop-stock-persistence", topics.ORDER_PLACED)
    wait_drained(COMPENSATION_GROUP, topics.ORDER_FAILURES)
    assert order_status(client, buyer, order_id)["status"] == "CANCELLED"
    books = payment_gateway.books(order_id)
    assert (books["captured"], books["refunded"], books["refunds"]) == (2100, 2100, 1)
    assert redis_stock(product)["available"] == 10
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (product,))
        assert int(cur.fetchone()["count"]) == 10  # never sold


def test_a_pending_order_cancelled_before_payment_is_never_charged(client, seller):
    buyer = new_account()
    product = make_product(seller, 5, price=900)
    now = int(time.time() * 1000)
    res = reservations.Reservation(order_id=new_ulid(), member_id=str(buyer.member_id),
                                   lines=[reservations.Line(product, 2, 900)],
                                   terms=[reservations.Terms(None, None)], fingerprint="fp",
                                   key_digest=uuid.uuid4().hex, now_ms=now, expires_ms=now + 600_000)
    assert reservations.reserve(res).kind == "RESERVED"  # reserved; its OrderRequested is not out yet
    assert order_status(client, buyer, res.order_id)["status"] == "PENDING"
    cancelled = client.post(f"/orders/{res.order_id}/cancel", headers=buyer.headers())
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["paymentStatus"]) == ("CANCELLED", "NONE")
    assert redis_stock(product)["available"] == 5
    # The order's request arrives late: nobody is charged.
    record = reservations.read_record(buyer.member_id, res.order_id)
    publish(topics.ORDER_REQUESTED, _order_requested(res.order_id, str(buyer.member_id), record.lines, record.total,
                                                     record.created_ms, record.expires_ms, "tok_ok"), key=res.order_id)
    wait_drained(PAYMENTS_GROUP, topics.ORDER_REQUESTED)
    assert payment_gateway.books(res.order_id)["captured"] == 0
    assert order_status(client, buyer, res.order_id)["status"] == "CANCELLED"


def test_a_cancelled_cart_order_leaves_the_cart_as_it_was(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=100)
    faults.inject(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    try:
        client.post("/cart/items", headers=buyer.headers(), json={"productId": str(product), "quantity": 2})
        order_id = place(client, buyer, from_cart=True).json()["orderId"]
        assert client.post(f"/orders/{order_id}/cancel", headers=buyer.headers()).json()["status"] == "CANCELLED"
    finally:
        faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    cart = client.get("/cart", headers=buyer.headers()).json()
    assert cart["checkout"] is None and [(i["productId"], i["quantity"]) for i in cart["items"]] == [(str(product), 2)]


def test_a_line_of_a_pending_order_says_when_to_retry(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=100)
    faults.inject(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    try:
        order_id = place(client, buyer, [(product, 1)]).json()["orderId"]
        assert wait_for(lambda: _payment_of(order_id) is not None)
        refused = wait_for(lambda: (r := client.post(f"/orders/{order_id}/items/{product}/cancel",
                                                     headers=buyer.headers())).status_code == 409 and r)
        assert refused and refused.json()["error"]["details"]["retryAfterSeconds"] > 0
        assert client.post(f"/orders/{order_id}/cancel", headers=buyer.headers()).status_code == 200
    finally:
        faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
