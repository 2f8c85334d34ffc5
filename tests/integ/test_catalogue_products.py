"""Sellers' products over HTTP on the running stack: create, edit, set stock, list; ownership; bad input."""

from __future__ import annotations

import json

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.clients import mysql_cursor, redis_client
from tests.support.accounts import new_account
from tests.support.catalogue import API, create_product


@pytest.fixture(scope="module")
def other_seller(stack):
    return new_account(seller=True)


@pytest.fixture(scope="module")
def member(stack):
    return new_account()


def test_a_seller_creates_a_product_and_anyone_reads_it(seller):
    created = create_product(seller, name="굿즈 Figure ✨", description="Line one\nline two", price=189000,
                             stock=7, salesStartAt="2099-06-01T12:00:00+09:00", perMemberLimit=2)
    assert created["sellerId"] == str(seller.member_id)
    assert created["salesStartAt"] == "2099-06-01T03:00:00Z"  # stored and shown in UTC
    assert (created["stock"], created["status"], created["perMemberLimit"]) == (7, "upcoming", 2)
    detail = httpx.get(f"{API}/products/{created['id']}").json()
    assert detail == created
    with mysql_cursor() as cur:
        cur.execute("SELECT count FROM stock WHERE product_id = %s", (created["id"],))
        assert cur.fetchone()["count"] == 7
    assert redis_client().hget(keys.stock(created["id"]), "available") == "7"  # written through at creation


def test_optional_fields_default_to_on_sale_without_limit(seller):
    created = create_product(seller, stock=0)
    assert (created["salesStartAt"], created["perMemberLimit"], created["status"]) == (None, None, "sold_out")


def test_sql_looking_text_is_stored_verbatim(seller):
    name = "Robert'); DROP TABLE products;--"
    created = create_product(seller, name=name, description="1' OR '1'='1")
    assert httpx.get(f"{API}/products/{created['id']}").json()["name"] == name


def test_only_sellers_create_products(member):
    body = {"name": "x", "description": "y", "price": 1, "stock": 1}
    assert httpx.post(f"{API}/products", json=body).status_code == 401
    refused = httpx.post(f"{API}/products", json=body, headers=member.headers())
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"


VALID = {"name": "Valid", "description": "Valid", "price": 1000, "stock": 5}


@pytest.mark.parametrize("change,field", [
    ({"name": None}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "tab\there"}, "name"),
    ({"name": 42}, "name"),
    ({"description": "d" * 5001}, "description"),
    ({"description": ["list"]}, "description"),
    ({"price": 0}, "price"),
    ({"price": -5}, "price"),
    ({"price": "1000"}, "price"),
    ({"price": 10.5}, "price"),
    ({"price": True}, "price"),
    ({"price": 10**13}, "price"),
    ({"stock": -1}, "stock"),
    ({"stock": 10**8}, "stock"),
    ({"stock": "5"}, "stock"),
    ({"salesStartAt": "2030-01-01T00:00:00"}, "salesStartAt"),
    ({"salesStartAt": "2030-01-01"}, "salesStartAt"),
    ({"salesStartAt": "tomorrow"}, "salesStartAt"),
    ({"salesStartAt": 1893456000}, "salesStartAt"),
    ({"salesStartAt": "0001-01-01T00:00:00+01:00"}, "salesStartAt"),
    ({"salesStartAt": "2030-13-01T00:00:00Z"}, "salesStartAt"),
    ({"perMemberLimit": 0}, "perMemberLimit"),
    ({"perMemberLimit": "2"}, "perMemberLimit"),
    ({"stockShards": 0}, "stockShards"),
    ({"stockShards": 17}, "stockShards"),
    ({"stockShards": "4"}, "stockShards"),
    ({"stockShards": None}, "stockShards"),
    ({"sellerId": "1"}, "sellerId"),
])
def test_bad_create_bodies_are_400_naming_the_field(seller, change, field):
    response = httpx.post(f"{API}/products", json=VALID | change, headers=seller.headers())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]["fields"], error


def test_missing_required_fields_are_each_named(seller):
    response = httpx.post(f"{API}/products", json={"name": "Only a name"}, headers=seller.headers())
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == {"description", "price", "stock"}


@pytest.mark.parametrize("raw", ["not json", "[]", '"text"', "null", "{", json.dumps(VALID)[:-1] + ', "x": }',
                                 '{"name": "\\ud800", "description": "d", "price": 1, "stock": 1}'])
def test_malformed_bodies_are_400(seller, raw):
    response = httpx.post(f"{API}/products", content=raw.encode(), headers=seller.headers()
                          | {"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("content_type,status", [("text/plain", 415), ("Application/JSON", 415),
                                                 ("application/x-www-form-urlencoded", 415)])
