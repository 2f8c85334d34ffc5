"""POST /orders and reading orders, through the real runtime (HTTP → Lambda → Lua, Kafka saga behind)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from goodsdrop import keys, payment_gateway, topics
from goodsdrop.callers import Caller
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.errors import Conflict, ServiceUnavailable
from goodsdrop.orders import PlaceOrder, place_order
from goodsdrop.reservations import read_record
from goodsdrop.saga import expire_reservation
from goodsdrop.stock import read_stock
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    make_product,
    mysql_stock,
    order_status,
    place,
    redis_stock,
    wait_final,
    wait_for,
)


def test_an_order_is_reserved_at_once_and_confirmed_by_the_saga(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=1500)
    response = place(client, buyer, [(product, 3)])
    assert response.status_code == 202, response.text
    order_id = response.json()["orderId"]
    assert response.json() == {"orderId": order_id, "status": "PENDING"}

    doc = wait_final(client, buyer, order_id)
    assert doc["status"] == "CONFIRMED" and doc["failureReason"] is None
    assert doc["totalPrice"] == 4500 and doc["confirmedAt"] is not None
    (line,) = doc["items"]
    assert line | {"productId": str(product), "quantity": 3, "price": 1500, "deliveryStatus": "PREPARING",
                   "unitPrice": 1500, "lineTotal": 4500, "chargedAmount": 4500, "refundedAmount": 0} == line
    assert mysql_stock(product) == 7
    assert redis_stock(product)["available"] == 7 and redis_stock(product)["reserved"] == 0
    assert payment_gateway.books(order_id)["captured"] == 4500
    with mysql_cursor() as cur:
        cur.execute("SELECT status, amount FROM payments WHERE order_id = %s", (order_id,))
        assert cur.fetchone() == {"status": "SUCCEEDED", "amount": 4500}
        cur.execute("SELECT state FROM reservations WHERE order_id = %s", (order_id,))
        assert cur.fetchone()["state"] == "CONSUMED"


def test_a_pending_order_is_shown_from_redis_to_its_buyer_only(client, seller):
    buyer, other = new_account(), new_account()
    product = make_product(seller, 5, price=700)
    # Reserve without starting the saga (as if the process died right after the script).
    caller = Caller(str(buyer.member_id), "member", True)
    from goodsdrop import orders

    original = orders._start_saga
    orders._start_saga = lambda res, token, levels: [lv or (0, 0) for lv in levels]
    try:
        body = PlaceOrder(items=[{"productId": str(product), "quantity": 2}], paymentToken="tok_ok")
        order_id = place_order(caller, body, uuid.uuid4().hex)["orderId"]
    finally:
        orders._start_saga = original
    doc = order_status(client, buyer, order_id)
    assert doc["status"] == "PENDING" and doc["totalPrice"] == 1400
    (line,) = doc["items"]
    assert line | {"productId": str(product), "quantity": 2, "price": 700, "deliveryStatus": None,
                   "unitPrice": 700, "lineTotal": 1400} == line
    listed = client.get(f"{API}/orders", headers=buyer.headers()).json()
    assert listed["items"][0]["id"] == order_id and listed["total"] >= 1
    assert client.get(f"{API}/orders/{order_id}", headers=other.headers()).status_code == 404
    assert redis_stock(product)["available"] == 3
    # The expiry job releases it (its time is moved forward instead of waiting ten minutes).
    assert expire_reservation(str(buyer.member_id), order_id, int(time.time() * 1000) + 3_600_000) == 1
    assert order_status(client, buyer, order_id)["status"] == "EXPIRED"
    assert redis_stock(product)["available"] == 5 and mysql_stock(product) == 5


def test_the_same_key_and_body_replays_the_answer_and_another_body_is_refused(client, seller):
    buyer = new_account()
    product = make_product(seller, 10)
    key = uuid.uuid4().hex
    first = place(client, buyer, [(product, 1)], key=key)
    again = place(client, buyer, [(product, 1)], key=key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    other_body = place(client, buyer, [(product, 2)], key=key)
    assert other_body.status_code == 409 and other_body.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Keys belong to a member: another buyer may use the same key for their own order.
    other = new_account()
    theirs = place(client, other, [(product, 1)], key=key).json()["orderId"]
    assert theirs != first.json()["orderId"]
    wait_final(client, buyer, first.json()["orderId"])
    wait_final(client, other, theirs)
    assert mysql_stock(product) == 8  # one unit per order: the replay bought nothing


def test_a_retry_finishes_an_order_whose_first_attempt_died_before_publishing(client, seller, monkeypatch):
    buyer = new_account()
    product = make_product(seller, 5)
    key = uuid.uuid4().hex
    from goodsdrop import orders

    # the process "dies" after reserving: nothing is published
    monkeypatch.setattr(orders, "_start_saga", lambda res, token, levels: [lv or (0, 0) for lv in levels])
    body = PlaceOrder(items=[{"productId": str(product), "quantity": 1}], paymentToken="tok_ok")
    order_id = place_order(Caller(str(buyer.member_id), "member", True), body, key)["orderId"]
    monkeypatch.undo()
    digest = orders._key_digest(key)
    assert redis_client().hget(keys.order_idempotency(buyer.member_id, digest), "state") == "IN_FLIGHT"
    # Long enough ago that the first attempt cannot still be publishing.
    redis_client().hset(keys.order_idempotency(buyer.member_id, digest), "started",
                        int(time.time() * 1000) - orders.IN_FLIGHT_STALE_MS - 1)
    retry = place(client, buyer, [(product, 1)], key=key)
    assert retry.status_code == 202 and retry.json() == {"orderId": order_id, "status": "PENDING"}
    assert wait_final(client, buyer, order_id)["status"] == "CONFIRMED"
    assert mysql_stock(product) == 4  # the original reservation was sold, no second one made


def test_duplicates_sent_at_the_same_moment_get_one_order(client, seller):
    buyer = new_account()
    product = make_product(seller, 10)
    key, go = uuid.uuid4().hex, threading.Barrier(8)

    def send(_):
        go.wait()
        return place(client, buyer, [(product, 1)], key=key)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["orderId"] for r in answers}) == 1
    wait_final(client, buyer, answers[0].json()["orderId"])
    assert mysql_stock(product) == 9


def test_refusals_name_the_product_and_are_replayed_too(client, seller):
    buyer = new_account()
    upcoming = make_product(seller, 10, starts_in=timedelta(hours=1))
    refused = place(client, buyer, [(upcoming, 1)])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NOT_ON_SALE"
    assert refused.json()["error"]["details"]["productId"] == str(upcoming)
    assert refused.json()["error"]["details"]["salesStartAt"].endswith("Z")

    scarce, plenty = make_product(seller, 1), make_product(seller, 10)
    key = uuid.uuid4().hex
    out = place(client, buyer, [(plenty, 1), (scarce, 2)], key=key)
    assert out.status_code == 409 and out.json()["error"]["code"] == "OUT_OF_STOCK"
    assert out.json()["error"]["details"]["productId"] == str(scarce)
    assert read_stock(plenty).stock == 10  # all or nothing: the other line took nothing
    assert place(client, buyer, [(plenty, 1), (scarce, 2)], key=key).json() == out.json()


def test_a_drop_opens_at_its_sales_start(client, seller):
    buyer = new_account()
    product = make_product(seller, 3, limit=1, starts_in=timedelta(seconds=3))
    with mysql_cursor() as cur:
        cur.execute("SELECT sales_start_at FROM products WHERE id = %s", (product,))
        opens = cur.fetchone()["sales_start_at"].replace(tzinfo=UTC).timestamp()
    # Ask until the drop opens (no fixed sleep, no margin): the stack runs on this machine's clock, so each
    # answer must agree with when it was asked - refused only if asked before the start, accepted only after.
    refused_before: list[float] = []

    def attempt() -> httpx.Response | None:
        asked = time.time()
        answer = place(client, buyer, [(product, 1)])
        if answer.status_code == 409 and answer.json()["error"]["code"] == "NOT_ON_SALE":
            refused_before.append(asked)
            return None
        assert answer.status_code == 202, answer.text
        assert time.time() >= opens, "accepted before its sales start"
        return answer

    opened = wait_for(attempt, 30, every=0.3)  # under the member's order bucket (5/s)
    assert opened is not None, "the drop never opened"
    assert all(asked < opens for asked in refused_before), "refused after its sales start"
    order = wait_final(client, buyer, opened.json()["orderId"])
    assert order["status"] == "CONFIRMED"
    assert datetime.fromisoformat(order["createdAt"]).timestamp() >= int(opens)  # the API shows whole seconds


def test_the_member_limit_counts_pending_reservations_and_confirmed_orders(client, seller):
    buyer = new_account()
    product = make_product(seller, 20, limit=3)
    first = place(client, buyer, [(product, 2)])
    assert first.status_code == 202
    wait_final(client, buyer, first.json()["orderId"])
    second = place(client, buyer, [(product, 1)])  # 2 confirmed + 1 = the limit
    assert second.status_code == 202
    over = place(client, buyer, [(product, 1)])  # counted while the second is still pending or confirmed
    assert over.status_code == 409 and over.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    assert over.json()["error"]["details"] == {"productId": str(product), "limit": 3, "held": 3}
    assert place(client, new_account(), [(product, 3)]).status_code == 202  # another member has their own


def test_a_declined_payment_gives_back_the_units_and_the_limit(client, seller):
    buyer = new_account()
    product = make_product(seller, 5, limit=2)
    declined = place(client, buyer, [(product, 2)], token="tok_declined")
    doc = wait_final(client, buyer, declined.json()["orderId"])
    assert doc["status"] == "FAILED" and doc["failureReason"] == "PAYMENT_DECLINED"
    assert redis_stock(product) == redis_stock(product) | {"available": 5, "reserved": 0}
    assert mysql_stock(product) == 5
    again = place(client, buyer, [(product, 2)])  # the limit was given back with the units
    assert again.status_code == 202
    assert wait_final(client, buyer, again.json()["orderId"])["status"] == "CONFIRMED"


def test_a_confirmed_order_from_the_cart_empties_it(client, seller):
    buyer = new_account()
    a, b = make_product(seller, 10, price=100), make_product(seller, 10, price=200)
    redis_client().hset(keys.cart(buyer.member_id), mapping={str(a): 2, str(b): 1})
    key = uuid.uuid4().hex
    response = place(client, buyer, from_cart=True, key=key)
    assert response.status_code == 202, response.text
    doc = wait_final(client, buyer, response.json()["orderId"])
    assert doc["totalPrice"] == 400 and {i["productId"] for i in doc["items"]} == {str(a), str(b)}
    # The bought lines leave the cart once the order is confirmed (tests/integ/test_cart_checkout.py).
    assert wait_for(lambda: redis_client().exists(keys.cart(buyer.member_id)) == 0, seconds=10)
    # The replay gets the same answer although the cart is empty now.
    assert place(client, buyer, from_cart=True, key=key).json() == response.json()
    empty = place(client, buyer, from_cart=True)
    assert empty.status_code == 400 and "fromCart" in empty.json()["error"]["details"]["fields"]


@pytest.mark.parametrize("body,field", [
    ({"items": [{"productId": "1", "quantity": 1}]}, "paymentToken"),
    ({"paymentToken": "tok_ok"}, "items"),
    ({"items": [], "paymentToken": "tok_ok"}, "items"),
    ({"items": [{"productId": 1, "quantity": 1}], "paymentToken": "tok_ok"}, "items.0.productId"),
    ({"items": [{"productId": "1", "quantity": "1"}], "paymentToken": "tok_ok"}, "items.0.quantity"),
    ({"items": [{"productId": "1", "quantity": 0}], "paymentToken": "tok_ok"}, "items.0.quantity"),
    ({"items": [{"productId": "1", "quantity": 101}], "paymentToken": "tok_ok"}, "items.0.quantity"),
    ({"items": [{"productId": "1; DROP TABLE orders", "quantity": 1}], "paymentToken": "tok_ok"}, "items.0.productId"),
    ({"items": [{"productId": "१२", "quantity": 1}], "paymentToken": "tok_ok"}, "items.0.productId"),
    ({"items": [{"productId": "1", "quantity": 1}], "paymentToken": "x" * 65}, "paymentToken"),
    ({"items": [{"productId": "1", "quantity": 1}], "paymentToken": "tok_ok' OR 1=1"}, "paymentToken"),
    ({"items": [{"productId": "1", "quantity": 1}], "fromCart": True, "paymentToken": "tok_ok"}, "items"),
    ({"fromCart": "yes", "paymentToken": "tok_ok"}, "fromCart"),
    ({"items": [{"productId": "1", "quantity": 1}], "paymentToken": "tok_ok", "coupon": "x"}, "coupon"),
])
def test_bad_bodies_are_validation_errors_naming_the_field(client, body, field):
    buyer = new_account()
    response = client.post(f"{API}/orders", json=body, headers=buyer.headers() | {"Idempotency-Key": "k-1"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]["fields"], error


@pytest.mark.parametrize("key", [None, "", "x" * 256, "ключ".encode(), "tab\there"])
def test_the_idempotency_key_is_required_and_bounded(client, key, seller):
    buyer = new_account()
    headers = buyer.headers() | ({} if key is None else {"Idempotency-Key": key})
    body = {"items": [{"productId": "1", "quantity": 1}], "paymentToken": "tok_ok"}
    response = client.post(f"{API}/orders", json=body, headers=headers)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]["details"]["fields"]


def test_who_may_order_and_unknown_products(client, seller):
    body = {"items": [{"productId": "1", "quantity": 1}], "paymentToken": "tok_ok"}
    assert client.post(f"{API}/orders", json=body, headers={"Idempotency-Key": "k"}).status_code == 401
    unverified = new_account(verified=False)
    response = client.post(f"{API}/orders", json=body, headers=unverified.headers() | {"Idempotency-Key": "k"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
    missing = place(client, new_account(), [(987654321, 1)])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


def test_order_lists_are_newest_first_paged_and_filtered(client, seller):
    buyer = new_account()
    product = make_product(seller, 10)
    ids = []
    for token in ("tok_ok", "tok_declined", "tok_ok"):
        ids.append(place(client, buyer, [(product, 1)], token=token).json()["orderId"])
        wait_final(client, buyer, ids[-1])
    everything = client.get(f"{API}/orders?size=2", headers=buyer.headers()).json()
    assert everything["total"] == 3 and everything["size"] == 2 and everything["page"] == 1
    assert [o["id"] for o in everything["items"]] == [ids[2], ids[1]]
    second = client.get(f"{API}/orders?size=2&page=2", headers=buyer.headers()).json()
    assert [o["id"] for o in second["items"]] == [ids[0]]
    failed = client.get(f"{API}/orders?status=FAILED", headers=buyer.headers()).json()
    assert [o["id"] for o in failed["items"]] == [ids[1]] and failed["total"] == 1
    assert client.get(f"{API}/orders", headers=new_account().headers()).json()["total"] == 0
    for query, field in (("status=LOST", "status"), ("size=101", "size"), ("page=0", "page")):
        bad = client.get(f"{API}/orders?{query}", headers=buyer.headers())
        assert bad.status_code == 400 and field in bad.json()["error"]["details"]["fields"]
    for bad_id in ("abc", "0" * 27, "' OR 1=1 --"):
        assert client.get(f"{API}/orders/{bad_id}", headers=buyer.headers()).status_code == 400
    assert client.get(f"{API}/orders/{ids[0]}", headers=new_account().headers()).status_code == 404


def test_when_publishing_fails_the_units_go_back_and_the_buyer_gets_503(servers, seller, monkeypatch):
    buyer = new_account()
    product = make_product(seller, 4, limit=2)
    monkeypatch.setattr(topics, "ORDER_REQUESTED", "no such topic!")  # the broker refuses the write
    caller = Caller(str(buyer.member_id), "member", True)
    body = PlaceOrder(items=[{"productId": str(product), "quantity": 2}], paymentToken="tok_ok")
    key = uuid.uuid4().hex
    with pytest.raises(ServiceUnavailable) as refused:
        place_order(caller, body, key)
    assert refused.value.headers == {"Retry-After": "1"}
    assert redis_stock(product) == redis_stock(product) | {"available": 4, "reserved": 0}
    assert redis_client().hget(keys.member_held(buyer.member_id), str(product)) is None  # the limit came back
    monkeypatch.undo()
    # The key was forgotten with the failed attempt: the retry places the order.
    retried = place_order(caller, body, key)
    assert read_record(buyer.member_id, retried["orderId"]).status == "PENDING"


def test_a_sold_out_refusal_takes_two_round_trips_and_is_stored_under_its_key(servers, seller, monkeypatch):
    """The admission gate, the product's cached detail and the sold-out look go in one round trip;
    the refusal is stored under the Idempotency-Key in the second (goodsdrop.orders.place_order)."""
    from redis.connection import AbstractConnection

    product = make_product(seller, 1, limit=2)
    first, late = Caller(str(new_account().member_id), "member", True), Caller(str(new_account().member_id),
                                                                              "member", True)
    body = PlaceOrder(items=[{"productId": str(product), "quantity": 1}], paymentToken="tok_ok")
    place_order(first, body, uuid.uuid4().hex)  # the last unit goes (and this process learns the shard count)
    with pytest.raises(Conflict):  # a first refusal: Redis has the refusal's script from now on
        place_order(Caller(str(new_account().member_id), "member", True), body, uuid.uuid4().hex)
    sends: list[int] = []
    real_send = AbstractConnection.send_packed_command
    monkeypatch.setattr(AbstractConnection, "send_packed_command",
                        lambda self, command, check_health=True: (sends.append(1), real_send(self, command,
                                                                                              check_health))[1])
    key = uuid.uuid4().hex
    with pytest.raises(Conflict) as refused:
        place_order(late, body, key, "198.18.0.7")
    assert refused.value.code == "OUT_OF_STOCK"
    # ... and a third, after the answer: the drop dashboard's per-second counters (goodsdrop.drop_watch;
    # not yet folded into the second round trip)
    assert len(sends) == 3
    monkeypatch.undo()
    with pytest.raises(Conflict) as replayed:  # the stored answer: the same refusal for the same key
        place_order(late, body, key, "198.18.0.7")
    assert replayed.value.code == "OUT_OF_STOCK"
    assert redis_client().hget(keys.member_held(late.member_id), str(product)) is None  # nothing was claimed
