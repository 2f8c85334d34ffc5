"""The OpenAPI document is generated from the template and the handlers, and the checked-in copy
(served by GET /openapi.json) is that generation, unchanged."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from contract.openapi import OUTPUT, ROUTES, build, main, render
from goodsdrop.fields import ID_PATTERN
from goodsdrop.responses import OrderAccepted
from goodsdrop_local.template import load


@pytest.fixture(scope="module")
def document():
    return build()


def test_the_checked_in_document_is_fresh(document):
    assert OUTPUT.read_text() == render(document), "run `make openapi`"


def test_the_check_mode_passes_the_checked_in_document_and_fails_a_stale_one(tmp_path, capsys):
    assert main(["--check"]) == 0
    stale = tmp_path / "openapi.json"
    stale.write_text(OUTPUT.read_text().replace('"title": "GoodsDrop HTTP API"', '"title": "another API"'))
    assert main(["--check", "--output", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err


def test_it_is_a_valid_openapi_document(document):
    validate(json.loads(render(document)))


def test_every_route_of_the_template_is_documented_with_its_auth_and_errors(document):
    app = load(environ={})
    assert {(r.method, r.path) for r in app.routes} == set(ROUTES)
    for route in app.routes:
        operation = document["paths"][route.path][route.method.lower()]
        responses = operation["responses"]
        assert str(ROUTES[(route.method, route.path)].status) in responses
        assert "503" in responses
        for status, response in responses.items():
            if status.startswith("4") or status.startswith("5"):
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if route.authorizer:
            assert operation["security"] == [{"bearerAuth": []}] and "401" in responses
        else:
            assert operation["security"] == []
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses)


def test_request_bodies_are_the_handlers_models(document):
    body = document["paths"]["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PlaceOrder"}
    place_order = document["components"]["schemas"]["PlaceOrder"]
    assert place_order["required"] == ["paymentToken"] and place_order["additionalProperties"] is False
    line = document["components"]["schemas"]["OrderLineRequest"]["properties"]["quantity"]
    assert (line["minimum"], line["maximum"]) == (1, 99)
    # One quantity bound and one id pattern for a cart line and an order line (no "072" anywhere).
    cart_line = document["components"]["schemas"]["NewCartLine"]["properties"]
    assert (cart_line["quantity"]["minimum"], cart_line["quantity"]["maximum"]) == (1, 99)
    order_line = document["components"]["schemas"]["OrderLineRequest"]["properties"]
    assert cart_line["productId"]["pattern"] == order_line["productId"]["pattern"] == ID_PATTERN
    for path, item in document["paths"].items():
        for operation in item.values():
            for param in operation.get("parameters", []):
                product_id = param["name"] == "productId" or (param["name"] == "id" and "orders" not in path)
                if param["in"] == "path" and product_id:
                    assert param["schema"]["pattern"] == ID_PATTERN, (path, param)
                if param["name"] == "ticket":
                    assert "ticket" in param["schema"]["description"] and "product" not in param["schema"][
                        "description"].split(":")[0]


def test_sign_up_rules_are_stated(document):
    sign_up = document["components"]["schemas"]["SignUp"]["properties"]
    assert (sign_up["password"]["minLength"], sign_up["password"]["maxLength"]) == (8, 128)
    assert sign_up["email"]["maxLength"] == 254 and sign_up["email"]["pattern"].startswith("^")
    assert sign_up["name"]["maxLength"] == 100 and "letters of any script" in sign_up["name"]["description"]


def test_answers_are_the_layers_response_models(document):
    ok = document["paths"]["/orders"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/OrderAccepted"}
    assert document["components"]["schemas"]["OrderAccepted"] == OrderAccepted.model_json_schema()
    assert "content" not in document["paths"]["/cart"]["delete"]["responses"]["204"]
