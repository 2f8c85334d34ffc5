"""The HTTP API's OpenAPI 3 document, generated from what serves the API.

    python -m goodsdrop_local.openapi            # write functions/openapi/openapi.json
    python -m goodsdrop_local.openapi --check    # exit 1 when the checked-in document is stale

One source per fact, nothing written twice:
- paths, methods and which routes need a bearer token come from infra/template.yaml (what API
  Gateway serves);
- request bodies and path parameters come from each handler's Powertools route and its pydantic
  model (`app.get_openapi_schema()`): the very models that validate requests;
- what a handler answers, and the query parameters and headers it reads by hand, are stated once
  in `ROUTES` below; tests/unit/test_openapi_document.py keeps `ROUTES` and the template equal, and
  schemathesis (tests/reliability/test_openapi_contract.py) checks every answer of the running
  stack against the document.

The document is a build artefact checked in next to the function that serves it
(GET /openapi.json, functions/openapi/): a Lambda package cannot import the other handlers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from goodsdrop.fields import ID_PATTERN
from goodsdrop_local.execution import FunctionPool
from goodsdrop_local.template import REPO_ROOT, App, load

OUTPUT = REPO_ROOT / "functions" / "openapi" / "openapi.json"
TITLE = "GoodsDrop HTTP API"
VERSION = "1.0.0"


# ------------------------------------------------------------------------------------ response bodies


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Doc):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="stable machine-readable code")
    message: str
    details: dict[str, Any]


class Error(_Doc):
    """The contract's one error shape."""

    model_config = ConfigDict(extra="forbid")
    error: ErrorBody


class TokenPair(_Doc):
    accessToken: str  # noqa: N815
    refreshToken: str  # noqa: N815
    expiresIn: int  # noqa: N815


class SellerProfile(_Doc):
    shopName: str  # noqa: N815
    address: str
    contactNumber: str  # noqa: N815
    registrationNumber: str  # noqa: N815
    createdAt: str | None  # noqa: N815


class Member(_Doc):
    id: str
    email: str
    name: str
    phone: str | None
    address: str | None
    emailVerified: bool  # noqa: N815
    role: Literal["member", "seller"]
    createdAt: str | None  # noqa: N815
    seller: SellerProfile | None


class SignUpAccepted(_Doc):
    """The same for a new and a registered email: the mail tells the address's owner which it was."""

    accepted: bool
    email: str


class EmailVerified(_Doc):
    verified: bool
    member: Member


class MailSent(_Doc):
    sent: bool


class PasswordChanged(_Doc):
    passwordChanged: bool  # noqa: N815
    otherSessionsRevoked: int  # noqa: N815


SaleStatus = Literal["on_sale", "upcoming", "sold_out"]


class Product(_Doc):
    id: str
    sellerId: str  # noqa: N815
    name: str
    description: str
    price: int
    salesStartAt: str | None  # noqa: N815
    perMemberLimit: int | None  # noqa: N815
    createdAt: str | None  # noqa: N815
    updatedAt: str | None  # noqa: N815
    stock: int
    status: SaleStatus
    listed: bool | None = Field(None, description="the seller's own views only: false while off sale")


class ProductPage(_Doc):
    items: list[Product]
    page: int
    size: int
    total: int


class Stock(_Doc):
    productId: str  # noqa: N815
    stock: int
    status: SaleStatus


DeliveryStatus = Literal["PREPARING", "SHIPPED", "DELIVERED", "RETURN_REQUESTED", "RETURNED", "RETURN_REFUSED",
                         "CANCELLED"]


class OrderItem(_Doc):
    productId: str  # noqa: N815
    quantity: int
    price: int
    deliveryStatus: DeliveryStatus | None  # noqa: N815


