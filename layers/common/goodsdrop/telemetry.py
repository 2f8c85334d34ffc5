"""What the functions report about a drop: CloudWatch metrics (Powertools Metrics, embedded metric
format) and X-Ray traces (Powertools Tracer).

Every metric the code emits is a `Metric` here, and every emission goes through `count` / `measure`,
so the template's alarms and dashboard (infra/template.yaml) can be checked against this list
(tests/unit/test_alarms.py). Each record is one EMF line on stdout, written at once
(`single_metric`): CloudWatch turns it into the metric on AWS; locally it is the same line in the
runtime's log. Dimensions stay small - the answer code, the saga step, the payment outcome - never
a member, an order or a product (those are in the logs, the traces and the drop dashboard).

Tracing: `active_tracer()` is the one Tracer (made on first use); handlers on the order path and
the saga's consumers are wrapped by `capture_handler`, and `traced(name, order_id)` opens a
subsegment annotated with the order id. Locally the runtime sets POWERTOOLS_TRACE_DISABLED when no
X-Ray daemon is configured (README, local vs AWS).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE = "GoodsDrop"

_tracer: list[Any] = []  # [Tracer] once made, [None] while tracing is off


def active_tracer() -> Any:
    """The Tracer, made on first use, or None while tracing is off (POWERTOOLS_TRACE_DISABLED, or not
    in Lambda). Made lazily: the X-Ray SDK imports botocore's session and client machinery (about
    half a second), which a handler's import must not pay for (tests/unit/test_cold_start_imports.py).
    No auto-patching: the order path and the saga steps are traced by their handlers and `traced`."""
    if not _tracer:
        disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in ("1", "true", "yes")
        if disabled or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            _tracer.append(None)
        else:
            from aws_lambda_powertools import Tracer

            _tracer.append(Tracer(auto_patch=False))
    return _tracer[0]


def capture_handler(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Trace a Lambda handler (Powertools' `capture_lambda_handler`) once tracing is on."""
    traced_handler: list[Callable[[Any, Any], Any]] = []

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        tracer = active_tracer()
        if tracer is None:
            return handler(event, context)
        if not traced_handler:
            traced_handler.append(tracer.capture_lambda_handler(handler))
        return traced_handler[0](event, context)

    return wrapper


class _NoSegment:
    """What `traced` yields while tracing is off."""

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate."""


class Metric(StrEnum):
    """Every metric the functions emit (namespace `GoodsDrop`; dimension `service` plus the one named)."""

    ORDER_ATTEMPTS = "OrderAttempts"  # Answer: ACCEPTED or the refusal's code
    RESERVATION_LATENCY = "ReservationLatency"  # ms of the reservation (Redis) on POST /orders
    SAGA_STEP_LATENCY = "SagaStepLatency"  # Step: ms one saga step took for one record
    PAYMENTS = "Payments"  # Outcome: APPROVED / DECLINED
    COMPENSATIONS = "Compensations"  # orders compensated (refund if paid, units released, FAILED)
    DEAD_LETTERED_RECORDS = "DeadLetteredRecords"  # Kafka records written to the dead-letter topic
    RESERVATIONS_EXPIRED = "ReservationsExpired"  # reservations the expiry job released
    RESERVATION_EXPIRY_FAILURES = "ReservationExpiryFailures"  # reservations the expiry job failed to expire
    WAITING_ROOM_LENGTH = "WaitingRoomLength"  # tickets not yet admitted, seen when a buyer joins
    WAITING_ROOM_ADMISSIONS = "WaitingRoomAdmissions"  # admitted tickets read by their owners (passes handed out)


# The answers POST /orders counts (any other refusal is OTHER): ACCEPTED is the 202.
ANSWERS = ("ACCEPTED", "OUT_OF_STOCK", "NOT_ON_SALE", "PURCHASE_LIMIT_EXCEEDED", "RATE_LIMITED", "QUEUE_REQUIRED",
           "OTHER")


def answer_of(error: BaseException | None) -> str:
    """The answer an order attempt got, as counted: ACCEPTED, a refusal's code, or OTHER."""
    if error is None:
        return "ACCEPTED"
    code = getattr(error, "code", "")
    return code if code in ANSWERS else "OTHER"


def count(metric: Metric, value: float = 1, **dimensions: str) -> None:
    """Emit one count of `metric` now (one EMF record) with `dimensions` (small, fixed sets only)."""
    _emit(metric, MetricUnit.Count, value, dimensions)


def measure(metric: Metric, milliseconds: float, **dimensions: str) -> None:
    """Emit one duration of `metric` in milliseconds now."""
    _emit(metric, MetricUnit.Milliseconds, round(milliseconds, 3), dimensions)


def _emit(metric: Metric, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    # Telemetry never fails the work it describes.
    with contextlib.suppress(Exception), single_metric(name=metric.value, unit=unit, value=value,
                                                       namespace=NAMESPACE) as record:
        for name, dimension in dimensions.items():
            record.add_dimension(name=name, value=str(dimension))


@contextlib.contextmanager
def timed(metric: Metric, **dimensions: str) -> Iterator[None]:
    """Measure the block's wall time into `metric` (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        measure(metric, (time.perf_counter() - started) * 1000, **dimensions)


@contextlib.contextmanager
def traced(name: str, order_id: str | None = None, **annotations: Any) -> Iterator[Any]:
    """An X-Ray subsegment `## name`, annotated with the order id (a no-op while tracing is disabled)."""
    tracer = active_tracer()
    if tracer is None:
        yield _NoSegment()
        return
    with tracer.provider.in_subsegment(f"## {name}") as segment:
        if order_id:
            segment.put_annotation("order_id", order_id)
        for key, value in annotations.items():
            segment.put_annotation(key, value)
        yield segment
