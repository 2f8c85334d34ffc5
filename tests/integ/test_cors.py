"""CORS on the running stack as API Gateway + Lambda give it: every function answers a cross-origin
request with the template's AllowedOrigin itself (success or error), API Gateway's own answers carry
it from the template's GatewayResponses, OPTIONS is SAM's mock, and the runtime adds nothing else.
Every route of the template is swept (tests/support/routes.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from goodsdrop import keys
from goodsdrop.clients import redis_client
from goodsdrop.settings import settings
from goodsdrop_local.template import load
from tests.support.accounts import new_account
from tests.support.routes import concrete_path, probe_body

API = f"http://127.0.0.1:{settings.api_port}"
ORIGIN = "http://storefront.test:8080"
APP = load()
ROUTES = APP.routes


def _cors(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=API, timeout=30) as client:
        yield client


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_function_answers_another_origin_itself(client, route):
    def call(origin: dict[str, str]) -> httpx.Response:
        account = new_account(seller=True)  # a caller per request: a logout must not end the next one's session
        headers = {**origin, "Content-Type": "application/json", **(account.headers() if route.authorizer else {})}
        return client.request(route.method, concrete_path(route), headers=headers, content=probe_body(route))

    response = call({"Origin": ORIGIN})
    assert response.status_code < 500, response.text
    assert response.status_code == 204 or response.headers["content-type"].startswith("application/json")
    cors = _cors(response)
    assert cors["access-control-allow-origin"] == settings.allowed_origin  # "*" unless AllowedOrigin says
    assert cors["access-control-expose-headers"] == "Retry-After,Location"
    # Without an Origin (not a browser) the function sends none, and the runtime adds none.
    response = call({})
    assert response.status_code < 500 and _cors(response) == {}


@pytest.mark.parametrize("route", [r for r in ROUTES if r.authorizer], ids=lambda r: f"{r.method} {r.path}")
def test_api_gateways_own_401s_carry_the_allowed_origin(client, route):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):  # UNAUTHORIZED, then the authorizer's Deny
        response = client.request(route.method, concrete_path(route), headers=headers, content=probe_body(route))
        assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHORIZED"
        assert _cors(response)["access-control-allow-origin"] == settings.allowed_origin


def test_options_is_the_templates_preflight_on_every_path(client):
    for path in {r.path for r in ROUTES}:
        route = next(r for r in ROUTES if r.path == path)
        response = client.options(concrete_path(route), headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": route.method,
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
        assert response.status_code == 200 and response.json() == {}, path
        cors = _cors(response)
        assert cors["access-control-allow-origin"] == APP.cors.allow_origin
        assert cors["access-control-allow-methods"].split(",") == sorted(
            {r.method for r in ROUTES if r.path == path} | {"OPTIONS"})
        assert cors["access-control-allow-headers"] == "Authorization,Content-Type,Idempotency-Key"


def test_an_unknown_route_is_api_gateways_404_with_the_allowed_origin(client):
    response = client.get(f"/no-such-route-{uuid.uuid4().hex[:6]}", headers={"Origin": ORIGIN})
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert _cors(response)["access-control-allow-origin"] == settings.allowed_origin
    response = client.put("/cart", headers={"Origin": ORIGIN})  # a path without that method
    assert response.status_code == 404 and _cors(response)["access-control-allow-origin"] == settings.allowed_origin


def test_a_functions_429_lets_the_page_read_retry_after(client):
    account = new_account()
    redis_client().delete(keys.login_attempts_by_ip("127.0.0.1"))
    statuses = []
    for _ in range(6):
        response = client.post("/auth/login", headers={"Origin": ORIGIN},
                               json={"email": account.email, "password": "wrong-password-1"})
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429]
    assert response.json()["error"]["code"] == "RATE_LIMITED" and int(response.headers["retry-after"]) > 0
    assert _cors(response)["access-control-allow-origin"] == settings.allowed_origin
    assert "Retry-After" in _cors(response)["access-control-expose-headers"].split(",")