class OrderLine(OrderItem):
    """A line of the buyer's order: name and unit price at purchase, what it was charged and refunded."""

    productName: str | None = Field(description="the product's name when the order was placed")  # noqa: N815
    unitPrice: int = Field(description="the unit price when the order was placed (= price)")  # noqa: N815
    lineTotal: int  # noqa: N815
    chargedAmount: int = Field(description="what this line was charged (0 until the payment succeeded)")  # noqa: N815
    refundedAmount: int  # noqa: N815
    refundedAt: str | None  # noqa: N815
    refundStatus: Literal["PENDING", "REFUNDED"] | None = Field(  # noqa: N815
        description="PENDING from the line's cancel or return until its refund is recorded")


class Refund(_Doc):
    productId: str | None = Field(description="the refunded line; null: the whole order")  # noqa: N815
    amount: int
    reason: str
    refundedAt: str | None  # noqa: N815


class Order(_Doc):
    id: str
    status: Literal["PENDING", "CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"]
    failureReason: str | None  # noqa: N815
    totalPrice: int  # noqa: N815
    createdAt: str | None  # noqa: N815
    confirmedAt: str | None  # noqa: N815
    items: list[OrderLine]
    chargedAmount: int  # noqa: N815
    refundedAmount: int  # noqa: N815
    paymentStatus: Literal["NONE", "DECLINED", "CHARGED", "REFUND_PENDING", "PARTIALLY_REFUNDED",  # noqa: N815
                           "REFUNDED"] = Field(description="the money's side of the order: NONE until charged; "
                                                           "REFUND_PENDING while a refund is in flight")
    refunds: list[Refund]


class OrderPage(_Doc):
    items: list[Order]
    page: int
    size: int
    total: int


class OrderAccepted(_Doc):
    orderId: str  # noqa: N815
    status: Literal["PENDING"]


class DeliveryChanged(OrderItem):
    orderId: str  # noqa: N815


class ShipTo(_Doc):
    name: str
    address: str | None
    phone: str | None


class SellerOrderLine(_Doc):
    orderId: str  # noqa: N815
    productId: str  # noqa: N815
    productName: str  # noqa: N815
    quantity: int
    price: int
    lineTotal: int  # noqa: N815
    deliveryStatus: DeliveryStatus  # noqa: N815
    orderStatus: Literal["CONFIRMED", "CANCELLED"]  # noqa: N815
    orderedAt: str  # noqa: N815
    deliveredAt: str | None  # noqa: N815
    returnRequestedAt: str | None  # noqa: N815
    returnDecidedAt: str | None  # noqa: N815
    restocked: bool
    shipTo: ShipTo  # noqa: N815


class SellerOrderPage(_Doc):
    items: list[SellerOrderLine]
    page: int
    size: int
    total: int


class CartLine(_Doc):
    productId: str  # noqa: N815
    name: str
    price: int
    quantity: int
    lineTotal: int  # noqa: N815
    stock: int
    status: Literal["on_sale", "upcoming", "sold_out", "insufficient_stock"]
    perMemberLimit: int | None  # noqa: N815


class CartNotice(_Doc):
    productId: str  # noqa: N815
    code: str
    message: str
    quantity: int


class CartCheckout(_Doc):
    """The cart's order while it is pending: the cart keeps its lines and cannot change until it ends."""

    orderId: str  # noqa: N815
    location: str


class Cart(_Doc):
    items: list[CartLine]
    total: int
    notices: list[CartNotice]
    expiresInSeconds: int | None  # noqa: N815
    checkout: CartCheckout | None


class QueueStanding(_Doc):
    productId: str  # noqa: N815
    ticket: str
    position: int
    admitted: bool
    estimatedWaitSeconds: int | None  # noqa: N815


class OpenApiDocument(_Doc):
    openapi: str
    paths: dict[str, Any]


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
    """A route's success answer (status, body model or None for no body) and the errors it may give."""

    status: int
    body: type[BaseModel] | None
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()


PAGE = (Param("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}),
        Param("size", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}))

