"""The cart through HTTP on the real stack: every endpoint, limits, TTL renewal, concurrency, isolation.

Products are made directly in MySQL (products + stock rows of a test seller) so these tests do not
depend on the catalogue endpoints; the runtime reads them through goodsdrop.products/stock.
"""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.cart import CART_TTL_SECONDS, MAX_LINES, cart_lines, clear_cart
from goodsdrop.clients import mysql_transaction, redis_client
from goodsdrop.products import forget_product
from goodsdrop.settings import settings
from tests.support.accounts import Account, new_account

# The sliding TTL as set just now: a few seconds of slack for slow machines, never more.
FRESH_TTL = range(CART_TTL_SECONDS - 30, CART_TTL_SECONDS + 1)


@pytest.fixture(scope="module")
def api(stack):
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def seller() -> Account:
    return new_account(seller=True)


@pytest.fixture
def member() -> Account:
    return new_account()


def new_products(seller: Account, count: int = 1, *, price: int = 1000, stock: int = 10,
                 per_member_limit: int | None = None, starts_in: timedelta | None = None) -> list[int]:
    """`count` listed products of `seller` with `stock` units each, straight into MySQL."""
    start = (datetime.now(UTC) + starts_in).replace(tzinfo=None) if starts_in is not None else None
    ids = []
    with mysql_transaction() as cur:
        for _ in range(count):
            cur.execute("INSERT INTO products (seller_id, name, description, price, sales_start_at, per_member_limit) "
                        "VALUES (%s, %s, %s, %s, %s, %s)",
                        (seller.member_id, f"Cart test {uuid.uuid4().hex[:8]}", "made by test_cart", price, start,
                         per_member_limit))
            ids.append(cur.lastrowid)
            cur.execute("INSERT INTO stock (product_id, count) VALUES (%s, %s)", (cur.lastrowid, stock))
    return ids


def new_product(seller: Account, **kwargs) -> int:
    return new_products(seller, **kwargs)[0]


def add(api: httpx.Client, who: Account | dict, product_id: int | str, quantity: object) -> httpx.Response:
    headers = who if isinstance(who, dict) else who.headers()
    return api.post("/cart/items", json={"productId": str(product_id), "quantity": quantity}, headers=headers)


def quantities(body: dict) -> dict[str, int]:
    return {line["productId"]: line["quantity"] for line in body["items"]}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


# ------------------------------------------------------------------------------------ endpoints
def test_a_new_member_has_an_empty_cart(api, member):
    response = api.get("/cart", headers=member.headers())
    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "totalQuantity": 0, "notices": [], "expiresAt": None}


def test_post_adds_to_what_is_there_and_get_prices_every_line(api, member, seller):
    figure = new_product(seller, price=189000, stock=500)
    pins = new_product(seller, price=9000, stock=300, per_member_limit=5)

    first = add(api, member, figure, 1)
    assert first.status_code == 200, first.text
    assert quantities(first.json()) == {str(figure): 1}
    assert add(api, member, figure, 2).status_code == 200
    body = add(api, member, pins, 4).json()

    assert quantities(body) == {str(figure): 3, str(pins): 4}
    cart = api.get("/cart", headers=member.headers()).json()
    assert cart["items"] == body["items"]
    by_id = {line["productId"]: line for line in cart["items"]}
    assert by_id[str(figure)]["lineTotal"] == 3 * 189000 and by_id[str(figure)]["status"] == "on_sale"
    assert by_id[str(pins)] | {"name": None} == {"productId": str(pins), "name": None, "price": 9000, "quantity": 4,
                                                 "lineTotal": 36000, "stock": 300, "status": "on_sale",
                                                 "perMemberLimit": 5}
    assert cart["total"] == 3 * 189000 + 4 * 9000 and cart["totalQuantity"] == 7
    assert cart["expiresAt"] is not None
    assert cart_lines(member.member_id) == sorted([(figure, 3), (pins, 4)])


def test_an_integer_product_id_is_accepted_too(api, member, seller):
    product = new_product(seller)
    response = api.post("/cart/items", json={"productId": product, "quantity": 2}, headers=member.headers())
    assert response.status_code == 200, response.text
    assert quantities(response.json()) == {str(product): 2}


