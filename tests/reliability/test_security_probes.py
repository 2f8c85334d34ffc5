"""Probes across the whole API (every route of the template, every field of every request body in the
OpenAPI document) that must all fail: forged, expired and revoked tokens; the seller role; another
member's orders; oversize and non-JSON bodies; SQL and Lua injection; absurd numbers; path traversal.
And no secret ever shows in an answer or in the runtime's logs.

Per-endpoint probes already live with their domains (test_auth_security, test_member_input,
test_catalogue_products, test_orders_api, test_order_after_sale); these are the cross-cutting ones.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from contract.openapi import OUTPUT
from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from goodsdrop.settings import settings
from goodsdrop.tokens import issue_access_token, signing_key
from goodsdrop_local.stack import LOG_DIR
from goodsdrop_local.template import load
from tests.support.accounts import PASSWORD, Account, new_account
from tests.support.auth_flow import reset_local_ip_throttle
from tests.support.orders import make_product, wait_final

API = f"http://127.0.0.1:{settings.api_port}"
DOCUMENT = json.loads(OUTPUT.read_text())
ROUTES = load(environ={}).routes
SQL = ["'; DROP TABLE orders; --", "1' OR '1'='1", "\" UNION SELECT password_hash FROM members -- ",
       "1;SELECT SLEEP(5)"]
LUA = ["\"]] redis.call('FLUSHALL') --[[", "'); redis.call('del', KEYS[1]); --", "\\\"}) os.exit() --",
       "{p1}:stock", "gd:{m1}:cart"]
INJECTIONS = SQL + LUA
HUGE = [-1, 0, -2**63, 10**13, 2**63, 2**64, 10**30, 1.5, 1e308, "9" * 40, True]


def _segment(doc: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def _code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def assert_clean_4xx(response: httpx.Response, *allowed: int) -> None:
    """A client error in the contract's shape (never a 5xx)."""
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if allowed:
        assert response.status_code in allowed, (response.request.url, response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body


@pytest.fixture(scope="module")
def client(stack):
    reset_local_ip_throttle()
    with httpx.Client(base_url=API, timeout=30) as http:
        yield http
    reset_local_ip_throttle()


@pytest.fixture(scope="module")
def world(client):
    """Alice bought from Sam's shop (a confirmed order); Bob is another member; Sam the seller."""
    sam, alice, bob = new_account(seller=True), new_account(), new_account()
    product = make_product(sam, 50, price=1200)
    response = client.post("/orders", json={"items": [{"productId": str(product), "quantity": 1}],
                                            "paymentToken": "tok_ok"},
                           headers=alice.headers() | {"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 202, response.text
    order = response.json()["orderId"]
    assert wait_final(client, alice, order)["status"] == "CONFIRMED"
    return {"sam": sam, "alice": alice, "bob": bob, "product": product, "order": order}


def _url(path: str, world: dict[str, Any]) -> str:
    order_scoped = path.startswith(("/orders/", "/seller/orders/"))
    path = path.replace("{productId}", str(world["product"]))
    return path.replace("{id}", world["order"] if order_scoped else str(world["product"]))


def _body(method: str, path: str) -> dict[str, Any] | None:
    operation = DOCUMENT["paths"][path][method.lower()]
    return {} if "requestBody" in operation else None


def _login(client: httpx.Client, account: Account, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"email": account.email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def _protected(world: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [(r.method, _url(r.path, world), _body(r.method, r.path)) for r in ROUTES if r.authorizer]


# ------------------------------------------------------------------------------ tokens on every route
def test_every_protected_route_refuses_missing_forged_and_expired_tokens(client, world):
    alice = world["alice"]
    real = alice.token()
    header, payload, signature = real.split(".")
    claims = jwt.decode(real, options={"verify_signature": False})
    forged = {
        "none": None,
        "wrong key": jwt.encode(claims, "an-attacker's-key-" * 3, algorithm="HS256"),
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "tampered role": f"{header}.{_segment(claims | {'role': 'seller'})}.{signature}",
        "tampered subject": f"{header}.{_segment(claims | {'sub': str(world['bob'].member_id)})}.{signature}",
        "tampered verification": f"{header}.{_segment(claims | {'ev': True, 'exp': claims['exp'] + 9999})}.{signature}",
        "expired": issue_access_token(alice.member_id, "member", True, "s-old", now=time.time() - 3600)[0],
    }
    routes = _protected(world)
    assert len(routes) >= 15
    for name, token in forged.items():
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        for method, url, body in routes:
            response = client.request(method, url, json=body, headers=headers | {"Idempotency-Key": "k"})
            assert response.status_code == 401, (name, method, url, response.text)
            assert _code(response) == ("TOKEN_EXPIRED" if name == "expired" else "UNAUTHORIZED"), (name, url)


def test_revoked_tokens_are_refused_everywhere_and_order_nothing(client, world):
    member = new_account()
    out, kept = _login(client, member), _login(client, member)
    assert client.post("/auth/logout", headers={"Authorization": f"Bearer {out['accessToken']}"}).status_code == 204
    other = _login(client, member)
    changed = client.patch("/members/me/password", json={"currentPassword": PASSWORD, "newPassword": "n3w-passw0rd!"},
                           headers={"Authorization": f"Bearer {kept['accessToken']}"})
    assert changed.status_code == 200, changed.text
    before = redis_client().hget(keys.stock(world["product"]), "available")
    for token in (out["accessToken"], other["accessToken"]):  # after logout; another session after a password change
        for method, url, body in _protected(world):
            response = client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}",
                                                                       "Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code == 401 and _code(response) == "UNAUTHORIZED", (method, url, response.text)
        order = client.post("/orders", json={"items": [{"productId": str(world["product"]), "quantity": 1}],
                                             "paymentToken": "tok_ok"},
                            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
        assert order.status_code == 401
    assert redis_client().hget(keys.stock(world["product"]), "available") == before  # nothing was reserved
    for refresh in (out["refreshToken"], other["refreshToken"]):
        assert client.post("/auth/refresh", json={"refreshToken": refresh}).status_code == 401
    reset_local_ip_throttle()


# ------------------------------------------------------------------------------ roles and ownership
def test_seller_routes_refuse_members_and_other_sellers(client, world):
    member, stranger = world["bob"], new_account(seller=True)
    product, order = world["product"], world["order"]
    seller_calls = [("POST", "/products", {"name": "x", "description": "y", "price": 1, "stock": 1}),
                    ("PATCH", f"/products/{product}", {"name": "Stolen"}),
                    ("PUT", f"/products/{product}/stock", {"stock": 0}),
                    ("GET", "/sellers/me/products", None),
                    ("PATCH", f"/seller/orders/{order}/items/{product}", {"deliveryStatus": "SHIPPED"})]
    for method, url, body in seller_calls:
        response = client.request(method, url, json=body, headers=member.headers())
        assert response.status_code == 403 and _code(response) == "FORBIDDEN", (method, url, response.text)
    for method, url, body in seller_calls[1:3] + seller_calls[4:]:
        response = client.request(method, url, json=body, headers=stranger.headers())
        assert response.status_code in (403, 404), (method, url, response.text)
    assert client.get("/sellers/me/products", headers=stranger.headers()).json()["total"] == 0
    detail = client.get(f"/products/{product}").json()
    assert detail["name"] != "Stolen" and detail["stock"] == 49
    assert client.get(f"/orders/{order}", headers=world["alice"].headers()).json()["items"][0][
        "deliveryStatus"] == "PREPARING"


def test_another_members_order_is_invisible_and_untouchable(client, world):
    bob, order, product = world["bob"], world["order"], world["product"]
    for method, url in (("GET", f"/orders/{order}"), ("POST", f"/orders/{order}/cancel"),
                        ("POST", f"/orders/{order}/items/{product}/cancel"),
                        ("POST", f"/orders/{order}/items/{product}/return"),
                        ("GET", f"/orders/{order.lower()}")):
        response = client.request(method, url, headers=bob.headers())
        assert response.status_code == 404 and _code(response) == "NOT_FOUND", (method, url, response.text)
    assert order not in {o["id"] for o in client.get("/orders", headers=bob.headers()).json()["items"]}
    # Bob's cart and orders are his own: an order "from the cart" never reads Alice's cart.
    redis_client().hset(keys.cart(world["alice"].member_id), str(product), 1)
    empty = client.post("/orders", json={"fromCart": True, "paymentToken": "tok_ok"},
                        headers=bob.headers() | {"Idempotency-Key": uuid.uuid4().hex})
    assert empty.status_code == 400 and "fromCart" in empty.json()["error"]["details"]["fields"]
    assert client.get(f"/orders/{order}", headers=world["alice"].headers()).json()["status"] == "CONFIRMED"


# ------------------------------------------------------------------------------ bodies
BODY_ROUTES = [(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method, op in item.items()
               if "requestBody" in op]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
def test_oversize_and_non_json_bodies_are_refused(client, world, method, path):
    url, headers = _url(path, world), world["sam"].headers() | {"Idempotency-Key": uuid.uuid4().hex}
    big = json.dumps({"name": "x" * (70 * 1024)}).encode()
    response = client.request(method, url, content=big, headers=headers | {"Content-Type": "application/json"})
    assert_clean_4xx(response, 413)
    assert _code(response) == "PAYLOAD_TOO_LARGE"
    for content_type, content in (("text/plain", b"name=x"), ("application/xml", b"<name>x</name>"),
                                  ("multipart/form-data", b'{"name": "x"}'), ("text/html; charset=utf-8", b"{}")):
        response = client.request(method, url, content=content, headers=headers | {"Content-Type": content_type})
        assert_clean_4xx(response, 415)
        assert _code(response) == "UNSUPPORTED_MEDIA_TYPE", (content_type, response.text)


def test_a_body_over_the_gateway_limit_is_413(client, world):
    response = client.post("/orders", content=b"{" + b" " * (10 * 1024 * 1024 + 10) + b"}",
                           headers=world["alice"].headers() | {"Content-Type": "application/json"})
    assert_clean_4xx(response, 413)
    assert _code(response) == "PAYLOAD_TOO_LARGE"  # the template's REQUEST_TOO_LARGE gateway response


def _string_fields(path: str, method: str) -> list[str]:
    op = DOCUMENT["paths"][path][method.lower()]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = DOCUMENT["components"]["schemas"][ref].get("properties", {})
    return [name for name, prop in properties.items()
            if prop.get("type") == "string" or any(o.get("type") == "string" for o in prop.get("anyOf", []))]


TEXT_FIELDS = [(m, p, f) for m, p in BODY_ROUTES for f in _string_fields(p, m)]


def test_injection_strings_in_every_text_field_query_and_header_do_nothing(client, world):
    canary = f"gd:canary:{uuid.uuid4().hex}"
    redis_client().set(canary, "1", ex=600)
    sent = 0
    for method, path, field in TEXT_FIELDS:
        for value in INJECTIONS:
            headers = world["sam"].headers() | {"Idempotency-Key": value.strip()}
            response = client.request(method, _url(path, world), json={field: value}, headers=headers)
            assert_clean_4xx(response)
            sent += 1
    for query in ("q", "status", "sort", "page", "size", "sellerId", "minPrice", "token"):
        for value in INJECTIONS:
            for path in ("/products", "/orders", "/sellers/me/products", "/members/verify"):
                assert_clean_4xx(client.get(path, params={query: value}, headers=world["sam"].headers()))
                sent += 1
    for value in INJECTIONS:  # a reservation keyed by an injected Idempotency-Key is just a key
        response = client.post("/orders", json={"items": [{"productId": str(world["product"]), "quantity": 1}],
                                                "paymentToken": "tok_declined"},
                               headers=world["bob"].headers() | {"Idempotency-Key": value.strip()})
        assert response.status_code in (202, 400), response.text
        sent += 1
    assert sent > 300
    assert redis_client().get(canary) == "1" and redis_client().dbsize() > 1  # no script ran our text
    with mysql_cursor() as cur:
        for table in ("orders", "members", "products", "reservations", "payments"):
            cur.execute(f"SELECT COUNT(*) AS n FROM {table}")
            assert cur.fetchone()["n"] > 0, table
    # Text that looks like SQL or Lua is stored and shown as it was written.
    name = LUA[0] + SQL[0]
    created = client.post("/products", json={"name": name, "description": LUA[1], "price": 1000, "stock": 1},
                          headers=world["sam"].headers())
    assert created.status_code == 201, created.text
    assert client.get(f"/products/{created.json()['id']}").json()["name"] == name


NUMBER_FIELDS = [
    ("POST", "/orders", lambda v: {"items": [{"productId": "1", "quantity": v}], "paymentToken": "tok_ok"}, "quantity"),
    ("POST", "/products", lambda v: {"name": "n", "description": "d", "price": v, "stock": 1}, "price"),
    ("POST", "/products", lambda v: {"name": "n", "description": "d", "price": 1, "stock": v}, "stock"),
    ("POST", "/products", lambda v: {"name": "n", "description": "d", "price": 1, "stock": 1, "perMemberLimit": v},
     "perMemberLimit"),
    ("PATCH", "/products/{id}", lambda v: {"price": v}, "price"),
    ("PUT", "/products/{id}/stock", lambda v: {"stock": v}, "stock"),
]


def test_negative_and_huge_numbers_are_400_naming_the_field(client, world):
    seller = world["sam"]
    for method, path, body, field in NUMBER_FIELDS:
        for value in HUGE:
            if value == 0 and field == "stock":
                continue  # zero stock is a valid sold-out product
            response = client.request(method, _url(path, world), json=body(value),
                                      headers=seller.headers() | {"Idempotency-Key": uuid.uuid4().hex})
            assert_clean_4xx(response, 400)
            assert any(field in name for name in response.json()["error"]["details"]["fields"]), (field, value)
    for path in ("/products", "/orders", "/sellers/me/products"):
        for params in ({"page": -1}, {"size": 10**6}, {"page": 2**64}, {"minPrice": -5}, {"maxPrice": 10**30},
                       {"sellerId": -1}, {"page": "1e3"}):
            response = client.get(path, params=params, headers=seller.headers())
            assert_clean_4xx(response, 200, 400)
    assert client.get(f"/products/{world['product']}").json()["price"] == 1200


TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..\\..\\windows\\win.ini", "%00",
              "1%2F..%2F2", "1%00", "%2e%2e", "%252e%252e%252f", "1;2", "0x10", "-1", "1e3", "\u0663", "\uff11"]


def test_path_traversal_in_ids_is_refused(client, world):
    headers = world["sam"].headers()
    for route in ROUTES:
        if "{" not in route.path:
            continue
        for bad in TRAVERSALS:
            url = route.path.replace("{id}", bad).replace("{productId}", bad)
            response = client.request(route.method, url, json=_body(route.method, route.path), headers=headers)
            assert_clean_4xx(response, 400, 401, 404, 405)
            assert "root:" not in response.text and "AWSTemplateFormatVersion" not in response.text
    for url in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2finfra%2ftemplate.yaml",
                "/storefront/../infra/template.yaml", "/static/..%2F..%2F.git%2Fconfig"):
        response = client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
        assert "root:" not in response.text and "AWSTemplateFormatVersion" not in response.text
        assert "[core]" not in response.text


# ------------------------------------------------------------------------------ secrets
def test_no_secret_in_answers_or_in_the_runtimes_logs(client, world):
    member = new_account()
    secret_password = f"pw-{uuid.uuid4().hex}"
    wrong = client.post("/auth/login", json={"email": member.email, "password": secret_password})
    assert wrong.status_code == 401 and secret_password not in wrong.text
    pair = _login(client, member)
    rotated = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]}).json()
    new_password = f"np-{uuid.uuid4().hex}"
    bad_change = client.patch("/members/me/password", json={"currentPassword": secret_password,
                                                            "newPassword": new_password},
                              headers={"Authorization": f"Bearer {rotated['accessToken']}"})
    assert bad_change.status_code == 403
    assert secret_password not in bad_change.text and new_password not in bad_change.text
    changed = client.patch("/members/me/password", json={"currentPassword": PASSWORD, "newPassword": new_password},
                           headers={"Authorization": f"Bearer {rotated['accessToken']}"})
    assert changed.status_code == 200 and new_password not in changed.text
    refused = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert pair["refreshToken"] not in refused.text
    forged = client.get("/members/me", headers={"Authorization": f"Bearer {pair['accessToken']}x"})
    assert pair["accessToken"] not in forged.text
    time.sleep(1.0)  # let the runtime's processes flush their logs
    secrets = {"JWT signing key": signing_key(), "a password": secret_password, "a new password": new_password,
               "the test password": PASSWORD, "an access token": pair["accessToken"],
               "a refresh token": pair["refreshToken"], "a rotated refresh token": rotated["refreshToken"],
               "a rotated access token": rotated["accessToken"],
               "the MySQL password": f"password={settings.mysql_password}"}
    logs = sorted(LOG_DIR.glob("runtime*.log"))
    assert logs, f"no runtime logs under {LOG_DIR}"
    for log in logs:
        text = log.read_text(errors="replace")
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in {log.name}"
        # No bearer token of anyone, ever.
        assert not re.search(r"Bearer\s+eyJ[\w-]+\.[\w-]+\.[\w-]+", text), f"a bearer token appears in {log.name}"
    reset_local_ip_throttle()
