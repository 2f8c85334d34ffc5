"""HTTP requests become API Gateway proxy events for the right function, through the authorizer."""

import json
import re
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import ApiGatewayAuthorizerRequest, APIGatewayProxyEventModel

from goodsdrop_local.gateway import Gateway
from goodsdrop_local.proxy_events import request_authorizer_event, rest_proxy_event
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
    assert event["headers"]["X-Trace"] == "t1" and event["multiValueHeaders"]["X-Trace"] == ["t1"]
    assert event["requestContext"]["identity"]["sourceIp"] == "10.1.2.3"
    assert event["requestContext"]["stage"] == "test" and event["requestContext"]["requestId"]
    assert event["requestContext"]["path"] == "/test/things/7"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", event["requestContext"]["requestTime"])
    assert event["isBase64Encoded"] is False and event["body"] is None
    assert "authorizer" not in event["requestContext"]  # a public route: API Gateway sends none
    APIGatewayProxyEventModel.model_validate(event)


def test_header_names_keep_the_clients_case_and_repeats_are_kept(gateway):
    _, _, event = call(gateway, "GET", "/things/7", "", [("X-Trace", "a"), ("x-MIXED-case", "m"), ("X-Trace", "b")])
    assert event["headers"]["X-Trace"] == "b" and event["multiValueHeaders"]["X-Trace"] == ["a", "b"]
    assert event["headers"]["x-MIXED-case"] == "m"


