"""API Gateway REST events as Lambda receives them: the proxy event and the REQUEST authorizer's input.

The shapes follow the API Gateway developer guide (Lambda proxy integration; input to a Lambda
REQUEST authorizer). tests/integ/test_event_fidelity.py captures what the running runtime hands
to every function and checks it against Powertools' parser models and the SAM CLI's sample events.
Header names keep the case the client sent, as API Gateway REST keeps it (goodsdrop_local.api_server
recovers it from the HTTP parser).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from goodsdrop.settings import settings

ACCOUNT_ID = "000000000000"
API_ID = "local"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Headers API Gateway sets itself on the way to the integration (a client's own values are replaced,
# X-Forwarded-For is appended to).
_GATEWAY_SET = {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}

HeaderPairs = list[tuple[str, str]]


def header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> HeaderPairs:
    """Request headers as (name, value) pairs in the client's order and case."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def header_value(pairs: HeaderPairs, name: str) -> str | None:
    """The last value of header `name`, whatever its case (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    found = None
    for key, value in pairs:
        if key.lower() == wanted:
            found = value
    return found


def request_time(epoch_seconds: float) -> str:
    """`requestContext.requestTime`: UTC in Common Log Format, e.g. `09/Apr/2015:12:34:56 +0000`."""
    t = time.gmtime(epoch_seconds)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def trace_id(epoch_seconds: float) -> str:
    """An X-Ray trace header value like the one API Gateway adds (`Root=1-<hex time>-<24 hex>`)."""
    return f"Root=1-{int(epoch_seconds):08x}-{secrets.token_hex(12)}"


def with_gateway_headers(pairs: HeaderPairs, source_ip: str, scheme: str, port: int, now: float) -> HeaderPairs:
    """The client's headers plus what API Gateway adds before the integration sees them."""
    forwarded = header_value(pairs, "X-Forwarded-For")
    kept = [(k, v) for k, v in pairs if k.lower() not in _GATEWAY_SET]
    return [*kept,
            ("X-Forwarded-For", f"{forwarded}, {source_ip}" if forwarded else source_ip),
            ("X-Forwarded-Port", str(port)),
            ("X-Forwarded-Proto", scheme),
            ("X-Amzn-Trace-Id", trace_id(now))]


def header_maps(pairs: HeaderPairs) -> tuple[dict[str, str], dict[str, list[str]]]:
    """`headers` (the last value of each name) and `multiValueHeaders` (every value), names as sent."""
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return {name: values[-1] for name, values in multi.items()}, multi


@functools.cache
def _resource_id(resource: str) -> str:
    # API Gateway names each resource with a short id; a stable one per path is enough locally.
    return hashlib.sha1(resource.encode(), usedforsecurity=False).hexdigest()[:6]


def _domain(pairs: HeaderPairs) -> str:
    host = header_value(pairs, "Host") or "127.0.0.1"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # drops a port, keeps an IPv6 literal


def _body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def rest_proxy_event(*, method: str, path: str, resource: str, path_parameters: Mapping[str, str],
                     multi_query: Mapping[str, list[str]] | None, headers: HeaderPairs, body: bytes,
                     source_ip: str, stage: str, scheme: str = "http", port: int = 80,
                     now: float | None = None) -> dict[str, Any]:
    """The Lambda proxy integration event of a REST API request (payload format 1.0)."""
    now = time.time() if now is None else now
    pairs = with_gateway_headers(headers, source_ip, scheme, port, now)
    single, multi = header_maps(pairs)
    host = _domain(pairs)
    text, encoded = _body(body)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": {k: list(v) for k, v in multi_query.items()} if multi_query else None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,  # the template defines none; API Gateway then sends null
        "requestContext": {
            "resourceId": _resource_id(resource),
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode("ascii"),
            "requestTime": request_time(now),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
                "sourceIp": source_ip, "principalOrgId": None, "accessKey": None,
                "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
                "userAgent": header_value(pairs, "User-Agent"), "user": None,
                "apiKey": None, "apiKeyId": None, "clientCert": None,  # no API keys, no mutual TLS
            },
            "domainName": host,
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def method_arn(event: Mapping[str, Any]) -> str:
    """The ARN of the called method, as a Lambda authorizer's `methodArn`."""
    context = event["requestContext"]
    return (f"arn:aws:execute-api:{settings.aws_region}:{ACCOUNT_ID}:{API_ID}/{context['stage']}/"
            f"{event['httpMethod']}{event['path']}")


def request_authorizer_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A REQUEST authorizer's input for the proxy event `event` (no `authorizationToken`: TOKEN only)."""
    return {
        "type": "REQUEST",
        "methodArn": method_arn(event),
        "resource": event["resource"],
        "path": event["path"],
        "httpMethod": event["httpMethod"],
        "headers": event["headers"],
        "multiValueHeaders": event["multiValueHeaders"],
        "queryStringParameters": event["queryStringParameters"],
        "multiValueQueryStringParameters": event["multiValueQueryStringParameters"],
        "pathParameters": event["pathParameters"] or {},
        "stageVariables": event["stageVariables"],
        "requestContext": {k: v for k, v in event["requestContext"].items() if k != "authorizer"},
    }


def authorizer_context(policy: Mapping[str, Any], latency_ms: int) -> dict[str, Any]:
    """`requestContext.authorizer` after an Allow: the policy's context with values as strings (API
    Gateway coerces numbers and booleans), its principalId, and the authorizer's latency."""
    context: dict[str, Any] = {}
    for key, value in (policy.get("context") or {}).items():
        context[key] = str(value).lower() if isinstance(value, bool) else str(value)
    context["principalId"] = str(policy.get("principalId", ""))
    context["integrationLatency"] = latency_ms
    return context
