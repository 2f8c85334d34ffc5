"""POST /sellers over HTTP: a verified member becomes a seller; the role shows in the next token."""

from __future__ import annotations

import uuid

import pytest

from goodsdrop.clients import mysql_transaction
from tests.support.accounts import PASSWORD, new_account
from tests.support.auth_flow import api, bearer, claims_of, login, reset_local_ip_throttle
from tests.support.mail import new_registration_number


@pytest.fixture(scope="module")
def client(stack):
    with api() as http:
        yield http
    reset_local_ip_throttle()


def shop(**overrides: str) -> dict[str, str]:
    return {"shopName": f"Drop Shop {uuid.uuid4().hex[:8]}", "address": "12 Seongsu-ro, Seoul",
            "contactNumber": "02-555-0100", "registrationNumber": new_registration_number()} | overrides


def test_a_verified_member_becomes_a_seller(client):
    member = new_account()
    pair = login(client, member.email, PASSWORD)
    body = shop(shopName=f"굿즈 가게 & Co. {uuid.uuid4().hex[:6]}")
    created = client.post("/sellers", json=body, headers=bearer(pair["accessToken"]))
    assert created.status_code == 201, created.text
    seller = created.json()
    assert seller["role"] == "seller" and seller["id"] == str(member.member_id)
    assert seller["seller"] == {"shopName": body["shopName"], "address": body["address"],
                                "contactNumber": body["contactNumber"],
                                "registrationNumber": body["registrationNumber"],
                                "createdAt": seller["seller"]["createdAt"]}
    # The current token still says member; the next one (refresh) says seller.
    assert claims_of(pair["accessToken"])["role"] == "member"
    rotated = client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]}).json()
    assert claims_of(rotated["accessToken"])["role"] == "seller"
    assert claims_of(login(client, member.email, PASSWORD)["accessToken"])["role"] == "seller"
    me = client.get("/members/me", headers=bearer(rotated["accessToken"])).json()
    assert me["role"] == "seller" and me["seller"]["shopName"] == body["shopName"]

    again = client.post("/sellers", json=shop(), headers=bearer(rotated["accessToken"]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_SELLER"


def test_registration_number_and_shop_name_are_unique(client):
    first, second = new_account(), new_account()
    taken = shop()
    assert client.post("/sellers", json=taken, headers=first.headers()).status_code == 201
    number = client.post("/sellers", json=shop(registrationNumber=taken["registrationNumber"].replace("-", "")),
                         headers=second.headers())
    assert number.status_code == 409 and number.json()["error"]["code"] == "REGISTRATION_NUMBER_TAKEN"
    name = client.post("/sellers", json=shop(shopName=taken["shopName"].upper()), headers=second.headers())
    assert name.status_code == 409 and name.json()["error"]["code"] == "SHOP_NAME_TAKEN"
    assert client.get("/members/me", headers=second.headers()).json()["role"] == "member"


def test_unverified_members_and_anonymous_callers_cannot_open_a_shop(client):
    unverified = new_account(verified=False)
    refused = client.post("/sellers", json=shop(), headers=unverified.headers())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
    assert client.post("/sellers", json=shop()).status_code == 401


def test_demo_seller_is_already_a_seller(client):
    pair = login(client, "seller@goodsdrop.local", "seller-pass-1")
    response = client.post("/sellers", json=shop(), headers=bearer(pair["accessToken"]))
    assert response.status_code == 409 and response.json()["error"]["code"] == "ALREADY_SELLER"
    assert client.post("/auth/logout", headers=bearer(pair["accessToken"])).status_code == 204


def test_a_seller_token_without_a_shop_is_refused_listing_a_product(client):
    # The role lives in the token until it expires; the shop row may be gone (or never written).
    member = new_account()
    with mysql_transaction() as cur:
        cur.execute("UPDATE members SET role = 'seller' WHERE id = %s", (member.member_id,))
    pair = login(client, member.email, PASSWORD)
    assert claims_of(pair["accessToken"])["role"] == "seller"
    created = client.post("/products", headers=bearer(pair["accessToken"]),
                          json={"name": "No Shop Keyring", "description": "A keyring", "price": 1000, "stock": 5})
    assert created.status_code == 403, created.text
    assert created.json()["error"]["code"] == "FORBIDDEN"
    with mysql_transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM products WHERE seller_id = %s", (member.member_id,))
        assert cur.fetchone()["n"] == 0
