"""The functions' metrics are CloudWatch embedded-metric-format records with small dimensions."""

from __future__ import annotations

import json

import pytest

from goodsdrop import telemetry
from goodsdrop.errors import Conflict, QueueRequired, RateLimited, ValidationError
from goodsdrop.telemetry import Metric, answer_of, capture_handler, count, measure, timed, traced


def _records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_answers_are_the_refusal_codes_or_other():
    assert answer_of(None) == "ACCEPTED"
    assert answer_of(Conflict("x", code="OUT_OF_STOCK")) == "OUT_OF_STOCK"
    assert answer_of(Conflict("x", code="PURCHASE_LIMIT_EXCEEDED")) == "PURCHASE_LIMIT_EXCEEDED"
    assert answer_of(QueueRequired("x")) == "QUEUE_REQUIRED"
    assert answer_of(RateLimited("x", retry_after=1)) == "RATE_LIMITED"
    assert answer_of(ValidationError("x")) == "OTHER"
    assert answer_of(RuntimeError("boom")) == "OTHER"


def test_a_count_is_one_emf_record_with_its_dimensions(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "goodsdrop")
    count(Metric.ORDER_ATTEMPTS, Answer="OUT_OF_STOCK")
    (record,) = _records(capsys.readouterr().out)
    meta = record["_aws"]["CloudWatchMetrics"][0]
    assert meta["Namespace"] == "GoodsDrop"
    assert meta["Metrics"] == [{"Name": "OrderAttempts", "Unit": "Count"}]
    assert set(meta["Dimensions"][0]) == {"Answer", "service"}
    assert record["Answer"] == "OUT_OF_STOCK" and record["OrderAttempts"] == [1.0]


def test_durations_are_milliseconds_also_when_the_block_raises(capsys):
    measure(Metric.RESERVATION_LATENCY, 12.5)
    with pytest.raises(KeyError), timed(Metric.SAGA_STEP_LATENCY, Step="payments"):
        raise KeyError("x")
    first, second = _records(capsys.readouterr().out)
    assert first["ReservationLatency"] == [12.5]
    assert second["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds"
    assert second["Step"] == "payments" and second["SagaStepLatency"][0] >= 0


def test_tracing_is_off_while_disabled_and_handlers_run_as_they_are(monkeypatch):
    monkeypatch.setattr(telemetry, "_tracer", [])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "PlaceOrderFunction")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    with traced("place_order", "01HXYZ") as segment:
        segment.put_annotation("more", "x")
    assert telemetry.active_tracer() is None
    assert capture_handler(lambda event, context: {"echo": event})({"a": 1}, None) == {"echo": {"a": 1}}


def test_in_lambda_with_tracing_on_the_tracer_is_made_on_first_use(monkeypatch):
    monkeypatch.setattr(telemetry, "_tracer", [])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "PlaceOrderFunction")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    tracer = telemetry.active_tracer()
    assert type(tracer).__name__ == "Tracer" and telemetry.active_tracer() is tracer