def test_patch_sets_the_quantity_and_zero_removes_the_line(api, member, seller):
    kept, dropped = new_products(seller, 2)
    add(api, member, kept, 5)
    add(api, member, dropped, 1)

    response = api.patch(f"/cart/items/{kept}", json={"quantity": 2}, headers=member.headers())
    assert response.status_code == 200, response.text
    assert quantities(response.json()) == {str(kept): 2, str(dropped): 1}

    response = api.patch(f"/cart/items/{dropped}", json={"quantity": 0}, headers=member.headers())
    assert response.status_code == 200
    assert quantities(response.json()) == {str(kept): 2}
    assert cart_lines(member.member_id) == [(kept, 2)]


def test_patch_of_a_product_not_in_the_cart_is_404(api, member, seller):
    product = new_product(seller)
    for quantity in (0, 3):
        response = api.patch(f"/cart/items/{product}", json={"quantity": quantity}, headers=member.headers())
        assert_error(response, 404, "NOT_FOUND")
    assert cart_lines(member.member_id) == []


def test_delete_removes_one_line_and_is_idempotent(api, member, seller):
    kept, removed = new_products(seller, 2)
    add(api, member, kept, 1)
    add(api, member, removed, 3)
    for _ in range(2):
        response = api.delete(f"/cart/items/{removed}", headers=member.headers())
        assert response.status_code == 204 and response.content == b""
    assert quantities(api.get("/cart", headers=member.headers()).json()) == {str(kept): 1}


def test_delete_cart_empties_it(api, member, seller):
    for product in new_products(seller, 3):
        add(api, member, product, 1)
    response = api.delete("/cart", headers=member.headers())
    assert response.status_code == 204
    assert api.get("/cart", headers=member.headers()).json()["items"] == []
    assert redis_client().exists(keys.cart(member.member_id)) == 0
    assert api.delete("/cart", headers=member.headers()).status_code == 204


def test_every_cart_route_needs_a_token(api, seller):
    product = new_product(seller)
    calls = [("GET", "/cart", None), ("DELETE", "/cart", None),
             ("POST", "/cart/items", {"productId": str(product), "quantity": 1}),
             ("PATCH", f"/cart/items/{product}", {"quantity": 1}), ("DELETE", f"/cart/items/{product}", None)]
    for method, path, body in calls:
        assert_error(api.request(method, path, json=body), 401, "UNAUTHORIZED")
        assert_error(api.request(method, path, json=body, headers={"Authorization": "Bearer not-a-jwt"}),
                     401, "UNAUTHORIZED")


def test_an_unverified_member_may_use_a_cart(api, seller):
    unverified, product = new_account(verified=False), new_product(seller)
    assert add(api, unverified, product, 1).status_code == 200


# ------------------------------------------------------------------------------------- statuses
def test_lines_show_upcoming_sold_out_and_insufficient_stock(api, member, seller):
    upcoming = new_product(seller, stock=5, starts_in=timedelta(hours=1))
    sold_out = new_product(seller, stock=0)
    scarce = new_product(seller, stock=3)
    plenty = new_product(seller, stock=3)
    add(api, member, upcoming, 2)
    add(api, member, sold_out, 1)
    add(api, member, scarce, 4)
    add(api, member, plenty, 3)
    lines = {line["productId"]: line for line in api.get("/cart", headers=member.headers()).json()["items"]}
    assert {pid: line["status"] for pid, line in lines.items()} == {
        str(upcoming): "upcoming", str(sold_out): "sold_out", str(scarce): "insufficient_stock",
        str(plenty): "on_sale"}
    assert lines[str(scarce)]["stock"] == 3 and lines[str(sold_out)]["stock"] == 0


def test_the_cart_shows_the_current_price_and_name(api, member, seller):
    product = new_product(seller, price=1000)
    add(api, member, product, 2)
    with mysql_transaction() as cur:
        cur.execute("UPDATE products SET price = 1500, name = 'Renamed' WHERE id = %s", (product,))
    forget_product(product)  # what the catalogue does after an edit
    line = api.get("/cart", headers=member.headers()).json()["items"][0]
    assert (line["name"], line["price"], line["lineTotal"]) == ("Renamed", 1500, 3000)


