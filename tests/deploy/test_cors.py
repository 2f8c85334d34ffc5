"""CORS as API Gateway deploys it, and the local runtime the same: SAM's `Cors` adds an OPTIONS mock
integration to every path (the runtime answers OPTIONS with exactly its headers), and every gateway
response the template declares carries Access-Control-Allow-Origin (with Lambda proxy integration API
Gateway adds none by itself; the functions send their own, tests/integ/test_cors.py)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from goodsdrop_local.gateway import Gateway
from goodsdrop_local.template import TEMPLATE_PATH, Resolver, _CfnLoader, load

TEMPLATE = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)
DEFAULTS = Resolver({name: str(spec.get("Default", "")) for name, spec in TEMPLATE["Parameters"].items()})


def _api_body(cloudformation: dict[str, Any]) -> dict[str, Any]:
    (api,) = [r for r in cloudformation["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    return api["Properties"]["Body"]


def _quoted(value: Any) -> str:
    return str(DEFAULTS(value)).strip("'")


def test_options_is_answered_like_the_deployed_mock_integration(cloudformation):
    gateway = Gateway(load(environ={}))
    paths = _api_body(cloudformation)["paths"]
    assert paths
    for path, methods in paths.items():
        mock = methods["options"]["x-amazon-apigateway-integration"]
        assert mock["type"] == "mock" and "security" not in methods["options"]  # no authorizer on a preflight
        deployed = mock["responses"]["default"]
        status, headers, body = gateway.handle("OPTIONS", re.sub(r"\{[^}]+\}", "1", path), "", {}, b"")
        assert status == int(deployed["statusCode"]), path
        assert {k: v for k, v in headers.items() if k.startswith("access-control-")} == {
            k.removeprefix("method.response.header.").lower(): _quoted(v)
            for k, v in deployed["responseParameters"].items()}, path
        assert body.decode() == deployed["responseTemplates"]["application/json"]


def test_every_gateway_response_carries_the_allowed_origin(cloudformation):
    deployed = _api_body(cloudformation)["x-amazon-apigateway-gateway-responses"]
    # The Deny path, a missing token, throttling, errors: what a cross-origin page must be able to read.
    assert {"ACCESS_DENIED", "UNAUTHORIZED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(deployed)
    local = load(environ={}).gateway_responses
    for kind, response in deployed.items():
        parameters = response["responseParameters"]
        assert _quoted(parameters["gatewayresponse.header.Access-Control-Allow-Origin"]) == "*", kind
        if "gatewayresponse.header.Retry-After" in parameters:
            assert _quoted(parameters["gatewayresponse.header.Access-Control-Expose-Headers"]) == "Retry-After"
        # The runtime reads the same status and headers.
        assert local[kind].status == (int(response["statusCode"]) if "statusCode" in response else None), kind
        assert local[kind].headers == {k.removeprefix("gatewayresponse.header."): _quoted(v)
                                       for k, v in parameters.items()}, kind


def test_one_parameter_sets_the_origin_everywhere():
    functions = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert functions["GOODSDROP_ALLOWED_ORIGIN"] == {"Ref": "AllowedOrigin"}
    container = TEMPLATE["Resources"]["LiveStockTask"]["Properties"]["ContainerDefinitions"][0]["Environment"]
    assert {"Name": "GOODSDROP_ALLOWED_ORIGIN", "Value": {"Ref": "AllowedOrigin"}} in container
    app = load(environ={"GOODSDROP_ALLOWED_ORIGIN": "https://shop.example"})
    assert app.cors.allow_origin == "https://shop.example"
    assert {r.headers["Access-Control-Allow-Origin"] for r in app.gateway_responses.values()} == {
        "https://shop.example"}
    assert {f.environment["GOODSDROP_ALLOWED_ORIGIN"] for f in app.functions.values()} == {"https://shop.example"}
