"""HTTP edge shared by every API function: the resolver, the one error mapping, the caller.

Handlers build their resolver with `make_resolver()`; every `DropError` (and every request
validation failure) becomes the contract's `{"error": {...}}` document here and nowhere else.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

import pymysql
import redis
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from goodsdrop.callers import Caller
from goodsdrop.errors import (
    DropError,
    EmailNotVerified,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationError,
)
from goodsdrop.failures import kafka_errors
from goodsdrop.fields import network_of
from goodsdrop.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from goodsdrop.settings import settings

MAX_BODY_BYTES = 64 * 1024
# No request body of the contract is nested more than a few levels; deeper JSON is an attack on the
# parser (Python's json recurses per level, and pydantic after it), refused before either sees it.
MAX_JSON_DEPTH = 32
# Longer numbers than any field takes still reach the model (which names the field); this bound only
# keeps int() from its 4,300-digit ValueError (a 500) and from quadratic work on longer ones.
MAX_JSON_NUMBER_DIGITS = 1000
# A store that cannot be reached (restarting, failing over) is a brief outage, not a bug: 503 + Retry-After.
# On Redis Cluster that includes a cluster that is down or a slot no node serves yet.
OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ClusterDownError,
           redis.exceptions.SlotNotCoveredError, pymysql.err.OperationalError, pymysql.err.InterfaceError)

logger = Logger(child=True)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with compact encoding (money and ids are already ints/strings)."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers,
    )


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A route's answer: `body` (a model of goodsdrop.responses, or a dict of its fields) is validated
    against the route's return annotation `-> Response[Model]` and serialized by the resolver."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _serialize(body: Any) -> str:
    # The resolver's serializer for the bodies of `respond`: compact, UTF-8 as it is (as json_response).
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def error_response(err: DropError) -> Response:
    """The contract's error document for a `DropError`."""
    return json_response(err.http_status, err.to_body(), err.headers or None)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def body_problem(event: dict[str, Any]) -> DropError | None:
    """What is wrong with a request's body before anything parses it.

    Too large → 413 (never parsed); a content type other than JSON (multipart included) → 415;
    base64 that is not UTF-8, or a JSON list instead of an object → 400. Powertools' own parsers
    would raise on some of these (a 500) or validate a list's first element as the body.
    """
    body = event.get("body")
    if not body:
        return None
    encoded = bool(event.get("isBase64Encoded"))
    size = len(body) * 3 // 4 if encoded else len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        return PayloadTooLarge(f"the body may be at most {MAX_BODY_BYTES} bytes")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").strip().lower()
    if content_type and "json" not in content_type:
        return UnsupportedMediaType()
    if encoded:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except ValueError:
            return ValidationError("the body is not UTF-8 text", details={"fields": {"body": "not UTF-8"}})
    if isinstance(body, str) and body.lstrip().startswith("["):
        return ValidationError("the body must be a JSON object", details={"fields": {"body": "not an object"}})
    raw_type = headers.get("content-type", "").strip()
    if raw_type and not raw_type.startswith("application/json"):
        return None  # not parsed as JSON by Powertools either (it answers 415)
    return json_problem(body)


# ------------------------------------------------------------------------------ strict JSON
class _JsonRefused(ValueError):
    """A JSON text that parses but that GoodsDrop refuses (why is in the message)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers that disagree on which duplicate wins (a WAF, a log pipeline, this one) can be
    # played off against each other: a key given twice is refused, not resolved.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _JsonRefused(f"duplicate key {key[:40]!r}")
        found[key] = value
    return found


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_NUMBER_DIGITS:
        raise _JsonRefused("a number is out of range")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or len(text) > 2 * MAX_JSON_NUMBER_DIGITS:
        raise _JsonRefused("a number is out of range")  # 1e400 would be inf
    return value


def _no_constant(name: str) -> Any:
    raise _JsonRefused(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply containers nest in a parsed JSON value (iterative: no recursion to exhaust)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            todo.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def json_problem(body: str | bytes) -> DropError | None:
    """What makes a JSON body unacceptable: not JSON, nested deeper than `MAX_JSON_DEPTH`, a key
    given twice, NaN/Infinity, or a number out of range (1e400, over a thousand digits); else None.

    Powertools' parser (json.loads) would take the last duplicate, turn 1e400 into inf, and fail
    with a RecursionError (a 500) on JSON nested a few thousand levels deep.
    """
    try:
        parsed = json.loads(body, object_pairs_hook=_unique_keys, parse_int=_bounded_int,
                            parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        parsed, depth = None, MAX_JSON_DEPTH + 1
    except _JsonRefused as refused:
        return ValidationError(f"the body is refused: {refused}", details={"fields": {"body": str(refused)}})
    except ValueError as err:  # JSONDecodeError, and what int()/float() refuse
        return ValidationError("the body is not valid JSON", details={"fields": {"body": str(err)[:200]}})
    else:
        depth = _depth(parsed)
    if depth > MAX_JSON_DEPTH:
        return ValidationError(f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
                               details={"fields": {"body": f"nested deeper than {MAX_JSON_DEPTH} levels"}})
    return None


def cors_config() -> CORSConfig:
    """The API's CORS answer, which every function sends itself (API Gateway adds none to a Lambda proxy
    response): the template's AllowedOrigin; Retry-After (429, 503) and Location (201, 202) readable by the page."""
    return CORSConfig(allow_origin=settings.allowed_origin, allow_headers=["Idempotency-Key"],
                      expose_headers=["Retry-After", "Location"])


def cors_headers(cors: CORSConfig, event: dict[str, Any]) -> dict[str, str]:
    """The CORS headers Powertools would add to a response to `event` (none for another origin)."""
    origin = next((str(v) for k, v in (event.get("headers") or {}).items() if str(k).lower() == "origin"), None)
    allowed = cors.allowed_origin(origin) if origin else None
    return cors.to_dict(allowed) if allowed else {}