def test_unlisted_and_deleted_products_disappear_with_a_notice(api, member, seller):
    kept, unlisted, deleted = new_products(seller, 3, price=700)
    for product in (kept, unlisted, deleted):
        add(api, member, product, 2)
    with mysql_transaction() as cur:
        cur.execute("UPDATE products SET listed = 0 WHERE id = %s", (unlisted,))
        cur.execute("DELETE FROM stock WHERE product_id = %s", (deleted,))
        cur.execute("DELETE FROM products WHERE id = %s", (deleted,))
    for product in (unlisted, deleted):
        forget_product(product)
        redis_client().delete(keys.stock(product))

    response = api.get("/cart", headers=member.headers())
    assert response.status_code == 200, response.text
    body = response.json()
    assert quantities(body) == {str(kept): 2} and body["total"] == 1400
    assert sorted((n["productId"], n["code"], n["quantity"]) for n in body["notices"]) == sorted(
        [(str(unlisted), "PRODUCT_UNAVAILABLE", 2), (str(deleted), "PRODUCT_UNAVAILABLE", 2)])
    # Gone for good: the notice is shown once and the lines are no longer in the cart.
    again = api.get("/cart", headers=member.headers()).json()
    assert again["notices"] == [] and quantities(again) == {str(kept): 2}
    assert cart_lines(member.member_id) == [(kept, 2)]


# --------------------------------------------------------------------------------------- limits
def test_unknown_and_unlisted_products_cannot_be_added(api, member, seller):
    assert_error(add(api, member, 9_000_000_000_000, 1), 404, "NOT_FOUND")
    unlisted = new_product(seller)
    with mysql_transaction() as cur:
        cur.execute("UPDATE products SET listed = 0 WHERE id = %s", (unlisted,))
    forget_product(unlisted)
    assert_error(add(api, member, unlisted, 1), 404, "NOT_FOUND")
    assert cart_lines(member.member_id) == []


def test_a_line_may_not_exceed_the_per_member_limit(api, member, seller):
    limited = new_product(seller, per_member_limit=2)
    assert add(api, member, limited, 2).status_code == 200
    error = assert_error(add(api, member, limited, 1), 409, "PURCHASE_LIMIT_EXCEEDED")
    assert error["details"] == {"productId": str(limited), "inCart": 2, "requested": 3, "limit": 2}
    assert_error(api.patch(f"/cart/items/{limited}", json={"quantity": 3}, headers=member.headers()),
                 409, "PURCHASE_LIMIT_EXCEEDED")
    other = new_account()
    assert_error(add(api, other, limited, 3), 409, "PURCHASE_LIMIT_EXCEEDED")
    assert cart_lines(member.member_id) == [(limited, 2)] and cart_lines(other.member_id) == []


def test_a_line_holds_at_most_99(api, member, seller):
    product = new_product(seller, stock=1000)
    assert add(api, member, product, 99).status_code == 200
    error = assert_error(add(api, member, product, 1), 409, "QUANTITY_LIMIT_EXCEEDED")
    assert error["details"]["limit"] == 99
    assert cart_lines(member.member_id) == [(product, 99)]


def test_a_cart_holds_at_most_50_products(api, member, seller):
    products = new_products(seller, MAX_LINES + 1)
    for product in products[:MAX_LINES]:
        assert add(api, member, product, 1).status_code == 200
    error = assert_error(add(api, member, products[-1], 1), 409, "CART_FULL")
    assert error["details"] == {"lines": MAX_LINES, "limit": MAX_LINES}
    # Adding to a line already there is still fine; removing one makes room.
    assert add(api, member, products[0], 1).status_code == 200
    assert api.delete(f"/cart/items/{products[1]}", headers=member.headers()).status_code == 204
    assert add(api, member, products[-1], 1).status_code == 200
    assert len(cart_lines(member.member_id)) == MAX_LINES


