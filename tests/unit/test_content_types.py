"""The API takes JSON only: a multipart body is 415 and a body that is not UTF-8 is 400, in the
contract's shape, never a 500 (schemathesis found both crashing Powertools' body parsers); and
JSON that Python's parser chokes on or reads its own way (nested thousands deep, duplicate keys,
1e400, NaN, thousands of digits) is 400 before Powertools parses it."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import BaseModel

from goodsdrop.http import MAX_BODY_BYTES, MAX_JSON_DEPTH, make_resolver


class Body(BaseModel):
    name: str
    items: list = []


def _event(content_type: str, body: str) -> dict:
    return {"httpMethod": "POST", "path": "/things", "resource": "/things", "headers": {"Content-Type": content_type},
            "multiValueHeaders": {}, "queryStringParameters": None, "pathParameters": None, "body": body,
            "isBase64Encoded": False, "requestContext": {"requestId": "r", "stage": "test",
                                                         "identity": {"sourceIp": "127.0.0.1"}}}


@pytest.fixture
def app():
    resolver = make_resolver()

    @resolver.post("/things")
    def post(body: Body):
        return {"name": body.name}

    return resolver


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=x",
                                          "Multipart/Mixed", "text/plain", "application/xml"])
def test_non_json_bodies_are_415(app, content_type):
    result = app.resolve(_event(content_type, '{"name": "x"}'), None)
    assert result["statusCode"] == 415, result
    assert json.loads(result["body"])["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_body_that_is_not_utf8_is_400(app):
    event = _event("application/json", base64.b64encode(b'{"name": "\xff\xfe"}').decode()) | {"isBase64Encoded": True}
    result = app.resolve(event, None)
    assert result["statusCode"] == 400, result
    assert json.loads(result["body"])["error"]["details"]["fields"] == {"body": "not UTF-8"}
    fine = _event("application/json", base64.b64encode('{"name": "김"}'.encode()).decode()) | {"isBase64Encoded": True}
    assert app.resolve(fine, None)["statusCode"] == 200


def test_a_body_over_the_limit_is_413_before_it_is_parsed(app):
    for body in ('{"name": "' + "x" * MAX_BODY_BYTES + '"}', '{"unknown": "' + "x" * MAX_BODY_BYTES + '"}',
                 "[" * (MAX_BODY_BYTES + 1)):
        result = app.resolve(_event("application/json", body), None)
        assert result["statusCode"] == 413, result["body"][:200]
        assert json.loads(result["body"])["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_json_still_works(app):
    result = app.resolve(_event("application/json; charset=utf-8", '{"name": "x"}'), None)
    assert result["statusCode"] == 200 and json.loads(result["body"]) == {"name": "x"}


# ------------------------------------------------------------------------------ JSON bodies
def _post(app, body: str) -> tuple[int, dict]:
    result = app.resolve(_event("application/json", body), None)
    return result["statusCode"], json.loads(result["body"])


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return '{"name": "x", "items": ' + opener * depth + closer * depth + "}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 500, 3000, 10_000])
def test_deep_json_is_400_never_a_recursion_error(app, depth):
    status, body = _post(app, _nested(depth))
    if depth < MAX_JSON_DEPTH:  # the object itself is one level
        assert status == 200, body
    else:
        assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR", body
        assert body["error"]["details"]["fields"] == {"body": f"nested deeper than {MAX_JSON_DEPTH} levels"}
    deep_objects = '{"name": "x", "items": [' + '{"a":' * depth + "1" + "}" * depth + "]}"
    status, body = _post(app, deep_objects)
    assert status == (200 if depth < MAX_JSON_DEPTH - 1 else 400), body


@pytest.mark.parametrize(("raw", "problem"), [
    ('{"name": "a", "name": "b"}', "duplicate key 'name'"),
    ('{"name": "a", "items": [{"k": 1, "k": 2}]}', "duplicate key 'k'"),
    ('{"name": "a", "items": [1e400]}', "a number is out of range"),
    ('{"name": "a", "items": [-1e400]}', "a number is out of range"),
    ('{"name": "a", "items": [' + "9" * 5000 + "]}", "a number is out of range"),
    ('{"name": "a", "items": [-' + "1" * 1001 + "]}", "a number is out of range"),
    ('{"name": "a", "items": [NaN]}', "NaN is not JSON"),
    ('{"name": "a", "items": [Infinity]}', "Infinity is not JSON"),
])
def test_json_that_parsers_read_differently_is_refused(app, raw, problem):
    status, body = _post(app, raw)
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR", body
    assert body["error"]["details"]["fields"] == {"body": problem}


def test_ordinary_numbers_and_text_still_pass(app):
    assert _post(app, '{"name": "a", "items": [1, -2, 1.5e10, 1e-400, ' + "9" * 1000 + ', "1e400"]}')[0] == 200
