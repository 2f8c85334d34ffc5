"""The one place that decides whether a Kafka record's failure is permanent or transient.

Every consumer (goodsdrop.consumers.run_saga_step) asks `classify` about any exception a record
raised:

- *transient*: a store or service we depend on is briefly unavailable (MySQL, Redis, Kafka, the
  payment gateway - `tok_error` fails twice by design), a lock wait timed out or a deadlock was
  chosen as its victim, or a `DropError` that says "try again" (503, 429). The record goes back
  to the event-source mapping as a batch item failure and is retried with backoff.
- *permanent*: everything else. The record can never succeed as it is: undecodable bytes, not an
  envelope, an unknown event type or version, a payload that fails its schema, a reference to an
  order, product or member that does not exist (`NotFound` with a code), data MySQL rejects - and
  any exception nobody expected (a bug: retrying cannot fix it, replaying after the fix can). The
  consumer writes it to the dead-letter topic at once with the reason and the batch carries on.

Reasons are stable codes (the `DropError` code where there is one), so operators can group dead
letters by them (`python -m goodsdrop_local.dlq list`).
"""

from __future__ import annotations

import binascii
import json
import sys
from dataclasses import dataclass

import pydantic
import pymysql
import redis.exceptions

from goodsdrop.errors import DropError
from goodsdrop.payment_gateway import GatewayUnavailable

PERMANENT, TRANSIENT = "permanent", "transient"

# Reasons of permanent failures that carry no DropError code of their own.
UNDECODABLE = "UNDECODABLE"  # no value, not base64, not UTF-8 or not JSON
ENVELOPE_INVALID = "ENVELOPE_INVALID"  # JSON, but not an Envelope (missing or mistyped fields)
UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
UNKNOWN_EVENT_VERSION = "UNKNOWN_EVENT_VERSION"
UNEXPECTED_EVENT_TYPE = "UNEXPECTED_EVENT_TYPE"  # a known event on a topic whose consumer does not take it
PAYLOAD_INVALID = "PAYLOAD_INVALID"  # the payload fails the schema its type and version name
UNKNOWN_ORDER = "UNKNOWN_ORDER"
UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
UNKNOWN_MEMBER = "UNKNOWN_MEMBER"
DATA_REJECTED = "DATA_REJECTED"  # MySQL refused the values (constraint, range)
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"  # an exception nobody classified: a bug, replay once fixed

KAFKA_UNAVAILABLE = "KAFKA_UNAVAILABLE"  # a kafka-python error (broker down, request timed out)

MYSQL_LOCK_WAIT_TIMEOUT, MYSQL_DEADLOCK = 1205, 1213

# (exception types, reason) of transient faults, first match wins.
TRANSIENT_FAULTS: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ClusterError,
      redis.exceptions.ReadOnlyError, redis.exceptions.TryAgainError, redis.exceptions.SlotNotCoveredError,
      redis.exceptions.WatchError), "REDIS_UNAVAILABLE"),
    ((pymysql.err.OperationalError, pymysql.err.InterfaceError), "MYSQL_UNAVAILABLE"),
    ((GatewayUnavailable,), "GATEWAY_UNAVAILABLE"),
    ((ConnectionError, TimeoutError), "SERVICE_UNAVAILABLE"),  # sockets; also test-injected outages
)


def kafka_errors() -> tuple[type[BaseException], ...]:
    """kafka-python's error base, if the process has imported kafka-python at all.

    Only kafka-python raises its errors, so a process that never imported it (most functions: the
    producer is built at the first publish) cannot hold one, and classifying must not import it:
    that alone costs a cold start ~100 ms (kafka-python pulls in botocore for MSK IAM).
    """
    errors = sys.modules.get("kafka.errors")
    return (errors.KafkaError,) if errors is not None else ()


@dataclass(frozen=True)
class Failure:
    """What went wrong with one record: `kind` (permanent or transient), a stable `reason`, a `detail`."""

    kind: str
    reason: str
    detail: str

    @property
    def transient(self) -> bool:
        return self.kind == TRANSIENT


def _detail(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]


def classify(error: BaseException) -> Failure:
    """Permanent or transient, and why. Unclassified exceptions are permanent (see the module doc)."""
    if isinstance(error, DropError):
        kind = TRANSIENT if error.http_status in (429, 503) else PERMANENT
        return Failure(kind, error.code, _detail(error))
    if isinstance(error, pymysql.err.OperationalError) and error.args:
        code = error.args[0]
        if code == MYSQL_LOCK_WAIT_TIMEOUT:
            return Failure(TRANSIENT, "MYSQL_LOCK_WAIT_TIMEOUT", _detail(error))
        if code == MYSQL_DEADLOCK:
            return Failure(TRANSIENT, "MYSQL_DEADLOCK", _detail(error))
    for types, reason in TRANSIENT_FAULTS:
        if isinstance(error, types):
            return Failure(TRANSIENT, reason, _detail(error))
    if isinstance(error, kafka_errors()):
        return Failure(TRANSIENT, KAFKA_UNAVAILABLE, _detail(error))
    if isinstance(error, (pymysql.err.IntegrityError, pymysql.err.DataError)):
        return Failure(PERMANENT, DATA_REJECTED, _detail(error))
    if isinstance(error, pydantic.ValidationError):
        return Failure(PERMANENT, PAYLOAD_INVALID, _detail(error))
    if isinstance(error, (UnicodeDecodeError, json.JSONDecodeError, binascii.Error)):
        return Failure(PERMANENT, UNDECODABLE, _detail(error))
    return Failure(PERMANENT, UNEXPECTED_ERROR, _detail(error))