# ------------------------------------------------------------------------------------------ TTL
def test_every_change_renews_the_seven_day_ttl_and_reading_does_not(api, member, seller):
    first, second = new_products(seller, 2)
    key, r = keys.cart(member.member_id), redis_client()
    add(api, member, first, 1)
    assert r.ttl(key) in FRESH_TTL

    changes = [
        lambda: add(api, member, first, 1),
        lambda: add(api, member, second, 1),
        lambda: api.patch(f"/cart/items/{first}", json={"quantity": 5}, headers=member.headers()),
        lambda: api.delete(f"/cart/items/{second}", headers=member.headers()),
    ]
    for change in changes:
        r.expire(key, 100)  # as if the last change was long ago
        assert change().status_code in (200, 204)
        assert r.ttl(key) in FRESH_TTL

    r.expire(key, 100)
    assert api.get("/cart", headers=member.headers()).status_code == 200
    assert 0 < r.ttl(key) <= 100
    # A refused change changes nothing, so it renews nothing either.
    assert_error(api.patch(f"/cart/items/{second}", json={"quantity": 1}, headers=member.headers()), 404, "NOT_FOUND")
    assert 0 < r.ttl(key) <= 100


def test_the_cart_expires_when_its_ttl_runs_out(api, member, seller):
    product = new_product(seller)
    add(api, member, product, 1)
    redis_client().pexpire(keys.cart(member.member_id), 1)
    for _ in range(200):  # bounded: the key is gone within milliseconds
        if not redis_client().exists(keys.cart(member.member_id)):
            break
    assert api.get("/cart", headers=member.headers()).json()["items"] == []


# ---------------------------------------------------------------------------------- concurrency
def test_concurrent_adds_never_lose_an_update(api, member, seller):
    product = new_product(seller, stock=1000)
    headers = member.headers()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: add(api, headers, product, 3).status_code, range(32)))
    assert statuses == [200] * 32
    assert cart_lines(member.member_id) == [(product, 96)]
    assert quantities(api.get("/cart", headers=headers).json()) == {str(product): 96}


def test_concurrent_adds_never_pass_the_per_member_limit_together(api, member, seller):
    product = new_product(seller, stock=1000, per_member_limit=10)
    headers = member.headers()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(lambda _: add(api, headers, product, 1).status_code, range(30)))
    assert statuses == Counter({200: 10, 409: 20})
    assert cart_lines(member.member_id) == [(product, 10)]


def test_concurrent_adds_of_different_products_never_pass_50_lines(api, member, seller):
    products = new_products(seller, MAX_LINES + 10)
    headers = member.headers()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = Counter(pool.map(lambda pid: add(api, headers, pid, 1).status_code, products))
    assert statuses == Counter({200: MAX_LINES, 409: 10})
    assert len(cart_lines(member.member_id)) == MAX_LINES


# ------------------------------------------------------------------------------------ isolation
def test_one_member_never_sees_or_changes_another_members_cart(api, seller):
    alice, bob = new_account(), new_account()
    product = new_product(seller)
    add(api, alice, product, 4)

    assert api.get("/cart", headers=bob.headers()).json()["items"] == []
    assert_error(api.patch(f"/cart/items/{product}", json={"quantity": 1}, headers=bob.headers()), 404, "NOT_FOUND")
    assert api.delete(f"/cart/items/{product}", headers=bob.headers()).status_code == 204
    assert api.delete("/cart", headers=bob.headers()).status_code == 204
    add(api, bob, product, 1)

    assert quantities(api.get("/cart", headers=alice.headers()).json()) == {str(product): 4}
    assert quantities(api.get("/cart", headers=bob.headers()).json()) == {str(product): 1}
    clear_cart(alice.member_id)
    assert cart_lines(alice.member_id) == [] and cart_lines(bob.member_id) == [(product, 1)]


