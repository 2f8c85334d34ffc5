"""Hostile input at the edge, without servers: control characters and oversize headers before
routing, the storefront's static path, source IPs that must never
become key text, names that pose as others, search terms, and API Gateway's method throttling as
the local runtime reads it from the template and enforces it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from goodsdrop import keys
from goodsdrop.catalogue import MAX_QUERY_TERMS, MAX_SHORT_TERMS, NewProduct, parse_search
from goodsdrop.errors import ValidationError
from goodsdrop.fields import check_shop_name, network_of
from goodsdrop_local.gateway import MAX_HEADER_BYTES, Gateway, request_problem
from goodsdrop_local.template import Throttle, load
from goodsdrop_local.throttling import ThrottleBuckets

FIXTURE = Path(__file__).parents[1] / "fixtures" / "template.yaml"


# ------------------------------------------------------------------------------ before routing
def _scope(path: str, headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b"") -> dict:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode("utf-8", "surrogateescape"),
            "query_string": query, "headers": headers or [], "client": ("10.0.0.1", 5000)}


@pytest.mark.parametrize("path", ["/\x00", "/products/1\x00", "/products/1\n", "/\x1b[31m", "/a\x7fb", "/\r\nX: y"])
def test_control_characters_in_the_path_are_a_json_400(path):
    status, headers, body = request_problem(_scope(path))
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "VALIDATION_ERROR"


def test_headers_over_api_gateways_quota_are_a_json_431():
    fits = [(b"x-pad", b"a" * (MAX_HEADER_BYTES - 100))]
    assert request_problem(_scope("/products", fits)) is None
    status, _, body = request_problem(_scope("/products", [(b"x-pad", b"a" * (MAX_HEADER_BYTES + 1))]))
    assert status == 431 and json.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"
    many = [(f"x-{i}".encode(), b"v" * 200) for i in range(60)]
    assert request_problem(_scope("/products", many))[0] == 431
    assert request_problem(_scope("/products", query=b"q=" + b"a" * MAX_HEADER_BYTES))[0] == 431


def test_the_static_path_never_crashes_on_odd_names(tmp_path):
    gateway = Gateway(load())  # the product's template: an unknown path is its 404 NOT_FOUND
    (tmp_path / "index.html").write_text("<p>hi</p>")
    gateway.static_dir = tmp_path
    assert gateway.handle("GET", "/", "", {}, b"")[0] == 200
    for path in ("/\x00", "/" + "a" * 5000, "/" + "ü" * 200, "/..%2f..", "/index.html\x00.png"):
        status, headers, body = gateway.handle("GET", path, "", {}, b"")
        assert status == 404 and headers["content-type"] == "application/json", path
        assert json.loads(body)["error"]["code"] == "NOT_FOUND"


# ------------------------------------------------------------------------------ source IPs
@pytest.mark.parametrize(("raw", "network"), [
    ("203.0.113.7", "203.0.113.7"), (" 203.0.113.7 ", "203.0.113.7"), ("::ffff:203.0.113.7", "203.0.113.7"),
    ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"), ("2001:DB8:AA:BB::9", "2001:db8:aa:bb::/64"),
    ("x}{m1}:evil", None), ("1.2.3.4, 5.6.7.8", None), ("", None), (None, None), (42, None), ("1" * 60, None),
    ("01.02.03.04", None), ("gd:{p1}:stock", None),
])
def test_a_source_ip_is_validated_and_normalised_before_any_key_holds_it(raw, network):
    assert network_of(raw) == network
    if network is not None:
        assert keys.login_attempts_by_ip(network).endswith(network)


def test_key_names_refuse_unvalidated_source_text():
    for text in ("x}{m1}", "1.2.3.4 ", "a" * 80, "{p1}"):
        with pytest.raises(ValueError):
            keys.order_bucket_by_ip(text)
        with pytest.raises(ValueError):
            keys.sign_ups_by_ip(text)


# ------------------------------------------------------------------------------ names that pose as others
SPOOFS = ["Official\u202eStore", "Drop\u200bStudio", "Drop\u200dStudio", "\ufeffDrop", "Drop\u2066Studio\u2069",
          "Drop\u00adStudio", "Drop\u3164Studio", "Drop\u115fStudio", "Drop\u2800", "Dro\u034fp"]


@pytest.mark.parametrize("name", SPOOFS)
def test_bidi_overrides_and_invisible_characters_are_refused_in_product_and_shop_names(name):
    with pytest.raises(ValueError, match="invisible or text-direction"):
        check_shop_name(name)
    with pytest.raises(Exception, match="invisible or text-direction"):
        NewProduct.model_validate({"name": name, "description": "d", "price": 1, "stock": 1})


def test_ordinary_names_in_any_script_still_pass():
    for name in ("드롭 스튜디오", "Café Ünïcode", "Drop & Co.", "ドロップ", "متجر"):
        assert check_shop_name(name) == name
    assert NewProduct.model_validate({"name": "🎁 선물 세트 (限定)", "description": "d\u202e", "price": 1,
                                      "stock": 1}).name == "🎁 선물 세트 (限定)"  # descriptions are not names


# ------------------------------------------------------------------------------ search terms
def test_search_terms_are_capped():
    assert parse_search({"q": " ".join(f"word{i}" for i in range(MAX_QUERY_TERMS))}).fulltext_terms
    for q in (" ".join(f"word{i}" for i in range(MAX_QUERY_TERMS + 1)),
              " ".join(["ab", "cd", "ef"][:MAX_SHORT_TERMS + 1]), "a b c d", "the of to figure"):
        with pytest.raises(ValidationError) as refused:
            parse_search({"q": q})
        assert "q" in refused.value.details["fields"], q
    assert parse_search({"q": "figure figure figure figure figure figure"}).fulltext_terms == ("figure",)


# ------------------------------------------------------------------------------ edge throttling
def test_the_templates_method_throttles_are_read():
    app = load()
    assert {key: app.throttles[key] for key in app.throttles} == {
        ("POST", "/members"): Throttle(100, 200), ("POST", "/auth/login"): Throttle(100, 200),
        ("POST", "/auth/refresh"): Throttle(100, 200), ("POST", "/auth/logout"): Throttle(100, 200),
        ("GET", "/products"): Throttle(500, 1000)}
    tuned = load(environ={"GOODSDROP_AUTH_THROTTLE_RATE": "3", "GOODSDROP_AUTH_THROTTLE_BURST": "4"})
    assert tuned.throttle_for("POST", "/auth/login") == (("POST", "/auth/login"), Throttle(3, 4))
    assert tuned.throttle_for("GET", "/products/{id}") is None  # only the named methods are throttled
    fixture = load(FIXTURE, environ={})
    assert fixture.throttle_for("GET", "/things/{id}") == (("*", "/*"), Throttle(5000, 5000))  # the stage's default


def test_the_runtime_answers_429_like_api_gateway_once_a_methods_bucket_is_empty(tmp_path):
    app = load(FIXTURE, environ={"GOODSDROP_SEARCH_RATE": "2", "GOODSDROP_SEARCH_BURST": "3"})
    gateway = Gateway(app)
    now = [1000.0]
    gateway.throttle_buckets = ThrottleBuckets(app.throttles, tmp_path / "buckets.bin", clock=lambda: now[0])
    answers = [gateway.handle("GET", "/things/search", "", {}, b"")[0] for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]  # the burst, then nothing until tokens come back
    status, _headers, body = gateway.handle("GET", "/things/search", "", {}, b"")
    # The fixture declares no THROTTLED response: API Gateway's message in its DEFAULT_4XX template.
    assert status == 429 and json.loads(body)["error"]["message"] == "Too Many Requests"
    assert gateway.handle("GET", "/things/7", "", {}, b"")[0] == 200  # another method: its own bucket
    now[0] += 0.5  # rate 2/s: one token back
    assert [gateway.handle("GET", "/things/search", "", {}, b"")[0] for _ in range(2)] == [200, 429]
    # A second worker process maps the same file: the bucket is one for the whole API.
    other = ThrottleBuckets(app.throttles, tmp_path / "buckets.bin", clock=lambda: now[0])
    now[0] += 0.5
    assert other.take(("GET", "/things/search")) is True
    assert gateway.throttle_buckets.take(("GET", "/things/search")) is False


def test_the_templates_throttled_answer_is_the_contracts_429():
    app = load(environ={"GOODSDROP_SEARCH_THROTTLE_RATE": "0", "GOODSDROP_SEARCH_THROTTLE_BURST": "0"})
    status, headers, body = Gateway(app).handle("GET", "/products", "q=figure", {}, b"")
    assert status == 429 and {k.lower(): v for k, v in headers.items()}["retry-after"] == "1"
    assert json.loads(body) == {"error": {"code": "RATE_LIMITED", "message": "too many requests; try again shortly",
                                          "details": {"retryAfterSeconds": 1}}}