def test_non_json_bodies_are_4xx(seller, content_type, status):
    response = httpx.post(f"{API}/products", content=b"name=x&price=1", headers=seller.headers()
                          | {"content-type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("UNSUPPORTED_MEDIA_TYPE", "VALIDATION_ERROR")


def test_the_seller_edits_and_the_cached_detail_changes_at_once(seller):
    product = create_product(seller, name="Before", price=1000, salesStartAt="2099-01-01T00:00:00Z")
    url = f"{API}/products/{product['id']}"
    assert httpx.get(url).json()["name"] == "Before"  # the detail is cached now
    assert redis_client().exists(keys.product_detail(product["id"]))
    edited = httpx.patch(url, json={"name": "After", "price": 2500, "salesStartAt": None, "perMemberLimit": 4},
                         headers=seller.headers())
    assert edited.status_code == 200, edited.text
    detail = httpx.get(url).json()
    assert (detail["name"], detail["price"], detail["salesStartAt"], detail["perMemberLimit"]) == (
        "After", 2500, None, 4)
    assert detail["status"] == "on_sale" and detail["description"] == product["description"]
    assert edited.json() == detail


def test_another_seller_cannot_edit_or_restock(seller, other_seller, member):
    product = create_product(seller, name="Mine")
    url = f"{API}/products/{product['id']}"
    for account in (other_seller, member):
        patch = httpx.patch(url, json={"name": "Stolen"}, headers=account.headers())
        put = httpx.put(f"{url}/stock", json={"stock": 0}, headers=account.headers())
        assert (patch.status_code, put.status_code) == (403, 403)
        assert patch.json()["error"]["code"] == put.json()["error"]["code"] == "FORBIDDEN"
    assert httpx.patch(url, json={"name": "x"}).status_code == 401
    after = httpx.get(url).json()
    assert (after["name"], after["stock"]) == ("Mine", 10)


@pytest.mark.parametrize("body,field", [
    ({}, "body"),
    ({"stock": 5}, "stock"),
    ({"name": None}, "name"),
    ({"price": 0}, "price"),
    ({"salesStartAt": "2030-01-01 10:00"}, "salesStartAt"),
    ({"perMemberLimit": -1}, "perMemberLimit"),
])
def test_bad_edits_are_400(seller, body, field):
    product = create_product(seller)
    response = httpx.patch(f"{API}/products/{product['id']}", json=body, headers=seller.headers())
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["details"]["fields"]


@pytest.mark.parametrize("path,status", [("/products/999999999", 404), ("/products/abc", 400),
                                         ("/products/0", 400)])
def test_editing_unknown_or_malformed_ids(seller, path, status):
    assert httpx.patch(f"{API}{path}", json={"name": "x"}, headers=seller.headers()).status_code == status
    assert httpx.put(f"{API}{path}/stock", json={"stock": 1}, headers=seller.headers()).status_code == status


@pytest.mark.parametrize("body", [{}, {"stock": -1}, {"stock": "3"}, {"stock": 1.5}, {"stock": None},
                                  {"stock": 10**8}, {"stock": 3, "price": 1}])
def test_bad_stock_bodies_are_400(seller, body):
    product = create_product(seller)
    response = httpx.put(f"{API}/products/{product['id']}/stock", json=body, headers=seller.headers())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_the_seller_lists_only_their_own_products_newest_first(stack):
    owner, someone = new_account(seller=True), new_account(seller=True)
    mine = [create_product(owner)["id"] for _ in range(3)]
    create_product(someone)
    listed = httpx.get(f"{API}/sellers/me/products", headers=owner.headers()).json()
    assert [item["id"] for item in listed["items"]] == mine[::-1]
    assert (listed["total"], listed["page"], listed["size"]) == (3, 1, 20)
    second = httpx.get(f"{API}/sellers/me/products", params={"page": 2, "size": 2}, headers=owner.headers()).json()
    assert [item["id"] for item in second["items"]] == [mine[0]] and second["total"] == 3


def test_seller_listing_needs_a_seller_and_valid_paging(seller, member):
    assert httpx.get(f"{API}/sellers/me/products").status_code == 401
    assert httpx.get(f"{API}/sellers/me/products", headers=member.headers()).status_code == 403
    for params in ({"size": 101}, {"page": 0}, {"size": "x"}):
        response = httpx.get(f"{API}/sellers/me/products", params=params, headers=seller.headers())
        assert response.status_code == 400 and set(response.json()["error"]["details"]["fields"]) <= {"page", "size"}
