"""No handler depends on the case of a header name.

API Gateway REST hands functions the header names as the client wrote them (HTTP/1.1 clients use any
case; HTTP/2 clients, browsers included, send them lowercased), and so does the local runtime
(goodsdrop_local.api_server). Every route of the template answers alike whether its headers come in
Title-Case, lowercase or UPPERCASE, and an order's Idempotency-Key is the same key in any case.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from goodsdrop.settings import settings
from goodsdrop_local.template import load
from tests.support.accounts import new_account
from tests.support.products import new_product
from tests.support.routes import concrete_path, probe_body

API = f"http://127.0.0.1:{settings.api_port}"
CASES: dict[str, Callable[[str], str]] = {"Title-Case": lambda name: name, "lowercase": str.lower,
                                          "UPPERCASE": str.upper}


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=API, timeout=30) as client:
        yield client


def spelled(headers: dict[str, str], case: str) -> list[tuple[str, str]]:
    return [(CASES[case](name), value) for name, value in headers.items()]


@pytest.mark.parametrize("route", load().routes, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_answers_alike_whatever_the_header_case(client, route):
    answers = {}
    for case in CASES:
        account = new_account(seller=True)  # a caller per request: one logout must not end the next session
        headers = {"Content-Type": "application/json", "Origin": "http://storefront.test",
                   "Idempotency-Key": str(uuid.uuid4()), **(account.headers() if route.authorizer else {})}
        response = client.request(route.method, concrete_path(route), headers=spelled(headers, case),
                                  content=probe_body(route))
        error = response.json().get("error", {}).get("code") if response.content else None
        answers[case] = (response.status_code, error, response.headers.get("access-control-allow-origin"))
    assert len(set(answers.values())) == 1, answers
    assert answers["UPPERCASE"][2] is not None  # the Origin was seen in every case


def test_an_idempotency_key_is_one_key_in_any_case(client):
    product, buyer = new_product(stock=10), new_account()
    key = str(uuid.uuid4())
    body = {"items": [{"productId": str(product), "quantity": 1}], "paymentToken": "tok_ok"}
    orders = set()
    for case in CASES:
        headers = spelled({**buyer.headers(), "Idempotency-Key": key, "Content-Type": "application/json"}, case)
        response = client.post("/orders", headers=headers, json=body)
        assert response.status_code == 202, response.text
        orders.add(response.json()["orderId"])
    assert len(orders) == 1  # the same key: one order, replayed
