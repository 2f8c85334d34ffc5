"""One contract (issue 20): the rules the server enforces are the ones /openapi.json states, through HTTP.

One id shape everywhere (no leading zero: the cart used to merge "072" into 72), one quantity bound
for cart and order lines (1-99), every 429 saying when to retry in its body, every 201/202 that
creates something saying where it is.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.members import SIGN_UPS_PER_IP, VERIFICATION_RESENDS
from goodsdrop.sessions import LOGIN_ATTEMPTS_PER_PAIR
from tests.support.accounts import new_account
from tests.support.auth_flow import api, reset_local_ip_throttle
from tests.support.catalogue import create_product
from tests.support.mail import new_email, new_registration_number
from tests.support.orders import make_product, place, wait_final


@pytest.fixture(scope="module")
def client(stack):
    with api() as c:
        yield c


@pytest.fixture(scope="module")
def document(client):
    return client.get("/openapi.json").json()


def _code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# ---------------------------------------------------------------------------- one id pattern


def test_every_route_refuses_an_id_with_a_leading_zero(client, seller, document):
    product = make_product(seller, 5)
    buyer = new_account()
    padded = f"0{product}"
    answers = {
        "cart add": client.post("/cart/items", headers=buyer.headers(), json={"productId": padded, "quantity": 1}),
        "cart set": client.patch(f"/cart/items/{padded}", headers=buyer.headers(), json={"quantity": 1}),
        "order": place(client, buyer, [(padded, 1)]),  # type: ignore[list-item]
        "product": client.get(f"/products/{padded}"),
        "stock": client.get(f"/products/{padded}/stock"),
        "queue ticket": client.get(f"/products/{product}/queue/07", headers=buyer.headers()),
        "search by seller": client.get("/products", params={"sellerId": f"0{seller.member_id}"}),
        "seller's desk": client.get("/seller/orders", params={"productId": padded}, headers=seller.headers()),
    }
    assert {name: (r.status_code, _code(r)) for name, r in answers.items()} == dict.fromkeys(
        answers, (400, "VALIDATION_ERROR"))
    assert client.get("/cart", headers=buyer.headers()).json()["items"] == []  # nothing merged into the line
    # ... and the document states that one pattern for every id it takes.
    pattern = document["components"]["schemas"]["NewCartLine"]["properties"]["productId"]["pattern"]
    assert document["components"]["schemas"]["OrderLineRequest"]["properties"]["productId"]["pattern"] == pattern
    for path in ("/products/{id}", "/cart/items/{productId}", "/orders/{id}/items/{productId}/cancel"):
        params = next(iter(document["paths"][path].values()))["parameters"]
        ids = [p for p in params if p["in"] == "path" and p["name"] in ("id", "productId") and
               not (p["name"] == "id" and path.startswith("/orders"))]
        assert ids and all(p["schema"]["pattern"] == pattern for p in ids), path
    ticket = next(p for p in document["paths"]["/products/{id}/queue/{ticket}"]["get"]["parameters"]
                  if p["name"] == "ticket")
    assert ticket["schema"]["description"].startswith("a waiting-room ticket")


def test_cart_and_order_lines_share_the_quantity_bounds(client, seller, document):
    product = make_product(seller, 500)
    buyer = new_account()
    cart = client.post("/cart/items", headers=buyer.headers(), json={"productId": str(product), "quantity": 100})
    order = place(client, buyer, [(product, 100)])
    assert (cart.status_code, order.status_code) == (400, 400)
    assert "quantity" in str(cart.json()["error"]["details"]) and "quantity" in str(order.json()["error"]["details"])
    assert client.post("/cart/items", headers=buyer.headers(),
                       json={"productId": str(product), "quantity": 99}).status_code == 200
    accepted = place(client, new_account(), [(product, 99)])
    assert accepted.status_code == 202, accepted.text
    for schema in ("NewCartLine", "OrderLineRequest"):
        quantity = document["components"]["schemas"][schema]["properties"]["quantity"]
        assert (quantity["minimum"], quantity["maximum"]) == (1, 99), schema


def test_sign_up_rules_are_in_the_document_and_enforced(client, document):
    rules = document["components"]["schemas"]["SignUp"]["properties"]
    assert (rules["password"]["minLength"], rules["password"]["maxLength"]) == (8, 128)
    assert rules["email"]["maxLength"] == 254 and "pattern" in rules["email"]
    assert rules["name"]["maxLength"] == 100 and "letters of any script" in rules["name"]["description"]
    base = {"email": new_email(), "password": "long-enough-1", "name": "Kim"}
    refused = {
        "short password": base | {"password": "short"},
        "long password": base | {"password": "x" * 129},
        "long email": base | {"email": "a" * 250 + "@x.io"},
        "email shape": base | {"email": "no-at-sign.example"},
        "long name": base | {"name": "K" * 101},
        "digits in a name": base | {"name": "K1m"},
    }
    for what, body in refused.items():
        response = client.post("/members", json=body)
        assert response.status_code == 400 and _code(response) == "VALIDATION_ERROR", what
    reset_local_ip_throttle()


# ---------------------------------------------------------------------------- 429 says when, 201/202 say where


def test_every_429_says_when_to_retry_in_its_body(client):
    member = new_account()
    for _ in range(LOGIN_ATTEMPTS_PER_PAIR.limit):
        client.post("/auth/login", json={"email": member.email, "password": "wrong-password"})
    login = client.post("/auth/login", json={"email": member.email, "password": "wrong-password"})
    redis_client().set(keys.sign_ups_by_ip("127.0.0.1"), SIGN_UPS_PER_IP.limit, ex=3600)
    sign_up = client.post("/members", json={"email": new_email(), "password": "long-enough-1", "name": "Kim"})
    reset_local_ip_throttle()
    unverified = new_account(verified=False)
    redis_client().set(keys.verification_resends(unverified.member_id), VERIFICATION_RESENDS.limit, ex=3600)
    resend = client.post("/members/verify/resend", headers=unverified.headers())
    for name, response in {"login": login, "sign-up": sign_up, "resend": resend}.items():
        assert response.status_code == 429 and _code(response) == "RATE_LIMITED", (name, response.text)
        assert response.json()["error"]["details"]["retryAfterSeconds"] == int(response.headers["Retry-After"]) > 0


def test_whatever_is_created_answers_with_its_location(client, seller):
    product = create_product(seller)
    created = client.post("/products", headers=seller.headers(),
                          json={"name": f"Located {uuid.uuid4().hex[:6]}", "description": "d", "price": 10,
                                "stock": 3})
    assert created.status_code == 201 and created.headers["Location"] == f"/products/{created.json()['id']}"
    assert client.get(created.headers["Location"]).json()["id"] == created.json()["id"]
    buyer = new_account()
    order = place(client, buyer, [(int(product["id"]), 1)])
    assert order.status_code == 202 and order.headers["Location"] == f"/orders/{order.json()['orderId']}"
    assert client.get(order.headers["Location"], headers=buyer.headers()).json()["id"] == order.json()["orderId"]
    wait_final(client, buyer, order.json()["orderId"])
    signed_up = client.post("/members", json={"email": new_email(), "password": "long-enough-1", "name": "Kim"})
    assert signed_up.status_code == 202 and signed_up.headers["Location"] == "/members/me"
    member = new_account()
    seller_registered = client.post("/sellers", headers=member.headers(), json={
        "shopName": f"Located {uuid.uuid4().hex[:8]}", "address": "Seoul 1", "contactNumber": "010-1234-5678",
        "registrationNumber": new_registration_number()})
    assert seller_registered.status_code == 201, seller_registered.text
    assert seller_registered.headers["Location"] == "/members/me"
    # A page on another origin may read it.
    preflight = client.post("/members", headers={"Origin": "https://shop.example"},
                            json={"email": new_email(), "password": "long-enough-1", "name": "Kim"})
    assert "Location" in preflight.headers["Access-Control-Expose-Headers"].split(",")
    reset_local_ip_throttle()
