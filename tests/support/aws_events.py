"""What AWS hands a function, per event source: Powertools' parser model and the SAM CLI's sample event
(tests/fixtures/aws-events/, made by its generate.sh). Used to judge the runtime's events and events/."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequest,
    APIGatewayProxyEventModel,
    EventBridgeModel,
    KafkaSelfManagedEventModel,
)
from pydantic import BaseModel

from goodsdrop_local.template import REPO_ROOT, App

SAMPLES = REPO_ROOT / "tests" / "fixtures" / "aws-events"
# Keys whose values are the request's own data (header names, parameters, records), not event structure.
DATA_KEYS = {"headers", "multiValueHeaders", "queryStringParameters", "multiValueQueryStringParameters",
             "pathParameters", "stageVariables", "detail", "records", "authorizer"}
# Event source → (Powertools model, SAM CLI sample).
SOURCES: dict[str, tuple[type[BaseModel], str]] = {
    "rest-proxy": (APIGatewayProxyEventModel, "apigateway-aws-proxy.json"),
    "request-authorizer": (ApiGatewayAuthorizerRequest, "apigateway-request-authorizer.json"),
    "kafka": (KafkaSelfManagedEventModel, "kafka-self-managed.json"),
    "schedule": (EventBridgeModel, "cloudwatch-scheduled-event.json"),
}


def sample(name: str) -> dict[str, Any]:
    """A stored sample event of tests/fixtures/aws-events/."""
    return json.loads((SAMPLES / name).read_text())


def missing_keys(expected: dict[str, Any], event: dict[str, Any], where: str = "") -> list[str]:
    """Keys of `expected` (nested objects included, request data excepted) that `event` lacks."""
    missing = []
    for key, value in expected.items():
        path = f"{where}.{key}" if where else key
        if key not in event:
            missing.append(path)
        elif key not in DATA_KEYS and isinstance(value, dict) and isinstance(event[key], dict):
            missing += missing_keys(value, event[key], path)
    return missing


def sources_of(app: App) -> dict[str, set[str]]:
    """Each function's event sources in the template."""
    sources: dict[str, set[str]] = {}
    for route in app.routes:
        sources.setdefault(route.function_id, set()).add("rest-proxy")
    for authorizer in app.authorizers.values():
        sources.setdefault(authorizer.function_id, set()).add("request-authorizer")
    for mapping in app.kafka:
        sources.setdefault(mapping.function_id, set()).add("kafka")
    for schedule in app.schedules:
        sources.setdefault(schedule.function_id, set()).add("schedule")
    return sources


def problems(source: str, event: dict[str, Any]) -> list[str]:
    """Why `event` is not what AWS hands a function for `source` (empty: it is)."""
    model, sample_name = SOURCES[source]
    expected = sample(sample_name)
    found = [f"missing {key}" for key in missing_keys(expected, event)]
    if source == "kafka":
        first = next(iter(expected["records"].values()))[0]
        for records in (event.get("records") or {}).values():
            found += [f"record missing {key}" for record in records for key in missing_keys(first, record)]
    try:
        model.model_validate(event)
    except ValueError as err:
        found.append(f"{model.__name__}: {err}")
    return found
