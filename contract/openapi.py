"""The HTTP API's OpenAPI 3 document, generated from the template and the layer's models.

    python -m contract.openapi            # write functions/openapi/openapi.json (`make openapi`)
    python -m contract.openapi --check    # exit 1 when the checked-in document is stale

One source per fact, nothing written twice:
- paths, methods and which routes need a bearer token come from infra/template.yaml (what API
  Gateway serves; read with the template reader the local runtime uses too);
- request bodies and path parameters come from each handler's Powertools route and its pydantic
  model (`app.get_openapi_schema()`): the very models that validate requests;
- what a route answers is its handler's return annotation, `-> Response[Model]` with a model of
  `goodsdrop.responses` (Powertools validates every answer against it);
- the success status, the errors and the query parameters and headers a handler reads by hand are
  stated once in `ROUTES` below; tests/unit/test_openapi_document.py keeps `ROUTES` and the
  template equal, and schemathesis (tests/reliability/test_openapi_contract.py) checks every answer
  of the running stack against the document.

The document is a build artefact checked in next to the function that serves it
(GET /openapi.json, functions/openapi/): a Lambda package cannot import the other handlers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, NoneType
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from goodsdrop import responses
from goodsdrop.fields import ID_PATTERN
from goodsdrop.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from goodsdrop.responses import Error
from goodsdrop_local.template import REPO_ROOT, App, Function, load

OUTPUT = REPO_ROOT / "functions" / "openapi" / "openapi.json"
TITLE = "GoodsDrop HTTP API"
VERSION = "1.0.0"
# The layer's response models, by name: a handler's Powertools schema names them too, and they are
# written from `model_json_schema` here, never taken from there.
RESPONSE_MODELS = {name: value for name, value in vars(responses).items() if isinstance(value, type)
                   and issubclass(value, BaseModel) and value.__module__ == responses.__name__}


# ------------------------------------------------------------------------------------ what each route says


@dataclass(frozen=True)
class Param:
    """A query parameter or header a handler reads by hand."""

    name: str
    schema: dict[str, Any]
    required: bool = False
    where: str = "query"
    description: str = ""


@dataclass(frozen=True)
class RouteDoc:
    """A route's success status, the errors it may give and the parameters it reads by hand; the body
    it answers is its handler's return annotation (`-> Response[Model]`, goodsdrop.responses)."""

    status: int
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()