ROUTES: dict[tuple[str, str], RouteDoc] = {
    ("POST", "/members"): RouteDoc(202, SignUpAccepted, (429,)),
    ("GET", "/members/verify"): RouteDoc(200, EmailVerified, (400, 404, 409, 410), (
        Param("token", {"type": "string", "maxLength": 200}, required=True,
              description="the token of the link in the verification mail"),)),
    ("POST", "/members/verify/resend"): RouteDoc(202, MailSent, (409, 429)),
    ("GET", "/members/me"): RouteDoc(200, Member, (404,)),
    ("PATCH", "/members/me"): RouteDoc(200, Member, (404,)),
    ("PATCH", "/members/me/password"): RouteDoc(200, PasswordChanged, (403, 429)),  # login throttles apply
    ("POST", "/auth/login"): RouteDoc(200, TokenPair, (401, 429)),
    ("POST", "/auth/refresh"): RouteDoc(200, TokenPair, (401,)),
    ("POST", "/auth/logout"): RouteDoc(204, None),
    ("POST", "/sellers"): RouteDoc(201, Member, (403, 409)),
    ("GET", "/products"): RouteDoc(200, ProductPage, (400,), (
        Param("q", {"type": "string", "maxLength": 100}, description="words of the name or description"),
        Param("sellerId", {"type": "integer", "minimum": 1}),
        Param("minPrice", {"type": "integer", "minimum": 0}),
        Param("maxPrice", {"type": "integer", "minimum": 0}),
        Param("status", {"type": "string", "enum": ["on_sale", "upcoming", "sold_out"]}),
        Param("sort", {"type": "string", "enum": ["newest", "price_asc", "price_desc"], "default": "newest"}),
        *PAGE)),
    ("POST", "/products"): RouteDoc(201, Product, (403,)),
    ("GET", "/products/{id}"): RouteDoc(200, Product, (400, 404)),
    ("PATCH", "/products/{id}"): RouteDoc(200, Product, (400, 403, 404)),
    ("GET", "/products/{id}/stock"): RouteDoc(200, Stock, (400, 404)),
    ("PUT", "/products/{id}/listing"): RouteDoc(200, Product, (400, 403, 404)),
    ("DELETE", "/products/{id}"): RouteDoc(204, None, (400, 403, 404, 409)),
    ("PUT", "/products/{id}/stock"): RouteDoc(200, Stock, (400, 403, 404, 409)),
    ("GET", "/sellers/me/products"): RouteDoc(200, ProductPage, (400, 403), PAGE),
    ("POST", "/orders"): RouteDoc(202, OrderAccepted, (403, 404, 409, 429), (
        Param("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}, required=True, where="header",
              description="the same key and body answer the same; the same key with another body is 409"),)),
    ("GET", "/orders"): RouteDoc(200, OrderPage, (400,), (
        *PAGE, Param("status", {"type": "string", "enum": ["PENDING", "CONFIRMED", "FAILED", "EXPIRED",
                                                           "CANCELLED"]}))),
    ("GET", "/orders/{id}"): RouteDoc(200, Order, (400, 404)),
    ("POST", "/orders/{id}/cancel"): RouteDoc(200, Order, (400, 404, 409)),
    ("POST", "/orders/{id}/items/{productId}/cancel"): RouteDoc(200, Order, (400, 404, 409)),
    ("POST", "/orders/{id}/items/{productId}/return"): RouteDoc(200, Order, (400, 404, 409)),
    ("PATCH", "/seller/orders/{id}/items/{productId}"): RouteDoc(200, DeliveryChanged, (400, 403, 404, 409)),
    ("GET", "/seller/orders"): RouteDoc(200, SellerOrderPage, (400, 403), (
        Param("status", {"type": "string", "enum": ["PREPARING", "SHIPPED", "DELIVERED", "RETURN_REQUESTED", "RETURNED",
                                                     "RETURN_REFUSED", "CANCELLED"]},
              description="only lines in this delivery status (RETURN_REQUESTED: returns waiting for a decision)"),
        Param("productId", {"type": "integer", "minimum": 1}, description="only lines of this product of yours"),
        Param("from", {"type": "string", "maxLength": 40},
              description="ordered at or after: YYYY-MM-DD (UTC) or an ISO-8601 date-time with a zone"),
        Param("to", {"type": "string", "maxLength": 40},
              description="ordered before: an ISO-8601 date-time with a zone, or YYYY-MM-DD (that whole UTC day)"),
        *PAGE)),
    ("PUT", "/seller/orders/{id}/items/{productId}/return"): RouteDoc(200, SellerOrderLine, (400, 403, 404, 409)),
    ("GET", "/cart"): RouteDoc(200, Cart),
    ("POST", "/cart/items"): RouteDoc(200, Cart, (404, 409)),
    ("PATCH", "/cart/items/{productId}"): RouteDoc(200, Cart, (404, 409)),
    ("DELETE", "/cart/items/{productId}"): RouteDoc(204, None, (404,)),
    ("DELETE", "/cart"): RouteDoc(204, None),
    ("POST", "/products/{id}/queue"): RouteDoc(200, QueueStanding, (400, 403, 404, 409)),
    ("GET", "/products/{id}/queue/{ticket}"): RouteDoc(200, QueueStanding, (400, 403, 404, 409)),
    ("GET", "/openapi.json"): RouteDoc(200, OpenApiDocument),
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
    410: "VERIFICATION_LINK_EXPIRED",
    413: "PAYLOAD_TOO_LARGE: the body is over 64 KiB",
    415: "UNSUPPORTED_MEDIA_TYPE: send application/json",
    429: "RATE_LIMITED: too many attempts (or the method's throttle at the edge); see Retry-After",
    503: "SERVICE_UNAVAILABLE: a dependency is briefly unavailable, nothing was changed; see Retry-After",
}


