"""After the sale: cancel an order or a line before shipping, the seller's delivery status, returns."""

from __future__ import annotations

import time

import pytest

from goodsdrop import payment_gateway, topics
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    confirmed_sale,
    mysql_stock,
    place,
    records_for,
    redeliver,
    settled,
    wait_drained,
    wait_for,
)

RETURNS_GROUP = "goodsdrop-returns"


@pytest.fixture
def sale(client):
    """A confirmed order of two products of one seller: (seller, buyer, order id, product a, product b)."""
    return confirmed_sale(client)


def deliver(client, seller, order_id, product, status):
    return client.patch(f"{API}/seller/orders/{order_id}/items/{product}", json={"deliveryStatus": status},
                        headers=seller.headers())


def test_cancelling_before_shipping_refunds_everything_and_restocks(client, sale):
    since = int(time.time() * 1000) - 1000
    _, buyer, order_id, a, b = sale
    response = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert {i["deliveryStatus"] for i in response.json()["items"]} == {"CANCELLED"}
    assert wait_for(lambda: settled(a, 10) and settled(b, 10))
    assert wait_for(lambda: payment_gateway.books(order_id)["refunded"] == 2900)
    again = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_STATE"
    # The refund-and-restock event delivered twice gives back once.
    redeliver(records_for(topics.ORDER_RETURNS, order_id, since))
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert settled(a, 10) and settled(b, 10) and payment_gateway.books(order_id)["refunded"] == 2900
    # The limit was given back with the units.
    assert place(client, buyer, [(a, 2)]).status_code == 202


def test_a_line_is_cancelled_alone_and_a_shipped_line_cannot_be(client, sale):
    seller, buyer, order_id, a, b = sale
    assert deliver(client, seller, order_id, a, "SHIPPED").status_code == 200
    whole = client.post(f"{API}/orders/{order_id}/cancel", headers=buyer.headers())
    assert whole.status_code == 409 and whole.json()["error"]["code"] == "INVALID_STATE"
    shipped = client.post(f"{API}/orders/{order_id}/items/{a}/cancel", headers=buyer.headers())
    assert shipped.status_code == 409 and shipped.json()["error"]["code"] == "INVALID_STATE"
    line = client.post(f"{API}/orders/{order_id}/items/{b}/cancel", headers=buyer.headers())
    assert line.status_code == 200
    doc = line.json()
    assert doc["status"] == "CONFIRMED"
    assert {i["productId"]: i["deliveryStatus"] for i in doc["items"]} == {str(a): "SHIPPED", str(b): "CANCELLED"}
    assert wait_for(lambda: settled(b, 10) and payment_gateway.books(order_id)["refunded"] == 900)
    assert mysql_stock(a) == 8


def test_delivery_moves_only_forward_and_only_by_the_products_seller(client, sale):
    seller, buyer, order_id, a, _ = sale
    for status, code in (("DELIVERED", 409), ("PREPARING", 409), ("SHIPPED", 200), ("SHIPPED", 409),
                         ("PREPARING", 409), ("DELIVERED", 200), ("SHIPPED", 409)):
        response = deliver(client, seller, order_id, a, status)
        assert response.status_code == code, (status, response.text)
        if code == 409:
            assert response.json()["error"]["code"] == "INVALID_STATE"
    other_seller = new_account(seller=True)
    assert deliver(client, other_seller, order_id, a, "SHIPPED").status_code == 404
    not_a_seller = client.patch(f"{API}/seller/orders/{order_id}/items/{a}", json={"deliveryStatus": "SHIPPED"},
                                headers=buyer.headers())
    assert not_a_seller.status_code == 403
    bad = deliver(client, seller, order_id, a, "LOST")
    assert bad.status_code == 400 and "deliveryStatus" in bad.json()["error"]["details"]["fields"]


def test_a_delivered_line_is_returned_on_request_once_the_seller_accepts(client, sale):
    seller, buyer, order_id, a, b = sale
    early = client.post(f"{API}/orders/{order_id}/items/{a}/return", headers=buyer.headers())
    assert early.status_code == 409 and early.json()["error"]["code"] == "INVALID_STATE"
    assert deliver(client, seller, order_id, a, "SHIPPED").status_code == 200
    assert deliver(client, seller, order_id, a, "DELIVERED").status_code == 200
    requested = client.post(f"{API}/orders/{order_id}/items/{a}/return", headers=buyer.headers())
    assert requested.status_code == 200
    assert {i["productId"]: i["deliveryStatus"] for i in requested.json()["items"]}[str(a)] == "RETURN_REQUESTED"
    assert mysql_stock(a) == 8 and payment_gateway.books(order_id)["refunded"] == 0  # nothing until accepted
    accepted = client.put(f"{API}/seller/orders/{order_id}/items/{a}/return", json={"decision": "ACCEPT"},
                          headers=seller.headers())
    assert accepted.status_code == 200 and accepted.json()["deliveryStatus"] == "RETURNED"
    assert wait_for(lambda: settled(a, 10) and payment_gateway.books(order_id)["refunded"] == 2000)
    twice = client.post(f"{API}/orders/{order_id}/items/{a}/return", headers=buyer.headers())
    assert twice.status_code == 409
    assert mysql_stock(b) == 7


def test_only_the_buyer_may_cancel_or_return(client, sale):
    _, _, order_id, a, _ = sale
    stranger = new_account()
    for path in (f"/orders/{order_id}/cancel", f"/orders/{order_id}/items/{a}/cancel",
                 f"/orders/{order_id}/items/{a}/return"):
        response = client.post(f"{API}{path}", headers=stranger.headers())
        assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert client.post(f"{API}/orders/{order_id}/cancel").status_code == 401
    assert client.post(f"{API}/orders/{order_id}/items/abc/cancel", headers=stranger.headers()).status_code == 400
