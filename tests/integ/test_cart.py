"""The cart over HTTP on the running stack (real Redis behind it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.cart import CART_TTL_SECONDS, cart_lines
from goodsdrop.clients import mysql_cursor, redis_client
from tests.support.accounts import new_account
from tests.support.catalogue import API, create_product


@pytest.fixture(scope="module")
def seller(stack):
    return new_account(seller=True)


@pytest.fixture
def member(stack):
    return new_account()


@pytest.fixture(scope="module")
def product(seller):
    return create_product(seller, price=1500, stock=10)


@pytest.fixture(scope="module")
def limited(seller):
    return create_product(seller, price=9000, stock=100, perMemberLimit=2)


def add(member, product_id, quantity):
    body = {"productId": product_id, "quantity": quantity}
    return httpx.post(f"{API}/cart/items", headers=member.headers(), json=body)


def test_add_accumulates_and_the_cart_shows_current_prices(member, product, limited):
    assert add(member, product["id"], 2).status_code == 200
    body = add(member, product["id"], 3).json()
    (line,) = body["items"]
    assert line == {"productId": product["id"], "name": product["name"], "price": 1500, "quantity": 5,
                    "lineTotal": 7500, "stock": 10, "status": "on_sale", "perMemberLimit": None}
    add(member, limited["id"], 1)
    cart = httpx.get(f"{API}/cart", headers=member.headers()).json()
    assert cart["total"] == 7500 + 9000 and len(cart["items"]) == 2 and cart["notices"] == []


def test_every_change_renews_the_seven_day_ttl(member, product):
    add(member, product["id"], 1)
    r = redis_client()
    r.expire(keys.cart(member.member_id), 60)  # as if the cart were nearly forgotten
    httpx.patch(f"{API}/cart/items/{product['id']}", headers=member.headers(), json={"quantity": 4})
    ttl = r.ttl(keys.cart(member.member_id))
    assert CART_TTL_SECONDS - 5 <= ttl <= CART_TTL_SECONDS


def test_patch_sets_and_zero_removes(member, product):
    add(member, product["id"], 1)
    body = httpx.patch(f"{API}/cart/items/{product['id']}", headers=member.headers(), json={"quantity": 7}).json()
    assert body["items"][0]["quantity"] == 7
    body = httpx.patch(f"{API}/cart/items/{product['id']}", headers=member.headers(), json={"quantity": 0}).json()
    assert body["items"] == []


def test_delete_line_and_clear(member, product, limited):
    add(member, product["id"], 1)
    add(member, limited["id"], 1)
    assert httpx.delete(f"{API}/cart/items/{product['id']}", headers=member.headers()).status_code == 204
    assert cart_lines(member.member_id) == [(int(limited["id"]), 1)]
    again = httpx.delete(f"{API}/cart/items/{product['id']}", headers=member.headers())
    assert again.status_code == 404 and again.json()["error"]["code"] == "NOT_FOUND"
    assert httpx.delete(f"{API}/cart", headers=member.headers()).status_code == 204
    assert httpx.get(f"{API}/cart", headers=member.headers()).json()["items"] == []


def test_per_member_limit_and_line_bounds(member, limited, product):
    assert add(member, limited["id"], 2).status_code == 200
    over = add(member, limited["id"], 1)
    assert over.status_code == 409 and over.json()["error"]["code"] == "PURCHASE_LIMIT_EXCEEDED"
    assert cart_lines(member.member_id) == [(int(limited["id"]), 2)]  # nothing changed
    add(member, product["id"], 99)
    too_many = add(member, product["id"], 1)
    assert too_many.status_code == 400 and too_many.json()["error"]["details"]["fields"]["quantity"]


def test_at_most_fifty_lines(member, seller):
    r = redis_client()
    r.hset(keys.cart(member.member_id), mapping={str(10**12 + i): 1 for i in range(50)})
    full = add(member, create_product(seller)["id"], 1)
    assert full.status_code == 409 and full.json()["error"]["code"] == "CART_FULL"


def test_concurrent_adds_never_lose_an_update(member, product):
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: add(member, product["id"], 1).status_code, range(60)))
    assert statuses.count(200) == 60
    assert cart_lines(member.member_id) == [(int(product["id"]), 60)]


def test_stock_status_of_each_line(member, seller):
    upcoming = create_product(seller, stock=5,
                              salesStartAt=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    scarce = create_product(seller, stock=2)
    sold_out = create_product(seller, stock=1)
    for p, q in ((upcoming, 1), (scarce, 3), (sold_out, 1)):
        assert add(member, p["id"], q).status_code == 200
    httpx.put(f"{API}/products/{sold_out['id']}/stock", headers=seller.headers(), json={"stock": 0})
    statuses = {i["productId"]: i["status"] for i in httpx.get(f"{API}/cart", headers=member.headers()).json()["items"]}
    assert statuses == {upcoming["id"]: "upcoming", scarce["id"]: "insufficient_stock", sold_out["id"]: "sold_out"}


def test_unlisted_products_leave_the_cart_with_a_notice(member, seller):
    gone = create_product(seller)
    add(member, gone["id"], 1)
    with mysql_cursor() as cur:
        cur.execute("UPDATE products SET listed = 0 WHERE id = %s", (gone["id"],))
    redis_client().delete(keys.product_detail(gone["id"]))
    cart = httpx.get(f"{API}/cart", headers=member.headers()).json()
    assert cart["items"] == [] and cart["notices"][0]["productId"] == gone["id"]
    assert cart_lines(member.member_id) == []


@pytest.mark.parametrize("body,field", [
    ({"productId": "1"}, "quantity"),
    ({"quantity": 1}, "productId"),
    ({"productId": "1", "quantity": 0}, "quantity"),
    ({"productId": "1", "quantity": 100}, "quantity"),
    ({"productId": "1", "quantity": "2"}, "quantity"),
    ({"productId": "1", "quantity": 1.5}, "quantity"),
    ({"productId": 1, "quantity": 1}, "productId"),
    ({"productId": "1; DROP TABLE products", "quantity": 1}, "productId"),
    ({"productId": "\uff11", "quantity": 1}, "productId"),  # a full-width digit one
    ({"productId": "1", "quantity": 1, "extra": True}, "extra"),
])
def test_bad_input_is_a_400_naming_the_field(member, body, field):
    response = httpx.post(f"{API}/cart/items", headers=member.headers(), json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]["fields"]


def test_unknown_product_is_404_and_bad_path_ids_are_400(member):
    missing = add(member, "999999999", 1)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    bad = httpx.patch(f"{API}/cart/items/..%2f..%2fetc", headers=member.headers(), json={"quantity": 1})
    assert bad.status_code in (400, 404) and bad.json()["error"]["code"] in ("VALIDATION_ERROR", "NOT_FOUND")


def test_one_member_never_sees_another_members_cart(product):
    alice, bob = new_account(), new_account()
    add(alice, product["id"], 3)
    assert httpx.get(f"{API}/cart", headers=bob.headers()).json()["items"] == []
    assert httpx.delete(f"{API}/cart/items/{product['id']}", headers=bob.headers()).status_code == 404
    assert cart_lines(alice.member_id) == [(int(product["id"]), 3)]


def test_the_cart_needs_a_login():
    response = httpx.get(f"{API}/cart")
    assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHORIZED"
