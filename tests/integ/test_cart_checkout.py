"""A cart order keeps the cart until it is confirmed, and the cart's limits count what the member holds (issue 20).

Through HTTP on the running stack: a declined card or an expired reservation leaves the cart as it
was; a confirmed order takes the bought lines out; while the cart's order is pending a second cart
order and cart changes answer 409 CHECKOUT_PENDING, so the same lines are never bought twice.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.cart import cart_lines
from goodsdrop.clients import redis_client
from goodsdrop.clock import now_ms
from goodsdrop.saga import STOCK_PERSISTENCE, expire_reservation
from goodsdrop.settings import settings
from tests.support import faults
from tests.support.accounts import new_account
from tests.support.orders import API, make_product, order_status, place, wait_final, wait_for


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=API, timeout=30) as c:
        yield c


def _add(client, buyer, product: int, quantity: int) -> httpx.Response:
    return client.post("/cart/items", headers=buyer.headers(), json={"productId": str(product), "quantity": quantity})


def _cart(client, buyer) -> dict:
    response = client.get("/cart", headers=buyer.headers())
    assert response.status_code == 200, response.text
    return response.json()


def _lines(client, buyer) -> dict[str, int]:
    return {i["productId"]: i["quantity"] for i in _cart(client, buyer)["items"]}


def test_a_declined_card_leaves_the_cart_as_it_was(client, seller):
    buyer = new_account()
    a, b = make_product(seller, 10, price=100), make_product(seller, 10, price=250)
    assert _add(client, buyer, a, 2).status_code == 200 and _add(client, buyer, b, 1).status_code == 200
    declined = place(client, buyer, from_cart=True, token="tok_declined")
    assert declined.status_code == 202, declined.text
    doc = wait_final(client, buyer, declined.json()["orderId"])
    assert (doc["status"], doc["failureReason"]) == ("FAILED", "PAYMENT_DECLINED")
    assert wait_for(lambda: _cart(client, buyer)["checkout"] is None, seconds=10)
    assert _lines(client, buyer) == {str(a): 2, str(b): 1}
    # The cart is the member's again: it changes, and a card that works buys it.
    assert _add(client, buyer, a, 1).status_code == 200
    bought = place(client, buyer, from_cart=True)
    assert bought.status_code == 202, bought.text
    doc = wait_final(client, buyer, bought.json()["orderId"])
    assert doc["status"] == "CONFIRMED" and doc["totalPrice"] == 3 * 100 + 250
    assert wait_for(lambda: _lines(client, buyer) == {}, seconds=10)
    assert _cart(client, buyer)["checkout"] is None


def test_while_the_carts_order_is_pending_its_lines_cannot_be_bought_again(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=700)
    faults.inject(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)  # the order stays PENDING
    try:
        assert _add(client, buyer, product, 2).status_code == 200
        key = uuid.uuid4().hex
        first = place(client, buyer, from_cart=True, key=key)
        assert first.status_code == 202, first.text
        order_id = first.json()["orderId"]
        assert _cart(client, buyer)["checkout"] == {"orderId": order_id, "location": f"/orders/{order_id}"}
        again = place(client, buyer, from_cart=True)  # another request (another key) for the same lines
        assert again.status_code == 409 and again.json()["error"]["code"] == "CHECKOUT_PENDING"
        assert again.json()["error"]["details"]["orderId"] == order_id
        assert place(client, buyer, from_cart=True, key=key).json() == first.json()  # its own retry: same answer
        for change in (_add(client, buyer, product, 1),
                       client.patch(f"/cart/items/{product}", headers=buyer.headers(), json={"quantity": 5})):
            assert change.status_code == 409 and change.json()["error"]["code"] == "CHECKOUT_PENDING"
        assert _lines(client, buyer) == {str(product): 2}  # the lines stay while the order is pending
        assert order_status(client, buyer, order_id)["status"] == "PENDING"
        # It is never confirmed: the expiry releases it (refunding the charge) and the cart keeps its lines.
        later = now_ms() + settings.reservation_ttl_seconds * 1000 + 1000
        assert expire_reservation(str(buyer.member_id), order_id, later) == 1
    finally:
        faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    assert order_status(client, buyer, order_id)["status"] == "EXPIRED"
    assert _cart(client, buyer)["checkout"] is None and _lines(client, buyer) == {str(product): 2}
    assert _add(client, buyer, product, 1).status_code == 200  # no longer locked


def test_a_confirmed_cart_order_takes_out_only_what_it_bought(client, seller):
    buyer = new_account()
    product = make_product(seller, 10, price=100)
    assert _add(client, buyer, product, 3).status_code == 200
    order = place(client, buyer, from_cart=True)
    assert order.status_code == 202
    assert wait_final(client, buyer, order.json()["orderId"])["status"] == "CONFIRMED"
    assert wait_for(lambda: cart_lines(buyer.member_id) == [], seconds=10)
    assert redis_client().exists(keys.cart_checkout(buyer.member_id)) == 0


# ---------------------------------------------------------------------------- limits bite in the cart


def test_the_cart_counts_units_already_bought_against_the_limit(client, seller):
    buyer = new_account()
    product = make_product(seller, 20, price=100, limit=3)
    order = place(client, buyer, [(product, 2)])
    assert wait_final(client, buyer, order.json()["orderId"])["status"] == "CONFIRMED"
    refused = _add(client, buyer, product, 2)  # 2 bought + 2 > 3
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    assert refused.json()["error"]["details"] == {"productId": str(product), "perMemberLimit": 3, "held": 2}
    assert _add(client, buyer, product, 1).status_code == 200  # what the limit leaves
    raised = client.patch(f"/cart/items/{product}", headers=buyer.headers(), json={"quantity": 2})
    assert raised.status_code == 409 and raised.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    assert _lines(client, buyer) == {str(product): 1}


def test_the_cart_counts_units_held_by_a_pending_order(client, seller):
    buyer = new_account()
    product = make_product(seller, 20, price=100, limit=2)
    faults.inject(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    try:
        order = place(client, buyer, [(product, 2)])
        assert order.status_code == 202
        refused = _add(client, buyer, product, 1)
        assert refused.status_code == 409 and refused.json()["error"]["details"]["held"] == 2
        expire_reservation(str(buyer.member_id), order.json()["orderId"],
                           now_ms() + settings.reservation_ttl_seconds * 1000 + 1000)
    finally:
        faults.clear(f"{faults.UNAVAILABLE}:{STOCK_PERSISTENCE}", product)
    # The expired reservation gave its units back: the cart may hold them again.
    assert _add(client, buyer, product, 2).status_code == 200
