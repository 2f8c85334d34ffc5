"""The seller's order desk (issue 20) and returns as requests the seller decides (issue 15), through HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from goodsdrop import payment_gateway, topics
from goodsdrop.clients import mysql_transaction
from tests.support.accounts import new_account
from tests.support.orders import (
    API,
    confirmed_sale,
    make_product,
    mysql_stock,
    place,
    records_for,
    redeliver,
    settled,
    wait_drained,
    wait_final,
    wait_for,
)

RETURNS_GROUP = "goodsdrop-returns"


@pytest.fixture
def sale(client):
    """(seller, buyer, order id, product a, product b): a confirmed order of 2 a (1,000 each) and 3 b (300 each)."""
    return confirmed_sale(client)


def desk(client, seller, **params):
    return client.get(f"{API}/seller/orders", params=params, headers=seller.headers())


def deliver(client, seller, order_id, product, *statuses):
    for status in statuses:
        response = client.patch(f"{API}/seller/orders/{order_id}/items/{product}", json={"deliveryStatus": status},
                                headers=seller.headers())
        assert response.status_code == 200, response.text


def decide(client, seller, order_id, product, decision):
    return client.put(f"{API}/seller/orders/{order_id}/items/{product}/return", json={"decision": decision},
                      headers=seller.headers())


def ask_return(client, buyer, order_id, product):
    return client.post(f"{API}/orders/{order_id}/items/{product}/return", headers=buyer.headers())


def line_of(doc, product):
    return {i["productId"]: i for i in doc["items"]}[str(product)]


# ------------------------------------------------------------------------------ GET /seller/orders


def test_the_desk_lists_only_the_sellers_own_lines_newest_first(client, sale):
    seller, buyer, first, a, b = sale
    # Another seller's product in the same buyer's next order: never on this seller's desk.
    rival = new_account(seller=True)
    other = make_product(rival, 5)
    second = place(client, buyer, [(b, 1), (other, 1)]).json()["orderId"]
    assert wait_final(client, buyer, second)["status"] == "CONFIRMED"

    page = desk(client, seller)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 3 and body["page"] == 1
    assert [(i["orderId"], i["productId"]) for i in body["items"]] == [(second, str(b)), (first, str(a)),
                                                                       (first, str(b))]
    line = body["items"][1]
    assert line["quantity"] == 2 and line["price"] == 1000 and line["lineTotal"] == 2000
    assert line["deliveryStatus"] == "PREPARING" and line["orderStatus"] == "CONFIRMED"
    assert line["productName"].startswith("Order test") and line["shipTo"]["name"] == "Test Member"
    assert line["orderedAt"].endswith("Z") and line["deliveredAt"] is None
    rivals = desk(client, rival).json()
    assert [(i["orderId"], i["productId"]) for i in rivals["items"]] == [(second, str(other))]
    # Paged: one line a page, the same order.
    pages = [desk(client, seller, page=n, size=1).json() for n in (1, 2, 3, 4)]
    assert [p["items"][0]["orderId"] for p in pages[:3]] == [second, first, first] and pages[3]["items"] == []
    assert {p["total"] for p in pages} == {3}


def test_the_desk_filters_by_status_product_and_date(client, sale):
    seller, _, order_id, a, b = sale
    deliver(client, seller, order_id, a, "SHIPPED")
    shipped = desk(client, seller, status="SHIPPED").json()
    assert [(i["orderId"], i["productId"], i["deliveryStatus"]) for i in shipped["items"]] == [
        (order_id, str(a), "SHIPPED")]
    assert [i["productId"] for i in desk(client, seller, status="PREPARING").json()["items"]] == [str(b)]
    assert [i["productId"] for i in desk(client, seller, productId=str(b)).json()["items"]] == [str(b)]
    assert desk(client, seller, status="DELIVERED").json()["total"] == 0
    today = datetime.now(UTC).date()
    assert desk(client, seller, **{"from": today.isoformat(), "to": today.isoformat()}).json()["total"] == 2
    assert desk(client, seller, to=(today - timedelta(days=1)).isoformat()).json()["total"] == 0
    assert desk(client, seller, **{"from": (today + timedelta(days=1)).isoformat()}).json()["total"] == 0
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert desk(client, seller, **{"from": an_hour_ago}).json()["total"] == 2


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "LOST"}, "status"), ({"status": "preparing"}, "status"), ({"productId": "0"}, "productId"),
    ({"productId": "abc"}, "productId"), ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-12-01T10:00:00"}, "from"), ({"from": "2026-12-02", "to": "2026-12-01"}, "from"),
    ({"size": "101"}, "size"), ({"page": "0"}, "page"), ({"from": "1900-01-01"}, "from"),
])
def test_bad_filters_are_400_naming_the_parameter(client, params, field):
    seller = new_account(seller=True)
    response = desk(client, seller, **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]["fields"]


def test_only_sellers_have_a_desk(client):
    member = new_account()
    response = desk(client, member)
    assert response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN"
    assert client.get(f"{API}/seller/orders").status_code == 401
    assert desk(client, new_account(seller=True)).json() == {"items": [], "page": 1, "size": 20, "total": 0}


# ------------------------------------------------------------------------------ returns are requests


def test_a_return_is_a_request_refunded_and_restocked_only_when_the_seller_accepts(client, sale):
    since = int(time.time() * 1000) - 1000
    seller, buyer, order_id, a, b = sale
    early = ask_return(client, buyer, order_id, a)
    assert early.status_code == 409 and early.json()["error"]["code"] == "INVALID_STATE"
    deliver(client, seller, order_id, a, "SHIPPED", "DELIVERED")
    assert desk(client, seller, status="DELIVERED").json()["items"][0]["deliveredAt"] is not None

    asked = ask_return(client, buyer, order_id, a)
    assert asked.status_code == 200, asked.text
    assert line_of(asked.json(), a)["deliveryStatus"] == "RETURN_REQUESTED"
    again = ask_return(client, buyer, order_id, a)  # asking again answers the same
    assert again.status_code == 200 and line_of(again.json(), a)["deliveryStatus"] == "RETURN_REQUESTED"
    waiting = desk(client, seller, status="RETURN_REQUESTED").json()["items"]
    assert [(i["orderId"], i["productId"]) for i in waiting] == [(order_id, str(a))]
    assert waiting[0]["returnRequestedAt"] is not None and waiting[0]["restocked"] is False
    # Nothing moves before the seller has the goods back: no refund event, no money, no stock.
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert records_for(topics.ORDER_RETURNS, order_id, since) == []
    assert payment_gateway.books(order_id)["refunded"] == 0 and mysql_stock(a) == 8

    accepted = decide(client, seller, order_id, a, "ACCEPT")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["deliveryStatus"] == "RETURNED" and accepted.json()["returnDecidedAt"] is not None
    twice = decide(client, seller, order_id, a, "ACCEPT")  # a double accept answers the same, refunds once
    assert twice.status_code == 200 and twice.json()["deliveryStatus"] == "RETURNED"
    assert twice.json()["returnDecidedAt"] == accepted.json()["returnDecidedAt"]
    assert wait_for(lambda: settled(a, 10) and payment_gateway.books(order_id)["refunded"] == 2000)
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert len(records_for(topics.ORDER_RETURNS, order_id, since)) == 1
    # The refund-and-restock event delivered twice still gives back once.
    redeliver(records_for(topics.ORDER_RETURNS, order_id, since))
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert settled(a, 10) and payment_gateway.books(order_id)["refunded"] == 2000 and mysql_stock(b) == 7
    assert desk(client, seller, productId=str(a)).json()["items"][0]["restocked"] is True
    assert line_of(client.get(f"{API}/orders/{order_id}", headers=buyer.headers()).json(), a)[
        "deliveryStatus"] == "RETURNED"
    # Decided: no second request, no change of mind.
    assert ask_return(client, buyer, order_id, a).json()["error"]["code"] == "INVALID_STATE"
    refused = decide(client, seller, order_id, a, "REFUSE")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NO_RETURN_REQUESTED"


def test_concurrent_accepts_refund_once(client, sale):
    seller, buyer, order_id, a, _ = sale
    deliver(client, seller, order_id, a, "SHIPPED", "DELIVERED")
    assert ask_return(client, buyer, order_id, a).status_code == 200
    from concurrent.futures import ThreadPoolExecutor

    def accept(_: int) -> httpx.Response:
        # As a client would: a 503 (e.g. the authorizer could not check the token just now) is retried.
        for _attempt in range(5):
            response = decide(client, seller, order_id, a, "ACCEPT")
            if response.status_code != 503:
                break
            time.sleep(float(response.headers.get("retry-after", "1")))
        return response

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(accept, range(4)))
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert wait_for(lambda: settled(a, 10) and payment_gateway.books(order_id)["refunded"] == 2000)
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    books = payment_gateway.books(order_id)
    assert int(books["refunds"]) == 1 and int(books["refunded"]) == 2000 and mysql_stock(a) == 10


def test_a_refused_return_refunds_nothing(client, sale):
    since = int(time.time() * 1000) - 1000
    seller, buyer, order_id, a, _ = sale
    deliver(client, seller, order_id, a, "SHIPPED", "DELIVERED")
    assert decide(client, seller, order_id, a, "REFUSE").json()["error"]["code"] == "NO_RETURN_REQUESTED"
    assert ask_return(client, buyer, order_id, a).status_code == 200
    refused = decide(client, seller, order_id, a, "REFUSE")
    assert refused.status_code == 200 and refused.json()["deliveryStatus"] == "RETURN_REFUSED"
    assert decide(client, seller, order_id, a, "REFUSE").status_code == 200
    late_accept = decide(client, seller, order_id, a, "ACCEPT")
    assert late_accept.status_code == 409 and late_accept.json()["error"]["code"] == "NO_RETURN_REQUESTED"
    assert ask_return(client, buyer, order_id, a).json()["error"]["code"] == "INVALID_STATE"
    wait_drained(RETURNS_GROUP, topics.ORDER_RETURNS)
    assert records_for(topics.ORDER_RETURNS, order_id, since) == []
    assert payment_gateway.books(order_id)["refunded"] == 0 and mysql_stock(a) == 8


def test_outside_the_return_window_the_request_is_refused(client, sale):
    seller, buyer, order_id, a, b = sale
    deliver(client, seller, order_id, a, "SHIPPED", "DELIVERED")
    deliver(client, seller, order_id, b, "SHIPPED", "DELIVERED")
    # The clock driven, not waited for: a delivered 15 days ago (the window is 14), b 13 days ago.
    with mysql_transaction() as cur:
        for product, days in ((a, 15), (b, 13)):
            cur.execute("UPDATE order_products SET delivered_at = delivered_at - INTERVAL %s DAY "
                        "WHERE order_id = %s AND product_id = %s", (days, order_id, product))
    late = ask_return(client, buyer, order_id, a)
    assert late.status_code == 409, late.text
    error = late.json()["error"]
    assert error["code"] == "RETURN_WINDOW_CLOSED" and error["details"]["returnWindowDays"] == 14
    assert error["details"]["returnWindowClosedAt"] < datetime.now(UTC).isoformat()
    assert ask_return(client, buyer, order_id, b).status_code == 200


def test_only_the_products_seller_decides_a_return(client, sale):
    seller, buyer, order_id, a, _ = sale
    deliver(client, seller, order_id, a, "SHIPPED", "DELIVERED")
    assert ask_return(client, buyer, order_id, a).status_code == 200
    rival = decide(client, new_account(seller=True), order_id, a, "ACCEPT")
    assert rival.status_code == 404 and rival.json()["error"]["code"] == "NOT_FOUND"
    not_a_seller = client.put(f"{API}/seller/orders/{order_id}/items/{a}/return", json={"decision": "ACCEPT"},
                              headers=buyer.headers())
    assert not_a_seller.status_code == 403
    bad = decide(client, seller, order_id, a, "MAYBE")
    assert bad.status_code == 400 and "decision" in bad.json()["error"]["details"]["fields"]
    assert decide(client, seller, order_id, "abc", "ACCEPT").status_code == 400
    assert desk(client, seller, status="RETURN_REQUESTED").json()["total"] == 1
