"""The OpenAPI document is generated from the template and the handlers, and the checked-in copy
(served by GET /openapi.json) is that generation, unchanged."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from contract.openapi import OUTPUT, ROUTES, build, main, render
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
    assert (line["minimum"], line["maximum"]) == (1, 100)


def test_answers_are_the_layers_response_models(document):
    ok = document["paths"]["/orders"]["post"]["responses"]["202"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/OrderAccepted"}
    assert document["components"]["schemas"]["OrderAccepted"] == OrderAccepted.model_json_schema()
    assert "content" not in document["paths"]["/cart"]["delete"]["responses"]["204"]