# ------------------------------------------------------------------------------------ building the document


def _handler_schema(pool: FunctionPool, function_id: str) -> dict[str, Any]:
    """The OpenAPI document Powertools derives from one handler's resolver (routes + pydantic models)."""
    module = sys.modules.get(f"goodsdrop_fn_{function_id}")
    if module is None:
        _ = pool.get(function_id).handler
        module = sys.modules[f"goodsdrop_fn_{function_id}"]
    resolver = module.app
    schema = resolver.get_openapi_schema(title=TITLE, version=VERSION)
    return json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))


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
               summary: str, throttled: bool) -> dict[str, Any]:
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
    responses = {str(doc.status): _response("success", doc.body)}
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
    pool = FunctionPool(app.functions)
    served = {(r.method, r.path) for r in app.routes}
    if served != set(ROUTES):
        raise ValueError(f"ROUTES and the template differ: only in the template {sorted(served - set(ROUTES))}, "
                         f"only in ROUTES {sorted(set(ROUTES) - served)}")
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in sorted(app.routes, key=lambda r: (r.path, r.method)):
        handler_doc = _handler_schema(pool, route.function_id)
        shape = re.sub(r"{[^}]+}", "{}", route.path)
        found = [(p, item[route.method.lower()]) for p, item in handler_doc.get("paths", {}).items()
                 if route.method.lower() in item and re.sub(r"{[^}]+}", "{}", p) == shape]
        if len(found) != 1:
            raise ValueError(f"{route.function_id} serves no {route.method} {route.path} route")
        powertools_path, handler_op = found[0]
        names = _template_path(powertools_path, route.path)
        for name, schema in handler_doc.get("components", {}).get("schemas", {}).items():
            if name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
                continue  # Powertools' own 422 shape: GoodsDrop answers 400 in the contract's Error shape
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"two different request models are both called {name}")
            schemas[name] = schema
        doc = ROUTES[(route.method, route.path)]
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, handler_op, names, doc, _summary(app, route.function_id),
            app.throttle_for(route.method, route.path) is not None)
    models: list[type[BaseModel]] = [Error, *{d.body for d in ROUTES.values() if d.body is not None}]
    for model in models:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in generated.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas[model.__name__] = generated
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION,
                 "description": "Generated by `python -m goodsdrop_local.openapi` from infra/template.yaml and "
                                "the handlers' Powertools routes and models. Errors are always "
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
    return json.dumps(document, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m goodsdrop_local.openapi", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in document is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `python -m goodsdrop_local.openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output.relative_to(REPO_ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