def test_the_gateway_adds_forwarding_headers_as_api_gateway_does(gateway):
    _, _, event = call(gateway, "GET", "/things/7", "", {"X-Forwarded-For": "203.0.113.9", "x-amzn-trace-id": "mine"})
    headers = event["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.9, 10.1.2.3"  # appended; sourceIp stays the caller's
    assert event["requestContext"]["identity"]["sourceIp"] == "10.1.2.3"
    assert headers["X-Forwarded-Proto"] == "http" and headers["X-Forwarded-Port"].isdigit()
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-") and "x-amzn-trace-id" not in headers


def test_concrete_routes_win_over_captures(gateway):
    _, _, event = call(gateway, "GET", "/things/search")
    assert event["resource"] == "/things/search" and event["pathParameters"] is None


def test_unknown_route_and_wrong_method_are_api_gateways_missing_token_response(gateway):
    # API Gateway answers both with MISSING_AUTHENTICATION_TOKEN (403), through DEFAULT_4XX here.
    for method, path in (("GET", "/nope"), ("DELETE", "/things/1")):
        status, headers, body = call(gateway, method, path)
        assert status == 403 and body["error"] == {"code": "BAD_REQUEST", "message": "Missing Authentication Token",
                                                   "details": {}}
        assert headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_missing_token_is_401_without_calling_the_authorizer(gateway):
    status, headers, body = call(gateway, "POST", "/me", body=b"{}")
    assert status == 401 and body["error"]["message"] == "Unauthorized"  # UNAUTHORIZED through DEFAULT_4XX
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_authorizer_allow_puts_its_context_on_the_event(gateway):
    status, _, event = call(gateway, "POST", "/me", headers={"authorization": "Bearer allow"}, body=b'{"a":1}')
    assert status == 200
    context = event["requestContext"]["authorizer"]
    assert isinstance(context.pop("integrationLatency"), int)
    # Values arrive as strings (API Gateway coerces the authorizer's numbers and booleans).
    assert context == {"memberId": "42", "role": "member", "emailVerified": "true", "principalId": "42"}
    assert event["body"] == '{"a":1}'


def test_the_request_authorizer_event_is_api_gateways():
    event = rest_proxy_event(method="GET", path="/things/7", resource="/things/{id}", path_parameters={"id": "7"},
                             multi_query={"q": ["a"]}, headers=[("Authorization", "Bearer x"), ("Host", "h:1")],
                             body=b"", source_ip="10.0.0.1", stage="test")
    request = request_authorizer_event(event)
    assert "authorizationToken" not in request  # only TOKEN authorizers get one
    assert request["type"] == "REQUEST" and request["headers"]["Authorization"] == "Bearer x"
    assert request["multiValueHeaders"]["Authorization"] == ["Bearer x"]
    assert request["methodArn"].endswith(":local/test/GET/things/7")
    assert request["requestContext"]["requestTime"] and "authorizer" not in request["requestContext"]
    ApiGatewayAuthorizerRequest.model_validate(request)


def test_authorizer_deny_uses_the_templates_gateway_response(gateway):
    status, headers, body = call(gateway, "POST", "/me", headers={"Authorization": "Bearer expired"})
    assert status == 401 and body["error"]["code"] == "TOKEN_EXPIRED"
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_authorizer_raising_unauthorized_is_401(gateway):
    status, _, body = call(gateway, "POST", "/me", headers={"Authorization": "Bearer forged"})
    assert status == 401 and body["error"]["message"] == "Unauthorized"


def test_the_runtime_adds_no_cors_headers_to_a_functions_response(gateway):
    status, headers, _ = call(gateway, "GET", "/things/7", "", {"Origin": "https://shop.example"})
    assert status == 200 and not [h for h in headers if h.lower().startswith("access-control-")]


def test_options_is_answered_like_sams_cors_mock_integration(gateway):
    status, headers, body = call(gateway, "OPTIONS", "/me", "", {"Origin": "https://shop.example"})
    assert status == 200 and body == {}  # no authorizer, no function: API Gateway's mock
    assert headers["access-control-allow-origin"] == "https://shop.example"
    assert headers["access-control-allow-methods"] == "OPTIONS,POST"
    assert headers["access-control-allow-headers"] == "Authorization,Content-Type"
    assert headers["access-control-max-age"] == "600"
    status, headers, _ = call(gateway, "OPTIONS", "/things/7")
    assert status == 200 and headers["access-control-allow-methods"] == "GET,OPTIONS"


def test_without_cors_in_the_template_options_is_no_route():
    app = load(FIXTURE, environ={})
    app.cors = None
    status, headers, _ = call(Gateway(app), "OPTIONS", "/me")
    assert status == 403 and not [h for h in headers if h.lower().startswith("access-control-allow-m")]


def test_function_errors_map_to_gateway_errors_without_leaking(gateway):
    status, headers, body = call(gateway, "GET", "/crash")
    assert status == 502 and "hunter2" not in json.dumps(body)
    assert body["error"]["code"] == "INTERNAL_ERROR"  # DEFAULT_5XX, with its headers
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"
    status, _, body = call(gateway, "GET", "/garbage")
    assert status == 502


def test_timeout_from_the_template_is_enforced(gateway):
    status, _, body = call(gateway, "GET", "/hang")
    assert status == 504 and body["error"] == {"code": "INTERNAL_ERROR", "message": "Endpoint request timed out",
                                               "details": {}}


def test_functions_stay_warm(gateway):
    first = gateway.pool.get("EchoFunction").handler
    call(gateway, "GET", "/things/1")
    assert gateway.pool.get("EchoFunction").handler is first


def _cached_gateway(monkeypatch, ttl_seconds):
    """The fixture's API with its authorizer's ReauthorizeEvery set to `ttl_seconds`, a clock the test moves,
    and an authorizer whose allowed tokens the test decides (each call counted)."""
    import goodsdrop_local.gateway as gateway_module

    app = load(FIXTURE, environ={})
    for authorizer in app.authorizers.values():
        authorizer.ttl_seconds = ttl_seconds
    gateway = Gateway(app)
    clock = [1000.0]
    monkeypatch.setattr(gateway_module.time, "monotonic", lambda: clock[0])
    allowed, calls = {"Bearer allow"}, []
    warm = gateway.pool.get(app.authorizers["TestAuthorizer"].function_id)
    real = warm.handler

    def decide(event, context):
        token = next(v for k, v in event["headers"].items() if k.lower() == "authorization")
        calls.append(token)
        return real({**event, "headers": {"Authorization": "Bearer allow" if token in allowed else "Bearer expired"}},
                    context)

    warm._handler = decide
    return gateway, clock, allowed, calls


def test_the_authorizer_result_is_cached_per_identity_source_for_reauthorize_every(monkeypatch):
    """API Gateway caches a REQUEST authorizer's policy for ReauthorizeEvery seconds, keyed by the identity
    sources' values: within the TTL the authorizer is not called again (a revoked token still passes, as on
    AWS); once it has passed, the authorizer decides again and the revoked token is refused."""
    gateway, clock, allowed, calls = _cached_gateway(monkeypatch, 300)
    assert call(gateway, "POST", "/me", headers={"Authorization": "Bearer allow"})[0] == 200
    allowed.discard("Bearer allow")  # revoked
    clock[0] += 299
    assert call(gateway, "POST", "/me", headers={"authorization": "Bearer allow"})[0] == 200  # the cached Allow
    assert calls == ["Bearer allow"]
    assert call(gateway, "POST", "/me", headers={"Authorization": "Bearer other"})[0] == 401  # another identity
    assert calls == ["Bearer allow", "Bearer other"]
    clock[0] += 1.5  # the Allow is older than the TTL now
    status, _, body = call(gateway, "POST", "/me", headers={"Authorization": "Bearer allow"})
    assert status == 401 and body["error"]["code"] == "TOKEN_EXPIRED"
    assert calls == ["Bearer allow", "Bearer other", "Bearer allow"]


def test_with_reauthorize_every_0_the_authorizer_decides_every_request(monkeypatch):
    gateway, _, allowed, calls = _cached_gateway(monkeypatch, 0)  # the product's template: a logout counts at once
    assert call(gateway, "POST", "/me", headers={"Authorization": "Bearer allow"})[0] == 200
    allowed.discard("Bearer allow")
    assert call(gateway, "POST", "/me", headers={"Authorization": "Bearer allow"})[0] == 401
    assert calls == ["Bearer allow", "Bearer allow"]
