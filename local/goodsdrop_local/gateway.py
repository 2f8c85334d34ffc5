"""API Gateway (REST, Lambda proxy integration) emulation as an ASGI app.

A request is matched to a route of the template with chalice's `RouteMatcher`, becomes a REST
proxy event (goodsdrop_local.proxy_events: header names as the client sent them), passes through
the route's Lambda authorizer (REQUEST type, result cached for ReauthorizeEvery seconds, Deny →
the template's gateway response), and is handed to the warm function; its proxy result becomes
the HTTP response. Like API Gateway, the runtime adds no CORS headers to a function's response:
the functions send their own; OPTIONS is answered like SAM's CORS mock integration, and the
gateway's own answers (401, 5xx, ...) carry the template's GatewayResponses headers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from chalice.local import RouteMatcher

from goodsdrop.settings import settings
from goodsdrop_local import status
from goodsdrop_local.api_server import request_headers
from goodsdrop_local.execution import FunctionError, FunctionPool, FunctionTimeout
from goodsdrop_local.proxy_events import (
    authorizer_context,
    header_pairs,
    method_arn,
    request_authorizer_event,
    rest_proxy_event,
)
from goodsdrop_local.template import REPO_ROOT, App, Cors, Route, load
from goodsdrop_local.throttling import ThrottleBuckets

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
MAX_HEADER_BYTES = 10 * 1024  # API Gateway's quota on the request line and header values together
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

# API Gateway's own status and message for each response type the runtime gives; the template's
# GatewayResponses replace status, body and headers per type, DEFAULT_4XX/DEFAULT_5XX the rest.
_RESPONSE_TYPES: dict[str, tuple[int, str]] = {
    "UNAUTHORIZED": (401, "Unauthorized"),
    "ACCESS_DENIED": (403, "User is not authorized to access this resource"),
    "AUTHORIZER_FAILURE": (500, "Authorizer failed"),
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),  # no such path or method
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "THROTTLED": (429, "Too Many Requests"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),  # the function raised or answered garbage
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
}


def _json(status_code: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status_code, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _error(status_code: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return _json(status_code, {"error": {"code": code, "message": message, "details": {}}})


_ERROR_CODE = re.compile(rb'"code"\s*:\s*"([A-Z_]{1,40})"')


class AnswerCounts:
    """This worker's answers so far (status, and the error code of a 4xx/5xx), written for `make top`
    (goodsdrop_local.status, at most once a second)."""

    def __init__(self) -> None:
        self.by_answer: dict[str, int] = {}
        self.requests = 0
        self._flush: threading.Timer | None = None

    def count(self, status_code: int, body: bytes) -> None:
        key = str(status_code)
        if status_code >= 400:
            code = _ERROR_CODE.search(body[:400])
            key += f" {code.group(1).decode()}" if code else ""
        self.by_answer[key] = self.by_answer.get(key, 0) + 1
        self.requests += 1
        if self._flush is None:  # one write a second at most, and the last answers always written
            self._flush = threading.Timer(1.0, self._write)
            self._flush.daemon = True
            self._flush.start()

    def _write(self) -> None:
        self._flush = None
        with contextlib.suppress(Exception):  # (a figure for `make top`; never the request's problem)
            status.write_status("api", f"worker-{os.getpid()}",
                                {"requests": self.requests, "answers": dict(self.by_answer)})


class Gateway:
    """The ASGI application: one per uvicorn worker process."""

    def __init__(self, app: App, pool: FunctionPool | None = None) -> None:
        self.answers = AnswerCounts()
        self.app = app
        self.pool = pool or FunctionPool(app.functions)
        self.routes: dict[str, dict[str, Route]] = {}
        for route in app.routes:
            self.routes.setdefault(route.path, {})[route.method] = route
        self.matcher = RouteMatcher(list(self.routes))
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
                await self._send(send, *self._gateway_response("REQUEST_TOO_LARGE", {}))
                return
            if not message.get("more_body"):
                break
        headers = request_headers(scope)
        refused = request_problem(scope)
        if refused is not None:
            await self._send(send, *refused)
            return
        result = self.handle(scope["method"], scope["path"], scope["query_string"].decode("latin-1"),
                             headers, body, connection_source_ip(scope))
        await self._send(send, *result)

    async def _send(self, send: Send, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.answers.count(status_code, body)
        await send({"type": "http.response.start", "status": status_code,
                    "headers": [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()]})
        await send({"type": "http.response.body", "body": body})

    # -- request handling ---------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str,
               headers: dict[str, str] | list[tuple[str, str]], body: bytes,
               source_ip: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        """Serve one request: route, authorize, invoke, map the result."""
        extra = self.extra_routes.get((method, path))
        if extra is not None:
            return extra()
        url = f"{path}?{query}" if query else path
        try:
            match = self.matcher.match_route(url)
        except ValueError:
            static = self._static(method, path)
            return static or self._gateway_response("MISSING_AUTHENTICATION_TOKEN", {})
        resource = match.route
        methods = self.routes[resource]
        route = methods.get(method)
        if route is None:
            if method == "OPTIONS" and self.app.cors is not None:
                return cors_preflight(self.app.cors, methods)
            return self._gateway_response("MISSING_AUTHENTICATION_TOKEN", {})
        if self._throttled(method, resource):
            return self._gateway_response("THROTTLED", {})
        event = rest_proxy_event(
            method=method, path=path, resource=resource,
            path_parameters={k: v for k, v in match.captured.items() if "{" + k + "}" in resource},
            multi_query=match.query_params or None, headers=header_pairs(headers), body=body,
            source_ip=source_ip, stage=self.app.stage, port=settings.api_port)
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

    def _authorize(self, route: Route, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
        """Run the route's Lambda authorizer; None means allowed (context placed on the event)."""
        authorizer = self.app.authorizers[route.authorizer or ""]
        headers = {name.lower(): value for name, value in event["headers"].items()}
        identity = tuple(headers.get(h.lower(), "") for h in authorizer.identity_headers)
        if not all(identity):
            return self._gateway_response("UNAUTHORIZED", {})
        cache_key = (authorizer.name, identity)
        cached = self._auth_cache.get(cache_key)
        latency_ms = 0
        if cached is not None and cached[0] > time.monotonic():
            policy = cached[1]
        else:
            if authorizer.payload_type == "REQUEST":
                request = request_authorizer_event(event)
            else:
                request = {"type": "TOKEN", "methodArn": method_arn(event), "authorizationToken": identity[0]}
            started = time.monotonic()
            try:
                policy = self.pool.get(authorizer.function_id).invoke(request)
            except FunctionError as err:
                if err.error_message == "Unauthorized":
                    return self._gateway_response("UNAUTHORIZED", {})
                return self._gateway_response("AUTHORIZER_FAILURE", {})
            latency_ms = int((time.monotonic() - started) * 1000)
            if authorizer.ttl_seconds > 0:
                self._auth_cache[cache_key] = (time.monotonic() + authorizer.ttl_seconds, policy)
        statements = (policy.get("policyDocument") or {}).get("Statement") or []
        allowed = any(s.get("Effect") == "Allow" for s in statements) and not any(
            s.get("Effect") == "Deny" for s in statements)
        if not allowed:
            return self._gateway_response("ACCESS_DENIED", dict(policy.get("context") or {}))
        event["requestContext"]["authorizer"] = authorizer_context(policy, latency_ms)
        return None

    def _gateway_response(self, kind: str, authorizer_context: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """API Gateway's own answer of type `kind`: the template's GatewayResponse for it, else its
        DEFAULT_4XX/DEFAULT_5XX (status kept), else API Gateway's `{"message": ...}`; with
        $context.authorizer.* and $context.error.* substituted and the response's headers."""
        default_status, message = _RESPONSE_TYPES[kind]
        spec = self.app.gateway_responses.get(kind) or self.app.gateway_responses.get(
            "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX")
        if spec is None:
            return _json(default_status, {"message": message})
        status_code = spec.status or default_status
        if not spec.template:
            return _json(status_code, {"message": message}, spec.headers)

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
        return status_code, {"content-type": "application/json", **spec.headers}, body.encode()

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


def cors_preflight(cors: Cors, methods: dict[str, Route]) -> tuple[int, dict[str, str], bytes]:
    """The answer to OPTIONS on a path, as SAM's CORS mock integration gives it (no function runs)."""
    headers = {"content-type": "application/json", "access-control-allow-origin": cors.allow_origin,
               "access-control-allow-methods": cors.allow_methods or ",".join(sorted({*methods, "OPTIONS"}))}
    if cors.allow_headers:
        headers["access-control-allow-headers"] = cors.allow_headers
    if cors.max_age:
        headers["access-control-max-age"] = cors.max_age
    if cors.allow_credentials:
        headers["access-control-allow-credentials"] = "true"
    return 200, headers, b"{}\n"


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
