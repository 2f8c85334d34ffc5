"""What the local runtime hands to functions is what AWS hands them, for every event source of the template.

A second runtime (`python -m goodsdrop_local serve`, its own ports, topic prefix and consumer groups,
on the test stack's servers) runs a copy of infra/template.yaml in which every function's code is
tests/fixtures/recorder/record_event.py: it records the event it is handed and answers like a healthy
function. Everything else is the template's own: every route and its authorizer, every Kafka mapping,
every schedule (its rate shortened to a second: the clock is driven, not waited for); the SSE container
is left out (it is no Lambda event source). The test calls every route, produces a record for every
mapping and lets every schedule fire, then checks each captured event against Powertools' parser model
for its source and the SAM CLI's sample event (tests/fixtures/aws-events/: every key of the sample must
be there). A route, mapping or schedule added to the template is covered without editing this file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, KafkaSelfManagedEventModel
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from goodsdrop.settings import settings
from goodsdrop_local.template import REPO_ROOT, TEMPLATE_PATH, App, KafkaMapping, Route, _CfnLoader, load
from tests.support.aws_events import problems
from tests.support.polling import wait_for
from tests.support.routes import concrete_path, path_parameters

RECORDER = REPO_ROOT / "tests" / "fixtures" / "recorder"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def recording_template(target: Path, groups_prefix: str) -> None:
    """infra/template.yaml with every function's code replaced by the recorder (paths made absolute)."""
    doc = yaml.load(TEMPLATE_PATH.read_text(), Loader=_CfnLoader)
    base = TEMPLATE_PATH.parent
    resources = doc["Resources"]
    for lid in [lid for lid, r in resources.items() if r["Type"] == "AWS::ECS::TaskDefinition"]:
        del resources[lid]
    for resource in resources.values():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = str((base / props["ContentUri"]).resolve())
        elif resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"], props["Handler"] = str(RECORDER), "record_event.handler"
            for event in (props.get("Events") or {}).values():
                eprops = event.get("Properties") or {}
                if event["Type"] in ("Schedule", "ScheduleV2"):
                    eprops["Schedule" if "Schedule" in eprops else "ScheduleExpression"] = "rate(1 second)"
                if "ConsumerGroupId" in eprops:
                    eprops["ConsumerGroupId"] = groups_prefix + eprops["ConsumerGroupId"]
        elif resource["Type"] == "AWS::Lambda::EventSourceMapping":
            for config in ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig"):
                if "ConsumerGroupId" in (props.get(config) or {}):
                    props[config]["ConsumerGroupId"] = groups_prefix + props[config]["ConsumerGroupId"]
    target.write_text(yaml.safe_dump(doc, sort_keys=False))


