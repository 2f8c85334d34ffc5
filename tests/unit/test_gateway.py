"""HTTP requests become API Gateway proxy events for the right function, through the authorizer."""

import json
from pathlib import Path

import pytest

from goodsdrop_local.gateway import Gateway
from goodsdrop_local.template import load

FIXTURE = Path(__file__).parents[1] / "fixtures" / "template.yaml"


@pytest.fixture(scope="module")
def gateway():
    return Gateway(load(FIXTURE, environ={}))


def call(gateway, method, path, query="", headers=None, body=b""):
    status, out_headers, raw = gateway.handle(method, path, query, headers or {}, body, "10.1.2.3")
    return status, out_headers, json.loads(raw) if raw else None


def test_request_becomes_a_rest_proxy_event(gateway):
    status, headers, event = call(gateway, "GET", "/things/7", "q=a&q=b&x=1", {"X-Trace": "t1"})
    assert status == 200 and headers["x-function"] == "EchoFunction"
    assert event["httpMethod"] == "GET" and event["path"] == "/things/7" and event["resource"] == "/things/{id}"
    assert event["pathParameters"] == {"id": "7"}
    assert event["queryStringParameters"] == {"q": "b", "x": "1"}
    assert event["multiValueQueryStringParameters"] == {"q": ["a", "b"], "x": ["1"]}
    assert event["headers"]["x-trace"] == "t1"
    assert event["requestContext"]["identity"]["sourceIp"] == "10.1.2.3"
    assert event["requestContext"]["stage"] == "test" and event["requestContext"]["requestId"]
    assert event["isBase64Encoded"] is False and event["body"] is None


def test_concrete_routes_win_over_captures(gateway):
    _, _, event = call(gateway, "GET", "/things/search")
    assert event["resource"] == "/things/search" and event["pathParameters"] is None


def test_unknown_route_and_wrong_method_are_json_errors(gateway):
    status, _, body = call(gateway, "GET", "/nope")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    status, _, body = call(gateway, "DELETE", "/things/1")
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_missing_token_is_401_without_calling_the_authorizer(gateway):
    status, _, body = call(gateway, "POST", "/me", body=b"{}")
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"


def test_authorizer_allow_puts_its_context_on_the_event(gateway):
    status, _, event = call(gateway, "POST", "/me", headers={"Authorization": "Bearer allow"}, body=b'{"a":1}')
    assert status == 200
    assert event["requestContext"]["authorizer"] == {"memberId": "42", "role": "member", "emailVerified": "true",
                                                     "principalId": "42"}
    assert event["body"] == '{"a":1}'


def test_authorizer_deny_uses_the_templates_gateway_response(gateway):
    status, _, body = call(gateway, "POST", "/me", headers={"Authorization": "Bearer expired"})
    assert status == 401 and body["error"]["code"] == "TOKEN_EXPIRED"


def test_authorizer_raising_unauthorized_is_401(gateway):
    status, _, body = call(gateway, "POST", "/me", headers={"Authorization": "Bearer forged"})
    assert status == 401 and body["error"]["code"] == "UNAUTHORIZED"


def test_function_errors_map_to_gateway_errors_without_leaking(gateway):
    status, _, body = call(gateway, "GET", "/crash")
    assert status == 502 and "hunter2" not in json.dumps(body)
    status, _, body = call(gateway, "GET", "/garbage")
    assert status == 502


def test_timeout_from_the_template_is_enforced(gateway):
    status, _, body = call(gateway, "GET", "/hang")
    assert status == 504 and body["error"]["code"] == "TIMEOUT"


def test_functions_stay_warm(gateway):
    first = gateway.pool.get("EchoFunction").handler
    call(gateway, "GET", "/things/1")
    assert gateway.pool.get("EchoFunction").handler is first