class DropResolver(APIGatewayRestResolver):
    """Powertools' REST resolver for a JSON-only API: refuses bad bodies before it parses them."""

    def __init__(self, cors: CORSConfig, **kwargs: Any) -> None:
        super().__init__(cors=cors, **kwargs)
        self.cors_config = cors

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if isinstance(event, dict) and (problem := body_problem(event)) is not None:
            # Answered before Powertools routes, so its CORS headers are added here.
            headers = {"Content-Type": content_types.APPLICATION_JSON, **problem.headers,
                       **cors_headers(self.cors_config, event)}
            return {"statusCode": problem.http_status, "isBase64Encoded": False,
                    "multiValueHeaders": {k: [v] for k, v in headers.items()},
                    "body": json.dumps(problem.to_body(), separators=(",", ":"), ensure_ascii=False)}
        return super().resolve(event, context)


def make_resolver() -> APIGatewayRestResolver:
    """A resolver with body validation, CORS (`cors_config`) and GoodsDrop's error mapping installed."""
    app = DropResolver(cors_config(), enable_validation=True, serializer=_serialize)

    @app.exception_handler(DropError)
    def _drop_error(err: DropError) -> Response:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(err: RequestValidationError) -> Response:
        problems = err.errors()
        if any(tuple(p.get("loc", ()))[:1] == ("response",) for p in problems):
            # The handler returned something its annotation does not allow: our bug, not the client's.
            logger.error("response failed validation", extra={"problems": problems})
            return json_response(500, {"error": {"code": "INTERNAL_ERROR", "message": "internal error", "details": {}}})
        fields: dict[str, str] = {}
        for problem in problems:
            fields.setdefault(_field_name(problem.get("loc", ())), str(problem.get("msg", "invalid")))
        named = ", ".join(sorted(fields)) or "request"
        return error_response(ValidationError(f"invalid field(s): {named}", details={"fields": fields}))

    @app.exception_handler(RequestUnsupportedContentType)
    def _not_json(_err: RequestUnsupportedContentType) -> Response:
        # A fallback: DropResolver refuses non-JSON bodies before Powertools sees them.
        return error_response(UnsupportedMediaType())

    @app.exception_handler(json.JSONDecodeError)
    def _bad_json(err: json.JSONDecodeError) -> Response:
        return error_response(ValidationError("the body is not valid JSON", details={"fields": {"body": str(err)}}))

    @app.not_found
    def _no_route(_err: NotFoundError) -> Response:
        return error_response(NotFound("no such route"))

    @app.exception_handler(list(OUTAGES))
    def _outage(err: Exception) -> Response:
        logger.warning("a store is unavailable", extra={"error": f"{type(err).__name__}: {err}"})
        return error_response(ServiceUnavailable("a service GoodsDrop depends on is briefly unavailable; try again",
                                                 retry_after=1))

    @app.exception_handler(Exception)
    def _bug(err: Exception) -> Response:
        # kafka-python's errors are classes only once it is imported (most functions never do), so they
        # cannot be registered above: a broker that cannot answer yet is an outage all the same.
        if isinstance(err, kafka_errors()):
            return _outage(err)
        # A 5xx is a bug by contract: log it whole, tell the client nothing internal.
        logger.exception("unhandled error")
        return json_response(500, {"error": {"code": "INTERNAL_ERROR", "message": "internal error", "details": {}}})

    return app


def current_caller(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller from `requestContext.authorizer`; 401 when there is none."""
    context = app.current_event.request_context.authorizer.raw_event or {}
    member_id = context.get("memberId") or context.get("principalId")
    if not member_id:
        raise Unauthorized("sign in first")
    verified = str(context.get("emailVerified", "false")).lower() == "true"
    try:
        expires_at = int(context.get("expiresAt") or 0)
    except (TypeError, ValueError):
        expires_at = 0
    return Caller(str(member_id), str(context.get("role", "member")), verified, str(context.get("tokenId", "")),
                  str(context.get("sessionId", "")), expires_at)


def source_ip(app: APIGatewayRestResolver) -> str | None:
    """The caller's network, fit for a key (`goodsdrop.fields.network_of`), or None.

    Only `requestContext.identity.sourceIp` is read: API Gateway sets it from the connection (the
    local runtime too), while X-Forwarded-For is whatever the client wrote.
    """
    return network_of(app.current_event.request_context.identity.source_ip)


def require_verified(app: APIGatewayRestResolver) -> Caller:
    """The caller, who must have verified their email (403 `EMAIL_NOT_VERIFIED`)."""
    caller = current_caller(app)
    if not caller.email_verified:
        raise EmailNotVerified()
    return caller


def require_seller(app: APIGatewayRestResolver) -> Caller:
    """The caller, who must be a seller (403 `FORBIDDEN`)."""
    caller = current_caller(app)
    if not caller.is_seller:
        raise Forbidden("only sellers may do this")
    return caller


def query_int(app: APIGatewayRestResolver, name: str, default: int | None = None, *, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    """An integer query parameter, or 400 `VALIDATION_ERROR` naming it."""
    raw = app.current_event.get_query_string_value(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer", details={"fields": {name: "not an integer"}}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValidationError(f"{name} must be {bound}", details={"fields": {name: f"must be {bound}"}})
    return value


def page_params(app: APIGatewayRestResolver) -> tuple[int, int]:
    """`page` (from 1) and `size` (1..100, default 20) of a list request."""
    page = query_int(app, "page", 1, minimum=1, maximum=MAX_PAGE)
    size = query_int(app, "size", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    assert page is not None and size is not None
    return page, size

