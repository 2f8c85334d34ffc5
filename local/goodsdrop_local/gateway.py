"""API Gateway (REST, Lambda proxy integration) emulation as an ASGI app.

A request is matched to a route of the template with chalice's `RouteMatcher`, converted to an
API Gateway proxy event with chalice's `LambdaEventConverter` (then completed with the fields
of a REST proxy event that chalice leaves out), passed through the route's Lambda authorizer
(REQUEST type, result cached for ReauthorizeEvery seconds, Deny → the template's gateway
response), and handed to the warm function; its proxy result becomes the HTTP response.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chalice.local import LambdaEventConverter, RouteMatcher

from goodsdrop.settings import settings
from goodsdrop_local import status
from goodsdrop_local.execution import FunctionError, FunctionPool, FunctionTimeout
from goodsdrop_local.template import REPO_ROOT, App, GatewayResponse, Route, load
from goodsdrop_local.throttling import ThrottleBuckets

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
MAX_HEADER_BYTES = 10 * 1024  # API Gateway's quota on the request line and header values together
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_DEFAULT_RESPONSES = {
    "UNAUTHORIZED": GatewayResponse(401, "", {}),
    "ACCESS_DENIED": GatewayResponse(403, "", {}),
    "AUTHORIZER_FAILURE": GatewayResponse(500, "", {}),
    "INTEGRATION_FAILURE": GatewayResponse(502, "", {}),
    "INTEGRATION_TIMEOUT": GatewayResponse(504, "", {}),
    "THROTTLED": GatewayResponse(429, "", {}),
}
_DEFAULT_MESSAGES = {
    "UNAUTHORIZED": ("UNAUTHORIZED", "Unauthorized"),
    "ACCESS_DENIED": ("FORBIDDEN", "User is not authorized to access this resource"),
    "AUTHORIZER_FAILURE": ("AUTHORIZER_FAILURE", "Authorizer failed"),
    "INTEGRATION_FAILURE": ("INTERNAL_ERROR", "Internal server error"),
    "INTEGRATION_TIMEOUT": ("TIMEOUT", "Endpoint request timed out"),
    "THROTTLED": ("RATE_LIMITED", "Too Many Requests"),
}


def _json(status_code: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status_code, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _error(status_code: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return _json(status_code, {"error": {"code": code, "message": message, "details": {}}})


class Gateway:
    """The ASGI application: one per uvicorn worker process."""

    def __init__(self, app: App, pool: FunctionPool | None = None) -> None:
        self.app = app
        self.pool = pool or FunctionPool(app.functions)
        self.routes: dict[str, dict[str, Route]] = {}
        for route in app.routes:
            self.routes.setdefault(route.path, {})[route.method] = route
        self.matcher = RouteMatcher(list(self.routes))
        self.converter = LambdaEventConverter(self.matcher)
        self._auth_cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self.extra_routes: dict[tuple[str, str], Callable[[], tuple[int, dict[str, str], bytes]]] = {
            ("GET", "/health"): self._health,
        }
        self.static_dir: Path | None = None
        self.throttle_buckets = ThrottleBuckets(app.throttles)  # create_app shares them between workers

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.pool.warm_up(sorted({r.function_id for r in self.app.routes}))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY_BYTES:
                await self._send(send, *_error(413, "PAYLOAD_TOO_LARGE", "Request Entity Too Large"))
                return
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refused = request_problem(scope)
        if refused is not None:
            await self._send(send, *refused)
            return
        result = self.handle(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                             headers, body, connection_source_ip(scope))
        await self._send(send, *result)

    async def _send(self, send: Send, status_code: int, headers: dict[str, str], body: bytes) -> None:
        if self.app.cors_origin and "access-control-allow-origin" not in headers:
            headers["access-control-allow-origin"] = self.app.cors_origin
        await send({"type": "http.response.start", "status": status_code,
                    "headers": [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body})

    # -- request handling ---------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
               source_ip: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        """Serve one request: route, authorize, invoke, map the result."""
        extra = self.extra_routes.get((method, path))
        if extra is not None:
            return extra()
        url = f"{path}?{query}" if query else path
        try:
            event = self.converter.create_lambda_event(method, url, headers, body or None)
        except ValueError:
            static = self._static(method, path)
            return static or _error(404, "NOT_FOUND", f"no route for {path}")
        resource = event["requestContext"]["resourcePath"]
        methods = self.routes[resource]
        route = methods.get(method)
        if route is None:
            if method == "OPTIONS" and self.app.cors_origin:
                return 204, {"access-control-allow-methods": ",".join([*sorted(methods), "OPTIONS"]),
                             "access-control-allow-headers": "Authorization,Content-Type,Idempotency-Key,Last-Event-ID",
                             "access-control-max-age": "600"}, b""
            status, headers, body = _error(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {resource}")
            return status, headers | {"allow": ", ".join(sorted(methods))}, body
        if self._throttled(method, resource):
            return self._gateway_response("THROTTLED", {})
        self._complete_event(event, method, path, resource, body, source_ip)
        if route.authorizer:
            denied = self._authorize(route, event)
            if denied is not None:
                return denied
        try:
            result = self.pool.get(route.function_id).invoke(event)
        except FunctionTimeout:
            return self._gateway_response("INTEGRATION_TIMEOUT", {})
        except FunctionError:
            return self._gateway_response("INTEGRATION_FAILURE", {})
        return self._proxy_result(result)

    def _throttled(self, method: str, resource: str) -> bool:
        """The stage's method throttling, as API Gateway applies it: before the authorizer and the function."""
        found = self.app.throttle_for(method, resource)
        return found is not None and not self.throttle_buckets.take(found[0])

    def _complete_event(self, event: dict[str, Any], method: str, path: str, resource: str, body: bytes,
                        source_ip: str) -> None:
        # chalice's event is a subset; add what a REST proxy event carries (Powertools needs them).
        multi = event.get("multiValueQueryStringParameters")
        params = event["pathParameters"]
        event["pathParameters"] = {k: v for k, v in params.items() if "{" + k + "}" in resource} or None
        event["httpMethod"] = method
        event["path"] = path
        event["resource"] = resource
        event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()} if multi else None
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        if body and not event.get("isBase64Encoded"):
            try:
                event["body"] = body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event.setdefault("isBase64Encoded", False)
        now = time.time()
        context = event["requestContext"]
        context.update({
            "requestId": str(uuid.uuid4()),
            "stage": self.app.stage,
            "resourceId": resource,
            "requestTimeEpoch": int(now * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": event["headers"].get("host", "127.0.0.1"),
        })
        context["identity"]["sourceIp"] = source_ip
        context["identity"]["userAgent"] = event["headers"].get("user-agent", "")

    def _authorize(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        """Run the route's Lambda authorizer; None means allowed (context placed on the event)."""
        authorizer = self.app.authorizers[route.authorizer or ""]
        headers = event["headers"]
        identity = tuple(headers.get(h.lower(), "") for h in authorizer.identity_headers)
        if not all(identity):
            return self._gateway_response("UNAUTHORIZED", {})
        cache_key = (authorizer.name, identity)
        cached = self._auth_cache.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            policy = cached[1]
        else:
            request = {
                "type": authorizer.payload_type,
                "methodArn": "arn:aws:execute-api:local:000000000000:local/"
                             f"{self.app.stage}/{event['httpMethod']}{event['path']}",
                "resource": event["resource"], "path": event["path"], "httpMethod": event["httpMethod"],
                "headers": headers, "queryStringParameters": event["queryStringParameters"],
                "pathParameters": event["pathParameters"], "requestContext": event["requestContext"],
                "authorizationToken": identity[0],
            }
            try:
                policy = self.pool.get(authorizer.function_id).invoke(request)
            except FunctionError as err:
                if err.error_message == "Unauthorized":
                    return self._gateway_response("UNAUTHORIZED", {})
                return self._gateway_response("AUTHORIZER_FAILURE", {})
            if authorizer.ttl_seconds > 0:
                self._auth_cache[cache_key] = (time.monotonic() + authorizer.ttl_seconds, policy)
        context = {k: v for k, v in (policy.get("context") or {}).items()}
        statements = (policy.get("policyDocument") or {}).get("Statement") or []
        allowed = any(s.get("Effect") == "Allow" for s in statements) and not any(
            s.get("Effect") == "Deny" for s in statements)
        if not allowed:
            return self._gateway_response("ACCESS_DENIED", context)
        context["principalId"] = policy.get("principalId", "")
        event["requestContext"]["authorizer"] = context
        return None

    def _gateway_response(self, kind: str, authorizer_context: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The template's GatewayResponse for `kind`, with $context.authorizer.* substituted."""
        spec = self.app.gateway_responses.get(kind) or _DEFAULT_RESPONSES[kind]
        code, message = _DEFAULT_MESSAGES[kind]
        if not spec.template:
            return _error(spec.status, code, message)

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("context.authorizer."):
                return str(authorizer_context.get(name.removeprefix("context.authorizer."), ""))
            if name in ("context.error.messageString",):
                return json.dumps(message)
            if name == "context.error.message":
                return message
            return ""

        body = re.sub(r"\$(context\.[A-Za-z0-9_.]+)", value, spec.template)
        return spec.status, {"content-type": "application/json", **spec.headers}, body.encode()

    def _proxy_result(self, result: Any) -> tuple[int, dict[str, str], bytes]:
        if not isinstance(result, dict) or "statusCode" not in result:
            return self._gateway_response("INTEGRATION_FAILURE", {})
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key.lower()] = ",".join(str(v) for v in values)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), headers, raw

    def _health(self) -> tuple[int, dict[str, str], bytes]:
        report = status.health_report(self.app)
        return _json(200 if report["healthy"] else 503, report)

    def _static(self, method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        """Files of the storefront, when one is configured (GET only, no traversal)."""
        if self.static_dir is None or method != "GET" or _CONTROL.search(path):
            return None
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        try:
            target = (self.static_dir / relative).resolve()
            if self.static_dir.resolve() not in target.parents or not target.is_file():
                return None
        except (OSError, ValueError):  # a name too long for the file system, or one it cannot hold
            return None
        kinds = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css",
                 ".png": "image/png", ".svg": "image/svg+xml", ".json": "application/json"}
        return 200, {"content-type": kinds.get(target.suffix, "application/octet-stream")}, target.read_bytes()


# ------------------------------------------------------------------------------ the edge's own checks
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def request_problem(scope: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
    """What the edge refuses before routing: headers over API Gateway's quota, or control characters
    (NUL, CR, LF, ...) in the decoded path, which no route, file or path parameter may hold.

    (API Gateway answers these with its own errors; locally they are the contract's JSON errors.)
    """
    line = len(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")) + len(
        scope.get("query_string") or b"")
    if line + sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
        return _error(431, "HEADERS_TOO_LARGE",
                      f"the request line and headers may have at most {MAX_HEADER_BYTES} bytes")
    if _CONTROL.search(scope["path"]):
        return _error(400, "VALIDATION_ERROR", "the path contains a control character")
    return None


def connection_source_ip(scope: dict[str, Any]) -> str:
    """The address of the connection itself (never X-Forwarded-For: uvicorn runs without proxy
    headers), as API Gateway fills `requestContext.identity.sourceIp`."""
    client = scope.get("client") or ("127.0.0.1", 0)
    return str(client[0])


def create_app() -> Gateway:
    """uvicorn factory: each worker loads the template and keeps its functions warm."""
    app = load()
    gateway = Gateway(app)
    # One set of throttle buckets for every worker of this API, as API Gateway has one per stage.
    gateway.throttle_buckets = ThrottleBuckets(app.throttles,
                                               status.RUNTIME_DIR / f"throttle-buckets-{settings.api_port}.bin")
    # The storefront is served by the stack for convenience (in AWS it would sit on S3/CloudFront).
    static = Path(os.environ.get("GOODSDROP_STATIC_DIR", REPO_ROOT / "storefront"))
    if static.is_dir():
        gateway.static_dir = static
    return gateway