# ------------------------------------------------------------------------------------ bad input
BAD_ADD_BODIES = [
    ({"quantity": 1}, "productId"),
    ({"productId": "1"}, "quantity"),
    ({"productId": "1", "quantity": 0}, "quantity"),
    ({"productId": "1", "quantity": 100}, "quantity"),
    ({"productId": "1", "quantity": -1}, "quantity"),
    ({"productId": "1", "quantity": "2"}, "quantity"),
    ({"productId": "1", "quantity": 2.5}, "quantity"),
    ({"productId": "1", "quantity": 2.0}, "quantity"),
    ({"productId": "1", "quantity": True}, "quantity"),
    ({"productId": "1", "quantity": None}, "quantity"),
    ({"productId": "1", "quantity": 10**40}, "quantity"),
    ({"productId": "1", "quantity": [1]}, "quantity"),
    ({"productId": "", "quantity": 1}, "productId"),
    ({"productId": "abc", "quantity": 1}, "productId"),
    ({"productId": "0", "quantity": 1}, "productId"),
    ({"productId": -3, "quantity": 1}, "productId"),
    ({"productId": 1.5, "quantity": 1}, "productId"),
    ({"productId": True, "quantity": 1}, "productId"),
    ({"productId": None, "quantity": 1}, "productId"),
    ({"productId": {"id": 1}, "quantity": 1}, "productId"),
    ({"productId": "9" * 40, "quantity": 1}, "productId"),
    ({"productId": "1' OR '1'='1", "quantity": 1}, "productId"),
    ({"productId": "1; DROP TABLE products;--", "quantity": 1}, "productId"),
    ({"productId": "굿즈", "quantity": 1}, "productId"),
    ({"productId": "١٢", "quantity": 1}, "productId"),  # Arabic-Indic digits: isdigit() but not an id
    ({"productId": "\uff11\uff12", "quantity": 1}, "productId"),  # full-width digits
]


@pytest.mark.parametrize(("body", "field"), BAD_ADD_BODIES)
def test_bad_add_bodies_are_400_naming_the_field(api, member, body, field):
    error = assert_error(api.post("/cart/items", json=body, headers=member.headers()), 400, "VALIDATION_ERROR")
    assert field in error["details"]["fields"], error
    assert cart_lines(member.member_id) == []


@pytest.mark.parametrize("body", [{}, {"quantity": "1"}, {"quantity": -1}, {"quantity": 100}, {"quantity": 1.0},
                                  {"quantity": False}, {"quantity": "0 OR 1=1"}])
def test_bad_patch_bodies_are_400_naming_quantity(api, member, seller, body):
    product = new_product(seller)
    add(api, member, product, 1)
    error = assert_error(api.patch(f"/cart/items/{product}", json=body, headers=member.headers()),
                         400, "VALIDATION_ERROR")
    assert "quantity" in error["details"]["fields"]
    assert cart_lines(member.member_id) == [(product, 1)]


@pytest.mark.parametrize("segment", ["abc", "0", "-1", "1.5", "9" * 30, "1%27%20OR%201%3D1", "%EA%B5%BF%EC%A6%88",
                                     "%D9%A1%D9%A2"])
def test_bad_product_ids_in_the_path_are_400(api, member, segment):
    for method, body in (("PATCH", {"quantity": 1}), ("DELETE", None)):
        response = api.request(method, f"/cart/items/{segment}", json=body, headers=member.headers())
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert "productId" in error["details"]["fields"]


@pytest.mark.parametrize(("content", "content_type", "status", "code"), [
    (b"", "application/json", 400, "VALIDATION_ERROR"),
    (b"{not json", "application/json", 400, "VALIDATION_ERROR"),
    (b"[1, 2]", "application/json", 400, "VALIDATION_ERROR"),
    (b'"productId"', "application/json", 400, "VALIDATION_ERROR"),
    (b'{"productId": "1", "quantity": 1}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    (b'{"productId": "1", "quantity": 1, "pad": "' + b"x" * 70_000 + b'"}', "application/json", 413,
     "PAYLOAD_TOO_LARGE"),
])
def test_malformed_bodies_are_client_errors(api, member, content, content_type, status, code):
    headers = member.headers() | {"Content-Type": content_type}
    assert_error(api.post("/cart/items", content=content, headers=headers), status, code)