class Recording:
    """The recording runtime's address, its app (as it reads the template) and what it recorded."""

    def __init__(self, api: str, app: App, log: Path) -> None:
        self.api, self.app, self.log = api, app, log

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def recording(servers, tmp_path_factory):
    work = tmp_path_factory.mktemp("recording")
    tag = uuid.uuid4().hex[:8]
    template, log = work / "template.yaml", work / "events.jsonl"
    recording_template(template, f"rec-{tag}-")
    env = {**os.environ, "GOODSDROP_TEMPLATE": str(template), "GOODSDROP_RECORDED_EVENTS": str(log),
           "GOODSDROP_STACK_DIR": str(work / "stack"), "GOODSDROP_TOPIC_PREFIX": f"rec-{tag}.",
           "GOODSDROP_API_PORT": str(_free_port()), "GOODSDROP_STREAM_PORT": str(_free_port()),
           "GOODSDROP_API_WORKERS": "1", "GOODSDROP_STATIC_DIR": str(work / "no-storefront"),
           "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("layers/common", "local", "."))}
    app = load(template, environ=env)
    topics = sorted({t for m in app.kafka for t in [*m.topics, *([m.on_failure_topic] if m.on_failure_topic else [])]})
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    runtime = subprocess.Popen([sys.executable, "-m", "goodsdrop_local", "serve"], env=env, cwd=REPO_ROOT,
                               stdout=(work / "runtime.log").open("wb"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        port = int(env["GOODSDROP_API_PORT"])
        wait_for(lambda: runtime.poll() is not None or _port_open(port), seconds=90)
        assert runtime.poll() is None and _port_open(port), (work / "runtime.log").read_text()[-3000:]
        yield Recording(f"http://127.0.0.1:{port}", app, log)
    finally:
        os.killpg(runtime.pid, signal.SIGTERM)  # serve stops its children and exits
        try:
            runtime.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(runtime.pid, signal.SIGKILL)
            runtime.wait(timeout=10)
        admin.delete_topics(topics)
        admin.close()


def probe_token(route: Route) -> str:
    return f"probe-{route.method}-{route.path}"


@pytest.fixture(scope="module")
def called_routes(recording):
    """Every route called once, as a browser on another origin would, with headers in mixed case."""
    answers = {}
    with httpx.Client(base_url=recording.api, timeout=60) as client:
        for route in recording.app.routes:
            # A token per route: an authorizer result cached by identity (ReauthorizeEvery) still runs once each.
            headers = {"X-Probe-Case": "Mixed-Case", "Origin": "http://shop.example",
                       **({"Authorization": f"Bearer {probe_token(route)}"} if route.authorizer else {})}
            body = b'{"probe": true}' if route.method in ("POST", "PUT", "PATCH") else None
            if body:
                headers["Content-Type"] = "application/json"
            response = client.request(route.method, concrete_path(route), params=[("probe", "1"), ("probe", "2")],
                                      headers=headers, content=body)
            answers[(route.method, route.path)] = response
    return answers


def _events_of(recording: Recording, function_id: str, **where: Any) -> list[dict[str, Any]]:
    return [r["event"] for r in recording.events()
            if r["function"] == function_id and all(r["event"].get(k) == v for k, v in where.items())]


def test_the_template_has_every_kind_of_event_source(recording):
    app = recording.app
    assert app.routes and app.authorizers and app.kafka and app.schedules


def test_every_route_gets_an_api_gateway_rest_proxy_event(recording, called_routes):
    for route in recording.app.routes:
        response = called_routes[(route.method, route.path)]
        assert response.status_code == 200 and response.json() == {"function": route.function_id}, route
        (event,) = _events_of(recording, route.function_id, resource=route.path, httpMethod=route.method)
        assert problems("rest-proxy", event) == [], route
        assert event["headers"]["X-Probe-Case"] == "Mixed-Case"  # the client's header case
        assert event["multiValueQueryStringParameters"] == {"probe": ["1", "2"]}
        assert event["queryStringParameters"] == {"probe": "2"}
        assert event["pathParameters"] == (path_parameters(route) or None)
        context = event["requestContext"]
        assert context["resourcePath"] == route.path and context["httpMethod"] == route.method
        if route.authorizer:
            assert context["authorizer"]["principalId"] == "recorder"
            assert context["authorizer"]["emailVerified"] == "true"  # API Gateway hands over strings
        else:
            assert "authorizer" not in context


def test_every_protected_route_runs_the_request_authorizer_with_its_event(recording, called_routes):
    protected = [r for r in recording.app.routes if r.authorizer]
    assert protected
    for route in protected:
        authorizer = recording.app.authorizers[route.authorizer]
        (event,) = _events_of(recording, authorizer.function_id, resource=route.path, httpMethod=route.method)
        assert problems("request-authorizer", event) == [], route
        assert event["type"] == "REQUEST" and "authorizationToken" not in event  # a TOKEN authorizer's field
        assert event["headers"]["Authorization"] == f"Bearer {probe_token(route)}"
        assert event["multiValueHeaders"]["Authorization"] == [f"Bearer {probe_token(route)}"]
        assert re.fullmatch(rf"arn:aws:execute-api:[^:]+:\d{{12}}:[^/]+/[^/]+/{route.method}/.+", event["methodArn"])


def _produce(topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    producer.send(topic, key=b"probe-key", value=b'{"probe": true}', headers=[("probe", b"header-value")])
    producer.flush()
    producer.close()


def _batches(recording: Recording, mapping: KafkaMapping, topic: str) -> list[dict[str, Any]]:
    return [e for e in _events_of(recording, mapping.function_id) if f"{topic}-0" in e.get("records", {})]


@pytest.fixture(scope="module")
def produced(recording):
    """A record (key, value, a header) delivered from every topic of every mapping."""
    for mapping in recording.app.kafka:
        for topic in mapping.topics:
            _produce(topic)
    deadline = time.monotonic() + 90
    for mapping in recording.app.kafka:
        for topic in mapping.topics:
            # A LATEST mapping sees only records sent after its poller joined: send again until one arrives.
            while not wait_for(lambda m=mapping, t=topic: _batches(recording, m, t), seconds=3):
                assert time.monotonic() < deadline, f"{mapping.name} delivered nothing from {topic}"
                if mapping.starting_position == "LATEST":
                    _produce(topic)
    return recording.app.kafka


def test_every_kafka_mapping_gets_a_self_managed_kafka_batch(recording, produced):
    for mapping in produced:
        for topic in mapping.topics:
            events = _batches(recording, mapping, topic)
            assert events, f"{mapping.name} delivered nothing from {topic}"
            event = events[0]
            assert problems("kafka", event) == [], mapping.name
            parsed = KafkaSelfManagedEventModel.model_validate(event)
            parsed_record = parsed.records[f"{topic}-0"][0]
            assert parsed_record.key == b"probe-key" and parsed_record.value == '{"probe": true}'
            assert parsed_record.headers == [{"probe": b"header-value"}]
            assert parsed.bootstrapServers == settings.kafka_bootstrap.split(",")


def test_every_schedule_gets_an_eventbridge_scheduled_event(recording):
    for schedule in recording.app.schedules:
        events = wait_for(lambda s=schedule: _events_of(recording, s.function_id, source="aws.events"), seconds=60)
        assert events, f"{schedule.name} never fired"
        event = events[0]
        assert problems("schedule", event) == [], schedule.name
        parsed = EventBridgeModel.model_validate(event)
        assert parsed.detail_type == "Scheduled Event" and parsed.detail == {}
        assert re.fullmatch(rf"arn:aws:events:{event['region']}:{event['account']}:rule/.+", event["resources"][0])


def test_every_function_with_an_event_source_was_exercised(recording, called_routes, produced):
    app = recording.app
    wait_for(lambda: {r["function"] for r in recording.events()} >= {m.function_id for m in app.kafka}
             | {s.function_id for s in app.schedules}, seconds=60)
    expected = ({r.function_id for r in app.routes} | {a.function_id for a in app.authorizers.values()}
                | {m.function_id for m in app.kafka} | {s.function_id for s in app.schedules})
    assert expected <= {r["function"] for r in recording.events()}