PAGE = (Param("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
        Param("size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}))

ROUTES: dict[tuple[str, str], RouteDoc] = {
    ("POST", "/members"): RouteDoc(202, (429,)),
    ("GET", "/members/verify"): RouteDoc(200, (400, 404, 409, 410), (
        Param("token", {"type": "string", "maxLength": 200}, required=True,
              description="the token of the link in the verification mail"),)),
    ("POST", "/members/verify/resend"): RouteDoc(202, (409, 429)),
    ("GET", "/members/me"): RouteDoc(200, (404,)),
    ("PATCH", "/members/me"): RouteDoc(200, (404,)),
    ("PATCH", "/members/me/password"): RouteDoc(200, (403, 429)),  # wrong current passwords are throttled
    ("POST", "/auth/login"): RouteDoc(200, (401, 429)),
    ("POST", "/auth/refresh"): RouteDoc(200, (401,)),
    ("POST", "/auth/logout"): RouteDoc(204),
    ("POST", "/sellers"): RouteDoc(201, (403, 409)),
    ("GET", "/products"): RouteDoc(200, (400,), (
        Param("q", {"type": "string", "maxLength": 100}, description="words of the name or description"),
        Param("sellerId", {"type": "string", "pattern": ID_PATTERN, "description": "a seller's member id"}),
        Param("minPrice", {"type": "integer", "minimum": 0}),
        Param("maxPrice", {"type": "integer", "minimum": 0}),
        Param("status", {"type": "string", "enum": ["on_sale", "upcoming", "sold_out"]}),
        Param("sort", {"type": "string", "enum": ["newest", "price_asc", "price_desc"], "default": "newest"}),
        *PAGE)),
    ("POST", "/products"): RouteDoc(201, (403,)),
    ("GET", "/products/{id}"): RouteDoc(200, (400, 404)),
    ("PATCH", "/products/{id}"): RouteDoc(200, (400, 403, 404)),
    ("GET", "/products/{id}/stock"): RouteDoc(200, (400, 404)),
    ("PUT", "/products/{id}/listing"): RouteDoc(200, (400, 403, 404)),
    ("DELETE", "/products/{id}"): RouteDoc(204, (400, 403, 404, 409)),
    ("PUT", "/products/{id}/stock"): RouteDoc(200, (400, 403, 404, 409)),
    ("GET", "/sellers/me/products"): RouteDoc(200, (400, 403), PAGE),
    ("POST", "/orders"): RouteDoc(202, (403, 404, 409, 429), (
        Param("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}, required=True, where="header",
              description="the same key and body answer the same; the same key with another body is 409"),)),
    ("GET", "/orders"): RouteDoc(200, (400,), (
        *PAGE, Param("status", {"type": "string", "enum": ["PENDING", "CONFIRMED", "FAILED", "EXPIRED",
                                                           "CANCELLED"]}))),
    ("GET", "/orders/{id}"): RouteDoc(200, (400, 404)),
    ("POST", "/orders/{id}/cancel"): RouteDoc(200, (400, 404, 409)),
    ("POST", "/orders/{id}/items/{productId}/cancel"): RouteDoc(200, (400, 404, 409)),
    ("POST", "/orders/{id}/items/{productId}/return"): RouteDoc(200, (400, 404, 409)),
    ("PATCH", "/seller/orders/{id}/items/{productId}"): RouteDoc(200, (400, 403, 404, 409)),
    ("GET", "/seller/orders"): RouteDoc(200, (400, 403), (
        Param("status", {"type": "string", "enum": ["PREPARING", "SHIPPED", "DELIVERED", "RETURN_REQUESTED", "RETURNED",
                                                     "RETURN_REFUSED", "CANCELLED"]},
              description="only lines in this delivery status (RETURN_REQUESTED: returns waiting for a decision)"),
        Param("productId", {"type": "string", "pattern": ID_PATTERN},
              description="only lines of this product of yours"),
        Param("from", {"type": "string", "maxLength": 40},
              description="ordered at or after: YYYY-MM-DD (UTC) or an ISO-8601 date-time with a zone"),
        Param("to", {"type": "string", "maxLength": 40},
              description="ordered before: an ISO-8601 date-time with a zone, or YYYY-MM-DD (that whole UTC day)"),
        *PAGE)),
    ("PUT", "/seller/orders/{id}/items/{productId}/return"): RouteDoc(200, (400, 403, 404, 409)),
    ("GET", "/cart"): RouteDoc(200),
    ("POST", "/cart/items"): RouteDoc(200, (404, 409)),
    ("PATCH", "/cart/items/{productId}"): RouteDoc(200, (404, 409)),
    ("DELETE", "/cart/items/{productId}"): RouteDoc(204, (404,)),
    ("DELETE", "/cart"): RouteDoc(204),
    ("POST", "/products/{id}/queue"): RouteDoc(200, (400, 403, 404, 409)),
    ("GET", "/products/{id}/queue/{ticket}"): RouteDoc(200, (400, 403, 404, 409)),
    ("GET", "/openapi.json"): RouteDoc(200),
    ("GET", "/dashboard/products"): RouteDoc(200, (400, 403), PAGE),
    ("GET", "/dashboard/products/{id}/report"): RouteDoc(200, (400, 403, 404), (
        Param("from", {"type": "string", "pattern": "^[0-9]{1,15}$"},
              description="epoch ms (default: a minute before the sales start); at most 6 hours before `to`"),
        Param("to", {"type": "string", "pattern": "^[0-9]{1,15}$"}, description="epoch ms (default: now)"))),
    ("POST", "/dashboard/products/{id}/stream-ticket"): RouteDoc(201, (400, 403, 404)),
}

ERRORS = {
    400: "VALIDATION_ERROR: the request is malformed; details.fields names each bad field",
    401: "UNAUTHORIZED or TOKEN_EXPIRED: no valid access token (or wrong credentials)",
    403: "FORBIDDEN or EMAIL_NOT_VERIFIED: the caller may not do this",
    404: "NOT_FOUND: no such resource (or not the caller's)",
    409: "a conflict with the current state; the code says which (OUT_OF_STOCK, "
         "PURCHASE_LIMIT_EXCEEDED (counting units the member holds or bought), CHECKOUT_PENDING: the cart's order "
         "is still pending, NOT_ON_SALE, IDEMPOTENCY_KEY_REUSED, INVALID_STATE, QUEUE_REQUIRED: "
         "join details.queue, NO_WAITING_ROOM: order directly, RETURN_WINDOW_CLOSED, NO_RETURN_REQUESTED, "
         "PRODUCT_UNAVAILABLE: unlisted or deleted, PRODUCT_HAS_ORDERS, ...)",
    410: "VERIFICATION_LINK_EXPIRED, or VERIFICATION_LINK_REPLACED: a newer link was sent (open the latest)",
    413: "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
    415: "UNSUPPORTED_MEDIA_TYPE: send application/json",
    429: "RATE_LIMITED: too many attempts (or the method's throttle at the edge); see Retry-After",
    503: "SERVICE_UNAVAILABLE: a dependency is briefly unavailable, nothing was changed; see Retry-After",
}


# ------------------------------------------------------------------------------------ building the document


def handler_module(function: Function) -> ModuleType:
    """The handler's module, imported from its file as Lambda would (once per process)."""
    name = f"goodsdrop_contract_{function.logical_id}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, function.module_file)
        assert spec is not None and spec.loader is not None, function.module_file
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _handler_schema(module: ModuleType) -> dict[str, Any]:
    """The OpenAPI document Powertools derives from one handler's resolver (routes + pydantic models)."""
    schema = module.app.get_openapi_schema(title=TITLE, version=VERSION)
    return json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))


def answer_model(module: ModuleType, method: str, shape: str) -> type[BaseModel] | None:
    """The body model of the handler's route for `method` on a path of `shape` (`/products/{}`), from
    its return annotation `Response[Model]` (`Response[None]`: no body)."""
    routes = [r for r in module.app._static_routes + module.app._dynamic_routes
              if r.method == method and re.sub(r"{[^}]+}", "{}", r.openapi_path) == shape]
    if len(routes) != 1:
        raise ValueError(f"{module.__file__} serves no {method} {shape} route")
    annotation = typing.get_type_hints(routes[0].func).get("return")
    if typing.get_origin(annotation) is not Response or len(typing.get_args(annotation)) != 1:
        raise ValueError(f"{module.__file__}: annotate the route `-> Response[Model]` (goodsdrop.responses)")
    (model,) = typing.get_args(annotation)
    if model is None or model is NoneType:
        return None
    if RESPONSE_MODELS.get(model.__name__) is not model:
        raise ValueError(f"{module.__file__}: {model!r} is not a model of goodsdrop.responses")
    return model


def _template_path(powertools_path: str, template_path: str) -> dict[str, str]:
    """Powertools' path parameter names → the template's, by position."""
    ours = re.findall(r"{([^}]+)}", powertools_path)
    theirs = re.findall(r"{([^}]+)}", template_path)
    if len(ours) != len(theirs):
        raise ValueError(f"{powertools_path} and {template_path} have different parameters")
    return dict(zip(ours, theirs, strict=True))


PRODUCT_ID = {"type": "string", "pattern": ID_PATTERN, "description": "a product id (no leading zero)"}
ORDER_ID = {"type": "string", "pattern": r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$", "description": "an order id (ULID)"}


TICKET = {"type": "string", "pattern": r"^[1-9][0-9]{0,14}$",
          "description": "a waiting-room ticket: the `ticket` POST /products/{id}/queue gave the caller"}


def _path_schema(path: str, name: str) -> dict[str, Any]:
    """What a path parameter looks like (the handlers' parse_product_id / parse_order_id / parse_ticket accept it)."""
    if name == "id" and "/orders/" in path:
        return ORDER_ID
    if name == "ticket":
        return TICKET
    return PRODUCT_ID


def _response(description: str, model: type[BaseModel] | None) -> dict[str, Any]:
    if model is None:
        return {"description": description}
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}


def _operation(route: Any, handler_op: dict[str, Any], names: dict[str, str], doc: RouteDoc,
               body: type[BaseModel] | None, summary: str, throttled: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.function_id[0].lower() + route.function_id[1:].removesuffix(
        "Function"), "summary": summary, "tags": [route.path.strip("/").split("/")[0]]}
    params = []
    for p in handler_op.get("parameters", []):
        if p.get("in") == "path":
            name = names[p["name"]]
            p = p | {"name": name, "schema": _path_schema(route.path, name)}
            p.pop("description", None)
        params.append(p)
    for p in doc.params:
        entry: dict[str, Any] = {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
        if p.where == "query" and not p.required:
            entry["allowEmptyValue"] = True  # `?sort=` is the same as leaving it out
        if p.description:
            entry["description"] = p.description
        params.append(entry)
    if params:
        operation["parameters"] = params
    errors = set(doc.errors) | {503}
    if "requestBody" in handler_op:
        operation["requestBody"] = handler_op["requestBody"]
        errors |= {400, 413, 415}
    if any(p.get("in") in ("path", "query", "header") for p in params):
        errors.add(400)
    if throttled:
        errors.add(429)  # API Gateway's method throttling (the template's MethodSettings)
    if route.authorizer:
        operation["security"] = [{"bearerAuth": []}]
        errors.add(401)
    else:
        operation["security"] = []
    responses = {str(doc.status): _response("success", body)}
    for status in sorted(errors):
        responses[str(status)] = _response(ERRORS[status], Error)
    operation["responses"] = responses
    return operation


def _summary(app: App, function_id: str) -> str:
    source = app.functions[function_id].module_file.read_text()
    match = re.match(r'\s*"""(.*?)(?:\n|""")', source, re.S)
    return match.group(1).strip() if match else function_id


def build(app: App | None = None) -> dict[str, Any]:
    """The whole document, built from the template, the handlers and `ROUTES`."""
    app = app or load(environ={})
    served = {(r.method, r.path) for r in app.routes}
    if served != set(ROUTES):
        raise ValueError(f"ROUTES and the template differ: only in the template {sorted(served - set(ROUTES))}, "
                         f"only in ROUTES {sorted(set(ROUTES) - served)}")
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    bodies: set[type[BaseModel]] = set()
    for route in sorted(app.routes, key=lambda r: (r.path, r.method)):
        module = handler_module(app.functions[route.function_id])
        handler_doc = _handler_schema(module)
        shape = re.sub(r"{[^}]+}", "{}", route.path)
        body = answer_model(module, route.method, shape)
        if body is not None:
            bodies.add(body)
        found = [(p, item[route.method.lower()]) for p, item in handler_doc.get("paths", {}).items()
                 if route.method.lower() in item and re.sub(r"{[^}]+}", "{}", p) == shape]
        if len(found) != 1:
            raise ValueError(f"{route.function_id} serves no {route.method} {route.path} route")
        powertools_path, handler_op = found[0]
        names = _template_path(powertools_path, route.path)
        for name, schema in handler_doc.get("components", {}).get("schemas", {}).items():
            if name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
                continue  # Powertools' own 422 shape: GoodsDrop answers 400 in the contract's Error shape
            if name in RESPONSE_MODELS:
                continue  # an answer's model: written from the model itself below
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two different request models are both called {name}")
            schemas[name] = schema
        doc = ROUTES[(route.method, route.path)]
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, handler_op, names, doc, body, _summary(app, route.function_id),
            app.throttle_for(route.method, route.path) is not None)
    models: list[type[BaseModel]] = [Error, *sorted(bodies, key=lambda m: m.__name__)]
    for model in models:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in generated.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas[model.__name__] = generated
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Generated by `python -m contract.openapi` from infra/template.yaml, "
                                "the handlers' Powertools routes and the layer's response models. Errors are always "
                                "{\"error\": {\"code\", \"message\", \"details\"}}; money is an integer in won."},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                               "description": "the accessToken of POST /auth/login"}},
        },
    }


def render(document: dict[str, Any]) -> str:
    """The document as it is checked in."""
    return json.dumps(document, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contract.openapi", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in document is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output.relative_to(REPO_ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
