"""Generated hostile input against every route of the running stack (hypothesis): the classes that
once gave a 500 or a plain-text error - JSON nested thousands deep, NUL and other control bytes in
the path, overlong headers - and those that parsers read each their own way - duplicate keys,
numbers like 1e400 or with thousands of digits, NaN. Every answer must be a 4xx in the contract's
JSON error shape (or, for a header still within API Gateway's quota, a normal answer), never a 5xx.

Bodies go to every operation with a request body in the OpenAPI document (as a seller, so the
authorizer lets them through to the function); paths and headers to every route of the template.
The example counts are bounded (derandomized), so the run stays short and repeatable.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from contract.openapi import OUTPUT
from goodsdrop.http import MAX_JSON_DEPTH
from goodsdrop.settings import settings
from goodsdrop_local.gateway import MAX_HEADER_BYTES
from goodsdrop_local.template import load
from tests.support.accounts import new_account
from tests.support.auth_flow import reset_local_ip_throttle

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

API = f"http://127.0.0.1:{settings.api_port}"
DOCUMENT = json.loads(OUTPUT.read_text())
ROUTES = load(environ={}).routes
BODY_ROUTES = sorted((method.upper(), path) for path, item in DOCUMENT["paths"].items()
                     for method, op in item.items() if "requestBody" in op)
PROBES = hypothesis.settings(max_examples=25, deadline=None, derandomize=True, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck))


def _fields(method: str, path: str) -> list[str]:
    op = DOCUMENT["paths"][path][method.lower()]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    return sorted(DOCUMENT["components"]["schemas"][ref].get("properties", {})) or ["name"]


@pytest.fixture(scope="module")
def world(stack):
    reset_local_ip_throttle()
    seller = new_account(seller=True)
    with httpx.Client(base_url=API, timeout=30) as client:
        yield {"client": client, "seller": seller}
    reset_local_ip_throttle()


def _url(path: str) -> str:
    order_scoped = path.startswith(("/orders/", "/seller/orders/"))
    filled = path.replace("{productId}", "1").replace("{ticket}", "1")
    return filled.replace("{id}", "01JD0000000000000000000000" if order_scoped else "1")


def _send(world: dict[str, Any], method: str, path: str, content: bytes,
          headers: dict[str, str] | None = None) -> httpx.Response:
    return world["client"].request(method, path, content=content, headers=world["seller"].headers() | {
        "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex} | (headers or {}))


def assert_contract_4xx(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """A client error in the contract's JSON shape: never a 5xx, never plain text."""
    assert response.status_code < 500, (response.request.method, response.request.url, response.text[:300])
    assert not statuses or response.status_code in statuses, (response.request.url, response.status_code,
                                                              response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


# ------------------------------------------------------------------------------ bodies
routes_and_fields = st.sampled_from(BODY_ROUTES).flatmap(
    lambda route: st.tuples(st.just(route), st.sampled_from(_fields(*route))))


def _nest(depth: int, kinds: list[str]) -> str:
    opened = "".join('{"k":' if kinds[i % len(kinds)] == "object" else "[" for i in range(depth))
    closed = "".join("}" if kinds[i % len(kinds)] == "object" else "]" for i in reversed(range(depth)))
    return opened + "1" + closed


@PROBES
@hypothesis.given(route=routes_and_fields, depth=st.integers(MAX_JSON_DEPTH, 5000),
                  kinds=st.lists(st.sampled_from(["list", "object"]), min_size=1, max_size=4))
def test_deeply_nested_bodies_are_400(world, route, depth, kinds):
    (method, path), field = route
    content = json.dumps({field: "NEST"}).replace('"NEST"', _nest(depth, kinds)).encode()
    error = assert_contract_4xx(_send(world, method, _url(path), content), 400)
    assert error["code"] == "VALIDATION_ERROR" and "nested deeper" in error["details"]["fields"]["body"]


@PROBES
@hypothesis.given(route=routes_and_fields, nested=st.booleans(),
                  values=st.tuples(st.one_of(st.text(max_size=20), st.integers(), st.none()),
                                   st.one_of(st.text(max_size=20), st.integers(), st.none())))
def test_duplicate_keys_are_400(world, route, nested, values):
    (method, path), field = route
    first, second = (json.dumps(v) for v in values)
    pair = f'"{field}": {first}, "{field}": {second}'
    content = ("{" + pair + "}" if not nested else '{"items": [{' + pair + "}]}").encode()
    error = assert_contract_4xx(_send(world, method, _url(path), content), 400)
    assert error["code"] == "VALIDATION_ERROR" and "duplicate key" in error["details"]["fields"]["body"]


huge_numbers = st.one_of(
    st.integers(309, 100_000).map(lambda e: f"1e{e}"), st.integers(309, 5000).map(lambda e: f"-9.5E+{e}"),
    st.integers(41, 6000).map(lambda n: "9" * n), st.integers(41, 6000).map(lambda n: "-1" + "0" * n),
    st.integers(1001, 6000).map(lambda n: "7" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity"]))


@PROBES
@hypothesis.given(route=routes_and_fields, number=huge_numbers)
def test_numbers_out_of_range_are_400(world, route, number):
    (method, path), field = route
    error = assert_contract_4xx(_send(world, method, _url(path), f'{{"{field}": {number}}}'.encode()), 400)
    assert error["code"] == "VALIDATION_ERROR"


# ------------------------------------------------------------------------------ paths
controls = st.sampled_from([*range(0x00, 0x20), 0x7F]).map(lambda c: f"%{c:02X}")


@PROBES
@hypothesis.given(route=st.sampled_from(ROUTES), control=controls, where=st.sampled_from(["end", "segment", "root"]))
def test_control_bytes_in_any_path_are_a_json_400(world, route, control, where):
    url = _url(route.path)
    if where == "root":
        url = f"/{control}"
    elif where == "segment" and "{" in route.path:
        url = _url(route.path.replace("{id}", f"1{control}").replace("{productId}", f"{control}1"))
    else:
        url = f"{url}{control}"
    response = world["client"].request(route.method, url, headers=world["seller"].headers())
    error = assert_contract_4xx(response, 400)
    assert error["code"] == "VALIDATION_ERROR"


# ------------------------------------------------------------------------------ headers
header_names = st.sampled_from(["Authorization", "Content-Type", "Idempotency-Key", "X-Forwarded-For", "Cookie",
                                "User-Agent", "X-Probe"])


@PROBES
@hypothesis.given(route=st.sampled_from(ROUTES), name=header_names, size=st.integers(4_000, 40_000))
def test_overlong_headers_are_refused_or_answered_never_a_5xx(world, route, name, size):
    headers = world["seller"].headers() | {"Idempotency-Key": uuid.uuid4().hex}
    headers[name] = "a" * size
    response = world["client"].request(route.method, _url(route.path), headers=headers, content=b"{}")
    if size > MAX_HEADER_BYTES:
        error = assert_contract_4xx(response, 431)
        assert error["code"] == "HEADERS_TOO_LARGE"
    elif response.status_code >= 400:
        assert_contract_4xx(response)
    reset_local_ip_throttle()
